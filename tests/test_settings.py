"""``ml_api.settings``: what the environment and a ``.env`` file turn into."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from ml_api.settings import Settings, project_root


@pytest.fixture
def env(monkeypatch, tmp_path):
    """A clean environment (no ``ML_API_*``, ``PORT``, ``WEB_CONCURRENCY``) in an empty cwd."""
    import os

    for name in list(os.environ):
        if name.startswith("ML_API_") or name in ("PORT", "WEB_CONCURRENCY"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def test_defaults(env):
    s = Settings()
    assert (s.model_name, s.model_version, s.framework) == ("penguins", None, "flask")
    assert (s.max_body_bytes, s.max_instances, s.request_timeout_seconds) == (
        1_048_576,
        1_000,
        10.0,
    )
    assert (s.batching, s.batch_max_rows, s.threads) == (True, 64, 64)
    assert s.api_keys == [] and s.all_api_keys() == []
    assert (s.port, s.web_concurrency, s.debug, s.secret_key) == (None, None, False, None)
    assert s.allowed_hosts == ["localhost", "127.0.0.1", "[::1]"]
    assert s.model_root == project_root() / "models"


def test_project_root_is_the_checkout_wherever_the_process_starts(env):
    root = project_root()
    assert (root / "pyproject.toml").is_file() and (root / "src" / "ml_api").is_dir()


def test_environment_with_prefix(env):
    env.setenv("ML_API_MODEL_NAME", "diabetes")
    env.setenv("ML_API_MAX_INSTANCES", "7")
    env.setenv("ML_API_FRAMEWORK", "django")
    env.setenv("ML_API_BATCHING", "false")
    s = Settings()
    assert (s.model_name, s.max_instances, s.framework, s.batching) == (
        "diabetes",
        7,
        "django",
        False,
    )


def test_standard_variables_are_read_without_the_prefix(env):
    env.setenv("PORT", "8080")
    env.setenv("WEB_CONCURRENCY", "3")
    env.setenv("ML_API_PORT", "9999")  # not the prefixed name: PORT is shared with other tools
    s = Settings()
    assert (s.port, s.web_concurrency) == (8080, 3)


@pytest.mark.parametrize("name", ["ML_API_API_KEYS", "ML_API_PUBLIC_PATHS", "ML_API_ALLOWED_HOSTS"])
def test_lists_are_comma_separated_and_trimmed(env, name):
    env.setenv(name, " a, b ,,c ")
    s = Settings()
    value = {
        "ML_API_API_KEYS": [k.get_secret_value() for k in s.api_keys],
        "ML_API_PUBLIC_PATHS": s.public_paths,
        "ML_API_ALLOWED_HOSTS": s.allowed_hosts,
    }[name]
    assert value == ["a", "b", "c"]


def test_api_keys_are_secret_and_merged_with_the_keys_file(env, tmp_path):
    keys = tmp_path / "keys.txt"
    keys.write_text("# one key a line\nfile-1\n\n  file-2  \n")
    env.setenv("ML_API_API_KEYS", "env-1")
    env.setenv("ML_API_API_KEYS_FILE", str(keys))
    s = Settings()
    assert "env-1" not in repr(s)  # SecretStr: never printed
    assert s.all_api_keys() == ["env-1", "file-1", "file-2"]


def test_unreadable_keys_file_raises(env, tmp_path):
    s = Settings(api_keys_file=tmp_path / "missing")
    with pytest.raises(OSError):
        s.all_api_keys()


def test_dotenv_file_in_the_working_directory(env, tmp_path):
    (tmp_path / ".env").write_text("ML_API_MODEL_VERSION=3\nML_API_DEBUG=true\n")
    s = Settings()
    assert (s.model_version, s.debug) == ("3", True)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ML_API_MAX_BODY_BYTES", "0"),
        ("ML_API_MAX_INSTANCES", "-1"),
        ("ML_API_REQUEST_TIMEOUT_SECONDS", "0"),
        ("ML_API_FRAMEWORK", "fastapi"),
        ("ML_API_THREADS", "0"),
        ("ML_API_LOG_LEVEL", "LOUD"),
        ("PORT", "70000"),
    ],
)
def test_invalid_values_are_refused_at_start(env, name, value):
    env.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings()


def test_relative_model_root_is_resolved_once(env, tmp_path):
    s = Settings(model_root=Path("models"))
    assert s.resolved_model_root() == tmp_path.resolve() / "models"


def test_the_default_models_pin_in_models_is_honoured(env):
    """``ML_API_MODELS=other,penguins:1`` pins the default model like any other listed model."""
    env.setenv("ML_API_MODELS", "my-penguins,penguins:1")
    assert Settings().model_version == "1"
    env.setenv("ML_API_MODELS", "my-penguins,penguins")
    assert Settings().model_version is None
    env.setenv("ML_API_MODEL_NAME", "my-penguins")
    env.setenv("ML_API_MODELS", "my-penguins,penguins:1")
    assert Settings().model_version is None  # penguins:1 pins the other model, not the default


def test_two_different_pins_of_the_default_model_are_refused(env):
    env.setenv("ML_API_MODELS", "penguins:1")
    env.setenv("ML_API_MODEL_VERSION", "2")
    with pytest.raises(ValidationError, match="ML_API_MODELS pins penguins to '1' but"):
        Settings()
    env.setenv("ML_API_MODEL_VERSION", "1")
    assert Settings().model_version == "1"


def test_the_cli_names_an_invalid_setting_in_one_line(env):
    """Every ``ml-api`` command refuses an invalid ``ML_API_*`` value with exit 2, no traceback."""
    import subprocess
    import sys

    env.setenv("ML_API_PORT", "abc")
    proc = subprocess.run(
        [sys.executable, "-m", "ml_api.cli", "serve"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("ml-api: error: invalid settings: ML_API_PORT (port): ")
    assert "Traceback" not in proc.stderr and len(proc.stderr.splitlines()) == 1
