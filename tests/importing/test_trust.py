"""Which types a skops file may hold: skops' own trusted set plus ml-api's reviewed list, no more.

A skops file is safe to open because skops builds only the types it is told to trust. ml-api once
trusted every type under ``builtins.``, ``sklearn.``, ``numpy.`` and ``scipy.`` by prefix, so a file
holding ``builtins.eval`` (or ``builtins.exec``, ``builtins.open``...) imported without ``--trust``.
Now every type skops itself does not trust is refused by name unless it is on
:data:`ml_api.core.model.skops_trust.SKOPS_REVIEWED_TYPES` or passed with ``--trust``; each builtin
skops does not trust is tried here, one file each.
"""

from __future__ import annotations

import builtins
import functools
import json

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from ml_api.core.model.artifact import load_artifact, save_artifact
from ml_api.core.model.card import NewCard
from ml_api.core.model.integrity import ArtifactError
from ml_api.core.model.schema import FeatureSchema
from ml_api.core.model.skops_trust import SKOPS_REVIEWED_TYPES
from tests.importing.test_refusals import refused, run_import

TREE = "sklearn.tree._tree.Tree"
TREE_PREDICTOR = "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"


@functools.cache
def _fitted_pipeline() -> tuple[Pipeline, pd.DataFrame]:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"a": rng.normal(size=40), "b": rng.normal(size=40)})
    frame["r"] = 2 * frame.a - frame.b
    model = Pipeline([("f", FunctionTransformer()), ("m", Ridge())]).fit(
        frame[["a", "b"]], frame["r"]
    )
    return model, frame


def _holding(func: object) -> Pipeline:
    """A fitted pipeline whose first step calls ``func`` on the input: what an attacker ships."""
    model, _ = _fitted_pipeline()
    return Pipeline([("f", FunctionTransformer(func=func)), ("m", model[-1])])


def _untrusted_builtins() -> dict[str, bytes]:
    """Every builtin skops can store in a file and does not trust, with such a file (its bytes).

    The list comes from skops itself: each callable of :mod:`builtins` is put in a pipeline,
    dumped, and kept when :func:`skops.io.get_untrusted_types` reports it.
    """
    out: dict[str, bytes] = {}
    for name in sorted(dir(builtins)):
        obj = getattr(builtins, name)
        if not callable(obj):
            continue
        try:
            data = sio.dumps(_holding(obj))
        except Exception:
            continue
        reported = [t for t in sio.get_untrusted_types(data=data) if t not in SKOPS_REVIEWED_TYPES]
        if reported:  # one name: the builtin itself (open is stored as io.open)
            assert len(reported) == 1, reported
            out[reported[0]] = data
    return out


UNTRUSTED_BUILTINS = _untrusted_builtins()


def test_the_generated_list_holds_the_dangerous_builtins():
    assert len(UNTRUSTED_BUILTINS) > 50, sorted(UNTRUSTED_BUILTINS)
    for name in ("eval", "exec", "compile", "__import__", "getattr", "setattr", "input"):
        assert f"builtins.{name}" in UNTRUSTED_BUILTINS
    assert "io.open" in UNTRUSTED_BUILTINS  # builtins.open is io.open


def test_no_builtin_skops_distrusts_is_on_the_reviewed_list():
    assert not set(UNTRUSTED_BUILTINS) & SKOPS_REVIEWED_TYPES


@pytest.mark.parametrize("type_name", sorted(UNTRUSTED_BUILTINS))
def test_a_skops_file_holding_an_untrusted_builtin_is_refused_by_name(tmp_path, type_name):
    path = tmp_path / "model.skops"
    path.write_bytes(UNTRUSTED_BUILTINS[type_name])
    data = tmp_path / "data.csv"
    _fitted_pipeline()[1].to_csv(data, index=False)
    message = refused(tmp_path / "models", path, "--data", data, "--target", "r")
    assert message.startswith(f"{path} holds types skops does not trust: {type_name}")
    assert "--trust" in message


def test_eval_in_a_skops_file_is_refused_in_python_too(tmp_path):
    from ml_api.importing import ImportRefused, import_model

    path = tmp_path / "eval.skops"
    path.write_bytes(UNTRUSTED_BUILTINS["builtins.eval"])
    with pytest.raises(ImportRefused, match=r"holds types skops does not trust: builtins\.eval"):
        import_model(path, _fitted_pipeline()[1], name="x", target="r", model_root=tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_a_model_skops_artifact_holding_eval_is_refused_at_load(tmp_path):
    """A version directory whose card matches a crafted model.skops still does not load."""
    model, frame = _fitted_pipeline()
    schema = FeatureSchema.infer(frame[["a", "b"]])
    path = save_artifact(
        model, model_root=tmp_path, name="m", card=NewCard(schema=schema), fmt="skops"
    )
    crafted = path / "model.skops"
    crafted.write_bytes(UNTRUSTED_BUILTINS["builtins.eval"])
    card = json.loads((path / "metadata.json").read_text())
    import hashlib

    card["model_file"]["sha256"] = hashlib.sha256(crafted.read_bytes()).hexdigest()
    (path / "metadata.json").write_text(json.dumps(card))
    with pytest.raises(ArtifactError, match=r"builtins\.eval"):
        load_artifact(tmp_path, "m")


@pytest.mark.parametrize(
    ("estimator", "node_type"),
    [
        (RandomForestRegressor(n_estimators=3, random_state=0), TREE),
        (HistGradientBoostingRegressor(max_iter=3), TREE_PREDICTOR),
    ],
)
def test_tree_node_storage_needs_trust_by_name_then_imports(tmp_path, estimator, node_type):
    """skops distrusts tree node arrays (a crafted file can crash predict): ml-api asks too."""
    _, frame = _fitted_pipeline()
    model = estimator.fit(frame[["a", "b"]], frame["r"])
    path = tmp_path / "trees.skops"
    sio.dump(model, path)
    data = tmp_path / "data.csv"
    frame.to_csv(data, index=False)
    root = tmp_path / "models"
    message = refused(root, path, "--data", data, "--target", "r")
    assert message.startswith(f"{path} holds types skops does not trust: {node_type}")
    assert "out-of-range node indices" in message
    code, out, err = run_import(
        path, "--data", data, "--target", "r", "--name", "t", "--model-root", root,
        "--trust", node_type, "--format", "skops",
    )  # fmt: skip
    assert code == 0, out + err
    card = json.loads((root / "t" / "1" / "metadata.json").read_text())
    assert card["source"]["trusted_types"] == [node_type]
    assert card["model_file"]["trusted_types"] == [node_type]
    artifact = load_artifact(root, "t")
    assert type(artifact.model) is type(model)


def test_reviewed_types_are_full_names_not_prefixes():
    assert frozenset({"numpy.dtype"}) == SKOPS_REVIEWED_TYPES


def test_an_mlflow_skops_model_is_checked_by_mlflows_list_not_taken_on_its_word(tmp_path):
    """MLflow loads a skops-serialized model trusting the types its own MLmodel file lists."""
    import mlflow.sklearn

    _, frame = _fitted_pipeline()
    path = tmp_path / "mlflow_eval"
    mlflow.sklearn.save_model(
        _holding(eval),
        str(path),
        serialization_format="skops",
        skops_trusted_types=["builtins.eval", "numpy.dtype"],
    )
    data = tmp_path / "data.csv"
    frame.to_csv(data, index=False)
    message = refused(tmp_path / "models", path, "--data", data, "--target", "r")
    assert message.startswith(
        f"{path} (its skops model file model.skops) holds types skops does not trust: builtins.eval"
    )
