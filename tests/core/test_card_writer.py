"""ModelCard.write is the one writer of metadata.json; NewCard.saved completes a new card."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ml_api.core.model.card import METADATA_FILE, ModelCard, ModelFile, NewCard
from ml_api.core.model.schema import FeatureSchema

SRC = Path(__file__).resolve().parents[2] / "src" / "ml_api"


def _draft(**changes) -> NewCard:
    schema = FeatureSchema.from_list(
        [{"name": "x", "kind": "numeric", "dtype": "float64", "nullable": False,
          "minimum": 0.0, "maximum": 1.0}]
    )  # fmt: skip
    fields = dict(
        task="regression",
        estimator="linear",
        estimator_class="Ridge",
        target="y",
        input="array",
        schema=schema,
        metrics={"r2": 0.5},
    )
    return NewCard(**{**fields, **changes})


def _saved(draft: NewCard, **changes) -> ModelCard:
    fields = dict(
        name="m",
        version="3",
        created_at="2026-01-01T00:00:00+00:00",
        model_file=ModelFile(name="model.joblib", format="joblib", sha256="ab" * 32, bytes=10),
        library_versions={"python": "3.11.9"},
    )
    return draft.saved(**{**fields, **changes})


def test_the_written_file_is_the_card_read_back(tmp_path):
    card = _saved(_draft())
    written = card.write(tmp_path)
    assert written == tmp_path / METADATA_FILE
    assert written.read_text() == json.dumps(card.raw, indent=2, allow_nan=False) + "\n"
    assert list(json.loads(written.read_text())) == [
        "schema_version", "name", "version", "created_at", "task", "estimator",
        "estimator_class", "target", "input", "features", "classes", "metrics",
        "model_file", "versions",
    ]  # fmt: skip
    read = ModelCard.from_dict(json.loads(written.read_text()))
    assert read.raw == card.raw and read.schema.features == card.schema.features
    assert read.model_file == card.model_file and read.input == "array"


def test_a_non_finite_metric_is_refused_before_anything_is_written(tmp_path):
    card = _saved(_draft(metrics={"r2": float("nan")}))
    with pytest.raises(ValueError):
        card.write(tmp_path)
    assert not (tmp_path / METADATA_FILE).exists()


def test_a_form_file_needs_the_form_section_and_lands_in_it():
    file = {"name": "model.onnx", "sha256": "cd" * 32, "bytes": 5}
    with pytest.raises(ValueError, match="needs the card's 'onnx' section"):
        _saved(_draft(), form_files={"onnx": file})
    onnx = {"passed": True, "reason": None, "gate": None, "versions": {}}
    card = _saved(_draft(forms={"onnx": onnx}, runtime="onnxruntime"), form_files={"onnx": file})
    assert card.raw["onnx"] == {**onnx, "file": file}
    assert list(card.raw)[-4:] == ["onnx", "runtime", "model_file", "versions"]
    assert card.runtime == "onnxruntime"


def test_trusted_types_are_written_only_when_there_are_some():
    plain = _saved(_draft())
    assert "trusted_types" not in plain.raw["model_file"]
    skops = ModelFile("model.skops", "skops", "ef" * 32, 9, ("sklearn.tree._tree.Tree",))
    card = _saved(_draft(), model_file=skops)
    assert card.raw["model_file"]["trusted_types"] == ["sklearn.tree._tree.Tree"]
    assert card.model_file.trusted_types == ("sklearn.tree._tree.Tree",)


def test_no_module_writes_the_card_file_but_through_the_card():
    """No line of src/ writes to a path it builds from the card's file name (as save_artifact
    once did with ``(tmp / METADATA_FILE).write_text(...)``): ModelCard.write is the writer."""
    writers = re.compile(r"write_text|write_bytes|json\.dump\(|open\(.*['\"][wa]")
    found = []
    for path in SRC.rglob("*.py"):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if ("metadata.json" in line or "METADATA_FILE" in line) and writers.search(line):
                found.append(f"{path.relative_to(SRC)}:{n}")
    assert found == []
