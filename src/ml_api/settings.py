"""Runtime settings, read once from the environment (prefix ``ML_API_``) and an optional ``.env``.

Build one :class:`Settings` at start-up and pass it down (``create_app(settings=...)``); nothing on
the request path reads ``os.environ``. Standard variable names that other tools share (``PORT``,
``WEB_CONCURRENCY``, ``PROMETHEUS_MULTIPROC_DIR``) are read without the prefix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PACKAGE_DIR = Path(__file__).resolve().parent


def project_root() -> Path:
    """Return the directory that holds ``data/`` and ``models/``.

    In a source checkout (an editable install) this is the checkout, found from this file's
    location, so the result does not depend on the working directory the process was started in
    (the seed guide's ``open("../models/model.pkl")`` did). Anywhere else it is the working
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

    allow_version_mismatch: bool = False
    """Load an artifact even if it was trained with another scikit-learn major.minor version."""

    max_body_bytes: int = Field(default=1_048_576, gt=0)
    """Largest request body accepted, in bytes (1 MiB); larger bodies get 413 before parsing."""

    max_instances: int = Field(default=1_000, gt=0)
    """Most instances one request may carry; more get 413."""

    framework: Literal["flask", "django"] = "flask"
    """Web framework ``ml-api serve`` runs (``ML_API_FRAMEWORK``); the container image reads it."""

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    """Level for the application's loggers."""

    port: int | None = Field(default=None, ge=1, le=65535, validation_alias=AliasChoices("PORT"))
    """TCP port to listen on (standard ``PORT`` variable); ``None`` uses the framework's default
    from the seed guide: 5000 for Flask, 8000 for Django."""

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

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [h.strip() for h in value.split(",") if h.strip()]
        return value

    def resolved_model_root(self) -> Path:
        """Return ``model_root`` as an absolute path (relative values are resolved once, here)."""
        return self.model_root.expanduser().resolve()
