"""A model pickled by another scikit-learn: refused by default, and recorded as it is when allowed.

scikit-learn stamps every pickled estimator with its version (``_sklearn_version`` in
``__getstate__``) and warns with ``InconsistentVersionWarning`` when another version unpickles it.
The files here are real pickles whose stamp is another version (``sklearn.base.__version__``
patched while dumping, which is what ``__getstate__`` writes), read through that real warning.
Once, the import printed Python's raw warning and the card recorded the *installed* version, so
the serving version gate could never fire for such a model.
"""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import pytest
import sklearn

from ml_api.core.model.artifact import load_artifact
from ml_api.core.model.integrity import ArtifactError
from ml_api.importing import ImportRefused, import_model
from ml_api.importing.requirements import supported_sklearn
from tests.importing.conftest import Case
from tests.importing.test_refusals import refused, run_import

INSTALLED = sklearn.__version__
MAJOR, MINOR = (int(p) for p in INSTALLED.split(".")[:2])
OTHER_MINOR = f"{MAJOR}.{MINOR - 1}.2" if MINOR else f"{MAJOR - 1}.9.2"
SAME_MINOR = f"{MAJOR}.{MINOR}.{99}"


def pickled_by(version: str, model: object, path: Path) -> Path:
    """joblib.dump ``model`` as scikit-learn ``version`` would have (its version stamp)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("sklearn.base.__version__", version)
        joblib.dump(model, path)
    return path


def test_the_stamp_is_what_scikit_learn_itself_reads(tmp_path, pipeline_case: Case):
    from sklearn.exceptions import InconsistentVersionWarning

    path = pickled_by(OTHER_MINOR, pipeline_case.model, tmp_path / "old.joblib")
    with pytest.warns(InconsistentVersionWarning) as caught:
        joblib.load(path)
    assert {w.message.original_sklearn_version for w in caught} == {OTHER_MINOR}


def test_another_minor_is_refused_naming_both_versions_and_the_override(
    tmp_path, pipeline_case: Case
):
    path = pickled_by(OTHER_MINOR, pipeline_case.model, tmp_path / "old.joblib")
    message = refused(tmp_path / "models", path, "--data", pipeline_case.data)
    assert message == (
        f"{path} was pickled with scikit-learn {OTHER_MINOR} and {INSTALLED} is installed "
        f"(predictions may be wrong or fail): estimators are not portable across minor versions; "
        f"refit and save it with scikit-learn {INSTALLED}, or import and serve it with "
        f"scikit-learn {OTHER_MINOR} (ml-api supports {supported_sklearn()}): 'ml-api "
        f"requirements {path}' prints the pins for a virtual environment (pip install -c), and "
        f"'make image MODEL=<name>' installs a model's pins in its image; or pass "
        f"--allow-version-mismatch (allow_version_mismatch=True in Python) to import it here "
        f"anyway (the card records {OTHER_MINOR}, so serving then needs that version or "
        f"ML_API_ALLOW_VERSION_MISMATCH=true)"
    )
    with pytest.raises(ImportRefused, match=f"pickled with scikit-learn {OTHER_MINOR}"):
        import_model(path, pipeline_case.data, name="x", model_root=tmp_path / "py")
    assert not (tmp_path / "py").exists()


def test_with_the_override_the_card_records_the_pickling_version_and_the_gate_fires(
    tmp_path, pipeline_case: Case
):
    path = pickled_by(OTHER_MINOR, pipeline_case.model, tmp_path / "old.joblib")
    root = tmp_path / "models"
    code, out, err = run_import(
        path, "--data", pipeline_case.data, "--name", "old", "--model-root", root,
        "--allow-version-mismatch",
    )  # fmt: skip
    assert code == 0, out + err
    assert "InconsistentVersionWarning" not in err  # said once, in ml-api's words, not Python's
    card = json.loads((root / "old" / "1" / "metadata.json").read_text())
    assert card["versions"]["scikit-learn"] == OTHER_MINOR
    assert card["source"]["fitted_with"] == {"scikit-learn": OTHER_MINOR}
    assert card["provenance"]["versions"].startswith(
        f"scikit-learn {OTHER_MINOR}: the version that pickled the model"
    )
    with pytest.raises(ArtifactError, match=f"fitted with scikit-learn {OTHER_MINOR} but"):
        load_artifact(root, "old")
    artifact = load_artifact(root, "old", allow_version_mismatch=True)
    assert artifact.card.library_versions["scikit-learn"] == OTHER_MINOR


def test_another_patch_release_imports_and_is_recorded(tmp_path, pipeline_case: Case):
    path = pickled_by(SAME_MINOR, pipeline_case.model, tmp_path / "patch.joblib")
    root = tmp_path / "models"
    code, out, err = run_import(
        path, "--data", pipeline_case.data, "--name", "p", "--model-root", root
    )
    assert code == 0, out + err
    card = json.loads((root / "p" / "1" / "metadata.json").read_text())
    assert card["versions"]["scikit-learn"] == SAME_MINOR
    load_artifact(root, "p")  # the gate compares major.minor: same


def test_an_mlflow_model_pickled_by_another_minor_is_refused_too(tmp_path, pipeline_case: Case):
    import mlflow.sklearn

    path = tmp_path / "mlflow_old"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("sklearn.base.__version__", OTHER_MINOR)
        mlflow.sklearn.save_model(
            pipeline_case.model, str(path), serialization_format="cloudpickle"
        )
    message = refused(tmp_path / "models", path, "--data", pipeline_case.data)
    assert message.startswith(
        f"{path} was pickled with scikit-learn {OTHER_MINOR} and {INSTALLED} is installed"
    )


def test_a_model_pickled_by_this_version_records_this_version(tmp_path, pipeline_case: Case):
    root = tmp_path / "models"
    code, out, err = run_import(
        pipeline_case.path, "--data", pipeline_case.data, "--name", "n", "--model-root", root
    )
    assert code == 0, out + err
    card = json.loads((root / "n" / "1" / "metadata.json").read_text())
    assert card["versions"]["scikit-learn"] == INSTALLED
    assert "fitted_with" not in card["source"] and "versions" not in card["provenance"]
