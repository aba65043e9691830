"""``ml-api requirements``: the pins that serve a model with the library versions it was fitted by.

A model pickled by another scikit-learn serves where that version is installed; the command reads
the version without unpickling (a pickle's or skops file's stamps, an MLflow ``MLmodel``, a
card's ``versions``), checks it against ml-api's declared range and prints pip constraints. The
pickles here are real ones with another version's stamp (``pickled_by``, as in test_versions).
tests/compat installs the pins in a virtual environment and serves a model there.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import joblib
import pytest
import skops.io as sio
from click.testing import CliRunner
from packaging.requirements import Requirement

from ml_api.cli import main
from ml_api.importing.requirements import supported_sklearn
from tests.importing.conftest import Case
from tests.importing.test_refusals import run_import
from tests.importing.test_versions import INSTALLED, OTHER_MINOR, pickled_by

RANGE = "scikit-learn>=1.5,<2"


def requirements(*args: object) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["requirements", *map(str, args)], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_the_range_is_the_one_pyproject_declares():
    import tomllib

    declared = tomllib.loads(Path("pyproject.toml").read_text())["project"]["dependencies"]
    assert RANGE in declared
    assert supported_sklearn() == RANGE


def test_a_pickle_file_is_pinned_to_the_version_that_pickled_it(tmp_path, pipeline_case: Case):
    path = pickled_by(OTHER_MINOR, pipeline_case.model, tmp_path / "old.joblib")
    code, out, err = requirements(path)
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"# {path}: scikit-learn {OTHER_MINOR} (ml-api supports {RANGE})",
        f"scikit-learn=={OTHER_MINOR}",
    ]
    pins = [Requirement(line) for line in out.splitlines() if not line.startswith("#")]
    assert [(p.name, str(p.specifier)) for p in pins] == [("scikit-learn", f"=={OTHER_MINOR}")]


def test_a_skops_file_and_an_mlflow_directory_are_read_without_loading(
    tmp_path, pipeline_case: Case
):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("sklearn.base.__version__", OTHER_MINOR)
        sio.dump(pipeline_case.model, tmp_path / "m.skops")
    assert requirements(tmp_path / "m.skops")[1].splitlines()[-1] == f"scikit-learn=={OTHER_MINOR}"
    mlflow_dir = tmp_path / "mlflow-model"
    mlflow_dir.mkdir()
    (mlflow_dir / "MLmodel").write_text(
        "flavors:\n  sklearn:\n    pickled_model: model.pkl\n    sklearn_version: 1.6.1\n"
    )
    assert requirements(mlflow_dir)[1].splitlines()[-1] == "scikit-learn==1.6.1"


@pytest.mark.parametrize("version", ["1.4.2", "2.0.0", "0.24.2"])
def test_a_version_outside_the_range_is_refused(tmp_path, pipeline_case: Case, version):
    path = pickled_by(version, pipeline_case.model, tmp_path / "m.joblib")
    code, out, err = requirements(path)
    assert (code, out) == (1, "")
    assert err == (
        f"ml-api: error: {path} was fitted with scikit-learn {version}, outside the range ml-api "
        f"supports ({RANGE}): no ml-api environment can load it; refit and save it with a "
        f"supported version (pip install '{RANGE}')\n"
    )


def test_a_file_without_a_readable_stamp_says_what_to_do(tmp_path, pipeline_case: Case):
    path = tmp_path / "m.joblib.gz"
    with gzip.open(path, "wb") as f:
        joblib.dump(pipeline_case.model, f)
    code, out, err = requirements(path)
    assert (code, out) == (1, "")
    assert "no scikit-learn version is recorded where it can be read without loading" in err
    assert "then run ml-api requirements on the model's name" in err


def test_an_imported_model_is_pinned_from_its_card(tmp_path, pipeline_case: Case):
    root = tmp_path / "models"
    old = pickled_by(OTHER_MINOR, pipeline_case.model, tmp_path / "old.joblib")
    code, out, err = run_import(
        old, "--data", pipeline_case.data, "--name", "old", "--model-root", root,
        "--allow-version-mismatch",
    )  # fmt: skip
    assert code == 0, out + err
    code, out, err = run_import(
        pipeline_case.path, "--data", pipeline_case.data, "--name", "old", "--model-root", root
    )
    assert code == 0, out + err
    code, out, _ = requirements("old", "--version", "1", "--model-root", root)
    assert code == 0
    assert out.splitlines() == [
        f"# model 'old' version 1: scikit-learn {OTHER_MINOR} (ml-api supports {RANGE})",
        f"scikit-learn=={OTHER_MINOR}",
    ]
    assert requirements("old", "--model-root", root)[1].splitlines()[-1] == (
        f"scikit-learn=={INSTALLED}"
    )  # the newest version serves by default, and is pinned by default
    code, out, err = requirements("nothing", "--model-root", root)
    assert (code, out) == (1, "")
    assert err.startswith("ml-api: error: no model 'nothing' in ")
