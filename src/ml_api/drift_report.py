"""``ml-api drift``: a file of instances against a model version's reference profile.

Reads CSV (also ``.csv.gz``), Parquet, or the prediction log's JSON lines
(``ML_API_PREDICTION_LOG_FILE`` and its rotated files, or a saved container log: lines that are
not prediction records are skipped), bins every profiled feature as serving does
(:mod:`ml_api.core.model.profile`) and scores it with the same population stability index as
the recording rules. Writes a JSON report for machines (features sorted by score, highest
first) and an HTML report for people (one bar chart per feature, served share of each bin beside
the reference share, ranked by drift); inline SVG, no plotting library, no network.

Values a model would refuse are still counted, so a broken feed shows: a numeric cell that is not
a number counts as missing, a category the reference never had goes to ``(other)``.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ml_api.core.model.profile import (
    PREDICTION,
    FeatureProfile,
    Profile,
    psi,
)
from ml_api.core.model.schema import Feature, FeatureKind, FeatureSchema
from ml_api.core.wording import count
from ml_api.scoring.cells import NA_CELLS, pandas_na_values, pandas_text_dtypes

__all__ = ["DriftReport", "FeatureDrift", "compare", "read_input", "render_html"]

LOG_TYPE = "prediction"


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's drift.

    Attributes:
        feature: The feature name (or ``(prediction)``).
        kind: ``numeric`` or ``categorical``.
        score: PSI against the reference (``nan`` when the input has no value for it).
        rows: Values compared.
        bins: ``(bin, text, reference share, observed share)`` per bin.
    """

    feature: str
    kind: str
    score: float
    rows: int
    bins: tuple[tuple[str, str, float, float], ...]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: ``{"feature", "kind", "score", "rows", "bins": [...]}``."""
        return {
            "feature": self.feature,
            "kind": self.kind,
            "score": None if math.isnan(self.score) else round(self.score, 6),
            "rows": self.rows,
            "bins": [
                {"bin": b, "range": t, "reference": round(r, 6), "observed": round(o, 6)}
                for b, t, r, o in self.bins
            ],
        }


@dataclass(frozen=True)
class DriftReport:
    """Every profiled feature's drift, highest score first.

    Attributes:
        model: ``{"name", "version"}`` of the reference.
        reference: ``{"rows", "source"}`` of the profile.
        inputs: The files read.
        rows: Instances read.
        features: Scored features, highest score first (then by name).
        not_compared: Profiled features the input does not carry (excluded from a log).
        fail_above: The ``--fail-above`` threshold, or ``None``.
    """

    model: dict[str, str]
    reference: dict[str, Any]
    inputs: tuple[str, ...]
    rows: int
    features: tuple[FeatureDrift, ...]
    not_compared: tuple[str, ...]
    fail_above: float | None = None

    @property
    def above(self) -> list[FeatureDrift]:
        """The features whose score exceeds ``fail_above`` (none without one)."""
        if self.fail_above is None:
            return []
        return [f for f in self.features if f.score > self.fail_above]

    def to_dict(self) -> dict[str, Any]:
        """The JSON report."""
        return {
            "model": self.model,
            "reference": self.reference,
            "inputs": list(self.inputs),
            "rows": self.rows,
            "score": "psi",
            "fail_above": self.fail_above,
            "failed": [f.feature for f in self.above],
            "features": [f.to_dict() for f in self.features],
            "not_compared": list(self.not_compared),
        }


def read_input(
    paths: Sequence[Path],
    na_values: Sequence[str] | None,
    model: str,
    schema: FeatureSchema | None = None,
) -> pd.DataFrame:
    """Read instances from CSV, Parquet or prediction-log files into one frame.

    Args:
        paths: The files; the suffix picks the reader (``.parquet``/``.pq``; ``.jsonl``,
            ``.json``, ``.log`` and rotated ``.jsonl.N`` as prediction logs; else CSV).
        na_values: The cells training read as missing (the card's ``missing_values.tokens``),
            or ``None`` for pandas' defaults.
        model: The model name: prediction-log records of other models are skipped.
        schema: The model's features: a CSV's cell that is a category of its column (``NA``:
            North America), or any cell of a text column, is never missing, as ``ml-api
            predict`` reads it (:func:`~ml_api.scoring.cells.pandas_na_values`).

    Returns:
        One row per instance; a prediction log adds a ``(prediction)`` column.

    Raises:
        ValueError: A file cannot be read, or no instance was found.
    """
    frames = []
    for path in paths:
        try:
            frames.append(_read_one(path, na_values, model, schema.features if schema else ()))
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"cannot read {path}: {exc}") from None
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if frame.empty:
        raise ValueError(f"no instance in {', '.join(map(str, paths))}")
    return frame


def compare(
    profile: Profile,
    frame: pd.DataFrame,
    *,
    model: dict[str, str],
    inputs: Sequence[str],
    fail_above: float | None = None,
) -> DriftReport:
    """Score every profiled feature of ``frame`` against ``profile``.

    Args:
        profile: The model version's reference profile.
        frame: The instances (:func:`read_input`).
        model: ``{"name", "version"}``.
        inputs: The files read (for the report).
        fail_above: Threshold of ``--fail-above``.

    Returns:
        The report, features sorted by score (highest first).
    """
    scored = []
    missing = []
    wanted = [*profile.features, *([profile.prediction] if profile.prediction else [])]
    for feature in wanted:
        if feature.name not in frame.columns:
            if feature.name != PREDICTION:
                missing.append(feature.name)
            continue
        scored.append(_drift(feature, frame[feature.name]))
    scored.sort(key=lambda d: (-(d.score if not math.isnan(d.score) else -1.0), d.feature))
    return DriftReport(
        model=model,
        reference={"rows": profile.rows, "source": profile.source},
        inputs=tuple(inputs),
        rows=len(frame),
        features=tuple(scored),
        not_compared=tuple(missing),
        fail_above=fail_above,
    )


def _drift(feature: FeatureProfile, column: pd.Series) -> FeatureDrift:
    if feature.kind == FeatureKind.NUMERIC:
        values: Any = pd.to_numeric(column, errors="coerce").to_numpy(dtype="float64")
    else:
        values = [_category(v, feature) for v in column.tolist()]
    counts = feature.counts(values)
    total = int(counts.sum())
    return FeatureDrift(
        feature=feature.name,
        kind=str(feature.kind),
        score=psi(feature.shares, counts),
        rows=total,
        bins=tuple(
            (b, feature.bin_text(i), feature.shares[i], float(counts[i]) / total if total else 0.0)
            for i, b in enumerate(feature.bins)
        ),
    )


def _category(value: Any, feature: FeatureProfile) -> Any:
    """A file's cell as serving would see it.

    ``None`` when empty, numpy scalars as Python ones, and a number read from a CSV whose text
    is a category (``1`` for ``"1"``) as that text.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if not feature.knows(value) and feature.knows(str(value)):
        return str(value)
    return value


def _read_one(
    path: Path, na_values: Sequence[str] | None, model: str, features: Sequence[Feature]
) -> pd.DataFrame:
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        return pd.read_parquet(path)
    if _is_log(name):
        return _read_log(path, model)
    header = pd.read_csv(path, nrows=0).columns
    tokens = NA_CELLS if na_values is None else na_values
    missing = pandas_na_values(header, features, tokens)
    text = pandas_text_dtypes(header, features)  # 02134 stays "02134"
    return pd.read_csv(path, na_values=missing, keep_default_na=False, dtype=text)


def _is_log(name: str) -> bool:
    stem = name.rstrip("0123456789").removesuffix(".")
    return stem.endswith((".jsonl", ".json", ".log", ".ndjson"))


def _read_log(path: Path, model: str) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            record = _record(line)
            if record is None or (record.get("model") or {}).get("name") != model:
                continue
            predictions = record.get("predictions") or []
            for i, instance in enumerate(record.get("instances") or []):
                if isinstance(instance, dict):
                    row = dict(instance)
                    if i < len(predictions):
                        row[PREDICTION] = predictions[i]
                    rows.append(row)
    return pd.DataFrame(rows)


def _record(line: str) -> dict[str, Any] | None:
    """A prediction record from a line: bare JSON, or a container runtime's wrapping of it."""
    line = line.strip()
    if not line.startswith("{"):
        start = line.find("{")  # CRI: "<time> stdout F {...}"
        if start < 0:
            return None
        line = line[start:]
    try:
        data = json.loads(line)
    except ValueError:
        return None
    if isinstance(data, dict) and isinstance(data.get("log"), str):  # Docker's json-file
        return _record(data["log"])
    if isinstance(data, dict) and data.get("log_type") == LOG_TYPE:
        return data
    return None


STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;max-width:60rem;color:#222}
table{border-collapse:collapse}
td,th{padding:.2rem .6rem;border-bottom:1px solid #ddd;text-align:left}
.high{color:#b00020;font-weight:bold}.mid{color:#b36b00}.low{color:#2e7d32}
section{margin:2rem 0}svg text{font-size:11px}
"""


def render_html(report: DriftReport) -> str:
    """The report for people: a ranked table, then a bar chart per feature (inline SVG).

    Returns:
        A self-contained HTML page (no script, no external file).
    """
    e = html.escape
    model = f"{report.model['name']} v{report.model['version']}"
    rows = "".join(
        f"<tr><td><a href='#f{i}'>{e(f.feature)}</a></td><td>{e(f.kind)}</td>"
        f"<td class='{_level(f.score)}'>{_score(f.score)}</td><td>{f.rows}</td></tr>"
        for i, f in enumerate(report.features)
    )
    charts = "".join(
        f"<section id='f{i}'><h2>{i + 1}. {e(f.feature)}: PSI {_score(f.score)}</h2>"
        f"{_chart(f)}</section>"
        for i, f in enumerate(report.features)
    )
    skipped = (
        f"<p>Not in the input (not compared): {e(', '.join(report.not_compared))}.</p>"
        if report.not_compared
        else ""
    )
    failed = (
        f"<p class='high'>Above --fail-above {report.fail_above:g}: "
        f"{e(', '.join(f.feature for f in report.above))}.</p>"
        if report.above
        else ""
    )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>Drift of {e(model)}</title><style>{STYLE}</style></head><body>"
        f"<h1>Input drift of {e(model)}</h1>"
        f"<p>{count(report.rows, 'instance')} from {e(', '.join(report.inputs))} against the "
        "reference "
        f"profile ({report.reference['rows']} {e(str(report.reference['source']))} rows). Score: "
        "population stability index over the reference bins; below 0.1 stable, 0.1 to 0.25 "
        "moderate, above 0.25 a large shift.</p>"
        f"{failed}<table><tr><th>feature</th><th>kind</th><th>PSI</th><th>values</th></tr>"
        f"{rows}</table>{skipped}{charts}</body></html>\n"
    )


def _score(score: float) -> str:
    return "n/a" if math.isnan(score) else f"{score:.3f}"


def _level(score: float) -> str:
    if math.isnan(score) or score < 0.1:
        return "low"
    return "mid" if score <= 0.25 else "high"


def _chart(f: FeatureDrift, width: int = 640, bar: int = 9) -> str:
    """Horizontal bars per bin: reference share (grey) above observed share (colour)."""
    label_w, gap = 170, 6
    scale = width - label_w - 60
    top = max([1e-9, *(max(r, o) for _, _, r, o in f.bins)])
    height = len(f.bins) * (2 * bar + gap) + 24
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"role='img' aria-label='{html.escape(f.feature)}: reference and observed share by bin'>",
        "<rect x='0' y='0' width='10' height='8' fill='#9e9e9e'/>"
        "<text x='14' y='8'>reference</text>"
        "<rect x='90' y='0' width='10' height='8' fill='#1565c0'/>"
        "<text x='104' y='8'>input</text>",
    ]
    for k, (_, text, ref, obs) in enumerate(f.bins):
        y = 20 + k * (2 * bar + gap)
        parts.append(
            f"<text x='0' y='{y + bar + 3}'>{html.escape(text[:28])}</text>"
            f"<rect x='{label_w}' y='{y}' width='{scale * ref / top:.1f}' height='{bar}' "
            f"fill='#9e9e9e'><title>reference {ref:.1%}</title></rect>"
            f"<rect x='{label_w}' y='{y + bar}' width='{scale * obs / top:.1f}' height='{bar}' "
            f"fill='#1565c0'><title>input {obs:.1%}</title></rect>"
            f"<text x='{label_w + scale * max(ref, obs) / top + 4:.1f}' y='{y + bar + 3}'>"
            f"{ref:.0%} / {obs:.0%}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
