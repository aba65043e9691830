"""The model card: ``metadata.json`` of an artifact version, parsed once into named fields.

The file on disk is never rewritten here: :attr:`ModelCard.raw` keeps the parsed JSON exactly as
read (unknown keys included), so ``GET /metadata`` and ``ml-api info`` show what the file holds.
Every other reader uses the typed fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
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
    """

    name: str
    format: str
    sha256: str
    bytes: int | None = None


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
