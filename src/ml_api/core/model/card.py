"""The model card: ``metadata.json`` of an artifact version, as typed objects both ways.

Reading: :meth:`ModelCard.from_dict` parses the file once into named fields. A card read is never
rewritten: :attr:`ModelCard.raw` keeps the parsed JSON exactly as read (unknown keys included), so
``GET /metadata`` and ``ml-api info`` show what the file holds; every other reader uses the typed
fields.

Writing: training builds a :class:`TrainedCard`, import an :class:`ImportedCard` (both a
:class:`NewCard`: what is known before the version is saved) from typed fields, changed with
:func:`dataclasses.replace`, never patched in place;
:func:`ml_api.core.model.artifact.save_artifact` completes it with :meth:`NewCard.saved` (name,
version, creation time, file hashes, library versions) and :meth:`ModelCard.write` writes it: the
only writer of ``metadata.json``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from ml_api.core.model.schema import FeatureSchema

METADATA_FILE = "metadata.json"
"""The card's file name in a version directory."""
SCHEMA_VERSION = 1
"""The card format's version (``schema_version``), written into every new card."""

InputLayout = Literal["array", "frame", "column"]
"""How the pipeline takes its input: a float matrix (all-numeric models), a DataFrame, or one
1-D column of strings (a pipeline whose first step is a text vectorizer, fitted on ``df["text"]``;
its schema has the one text feature)."""

FORMAT_RUNTIMES = {"joblib": "scikit-learn", "skops": "scikit-learn"}
"""Which runtime runs a model file of each format (``model_file.format`` in the card)."""


@dataclass(frozen=True, slots=True)
class ModelFile:
    """The card's ``model_file`` entry.

    Attributes:
        name: File name inside the version directory (``model.joblib``).
        format: ``"joblib"`` or ``"skops"`` (the default for cards without one: ``"joblib"``).
        sha256: Hex sha256 of the file; loading refuses a file that does not match.
        bytes: File size in bytes, when recorded.
        trusted_types: For a skops file: the types it holds that skops does not trust and that
            were trusted by name when the version was written (``ml_api.core.model.skops_trust``).
    """

    name: str
    format: str
    sha256: str
    bytes: int | None = None
    trusted_types: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The card's ``model_file`` entry (``trusted_types`` only when there are some)."""
        out: dict[str, Any] = {
            "name": self.name,
            "format": self.format,
            "sha256": self.sha256,
            "bytes": self.bytes,
        }
        if self.trusted_types:
            out["trusted_types"] = list(self.trusted_types)
        return out


@dataclass(frozen=True, slots=True)
class ModelCard:
    """One model version's card.

    Attributes:
        name: Model name.
        version: Version, a positive integer as a string.
        schema: The ordered feature schema.
        model_file: The model file and its hash.
        input: ``"array"``, ``"frame"`` or ``"column"`` (cards without the key: ``"frame"``).
        task: ``"classification"`` or ``"regression"``, when recorded.
        estimator_class: The final estimator's class name, when recorded.
        target: The target column's name, when recorded.
        classes: Class labels in ``predict_proba`` column order (classifiers), else ``None``.
        metrics: Held-out metrics by name, when recorded.
        training: The training block (data hash, rows, split, class distribution), when recorded.
        created_at: ISO 8601 creation time, when recorded.
        library_versions: Versions of Python and the libraries the model was fitted with.
        raw: The whole parsed ``metadata.json``, unknown keys included.
    """

    name: str
    version: str
    schema: FeatureSchema
    model_file: ModelFile
    input: InputLayout = "frame"
    task: str | None = None
    estimator_class: str | None = None
    target: str | None = None
    classes: tuple[Any, ...] | None = None
    metrics: dict[str, Any] | None = None
    training: dict[str, Any] | None = None
    created_at: str | None = None
    library_versions: dict[str, str] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelCard:
        """Parse a card from its JSON form.

        Args:
            data: The parsed ``metadata.json``.

        Returns:
            The card; ``raw`` is a copy of ``data``.

        Raises:
            KeyError: ``name``, ``version``, ``features`` or ``model_file`` (its ``name`` or
                ``sha256``) is missing.
            ValueError: A feature is malformed or ``input`` is not ``array``, ``frame`` or
                ``column`` (or ``column`` with other than one feature).
            TypeError: A block has the wrong JSON type.
        """
        file_info = data["model_file"]
        layout = data.get("input", "frame")
        if layout not in ("array", "frame", "column"):
            raise ValueError(
                f"unknown input layout {layout!r}; expected 'array', 'frame' or 'column'"
            )
        schema = FeatureSchema.from_list(data["features"])
        if layout == "column" and len(schema) != 1:
            raise ValueError(f"input 'column' takes one feature, the card lists {len(schema)}")
        classes = data.get("classes")
        return cls(
            name=str(data["name"]),
            version=str(data["version"]),
            schema=schema,
            model_file=ModelFile(
                name=str(file_info["name"]),
                format=str(file_info.get("format", "joblib")),
                sha256=str(file_info["sha256"]),
                bytes=file_info.get("bytes"),
                trusted_types=tuple(str(t) for t in file_info.get("trusted_types") or ()),
            ),
            input=layout,
            task=data.get("task"),
            estimator_class=data.get("estimator_class"),
            target=data.get("target"),
            classes=tuple(classes) if classes is not None else None,
            metrics=data.get("metrics"),
            training=data.get("training"),
            created_at=data.get("created_at"),
            library_versions=dict(data.get("versions") or {}),
            raw=dict(data),
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form, exactly as read (a shallow copy of :attr:`raw`)."""
        return dict(self.raw)

    def write(self, directory: Path) -> Path:
        """Write ``metadata.json`` into a version directory: the only writer of the file.

        Args:
            directory: The version directory (``save_artifact``'s temporary one).

        Returns:
            The file written: :attr:`raw` as JSON, 2-space indented, keys in their order, one
            trailing newline.

        Raises:
            ValueError: A value is not finite (``NaN``, infinity): JSON has no such numbers;
                nothing is written then.
        """
        text = json.dumps(self.raw, indent=2, allow_nan=False) + "\n"
        path = directory / METADATA_FILE
        path.write_text(text)
        return path

    @property
    def runtime(self) -> str:
        """The runtime that runs this model (``ml_api.core.runtimes.registry.load_predictor``).

        A ``runtime`` key in the card wins; otherwise it follows the model file's format.
        """
        explicit = self.raw.get("runtime")
        if isinstance(explicit, str):
            return explicit
        return FORMAT_RUNTIMES.get(self.model_file.format, self.model_file.format)

    @property
    def class_distribution(self) -> dict[str, float] | None:
        """Each class's share of the training rows (classifiers), when recorded."""
        value = (self.training or {}).get("class_distribution")
        return dict(value) if isinstance(value, Mapping) else None

    @property
    def integer_classes(self) -> bool:
        """Whether every class label is an integer (V2 sends them as ``INT64``)."""
        return bool(self.classes) and all(
            isinstance(c, int) and not isinstance(c, bool) for c in self.classes or ()
        )


@dataclass(frozen=True, kw_only=True)
class NewCard:
    """The card of a version not saved yet: what train or import found out about the model.

    Attributes:
        schema: The ordered feature schema (written as ``features``).
        task: ``"classification"`` or ``"regression"``.
        estimator: The estimator's short name (``ml_api.train.ESTIMATORS``; ``"imported"``).
        estimator_class: The final estimator's class name.
        target: The target column's name (``None``: an import without one).
        input: ``"array"`` (a float matrix, all-numeric models) or ``"frame"``.
        classes: Class labels in ``predict_proba`` column order (classifiers), else ``None``.
        probabilities: For an imported classifier: ``True``, or why answers carry no
            probabilities; ``None`` (not written) otherwise.
        metrics: Metrics by name (held-out for training), or ``None``.
        forms: The card section of each further served form, by form name (``onnx``:
            ``ml_api.onnx_export.OnnxExport.apply``); ``save_artifact`` adds each written form's
            ``file``.
        runtime: The runtime ``ML_API_RUNTIME=auto`` serves, set with the forms (``None``: not
            written, the model file's format decides).
    """

    schema: FeatureSchema
    task: str | None = None
    estimator: str | None = None
    estimator_class: str | None = None
    target: str | None = None
    input: InputLayout = "frame"
    classes: list[Any] | None = None
    probabilities: bool | str | None = None
    metrics: dict[str, float] | None = None
    forms: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    runtime: str | None = None

    def sections(self) -> dict[str, Any]:
        """The blocks of this kind of card, between ``metrics`` and the forms (none here)."""
        return {}

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, keys in the order ``metadata.json`` has them."""
        out: dict[str, Any] = {
            "task": self.task,
            "estimator": self.estimator,
            "estimator_class": self.estimator_class,
            "target": self.target,
            "input": self.input,
            "features": self.schema.to_list(),
            "classes": self.classes,
        }
        if self.probabilities is not None:
            out["probabilities"] = self.probabilities
        out["metrics"] = self.metrics
        out.update(self.sections())
        out.update({form: dict(section) for form, section in self.forms.items()})
        if self.runtime is not None:
            out["runtime"] = self.runtime
        return out

    def unsaved(self, name: str) -> ModelCard:
        """The card as a runtime reads it before the version exists (the import's serve check).

        Args:
            name: The model name to show.

        Returns:
            A card of version ``"0"`` with an empty model file entry; never written.
        """
        unsaved = {"name": name, "version": "0", "model_file": {"name": "", "sha256": ""}}
        return ModelCard.from_dict({**self.to_dict(), **unsaved})

    def saved(
        self,
        *,
        name: str,
        version: str,
        created_at: str,
        model_file: ModelFile,
        library_versions: Mapping[str, str],
        form_files: Mapping[str, Mapping[str, Any]] | None = None,
        files: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> ModelCard:
        """The complete card of the saved version (``save_artifact`` calls it).

        Args:
            name: Model name.
            version: The new version, a positive integer as a string.
            created_at: ISO 8601 creation time (UTC, seconds).
            model_file: The model file written, with its sha256 and size in bytes.
            library_versions: Python's and the libraries' versions (written as ``versions``).
            form_files: Each written served form's ``{"name", "sha256", "bytes"}``, by form name
                (its section's ``file``).
            files: Further files (charts) by relative path, each ``{"sha256", "bytes"}``.

        Returns:
            The card; :meth:`ModelCard.write` writes it.

        Raises:
            ValueError: A form file for a form the card has no section of.
        """
        card: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "name": name,
            "version": version,
            "created_at": created_at,
            **self.to_dict(),
        }
        for form, file in (form_files or {}).items():
            if form not in self.forms:
                raise ValueError(f"the served form {form!r} needs the card's {form!r} section")
            card[form] = {**self.forms[form], "file": dict(file)}
        card["model_file"] = model_file.to_dict()
        if files:
            card["files"] = {rel: dict(info) for rel, info in files.items()}
        card["versions"] = dict(library_versions)
        return ModelCard.from_dict(card)


@dataclass(frozen=True, kw_only=True)
class MissingValues:
    """A card's ``missing_values``: how the training (or import) CSV's cells were read as missing.

    Attributes:
        tokens: The cells read as missing (``--na-values``, else pandas' defaults), sorted.
        cells: Per column, how many cells of each token were read as missing.
    """

    tokens: Sequence[str]
    cells: Mapping[str, Mapping[str, int]]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: ``{"tokens": [...], "cells": {column: {token: count}}}``."""
        return {"tokens": list(self.tokens), "cells": {k: dict(v) for k, v in self.cells.items()}}


@dataclass(frozen=True, kw_only=True)
class TrainingRecord:
    """A trained card's ``training`` block: how the data was used.

    Attributes:
        data_file: The training CSV's file name.
        data_sha256: Its hex sha256 (``train`` compares it to say whether metrics compare).
        rows: Rows with a target.
        train_rows: Rows fitted on.
        test_rows: Rows held out.
        test_size: The held-out fraction asked for.
        seed: The split's and the estimator's seed.
        dropped_columns: ``--drop`` columns that were in the data.
        marked_nullable: ``--nullable`` features, each once, in the order given.
        left_out: Columns left out of the features, ``{"name", "reason"}`` each.
        rows_without_target: Rows dropped for a missing target.
        missing_share: Each feature's share of missing values, 0 to 1.
        class_distribution: Each class's share of the training rows (classification), else
            ``None``.
    """

    data_file: str
    data_sha256: str
    rows: int
    train_rows: int
    test_rows: int
    test_size: float
    seed: int
    dropped_columns: list[str]
    marked_nullable: list[str]
    left_out: list[dict[str, str]]
    rows_without_target: int
    missing_share: dict[str, float]
    class_distribution: dict[str, float] | None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, keys in field order."""
        return asdict(self)


@dataclass(frozen=True, kw_only=True)
class TrainedCard(NewCard):
    """The card ``ml-api train`` writes (``ml_api.train``).

    Attributes:
        missing_values: How the training CSV's cells were read as missing.
        training: How the data was used.
        charts: The card's charts (``ml_api.charts.training_charts``): each one's file, title
            and description.
    """

    missing_values: MissingValues
    training: TrainingRecord
    charts: list[dict[str, Any]] = field(default_factory=list)

    def sections(self) -> dict[str, Any]:
        """``missing_values``, ``training`` and ``charts``."""
        return {
            "missing_values": self.missing_values.to_dict(),
            "training": self.training.to_dict(),
            "charts": self.charts,
        }


@dataclass(frozen=True, kw_only=True)
class ImportedCard(NewCard):
    """The card ``ml-api import`` writes (``ml_api.importing``).

    Attributes:
        metrics_on: What :attr:`metrics` were measured on (``None`` without a target).
        source: Where the model came from (file, format, MLflow flavor...).
        code: The model's own code copied into the version (``--code-path``): its ``modules``
            and ``directory``; ``None`` (not written) without any.
        provenance: Where each part of the card came from (feature names, kinds, categories,
            task), and the encoders' leniency towards unseen categories.
        import_data: The data the import was checked on (file, hash, rows, ignored columns,
            served-check rows, rows with a target...).
        missing_values: The missing-value tokens scoring files are read with (``--na-values``,
            else pandas' defaults) and, for a CSV, the cells each made missing per column.
    """

    metrics_on: str | None = None
    source: dict[str, Any] = field(default_factory=dict)
    code: dict[str, Any] | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    import_data: dict[str, Any] = field(default_factory=dict)
    missing_values: MissingValues | None = None

    def sections(self) -> dict[str, Any]:
        """The imported card's own sections, in order (``code``, ``missing_values`` when set)."""
        return {
            "metrics_on": self.metrics_on,
            "source": self.source,
            **({"code": self.code} if self.code is not None else {}),
            "provenance": self.provenance,
            "import_data": self.import_data,
            **(
                {"missing_values": self.missing_values.to_dict()}
                if self.missing_values is not None
                else {}
            ),
        }
