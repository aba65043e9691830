"""The model card for people: an HTML page (``GET /model``) and its Markdown twin (``ml-api card``).

Both are rendered from the same :class:`CardContent` (what the model predicts, its version, when it
was trained or imported, the features with kinds, categories and training ranges, the metrics and
the charts), so the page and the file never disagree. The charts are the SVG files stored in the
artifact at training time (``ml_api.charts``), already verified against the card's sha256 when the
artifact was loaded; nothing here draws. The HTML is self-contained: inline CSS, charts as
``data:`` URLs, no script, nothing fetched from anywhere.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ml_api.core.model.card import ModelCard
from ml_api.core.wording import count

ABSENT = (
    "This model version has no charts: it was saved before ml-api drew them at training time. "
    "Retrain it (ml-api train) to get them."
)
ABSENT_IMPORTED = (
    "An imported model has no charts: ml-api draws them from the held-out split of a model it "
    "trains, and an imported one has none of its own."
)


def _estimator(card: ModelCard) -> str:
    """The model in words: an import's whole model (a Pipeline ending in ...), else its class."""
    provenance = card.raw.get("provenance")
    if isinstance(provenance, dict) and provenance.get("model"):
        return str(provenance["model"])
    return str(card.estimator_class or "not recorded")


def _source(source: Any) -> str:
    """An import's source in words: format, file, a short sha256 (not the raw dict)."""
    if not isinstance(source, dict):
        return str(source)
    parts = [str(source.get("format") or "a file")]
    if source.get("flavor"):
        parts.append(f"({source['flavor']} flavor)")
    if source.get("file"):
        parts.append(str(source["file"]))
    if source.get("class"):
        parts.append(f"a {source['class']} object")
    if source.get("sha256"):
        parts.append(f"sha256 {str(source['sha256'])[:12]}...")
    return " ".join(parts)


@dataclass(frozen=True)
class Chart:
    """One stored chart.

    Attributes:
        file: Path inside the version directory (``charts/confusion_matrix.svg``).
        title: Heading shown above it.
        description: One line saying what it shows.
        svg: The SVG document's bytes.
    """

    file: str
    title: str
    description: str
    svg: bytes = field(repr=False)


def read_charts(card: ModelCard, version_dir: Path) -> list[Chart]:
    """Read the charts the card lists from the version directory.

    Args:
        card: The model card (its ``charts`` list; none for older or imported versions).
        version_dir: The artifact's version directory.

    Returns:
        The charts in the card's order; empty when the card lists none.

    Raises:
        OSError: A listed file cannot be read (loading the artifact checked that it exists).
    """
    out = []
    for entry in card.raw.get("charts") or []:
        out.append(
            Chart(
                file=str(entry["file"]),
                title=str(entry.get("title", entry["file"])),
                description=str(entry.get("description", "")),
                svg=(version_dir / entry["file"]).read_bytes(),
            )
        )
    return out


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


@dataclass(frozen=True)
class CardContent:
    """What the card says, in the order both renderers show it.

    Attributes:
        title: ``<name> version <version>``.
        summary: Sentences on what the model predicts and how it was made.
        facts: ``(label, value)`` rows: task, target, estimator, classes, created, data, ...
        features: ``(name, kind, allowed values or training range, nullable)`` rows, in order.
        metrics_heading: Where the metrics come from (held-out split, or the import data).
        metrics: ``(name, value)`` rows; empty when none were recorded.
        charts: The stored charts; empty for versions without them.
        imported: Whether the version was imported (no held-out split, no charts of its own).
    """

    title: str
    summary: list[str]
    facts: list[tuple[str, str]]
    features: list[tuple[str, str, str, str]]
    metrics_heading: str
    metrics: list[tuple[str, str]]
    charts: list[Chart]
    imported: bool = False

    @classmethod
    def from_card(
        cls,
        card: ModelCard,
        charts: list[Chart],
        serving: Sequence[tuple[str, str]] = (),
    ) -> CardContent:
        """Gather the content of a card (any card: trained, imported or from before charts).

        Args:
            card: The model card.
            charts: Its stored charts.
            serving: ``(label, value)`` facts about how this server runs it (runtime, batching),
                shown after the card's own; none for a card rendered offline (``ml-api card``).
        """
        raw = card.raw
        imported = raw.get("estimator") == "imported" or "source" in raw
        task = card.task or "unknown task"
        what = (
            f"classifies {card.target or 'its target'} into {len(card.classes)} classes"
            if card.classes
            else f"predicts {card.target or 'a value'}"
            + (" (regression)" if card.task == "regression" else "")
        )
        summary = [f"This model {what} from {count(len(card.schema), 'feature')}."]
        training = card.training or {}
        if imported:
            summary.append(
                f"It was fitted elsewhere and imported on {card.created_at or 'an unknown date'}; "
                "it has no held-out split of its own."
            )
        elif training:
            summary.append(
                f"It was trained on {card.created_at or 'an unknown date'} from "
                f"{training.get('data_file', 'a data file')} ({training.get('rows', '?')} rows: "
                f"{training.get('train_rows', '?')} to fit, {training.get('test_rows', '?')} "
                f"held out, seed {training.get('seed', '?')})."
            )
        facts = [
            ("task", task),
            ("target", str(card.target or "not recorded")),
            ("estimator", _estimator(card)),
        ]
        if card.classes:
            facts.append(("classes", ", ".join(map(str, card.classes))))
        if isinstance(card.raw.get("probabilities"), str):  # a classifier without predict_proba
            facts.append(("probabilities", str(card.raw["probabilities"])))
        facts.append(("created", str(card.created_at or "not recorded")))
        if training.get("data_sha256"):
            facts.append(("training data sha256", str(training["data_sha256"])))
        facts.append(("model file", f"{card.model_file.name} (sha256 {card.model_file.sha256})"))
        versions = ", ".join(f"{k} {v}" for k, v in card.library_versions.items())
        if versions:
            facts.append(("fitted with", versions))
        if imported and raw.get("source"):
            facts.append(("imported from", _source(raw["source"])))
        if (raw.get("code") or {}).get("modules"):
            modules = ", ".join(map(str, raw["code"]["modules"]))
            facts.append(("its own code", f"{modules} (in code/, sha256-checked; runs on load)"))
        missing = raw.get("missing_values") or {}
        for name, counts in sorted((missing.get("cells") or {}).items()):
            shown = ", ".join(f"{token!r}: {n}" for token, n in sorted(counts.items()))
            facts.append((f"{name}: cells read as missing", shown))
        if missing.get("tokens") is not None:
            tokens = ", ".join(repr(t) for t in missing["tokens"])
            facts.append(("cells read as missing (CSV)", tokens or "none"))
        facts.extend(serving)
        features = []
        for f in card.schema.features:
            if f.kind == "categorical":
                allowed = ", ".join(f.categories or ()) or "none recorded"
            elif f.kind == "text":
                allowed = f"any text up to {f.max_length} characters"
            elif f.minimum is not None and f.maximum is not None:
                allowed = f"{f.minimum:g} to {f.maximum:g} in training"
            else:
                allowed = "no range recorded"
            features.append(
                (f.name, f"{f.kind} ({f.dtype})", allowed, "yes" if f.nullable else "no")
            )
        if raw.get("metrics_on"):
            heading = f"Metrics ({raw['metrics_on']})"
        elif imported:
            heading = "Metrics (imported without data to measure them)"
        else:
            heading = "Held-out metrics"
        metrics = [(k, _fmt(v)) for k, v in (card.metrics or {}).items()]
        return cls(
            title=f"{card.name} version {card.version}",
            summary=summary,
            facts=facts,
            features=features,
            metrics_heading=heading,
            metrics=metrics,
            charts=charts,
            imported=imported,
        )


_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:62em;margin:2em auto;padding:0 1em;"
    "color:#222}table{border-collapse:collapse;margin:.5em 0 1.5em}"
    "td,th{border-bottom:1px solid #ddd;padding:.3em .7em;text-align:left;vertical-align:top}"
    "th{background:#f4f4f4}code{font-size:.95em}figure{margin:1em 0 2em}"
    "figure img{max-width:100%;height:auto;border:1px solid #eee}"
    "figcaption{color:#555;font-size:.9em}.absent{color:#8a5a00}"
)


def _table(head: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    esc = html.escape
    out = ["<table>"]
    if any(head):
        out += ["<tr>", *(f"<th>{esc(h)}</th>" for h in head), "</tr>"]
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>")
    out.append("</table>")
    return "".join(out)


def render_html(content: CardContent) -> str:
    """Render the card as one self-contained HTML page (UTF-8 text).

    Args:
        content: From :meth:`CardContent.from_card`.

    Returns:
        The page: no script, no external resource, charts inline as ``data:`` SVG images.
    """
    esc = html.escape
    parts = [
        "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>Model card: {esc(content.title)}</title><link rel='icon' href='data:,'>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Model card: {esc(content.title)}</h1>",
        *(f"<p>{esc(s)}</p>" for s in content.summary),
        _table(("", ""), content.facts),
        "<h2>Features, in order</h2>",
        _table(
            ("feature", "kind", "allowed values / training range", "null accepted"),
            content.features,
        ),
        f"<h2>{esc(content.metrics_heading)}</h2>",
        _table(("metric", "value"), content.metrics)
        if content.metrics
        else "<p>No metrics were recorded for this version.</p>",
        "<h2>Charts</h2>",
    ]
    if not content.charts:
        absent = ABSENT_IMPORTED if content.imported else ABSENT
        parts.append(f"<p class='absent' id='charts-absent'>{esc(absent)}</p>")
    for chart in content.charts:
        data = base64.b64encode(chart.svg).decode("ascii")
        parts.append(
            f"<figure><h3>{esc(chart.title)}</h3>"
            f"<img class='chart' src='data:image/svg+xml;base64,{data}' alt='{esc(chart.title)}'>"
            f"<figcaption>{esc(chart.description)}</figcaption></figure>"
        )
    parts.append(
        "<p>Machine-readable: <a href='metadata'>/metadata</a> (JSON), "
        "<a href='openapi.json'>/openapi.json</a>; try it: <a href='docs'>/docs</a>.</p>"
        "</body></html>\n"
    )
    return "".join(parts)


def _md_cell(value: str) -> str:
    return value.replace("|", "\\|").replace("\n", " ")


def _md_table(head: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    lines = ["| " + " | ".join(h or " " for h in head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def render_markdown(content: CardContent, chart_paths: dict[str, str]) -> str:
    """Render the card as Markdown (a repository's or a model registry's README).

    Args:
        content: From :meth:`CardContent.from_card`.
        chart_paths: Where each chart's SVG was written, relative to the Markdown file, by the
            chart's ``file``; charts not in it are left out.

    Returns:
        The Markdown text.
    """
    lines = [f"# Model card: {content.title}", "", *content.summary, ""]
    lines += _md_table(("", ""), content.facts)
    lines += ["## Features, in order", ""]
    lines += _md_table(
        ("feature", "kind", "allowed values / training range", "null accepted"), content.features
    )
    lines += [f"## {content.metrics_heading}", ""]
    lines += (
        _md_table(("metric", "value"), content.metrics)
        if content.metrics
        else ["No metrics were recorded for this version.", ""]
    )
    lines += ["## Charts", ""]
    if not content.charts:
        lines += [ABSENT_IMPORTED if content.imported else ABSENT, ""]
    for chart in content.charts:
        if chart.file in chart_paths:
            lines += [f"### {chart.title}", "", f"![{chart.title}]({chart_paths[chart.file]})", ""]
            lines += [f"*{chart.description}*", ""]
    return "\n".join(lines)
