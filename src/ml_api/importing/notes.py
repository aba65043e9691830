"""What an import tells its user: the lines ``ml-api import`` prints, as notes for ``save_model``.

``ml-api import`` prints them on stdout; :func:`ml_api.save_model` (a notebook has no command
output) issues each as an :class:`ImportNote` warning, which notebooks and scripts show by default
(``warnings.simplefilter("ignore", ml_api.ImportNote)`` silences them). Both come from
:func:`import_notes`, so the two routes cannot drift apart.
"""

from __future__ import annotations

import warnings
from typing import Any

from ml_api.core.wording import count
from ml_api.importing.serve_check import RTOL
from ml_api.train import runtime_line


class ImportNote(UserWarning):
    """A note about a model :func:`ml_api.save_model` just saved (what ``ml-api import`` prints).

    Where the feature names came from, the check on the data, unseen categories, thin evidence,
    which runtime serves it.
    """


def _tolerance(card: Any) -> str:
    """How the served check compared: which parts exactly, which within :data:`RTOL`."""
    within = f"within {RTOL:g} relative".replace("e-0", "e-")  # 1e-6, not 1e-06
    if card.task == "regression":
        return f"values {within}"
    if card.probabilities is True:
        return f"labels exactly, probabilities {within}"
    return "labels exactly"


def import_notes(card: Any) -> list[str]:
    """The lines that describe an imported version, in the order ``ml-api import`` prints them.

    Args:
        card: The new version's card (:class:`~ml_api.importing.importer.ImportResult`'s).

    Returns:
        One line each: the features and where their names came from, the served check, the
        metrics (with a target), where the data came from (an MLflow input example), the
        model's own code, each text feature, each categorical feature with categories the data
        lacks, each thin-evidence note, and the runtime that serves it.
    """
    lines = [
        f"{count(len(card.schema), 'feature')} (names from "
        f"{card.provenance['feature_names_and_order']})",
        f"checked: the server's predictions on "
        f"{count(card.import_data['served_check_rows'], 'data row')} equal the model's own "
        f"({_tolerance(card)})",
    ]
    if card.metrics:
        lines.append(
            "metrics on the import data (may include rows seen in training): "
            + ", ".join(f"{k}={v:.4f}" for k, v in card.metrics.items())
        )
    if card.import_data.get("file") == "MLflow input example":
        lines.append(
            f"note: no --data: kinds, ranges and nullability come from the MLflow input example "
            f"({count(card.import_data['rows'], 'row')}); pass --data with representative rows for "
            f"ranges worth checking against"
        )
    if card.code:
        lines.append(
            f"its own code: {', '.join(card.code['modules'])} (copied into the version; "
            f"importable only while this version loads)"
        )
    limits = {f["name"]: f.get("max_length") for f in card.schema.to_list()}
    for name, where in card.provenance.get("text", {}).items():
        fed = " (fed to it as one column)" if card.input == "column" else ""
        lines.append(
            f"text feature: {name}, read by the {where}{fed}: any string up to "
            f"{limits[name]} characters"
        )
    lines.extend(card.provenance.get("unseen_categories", {}).values())
    lines.extend(f"note: {line}" for line in card.import_data.get("thin_evidence", {}).values())
    lines.append(runtime_line(card))
    return lines


def warn_notes(card: Any) -> None:
    """Issue every line of :func:`import_notes` as an :class:`ImportNote` (``save_model``)."""
    for line in import_notes(card):
        warnings.warn(line, ImportNote, stacklevel=1)
