"""Run ``python -m bench`` as its own process, the way a user does, for the bench tests."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_bench(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``python -m bench ARGS`` from the checkout; fails the test unless it exits 0.

    Returns:
        The finished process (``stdout`` is the report, ``stderr`` the progress log).
    """
    proc = subprocess.run(
        [sys.executable, "-m", "bench", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc
