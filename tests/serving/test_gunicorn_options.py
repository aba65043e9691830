import logging
from pathlib import Path

from ml_api.serving import gunicorn_app
from ml_api.serving.gunicorn_app import (
    PROBE_LANE_WORKER,
    available_cpus,
    gunicorn_options,
    prepare_metrics_dir,
)
from ml_api.settings import Settings


def test_options_per_framework():
    flask = gunicorn_options(Settings(), "flask")
    django = gunicorn_options(Settings(), "django")
    assert flask["bind"] == "0.0.0.0:5000" and django["bind"] == "0.0.0.0:8000"
    assert flask["preload_app"] is True and flask["worker_class"] == PROBE_LANE_WORKER
    assert flask["threads"] == 64
    assert gunicorn_options(Settings(threads=1), "flask")["worker_class"] == "sync"
    assert flask["timeout"] > Settings().request_timeout_seconds
    assert flask["keepalive"] > 60
    assert flask["accesslog"] is None


def test_port_and_workers_from_standard_variables(monkeypatch):
    monkeypatch.setenv("PORT", "9123")
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    opts = gunicorn_options(Settings(), "django", host="127.0.0.1")
    assert opts["bind"] == "127.0.0.1:9123" and opts["workers"] == 3


def test_cpu_count_respects_cgroup_quota(monkeypatch, tmp_path):
    real_read = Path.read_text

    def fake_read(self, *a, **kw):
        if str(self) == "/sys/fs/cgroup/cpu.max":
            return "150000 100000\n"
        return real_read(self, *a, **kw)

    monkeypatch.setattr(gunicorn_app.os, "sched_getaffinity", lambda pid: set(range(16)))
    monkeypatch.setattr(Path, "read_text", fake_read)
    assert available_cpus() == 2  # 1.5 CPUs of quota -> 2 workers


def test_metrics_dir_is_emptied(monkeypatch, tmp_path):
    (tmp_path / "counter_123.db").write_bytes(b"stale")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    assert prepare_metrics_dir() == tmp_path
    assert list(tmp_path.iterdir()) == []


def _exit_in_child(code: int) -> int:
    import subprocess
    import sys

    script = (
        "import os, sys, types\n"
        "from ml_api.serving.gunicorn_app import _worker_exit\n"
        "import atexit\n"
        "atexit.register(lambda: print('teardown ran', flush=True))\n"
        "worker = types.SimpleNamespace(pid=os.getpid())\n"
        "try:\n"
        f"    sys.exit({code})\n"
        "finally:\n"
        "    _worker_exit(None, worker)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    return proc.returncode, proc.stdout


def test_clean_worker_exit_skips_teardown_but_keeps_error_codes():
    assert _exit_in_child(0) == (0, "")  # fast path: atexit teardown skipped
    assert _exit_in_child(3) == (3, "teardown ran\n")  # gunicorn's boot error code survives


def test_worker_exit_hook_does_nothing_in_the_master():
    import types

    from ml_api.serving.gunicorn_app import _worker_exit

    _worker_exit(None, types.SimpleNamespace(pid=-1))  # would os._exit the test run otherwise


def _logger(level: str):
    """gunicorn's logger as ``ml-api serve`` makes it, with ``gunicorn.access`` at ``level``.

    The configuration is incremental: it sets that one level and touches no handler.
    """
    from gunicorn.config import Config

    cfg = Config()
    incremental = {"version": 1, "incremental": True, "handlers": {}, "root": {}}
    cfg.set("logconfig_dict", {**incremental, "loggers": {"gunicorn.access": {"level": level}}})
    cfg.set("logger_class", gunicorn_options(Settings(), "flask")["logger_class"])
    return cfg.logger_class(cfg)


def test_no_access_record_is_built_that_would_be_dropped(monkeypatch):
    from gunicorn.glogging import Logger

    built = []
    monkeypatch.setattr(Logger, "atoms", lambda self, *args: built.append(args) or {})
    saved = {
        name: (log.level, list(log.handlers), log.propagate)
        for name in ("gunicorn.error", "gunicorn.access")
        for log in [logging.getLogger(name)]
    }
    try:
        dropped = _logger("WARNING")  # what ml-api configures: its own access records instead
        dropped.access(None, None, {}, None)
        assert built == [] and not dropped.access_log_enabled
        written = _logger("INFO")  # a configuration that writes gunicorn's: built as before
        written.access(None, None, {}, None)
        assert len(built) == 1 and written.access_log_enabled
    finally:
        for name, (level, handlers, propagate) in saved.items():
            log = logging.getLogger(name)
            log.setLevel(level)
            log.handlers[:] = handlers
            log.propagate = propagate
