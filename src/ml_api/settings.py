"""Runtime settings, read once from the environment (prefix ``ML_API_``) and an optional ``.env``.

Build one :class:`Settings` at start-up and pass it down (``create_app(settings=...)``); nothing on
the request path reads ``os.environ``. Standard variable names that other tools share (``PORT``,
``WEB_CONCURRENCY``, ``PROMETHEUS_MULTIPROC_DIR``) are read without the prefix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PACKAGE_DIR = Path(__file__).resolve().parent

Framework = Literal["flask", "django"]

OutOfRangePolicy = Literal["accept", "warn", "reject"]
"""What serving does with a numeric value outside the training range
(``ml_api.core.model.ranges``)."""

DEFAULT_PORTS: dict[str, int] = {"flask": 5000, "django": 8000}
"""Each framework's customary port, used when ``PORT`` is unset: Flask's development server's
5000 and Django's ``runserver``'s 8000."""


def project_root() -> Path:
    """Return the directory that holds ``data/`` and ``models/``.

    In a source checkout (an editable install) this is the checkout, found from this file's
    location, so the result does not depend on the working directory the process was started in
    (as a relative ``open("../models/model.pkl")`` would). Anywhere else it is the working
    directory at the time of the call.

    Returns:
        An absolute path.
    """
    checkout = PACKAGE_DIR.parents[1]
    if (checkout / "pyproject.toml").is_file() and (checkout / "src" / "ml_api").is_dir():
        return checkout
    return Path.cwd().resolve()


class Settings(BaseSettings):
    """Everything an operator can configure. Field docstrings are the documentation."""

    model_config = SettingsConfigDict(
        env_prefix="ML_API_",
        env_file=".env",
        extra="ignore",
        protected_namespaces=(),
        validate_default=True,
        validate_by_name=True,
    )

    model_root: Path = Field(default_factory=lambda: project_root() / "models")
    """Directory holding ``<model name>/<model version>/`` artifact directories."""

    model_name: str = "penguins"
    """Which model under ``model_root`` to serve."""

    model_version: str | None = None
    """Which version to serve; ``None`` serves the newest (highest number)."""

    models: Annotated[list[str] | None, NoDecode] = None
    """Which models under ``model_root`` this server serves (``ML_API_MODELS``, comma-separated;
    ``name`` or ``name:version`` with a version number or an alias); ``None``, the default,
    serves every model there. ``model_name`` is always served (``POST /predict`` answers with it);
    ``model_version`` pins it. See docs/models.md ("Several models in one server")."""

    reload_seconds: float = Field(default=2.0, ge=0)
    """How often each worker compares its models with the registry, in seconds: a version
    promoted (or trained, where the newest serves) is verified, warmed up and swapped in without a
    restart. 0 follows only SIGHUP and the repository ``load`` endpoint."""

    memory_budget_mb: float | None = Field(default=None, gt=0)
    """Most resident memory the served models may take together in one process, in megabytes
    (``ML_API_MEMORY_BUDGET_MB``); a load or swap that would exceed it is refused (507) and the
    old version keeps serving. ``None``: no budget."""

    allow_version_mismatch: bool = False
    """Load an artifact even if it was trained with another scikit-learn major.minor version."""

    max_body_bytes: int = Field(default=1_048_576, gt=0)
    """Largest request body accepted, in bytes (1 MiB); larger bodies get 413 before parsing."""

    max_instances: int = Field(default=1_000, gt=0)
    """Most instances one request may carry; more get 413."""

    out_of_range: OutOfRangePolicy = "warn"
    """What to do with a numeric value outside its feature's training range (the card's
    ``minimum``/``maximum``), where the model extrapolates (``ML_API_OUT_OF_RANGE``): ``warn``
    answers and names each such instance and feature (V1: a ``warnings`` key; V2: the response's
    ``parameters``; ``ml-api predict``: a summary line on stderr) and counts them in
    ``ml_api_out_of_range_total``; ``reject`` refuses the request (422; 400 in V2) naming
    instance, feature, value and range (counted too); ``accept`` does neither."""

    drift: bool = True
    """Count every served instance into the bins of the model version's reference profile
    (``ML_API_DRIFT``): ``ml_api_feature_values_total``, from which Prometheus computes each
    feature's drift score (``docs/monitoring.md``). Versions saved without a profile are not
    counted (``GET /metadata`` says so)."""

    prediction_log_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    """Share of predicted requests kept in the prediction log (``ML_API_PREDICTION_LOG_RATE``,
    0 to 1; each request is kept with this probability, its instances and answers in one JSON
    record: ``docs/monitoring.md``). Off (0) by default: the records hold what clients sent,
    which may be personal data, so keeping them is the operator's decision; 0.01 to 0.1 is a
    usual sample (at 1,000 requests/s, 0.1 writes 100 records a second)."""

    prediction_log_file: Path | None = None
    """Where the prediction log goes (``ML_API_PREDICTION_LOG_FILE``): ``None`` writes the
    records to stdout beside the JSON logs, where Fluent Bit ships them to their own
    Elasticsearch index (``deploy/logging``); a path writes rotating files there, shared by the
    worker processes (one machine)."""

    prediction_log_max_bytes: int = Field(default=100 * 1024 * 1024, gt=0)
    """Size at which the prediction log file is rotated, in bytes (100 MiB)."""

    prediction_log_backups: int = Field(default=5, ge=0)
    """Rotated prediction log files kept (``.1`` to ``.N``): the log takes at most
    ``(backups + 1) * max_bytes`` on disk."""

    prediction_log_max_instances: int = Field(default=20, ge=1)
    """Most instances of one request written to its record (the first ones;
    ``instances_total`` says how many it had)."""

    log_exclude_features: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Features never written to the prediction log (``ML_API_LOG_EXCLUDE_FEATURES``,
    comma-separated); a name a served model does not have is warned about at start-up (a typo
    would log the field it meant to hide). Headers, and so API keys, are never logged."""

    framework: Framework = "flask"
    """Web framework ``ml-api serve`` runs (``ML_API_FRAMEWORK``); the container image reads it."""

    server: Literal["gunicorn", "granian"] = "gunicorn"
    """HTTP server ``ml-api serve`` runs (``ML_API_SERVER``, or ``--server``): gunicorn with
    ``gthread`` workers, or granian's WSGI interface. Both load the model once before forking
    workers, drain on SIGTERM and log JSON (``ml_api.serving``)."""

    request_timeout_seconds: float = Field(default=10.0, gt=0)
    """Longest a ``/predict`` call may run, in seconds, before it is answered 504 in JSON (the
    gunicorn worker timeout is set above it, as the hard backstop). Under gunicorn it is also the
    longest wait for the next bytes of a request body (408 beyond)."""

    max_queue_wait_seconds: float = Field(default=5.0, gt=0)
    """Longest a complete request may wait in its gunicorn worker's queue for a request thread,
    in seconds; past it the thread answers 503 with ``Retry-After`` without running it
    (``ml_api.serving.overload``). 5 s, half the default request timeout: a request picked up
    later has less than half its time limit left (the limit counts the wait too), and a shed
    request retried on another replica still fits the production Ingress's 20 s budget for all
    tries (``proxy-next-upstream-timeout``: 5 s here plus a 15 s read timeout there)."""

    max_queued_requests: int = Field(default=256, ge=1)
    """Most complete requests waiting for a thread in one gunicorn worker; one more is answered
    503 with ``Retry-After`` at once. 256, four times the default 64 threads: at the measured
    ~1,000 requests/s of a worker that is about a quarter second of work, so under a steady
    overload :attr:`max_queue_wait_seconds` decides, and this only caps a burst (a queued request
    holds its buffered head and body, at most 80 KiB: 20 MiB per worker)."""

    drain_seconds: float = Field(default=5.0, ge=0)
    """After SIGTERM, how long (seconds) the server keeps accepting requests while ``/ready``
    answers 503, so load balancers take it out of rotation before it stops listening. Then
    in-flight requests finish (gunicorn's graceful timeout) and the process exits 0."""

    runtime: Literal["auto", "sklearn", "onnx"] = "auto"
    """Which runtime predicts (``ML_API_RUNTIME``): ``auto`` runs ONNX Runtime where the model
    version's ONNX form passed the acceptance gate at training or import (the card's ``onnx``
    section) and scikit-learn elsewhere; ``sklearn`` always runs the scikit-learn pipeline;
    ``onnx`` requires the ONNX form and refuses to start (one line) on a version without one."""

    batching: bool = True
    """Merge concurrent requests of a worker into one model call (adaptive batching; see
    ``ml_api.core.batching``). A request that arrives alone is still predicted at once."""

    batch_max_rows: int = Field(default=64, ge=1)
    """Most rows in one batched model call; a larger request runs alone, never split."""

    batch_max_wait_ms: float = Field(default=0.0, ge=0)
    """How long a batch may wait for more rows, in milliseconds, only when other requests are
    already queued (0: never wait; batches still grow under load)."""

    threads: int = Field(default=64, ge=1)
    """Request threads per gunicorn worker (``gthread`` workers when > 1, plain ``sync`` workers
    when 1). Threads are what gives batching concurrent requests to merge: a worker's batches
    can hold at most this many requests. 64 did best of 8, 32 and 64 in the benchmark
    (``make bench``; docs/benchmark.md has the figures)."""

    api_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    """API keys accepted (``ML_API_API_KEYS``, comma-separated); none means no authentication."""

    api_keys_file: Path | None = None
    """File with one API key per line (e.g. a mounted Kubernetes Secret); re-read when it changes
    (checked at most once a second, ``ml_api.core.auth``), so a revoked key stops working. Setting
    it turns authentication on even while the file holds no key yet: the API starts closed and
    opens to the first key written to it (fail closed)."""

    public_paths: Annotated[list[str] | None, NoDecode] = None
    """Paths that stay open when API keys are configured (``ML_API_PUBLIC_PATHS``,
    comma-separated); ``None``, the default, opens the endpoint table's public paths
    (``ml_api.core.protocols.routes.public_paths``): the probes, the metrics and the interactive
    docs (``/docs``, its files, ``/openapi.json``)."""

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    """Level for the application's loggers."""

    port: int | None = Field(default=None, ge=1, le=65535, validation_alias=AliasChoices("PORT"))
    """TCP port to listen on (standard ``PORT`` variable); ``None`` uses the framework's default
    (:data:`DEFAULT_PORTS`: 5000 for Flask, 8000 for Django)."""

    web_concurrency: int | None = Field(
        default=None, ge=1, validation_alias=AliasChoices("WEB_CONCURRENCY")
    )
    """Number of gunicorn worker processes (standard ``WEB_CONCURRENCY`` variable); ``None`` uses
    the number of CPUs this process may run on (cgroup limits included)."""

    debug: bool = False
    """Django's ``DEBUG`` (``ML_API_DEBUG``), for development only: it allows a built-in insecure
    ``SECRET_KEY`` (with a warning). Never set it in production; errors stay JSON either way."""

    secret_key: SecretStr | None = None
    """Django's ``SECRET_KEY`` (``ML_API_SECRET_KEY``): at least 50 random characters, e.g. from
    ``python -c 'import secrets; print(secrets.token_urlsafe(50))'``. Required to start Django
    unless ``debug`` is on. The API signs nothing with it (no sessions, no CSRF), so a new random
    value per deployment is fine."""

    allowed_hosts: Annotated[list[str], NoDecode] = ["localhost", "127.0.0.1", "[::1]"]
    """Django's ``ALLOWED_HOSTS`` (``ML_API_ALLOWED_HOSTS``, comma-separated, e.g.
    ``ml-api.example.com,.svc.cluster.local``): the ``Host`` headers the Django API answers; other
    hosts get 400. ``/health`` and ``/ready`` answer any host (the kubelet sends the pod IP). The
    default allows local calls only."""

    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Browser origins allowed to call the API (``ML_API_CORS_ORIGINS``, comma-separated, e.g.
    ``https://app.example.com``; ``*`` for any). Default: none, no CORS headers are sent. Preflight
    ``OPTIONS`` requests are answered without an API key; the actual request still needs one."""

    @field_validator(
        "api_keys",
        "public_paths",
        "allowed_hosts",
        "cors_origins",
        "models",
        "log_exclude_features",
        mode="before",
    )
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _default_model_pin(self) -> Settings:
        """Take the default model's pin from ``models`` (``penguins:1``) when it names one.

        ``ML_API_MODELS=other,penguins:1`` with ``penguins`` the default model serves version 1,
        as it would for any other model in the list (the default model's pin used to be read only
        from ``ML_API_MODEL_VERSION``, and this one was ignored without a word).

        Raises:
            ValueError: ``models`` and ``model_version`` pin the default model differently.
        """
        for item in self.models or ():
            name, _, pin = item.partition(":")
            if name.strip() != self.model_name or not pin.strip():
                continue
            if self.model_version is None:
                self.model_version = pin.strip()
            elif self.model_version != pin.strip():
                raise ValueError(
                    f"ML_API_MODELS pins {self.model_name} to {pin.strip()!r} but "
                    f"ML_API_MODEL_VERSION pins it to {self.model_version!r}: set one of them"
                )
        return self

    def all_api_keys(self) -> list[str]:
        """Return the configured keys: ``api_keys`` plus the lines of ``api_keys_file``.

        Raises:
            OSError: ``api_keys_file`` is set but cannot be read.
        """
        keys = [k.get_secret_value() for k in self.api_keys]
        if self.api_keys_file is not None:
            lines = self.api_keys_file.read_text().splitlines()
            keys += [line.strip() for line in lines if line.strip() and not line.startswith("#")]
        return keys

    def bind_port(self, framework: str | None = None) -> int:
        """Return the port to listen on: ``port``, else the framework's :data:`DEFAULT_PORTS` entry.

        Args:
            framework: ``"flask"`` or ``"django"``; ``None`` uses :attr:`framework`.
        """
        return self.port or DEFAULT_PORTS[framework or self.framework]

    def resolved_model_root(self) -> Path:
        """Return ``model_root`` as an absolute path (relative values are resolved once, here)."""
        return self.model_root.expanduser().resolve()


CORS_ALLOW_HEADERS = (
    "authorization",
    "content-encoding",
    "content-type",
    "x-api-key",
    "x-request-id",
)
"""Request headers a browser may send cross-origin (both adapters' CORS configuration)."""

CORS_ALLOW_METHODS = ("GET", "HEAD", "OPTIONS", "POST")
"""Methods allowed cross-origin."""

CORS_EXPOSE_HEADERS = ("x-request-id",)
"""Response headers a browser script may read."""

CORS_MAX_AGE_SECONDS = 600
"""How long a browser may cache a preflight answer, in seconds."""
