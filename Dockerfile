# ml-api: one image for Flask (default, port 5000) and Django (ML_API_FRAMEWORK=django, port 8000).
#
#   docker build -t ml_api .                                  # classic builder; BuildKit not needed
#   docker run --rm -p 5000:5000 --read-only --tmpfs /tmp ml_api
#   docker run --rm -p 8000:8000 --read-only --tmpfs /tmp -e ML_API_FRAMEWORK=django ml_api
#
# Stages: `builder` makes a virtualenv (dependencies first, pinned by constraints.txt, then the
# package), trains the default penguins model into /app/models, and drops what the runtime does not
# need; `runtime` is the bare base image plus that virtualenv, the model and a non-root user.

ARG PYTHON_IMAGE=python:3.11-slim
# checkov:skip=CKV_DOCKER_7:FROM uses the ARG above, whose default python:3.11-slim is a version tag; checkov does not resolve ARGs

FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

RUN python -m venv /opt/venv

WORKDIR /build

# 1. Dependencies only (the slow layer): rebuilt when pyproject.toml or constraints.txt change, not
#    when the source does. The runtime dependency list is read from pyproject.toml.
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > requirements.in \
    && pip install -c constraints.txt -r requirements.in

# 2. The package itself (no dependency resolution: everything it needs is already installed).
#    PIP_CONSTRAINT also pins the build backend that pip fetches for the isolated build.
COPY README.md ./
COPY src ./src
RUN PIP_CONSTRAINT=/build/constraints.txt pip install --no-deps . \
    && pip check

# 3. The default model, trained from the bundled data, so the image answers out of the box.
COPY data/raw ./data/raw
RUN ml-api train --model-root /app/models \
    && ml-api info --model-root /app/models > /dev/null

# 4. Nothing the runtime does not run: installers and the libraries' own test suites (directories
#    named tests, joblib's test, the pytest conftest.py files; django/test is a runtime module).
RUN pip uninstall --yes pip setuptools wheel \
    && site=$(python -c "import sysconfig; print(sysconfig.get_path('purelib'))") \
    && find "$site" -depth -type d -name tests -exec rm -rf {} + \
    && rm -rf "$site/joblib/test" \
    && find "$site" -name conftest.py -delete \
    && chmod -R g=u /app


FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="ml-api" \
      org.opencontainers.image.description="scikit-learn model served with Flask or Django under gunicorn" \
      org.opencontainers.image.licenses="Apache-2.0"

# A fixed numeric UID (so Kubernetes' runAsNonRoot can verify it) in group 0, and files owned by
# group 0 with the owner's permissions, so platforms that run an arbitrary UID in group 0 work too.
RUN useradd --no-log-init --uid 10001 --gid 0 --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin ml-api

ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ML_API_MODEL_ROOT=/app/models

COPY --from=builder /opt/venv /opt/venv
COPY --from=builder --chown=10001:0 /app /app

WORKDIR /app
USER 10001:0

# Flask listens on 5000, Django on 8000 (PORT overrides either).
EXPOSE 5000 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-m", "ml_api.serving.healthcheck"]

# Exec form: the Python process is gunicorn's master, receives SIGTERM from `docker stop` directly,
# drains (graceful timeout 20 s: use `docker stop -t 30`) and reaps its own workers.
ENTRYPOINT ["ml-api", "serve"]
