# ml-api: one image for Flask (default, port 5000) and Django (ML_API_FRAMEWORK=django, port 8000).
#
#   docker build -t ml_api .                                  # classic builder; BuildKit not needed
#   docker run --rm -p 5000:5000 --read-only --tmpfs /tmp ml_api
#   docker run --rm -p 8000:8000 --read-only --tmpfs /tmp -e ML_API_FRAMEWORK=django \
#       -e ML_API_SECRET_KEY=<50+ random characters> ml_api
#   docker run ... -v "$PWD/my-models:/models:ro" -e ML_API_MODEL_ROOT=/models ml_api  # own model
#
# The image holds only what serving needs (docs/production.md#the-image). Stages:
#   deps     the serving dependencies (pyproject's dependencies, no extras) in /opt/venv
#   builder  deps + the package + the `train` extra (matplotlib, the ONNX converter): trains the
#            default penguins model into /app/models; none of its extra libraries leaves it
#   venv     deps without what serving never opens (docker/slim.sh)
#   system   the base image without installers, package manager, Perl, administration tools,
#            documentation and the standard library's bytecode (docker/system.sh)
#   slim     system plus that virtualenv, the package and the model: one run of everything the image
#            serves (docker/warm.py) on the trimmed system, which writes bytecode for exactly the
#            modules it uses
#   runtime  system, flattened (the files removed above do not linger in a lower layer), plus the
#            bytecode, the slim virtualenv, the package and the model, and a non-root user

ARG PYTHON_IMAGE=python:3.11-slim
# checkov:skip=CKV_DOCKER_7:FROM uses the ARG above, whose default python:3.11-slim is a version tag; checkov does not resolve ARGs

FROM ${PYTHON_IMAGE} AS deps

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /build

# 1. Dependencies only, in /opt/venv (the big, slow layer): rebuilt when pyproject.toml or
#    constraints.txt change, never when the source does, so the runtime stage's copy of it stays
#    cached and an image push after a source change sends a few hundred kB. The runtime
#    dependency list is read from pyproject.toml and pinned by constraints.txt; no bytecode is
#    compiled here (docker/warm.py writes what serving imports). The libraries' own test suites go
#    (directories named tests, joblib's test, pytest's conftest.py files; django/test is a runtime
#    module), and a .pth file puts /opt/ml-api, where the package itself goes, on sys.path. The
#    virtualenv has no pip or setuptools of its own: the base image's pip installs into it
#    (pip --python), so no installer ends up in the runtime stage's copy.
#    EXTRAS adds optional dependency groups of pyproject.toml, comma-separated (xgboost,lightgbm:
#    what an imported XGBoost or LightGBM model needs; `make image MODEL=<name>` sets it).
#    PINS replaces constraints.txt's versions of the libraries a model was fitted with, space-
#    separated (scikit-learn==1.6.1: what `ml-api requirements` prints; `make image MODEL=<name>`
#    sets it, docker/constraints.py applies it; docs/models.md "Other library versions").
ARG EXTRAS=""
ARG PINS=""
COPY pyproject.toml constraints.txt docker/constraints.py ./
RUN python constraints.py constraints.txt $PINS \
    && python -m venv --without-pip /opt/venv \
    && python -c "import os, tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; extras = [e for e in os.environ['EXTRAS'].split(',') if e]; print('\n'.join(p['dependencies'] + [d for e in extras for d in p['optional-dependencies'][e]]))" \
        > requirements.in \
    && python -m pip --python /opt/venv/bin/python install --no-compile -c constraints.txt \
        -r requirements.in \
    && site=$(/opt/venv/bin/python -c "import sysconfig; print(sysconfig.get_path('purelib'))") \
    && find "$site" -depth -type d -name tests -exec rm -rf {} + \
    && rm -rf "$site/joblib/test" \
    && find "$site" -name conftest.py -delete \
    && echo /opt/ml-api > "$site/ml-api.pth"


FROM deps AS builder

# 2. The `train` extra (the card's charts, the ONNX converter), added to this stage's copy of the
#    virtualenv only: the default model is trained here.
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['train']))" \
        > train.in \
    && python -m pip --python /opt/venv/bin/python install --no-compile -c constraints.txt \
        -r train.in

# 3. The package itself, into /opt/ml-api (no dependency resolution: all are in /opt/venv).
#    PIP_CONSTRAINT also pins the build backend pip fetches for the isolated build.
COPY README.md ./
COPY src ./src
RUN PIP_CONSTRAINT=/build/constraints.txt python -m pip --python /opt/venv/bin/python install \
        --no-compile --no-deps --target /opt/ml-api . \
    && python -m pip --python /opt/venv/bin/python check

ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/ml-api/bin:/opt/venv/bin:$PATH

# 4. The default model, trained from the bundled data, so the image answers out of the box; files
#    in group 0 with the owner's permissions (see the runtime stage).
COPY data/raw ./data/raw
RUN ml-api train --model-root /app/models \
    && ml-api info --model-root /app/models > /dev/null \
    && chmod -R g=u /app


FROM deps AS venv

# 5. What serving never opens leaves the virtualenv (docker/slim.sh says what and why; strip
#    comes from binutils, installed in this stage only). Cached while the dependencies are.
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends binutils \
    && rm -rf /var/lib/apt/lists/*
COPY docker/slim.sh docker/strip.py /build/
RUN sh /build/slim.sh /opt/venv


FROM ${PYTHON_IMAGE} AS system

# A fixed numeric UID (so Kubernetes' runAsNonRoot can verify it) in group 0, and files owned by
# group 0 with the owner's permissions, so platforms that run an arbitrary UID in group 0 work too.
RUN useradd --no-log-init --uid 10001 --gid 0 --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin ml-api

# System libraries some model libraries load (LightGBM: libgomp1); none by default.
ARG SYSTEM_PACKAGES=""
# hadolint ignore=DL3008
RUN if [ -n "$SYSTEM_PACKAGES" ]; then \
        apt-get update && apt-get install -y --no-install-recommends $SYSTEM_PACKAGES \
        && rm -rf /var/lib/apt/lists/*; \
    fi

# The installers (the virtualenv was filled by the deps stage), the package manager, Perl, the
# administration tools and what no process reads (docker/system.sh says what and why; it fails
# when a file left needs a removed library). The script itself does not stay.
COPY docker/system.sh /tmp/system.sh
RUN sh /tmp/system.sh && rm /tmp/system.sh


FROM system AS slim

# 6. Serve and score once with the trimmed virtualenv, the package and the model, on the trimmed
#    system (docker/warm.py): a failure stops the build, and the bytecode Python writes meanwhile
#    (virtualenv and standard library) is the runtime's, for exactly the modules used.
WORKDIR /build
COPY --from=venv /opt/venv /opt/venv
COPY --from=builder /opt/ml-api /opt/ml-api
COPY --from=builder /app /app
COPY docker/warm.py data/raw/penguins.csv /build/
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/ml-api/bin:/opt/venv/bin:$PATH \
    ML_API_MODEL_ROOT=/app/models
# The standard library's new bytecode is gathered, with its paths, under /build/stdlib-pyc (its
# directories rwxr-xr-x like the system's: the runtime's COPY sets /usr's mode from them).
RUN env -u PYTHONDONTWRITEBYTECODE python /build/warm.py /build/penguins.csv \
    && stdlib=$(PYTHONDONTWRITEBYTECODE=1 python -c "import sysconfig; print(sysconfig.get_path('stdlib'))") \
    && mkdir /build/stdlib-pyc \
    && find "$stdlib" -path '*/__pycache__/*.pyc' -exec cp --parents -t /build/stdlib-pyc {} + \
    && find /build/stdlib-pyc -type d -exec chmod 755 {} +


FROM scratch AS runtime

# MALLOC_ARENA_MAX=2: glibc's default is 8 malloc arenas per CPU of the node, so 64 request threads
# on a bigger node would hold more memory than on the one the limit was measured on; 2 makes the
# footprint the same on every node (docs/kubernetes.md "Sizing").

LABEL org.opencontainers.image.title="ml-api" \
      org.opencontainers.image.description="scikit-learn model served with Flask or Django under gunicorn" \
      org.opencontainers.image.licenses="Apache-2.0"

# Flattened on purpose: copying the trimmed system whole is what makes its removals count.
# hadolint ignore=DL3067
COPY --from=system / /

ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/ml-api/bin:/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 \
    MALLOC_ARENA_MAX=2 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ML_API_MODEL_ROOT=/app/models

# The standard library's bytecode, the dependencies, then the package, then the model: a source
# change rebuilds only the last two (the bytecode is the same bytes, so the first layers come from
# the cache).
COPY --from=slim /build/stdlib-pyc/ /
COPY --from=slim /opt/venv /opt/venv
COPY --from=slim /opt/ml-api /opt/ml-api
COPY --from=builder --chown=10001:0 /app /app

WORKDIR /app
USER 10001:0

# Flask listens on 5000, Django on 8000 (PORT overrides either).
EXPOSE 5000 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-m", "ml_api.serving.healthcheck"]

# Exec form: the Python process is gunicorn's master and receives SIGTERM from `docker stop`
# directly; it keeps serving ML_API_DRAIN_SECONDS (5 s) with /ready at 503, lets requests in flight
# finish (up to 20 s) and reaps its own workers. Docker's default 10 s before SIGKILL is too short
# for that: use `docker stop -t 30` (compose: stop_grace_period, Kubernetes: the grace period).
ENTRYPOINT ["ml-api", "serve"]
