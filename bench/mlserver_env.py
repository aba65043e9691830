"""The separate virtualenv for MLServer: ``bench/.venv-mlserver``, created on first use.

MLServer's dependencies (FastAPI, uvicorn, uvloop, grpcio, OpenTelemetry...) never enter ml-api's
own environment. The venv gets ``requirements-mlserver.txt`` plus the exact scikit-learn, numpy,
scipy, joblib, pandas and threadpoolctl versions of the running environment, so MLServer loads
the same ``model.joblib`` the seed app unpickles. A marker file records what was installed; a
changed requirement list rebuilds the venv.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
VENV = BENCH_DIR / ".venv-mlserver"
REQUIREMENTS = BENCH_DIR / "requirements-mlserver.txt"
SHARED = ("scikit-learn", "numpy", "scipy", "joblib", "pandas", "threadpoolctl")


def requirement_lines() -> list[str]:
    """The pinned requirements: the file's lines plus this environment's shared libraries."""
    lines = [
        line.strip()
        for line in REQUIREMENTS.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    return lines + [f"{dist}=={metadata.version(dist)}" for dist in SHARED]


def ensure(log: Callable[[str], None], timeout_s: float = 1200) -> tuple[Path | None, str]:
    """Create or reuse the venv.

    Args:
        log: Progress messages go here.
        timeout_s: Longest wait for pip.

    Returns:
        ``(path of the mlserver executable, version line)``, or ``(None, why not)``.
    """
    wanted = "\n".join(requirement_lines()) + "\n"
    marker = VENV / ".installed"
    exe = VENV / "bin" / "mlserver"
    if exe.exists() and marker.exists() and marker.read_text() == _digest(wanted):
        return exe, _version()
    log(f"creating {VENV} (MLServer and its scikit-learn runtime; a few minutes the first time)")
    shutil.rmtree(VENV, ignore_errors=True)
    reqs = VENV.with_name(".requirements-mlserver.lock.txt")
    try:
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, timeout=120)
        reqs.write_text(wanted)
        pip = [str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        proc = subprocess.run(
            [*pip, "--disable-pip-version-check", "-r", str(reqs)],
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"could not create {VENV}: {exc}"
    finally:
        reqs.unlink(missing_ok=True)
    if proc.returncode != 0:
        errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("ERROR")]
        return None, f"pip failed in {VENV}: {' | '.join(errors[-3:]) or proc.stderr[-300:]}"
    marker.write_text(_digest(wanted))
    return exe, _version()


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _version() -> str:
    proc = subprocess.run(
        [str(VENV / "bin" / "python"), "-c", "import mlserver; print(mlserver.__version__)"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return f"mlserver {proc.stdout.strip()}" if proc.returncode == 0 else "mlserver ?"
