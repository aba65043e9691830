"""The model registry under concurrency: many real ``ml-api`` processes, no lost update.

``promote`` reads, changes and rewrites ``aliases.json``; ``train`` and ``import`` pick the next
version number. Run at once without the registry lock, aliases were lost (10 concurrent promotes,
all exiting 0, kept 6 to 9 aliases) and version numbers could be handed out twice.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from ml_api.core.model.artifact import load_artifact, save_artifact
from ml_api.core.model.card import NewCard
from ml_api.core.model.integrity import ArtifactError
from ml_api.core.model.registry_lock import COUNTER_FILE, next_version
from ml_api.core.model.schema import FeatureSchema
from ml_api.core.model.versions import list_versions, read_aliases, set_alias

CLI = [sys.executable, "-m", "ml_api.cli"]


def _frame(rows: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=rows), "b": rng.normal(size=rows)})
    frame["y"] = np.where(frame["a"] + frame["b"] > 0, "yes", "no")
    return frame


def _save(root: Path, name: str = "m") -> Path:
    frame = _frame()
    X = frame[["a", "b"]]
    model = LogisticRegression().fit(X.to_numpy(), frame["y"])
    card = NewCard(schema=FeatureSchema.infer(X), input="array", task="classification")
    return save_artifact(model, model_root=root, name=name, card=card)


def _run_all(commands: list[list[str]], cwd: Path) -> list[subprocess.CompletedProcess[str]]:
    """Start every command at once (real processes), then wait for all of them."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    procs = [
        subprocess.Popen(
            c, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for c in commands
    ]
    done = []
    for cmd, proc in zip(commands, procs, strict=True):
        out, err = proc.communicate(timeout=600)
        done.append(subprocess.CompletedProcess(cmd, proc.returncode, out, err))
    return done


def test_twenty_concurrent_promotes_keep_every_alias(tmp_path):
    root = tmp_path / "models"
    _save(root)
    _save(root)
    aliases = {f"canary-{i}": 1 + i % 2 for i in range(20)}
    runs = _run_all(
        [
            [*CLI, "promote", "m", str(v), "--alias", a, "--model-root", str(root)]
            for a, v in aliases.items()
        ],
        tmp_path,
    )
    assert [r.returncode for r in runs] == [0] * 20, [r.stderr for r in runs if r.returncode]
    assert read_aliases(root, "m") == aliases
    # each run reported the alias as unset before (it was: the aliases are distinct)
    assert all("(was unset)" in r.stdout for r in runs)
    assert not list((root / "m").glob(".aliases-*"))


def test_concurrent_promotes_of_one_alias_report_a_consistent_history(tmp_path):
    root = tmp_path / "models"
    for _ in range(3):
        _save(root)
    runs = _run_all(
        [[*CLI, "promote", "m", str(1 + i % 3), "--model-root", str(root)] for i in range(12)],
        tmp_path,
    )
    assert [r.returncode for r in runs] == [0] * 12
    # Serialised by the lock: exactly one run saw the alias unset, and the "was" versions
    # chain into one history ending at the version the file holds.
    was = [r.stdout.splitlines()[0].split("(was ")[1].rstrip(")") for r in runs]
    assert was.count("unset") == 1
    assert read_aliases(root, "m")["production"] in (1, 2, 3)


def test_concurrent_train_and_import_get_distinct_complete_versions(tmp_path):
    data = tmp_path / "small.csv"
    _frame(80).to_csv(data, index=False)
    fitted = tmp_path / "model.joblib"
    frame = _frame(80)
    joblib.dump(LogisticRegression().fit(frame[["a", "b"]], frame["y"]), fitted)
    root = tmp_path / "models"
    train = [*CLI, "train", "--data", str(data), "--target", "y", "--name", "m"]
    imp = [*CLI, "import", str(fitted), "--data", str(data), "--target", "y", "--name", "m"]
    commands = [[*(train if i % 2 else imp), "--model-root", str(root)] for i in range(8)]
    runs = _run_all(commands, tmp_path)
    assert [r.returncode for r in runs] == [0] * 8, [r.stderr[-500:] for r in runs if r.returncode]
    saved = sorted(int(Path(r.stdout.split("saved ")[1].split()[0]).name) for r in runs)
    assert saved == list(range(1, 9))  # each run got its own number, none twice
    assert list_versions(root, "m") == list(range(1, 9))
    for v in range(1, 9):
        artifact = load_artifact(root, "m", str(v))  # complete: every hash verifies
        assert artifact.version == str(v)
    assert not list((root / "m").glob(".incoming-*"))


def test_a_version_number_is_never_handed_out_twice(tmp_path):
    root = tmp_path / "models"
    assert _save(root).name == "1"
    assert _save(root).name == "2"
    shutil.rmtree(root / "m" / "2")  # the newest version deleted
    assert _save(root).name == "3"  # not 2 again: a client may still hold "version 2"
    assert (root / "m" / COUNTER_FILE).read_text() == "3\n"


def test_an_interrupted_version_directory_is_skipped_not_reused(tmp_path):
    root = tmp_path / "models"
    _save(root)
    (root / "m" / "2").mkdir()  # a copy interrupted before its card: no metadata.json
    (root / "m" / "2" / "model.joblib").write_bytes(b"partial")
    (root / "m" / "3").mkdir()  # empty: os.rename would silently replace it
    assert list_versions(root, "m") == [1]
    assert _save(root).name == "4"
    assert (root / "m" / "2" / "model.joblib").read_bytes() == b"partial"  # left as it was
    assert list_versions(root, "m") == [1, 4]
    assert next_version(root / "m") == 5


def test_a_corrupt_counter_is_refused_not_reset(tmp_path):
    root = tmp_path / "models"
    _save(root)
    (root / "m" / COUNTER_FILE).write_text("seven\n")
    with pytest.raises(ValueError, match=r"version counter .* whole number"):
        _save(root)
    assert list_versions(root, "m") == [1]


def test_promote_of_a_missing_model_is_refused(tmp_path):
    with pytest.raises(ArtifactError, match="no model 'ghost'"):
        set_alias(tmp_path, "ghost", "production", None)
    assert not (tmp_path / "ghost").exists()


def test_alias_file_is_valid_json_after_each_promote(tmp_path):
    root = tmp_path / "models"
    _save(root)
    assert set_alias(root, "m", "production", 1) is None
    assert set_alias(root, "m", "production", 1) == 1
    assert json.loads((root / "m" / "aliases.json").read_text()) == {"production": 1}
