# ml-api: `make help` lists the targets. Every target creates what it needs first.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt

IMAGE ?= ml_api
TAG ?= latest
REGISTRY ?=
# Host networking for the build's RUN steps (pip); the classic builder is enough, no BuildKit.
DOCKER_BUILD_FLAGS ?= --network host
ifneq ($(filter push,$(MAKECMDGOALS)),)
ifeq ($(REGISTRY),)
$(error usage: make push REGISTRY=<registry host>/<namespace> [TAG=...], e.g. REGISTRY=docker.io/alice)
endif
endif

# ml-api needs Python 3.11+: say so before pip tries (and fails) to resolve the dependencies.
$(VENV)/.installed: pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
		echo "make: ml-api needs Python 3.11 or newer; '$(PYTHON)' is $$($(PYTHON) --version 2>&1 || echo missing)." >&2; \
		echo "      Install one (3.12 works too) and run e.g. 'make PYTHON=python3.12 $(MAKECMDGOALS)'." >&2; \
		exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PIP) -e '.[train]'
	@touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) -e '.[test]'
	@touch $@

$(VENV)/.installed-bench: $(VENV)/.installed
	$(PIP) -e '.[bench]'
	@touch $@

# Deployment checkers that conflict with the project's pins live in their own virtualenv.
TOOLS_VENV ?= .venv-tools
$(TOOLS_VENV)/.installed: constraints-tools.txt
	$(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
		-c constraints-tools.txt checkov cloudcoil-models-prometheus-operator
	@touch $@

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: install
install: $(VENV)/.installed ## Create .venv and install ml-api (pinned by constraints.txt)

.PHONY: model
model: $(VENV)/.installed ## Train the default penguins model unless one exists
	$(BIN)/ml-api train --if-missing

.PHONY: run
run: model ## Train if needed, then serve with Flask + gunicorn on 0.0.0.0:5000 (PORT=...)
	exec $(BIN)/ml-api serve --framework flask

.PHONY: run-django
run-django: model ## Train if needed, then serve with Django + gunicorn on 0.0.0.0:8000 (PORT=...)
	@[ -n "$${ML_API_SECRET_KEY:-}" ] || echo "make: ML_API_SECRET_KEY is not set; using a random key for this run" >&2
	ML_API_SECRET_KEY="$${ML_API_SECRET_KEY:-$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(50))')}" \
		exec $(BIN)/ml-api serve --framework django

.PHONY: train
train: $(VENV)/.installed ## Train a new version of the default model
	$(BIN)/ml-api train

.PHONY: test
# One pytest worker per CPU (pytest-xdist); TEST_WORKERS=0 runs in one process. A module's tests stay
# on one worker (--dist loadscope), so its module-scoped servers and models start once. The
# container tests (opt-in: ML_API_TEST_CONTAINERS=1, as in CI; make test-container) then run in one
# process around the session's one image build, their coverage added to the first run's.
TEST_WORKERS ?= auto
test: $(VENV)/.installed-test ## Run the test suite on every CPU (tools it cannot find are skipped with the reason)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadscope -m "not container"
	@case "$$(echo "$$ML_API_TEST_CONTAINERS" | tr A-Z a-z)" in 1|true|yes) \
	  echo "$(BIN)/python -m pytest --cov-append -m container"; \
	  $(BIN)/python -m pytest --cov-append -m container;; \
	esac

.PHONY: test-container
test-container: $(VENV)/.installed-test ## Only the container tests (a Docker Engine builds the image, runs it)
	ML_API_TEST_CONTAINERS=1 $(BIN)/python -m pytest -m container

FUZZ_SECONDS ?= 300
FUZZ_TARGETS := flask django csv parquet

.PHONY: fuzz
fuzz: $(VENV)/.installed-test ## Longer fuzzing: atheris FUZZ_SECONDS (300) per target, then schemathesis and hypothesis with FUZZ_EXAMPLES=1000
	@for t in $(FUZZ_TARGETS); do \
		case $$t in flask|django) seeds=wsgi; dict=-dict=tests/fuzz/corpus/http.dict;; *) seeds=$$t; dict=;; esac; \
		mkdir -p .fuzz/$$t && echo "make: atheris on $$t for $(FUZZ_SECONDS) s (new inputs in .fuzz/$$t)" && \
		$(BIN)/python -m tests.fuzz.atheris_main $$t -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
			$$dict -artifact_prefix=.fuzz/$$t- -print_final_stats=1 .fuzz/$$t tests/fuzz/corpus/$$seeds \
			|| exit 1; \
	done
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-1000} $(BIN)/python -m pytest -q tests/fuzz

.PHONY: lint
lint: $(VENV)/.installed-test ## ruff (lint, format), import-linter (layers), mypy (types)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy

.PHONY: bench-deps
bench-deps: $(VENV)/.installed-bench ## Install the benchmark's needs (psutil; wrk from Debian if missing)
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }

.PHONY: bench
bench: bench-deps ## Benchmark ml-api vs the classic tutorial app and MLServer (~42 min, --targets-only ~11; BENCH_ARGS=--help)
	$(BIN)/python -m bench $(BENCH_ARGS)

.PHONY: bench-smoke
bench-smoke: bench-deps ## The benchmark's plumbing in about a minute (few targets, 2 s cells; no timing claims)
	$(BIN)/python -m bench --smoke $(BENCH_ARGS)

.PHONY: bench-soak
bench-soak: bench-deps ## 64 clients for 60 s on ml-api Flask and Django, each model: errors, RSS growth
	$(BIN)/python -m bench --soak $(BENCH_ARGS)

.PHONY: tools
tools: $(TOOLS_VENV)/.installed ## Install checkov and the prometheus-operator CRD models into .venv-tools

.PHONY: deploy-check
deploy-check: $(VENV)/.installed-test tools ## Render and check the Kubernetes kit (kustomize, schemas, checkov, promtool)
	$(BIN)/python -m pytest tests/deploy -m "not container" -q

# make image MODEL=<name>: also bake models/<name> (e.g. from `ml-api import`) into $(IMAGE):<name>,
# which serves it by default. The model's own libraries (xgboost, lightgbm: read from its card) go
# into the image as pyproject extras; EXTRAS=xgboost,lightgbm adds them by hand (for a mounted model).
# The versions it was fitted with (`ml-api requirements`: scikit-learn and those libraries, within
# ml-api's range) replace constraints.txt's where they differ; PINS="scikit-learn==1.6.1" by hand.
MODEL ?=
MODEL_ROOT ?= models
ifneq ($(MODEL),)
MODEL_EXTRAS := $(shell $(PYTHON) -c "import json, pathlib; d = pathlib.Path('$(MODEL_ROOT)') / '$(MODEL)'; v = max((p for p in d.iterdir() if (p / 'metadata.json').is_file()), key=lambda p: int(p.name)); c = json.loads((v / 'metadata.json').read_text())['versions']; print(','.join(x for x in ('xgboost', 'lightgbm', 'catboost') if x in c))" 2>/dev/null)
endif
EXTRAS ?= $(MODEL_EXTRAS)
PINS ?=
SYSTEM_PACKAGES ?= $(if $(findstring lightgbm,$(EXTRAS)),libgomp1)

.PHONY: image
image: ## Build the image $(IMAGE):$(TAG) (default model inside); MODEL=<name> also builds $(IMAGE):<name> with models/<name>
	@if [ -n "$(MODEL)" ] && [ ! -d "$(MODEL_ROOT)/$(MODEL)" ]; then \
		echo "make: no model $(MODEL_ROOT)/$(MODEL): create it with ml-api import or ml-api train" >&2; exit 1; fi
	@pins="$(PINS)"; \
	if [ -n "$(MODEL)" ] && [ -z "$$pins" ]; then \
		found=$$($(BIN)/ml-api requirements $(MODEL) --model-root $(MODEL_ROOT)) || exit 1; \
		pins=$$(printf '%s\n' "$$found" | grep -v '^#' | grep -vxF -f constraints.txt | tr '\n' ' '); \
	fi; \
	set -x; docker build $(DOCKER_BUILD_FLAGS) --build-arg EXTRAS="$(EXTRAS)" --build-arg PINS="$$pins" \
		--build-arg SYSTEM_PACKAGES="$(SYSTEM_PACKAGES)" -t $(IMAGE):$(TAG) .
	$(if $(MODEL),docker build $(DOCKER_BUILD_FLAGS) -f Dockerfile.model --build-arg BASE_IMAGE=$(IMAGE):$(TAG) \
		--build-arg MODEL=$(MODEL) -t $(IMAGE):$(MODEL) $(MODEL_ROOT))

.PHONY: push
push: image ## Tag $(IMAGE):$(TAG) as $(REGISTRY)/$(IMAGE):$(TAG) and push it (REGISTRY=docker.io/<user>)
	docker tag $(IMAGE):$(TAG) $(REGISTRY)/$(IMAGE):$(TAG)
	docker push $(REGISTRY)/$(IMAGE):$(TAG)

.PHONY: clean
clean: ## Remove the virtualenv, caches and processed data (models are kept)
	rm -rf $(VENV) $(TOOLS_VENV) .pytest_cache .ruff_cache data/processed/*/
