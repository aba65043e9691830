# ml-api: one image for Flask (default, port 5000) and Django (ML_API_FRAMEWORK=django, port 8000).
#
#   docker build -t ml_api .                                  # classic builder; BuildKit not needed
#   docker run --rm -p 5000:5000 --read-only --tmpfs /tmp ml_api
#   docker run --rm -p 8000:8000 --read-only --tmpfs /tmp -e ML_API_FRAMEWORK=django \
#       -e ML_API_SECRET_KEY=<50+ random characters> ml_api
#   docker run ... -v "$PWD/my-models:/models:ro" -e ML_API_MODEL_ROOT=/models ml_api  # own model
#
# Stages: `builder` makes a virtualenv of the dependencies (pinned by constraints.txt, without their
# test suites), installs the package next to it, and trains the default penguins model into
# /app/models; `runtime` is the bare base image plus those three and a non-root user.

ARG PYTHON_IMAGE=python:3.11-slim
# checkov:skip=CKV_DOCKER_7:FROM uses the ARG above, whose default python:3.11-slim is a version tag; checkov does not resolve ARGs

FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /build

# 1. Dependencies only, in /opt/venv (the big, slow layer): rebuilt when pyproject.toml or
#    constraints.txt change, never when the source does, so the runtime stage's copy of it stays
#    cached and an image push after a source change sends a few kB. The runtime dependency list is
#    read from pyproject.toml and pinned by constraints.txt. The libraries' own test suites go
#    (directories named tests, joblib's test, pytest's conftest.py files; django/test is a runtime
#    module), and a .pth file puts /opt/ml-api, where the package itself goes, on sys.path. The
#    virtualenv has no pip or setuptools of its own: the base image's pip installs into it
#    (pip --python), so no installer ends up in the runtime stage's copy.
#    EXTRAS adds optional dependency groups of pyproject.toml, comma-separated (xgboost,lightgbm:
#    what an imported XGBoost or LightGBM model needs; `make image MODEL=<name>` sets it).
ARG EXTRAS=""
COPY pyproject.toml constraints.txt ./
RUN python -m venv --without-pip /opt/venv \
    && python -c "import os, tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; extras = [e for e in os.environ['EXTRAS'].split(',') if e]; print('\n'.join(p['dependencies'] + [d for e in extras for d in p['optional-dependencies'][e]]))" \
        > requirements.in \
    && python -m pip --python /opt/venv/bin/python install -c constraints.txt -r requirements.in \
    && site=$(/opt/venv/bin/python -c "import sysconfig; print(sysconfig.get_path('purelib'))") \
    && find "$site" -depth -type d -name tests -exec rm -rf {} + \
    && rm -rf "$site/joblib/test" \
    && find "$site" -name conftest.py -delete \
    && echo /opt/ml-api > "$site/ml-api.pth"

# 2. The package itself, into /opt/ml-api (no dependency resolution: all are in /opt/venv).
#    PIP_CONSTRAINT also pins the build backend pip fetches for the isolated build.
COPY README.md ./
COPY src ./src
RUN PIP_CONSTRAINT=/build/constraints.txt python -m pip --python /opt/venv/bin/python install \
        --no-deps --target /opt/ml-api . \
    && python -m pip --python /opt/venv/bin/python check

ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/ml-api/bin:/opt/venv/bin:$PATH

# 3. The default model, trained from the bundled data, so the image answers out of the box; files
#    in group 0 with the owner's permissions (see the runtime stage).
COPY data/raw ./data/raw
RUN ml-api train --model-root /app/models \
    && ml-api info --model-root /app/models > /dev/null \
    && chmod -R g=u /app


FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="ml-api" \
      org.opencontainers.image.description="scikit-learn model served with Flask or Django under gunicorn" \
      org.opencontainers.image.licenses="Apache-2.0"

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

ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/ml-api/bin:/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ML_API_MODEL_ROOT=/app/models

# Dependencies, then the package, then the model: a source change rebuilds only the last two.
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /opt/ml-api /opt/ml-api
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
