"""``ml-api serve`` (Flask, the default) as a user starts it; ``test_both_live.py``: both apps."""

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.live


def test_serve_without_model_exits_nonzero_with_one_message(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ml_api.cli",
            "serve",
            "--model-root",
            str(tmp_path / "none"),
            "--port",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    assert proc.returncode == 1
    lines = (proc.stdout + proc.stderr).splitlines()
    assert len(lines) == 1, lines  # one clear line, no traceback
    record = json.loads(lines[0])
    assert record["level"] == "CRITICAL" and record["logger"] == "ml_api.serve"
    assert str(tmp_path.resolve()) in record["message"] and "ml-api train" in record["message"]
    assert list(tmp_path.glob("ml-api-metrics-*")) == []  # nothing left behind
