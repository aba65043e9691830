"""What the sample data says about each feature, and where it says (almost) nothing.

The import learns each feature's kind, range and (for categories no encoder of the model names)
categories from the sample data. A feature the data says nothing about cannot be described:

- **no value in any row** (all missing): its kind would be a guess and its range empty, so the
  out-of-range policy could never fire for it; the import is refused, naming every such feature;
- **one distinct value**: the import goes on, and the card (``import_data.thin_evidence``) and the
  import's output say per feature what follows: a numeric range of one point (every other value is
  out of range under ``ML_API_OUT_OF_RANGE=warn`` or ``reject``), or a single category from the
  data (every other category is refused with 422).

A feature absent from the data is refused earlier, with the model's feature names
(:func:`ml_api.importing.importer.import_model`).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import numpy as np
import pandas as pd

from ml_api.core.model.schema import FeatureSchema
from ml_api.core.wording import count
from ml_api.importing.sources import ImportRefused


def refuse_empty(X: pd.DataFrame, what: str) -> None:
    """Refuse features that have no value in any data row.

    Args:
        X: The sample rows' features, shape ``(n_rows, n_features)``.
        what: The data, for the message (a file name or ``"the DataFrame"``).

    Raises:
        ImportRefused: At least one feature is missing in every row (all are named).
    """
    empty = [str(c) for c in X.columns if not X[c].notna().any()]
    if empty:
        raise ImportRefused(
            f"{what} has no value for {', '.join(empty)} in any of its {count(len(X), 'row')}: a "
            f"feature's kind, range and categories are learned from the data; give sample rows "
            f"where each feature has values"
        )


def thin_evidence(
    X: pd.DataFrame, schema: FeatureSchema, model_categories: Collection[str]
) -> dict[str, str]:
    """Name the features whose data holds a single distinct value, and what that implies.

    Args:
        X: The sample rows' features, shape ``(n_rows, n_features)``.
        schema: The schema learned from them.
        model_categories: Features whose categories come from the model (their data values
            do not limit them).

    Returns:
        Feature name to one line saying what was learned from a single value; empty when every
        feature shows at least two.
    """
    notes: dict[str, str] = {}
    for f in schema.features:
        values = X[f.name].dropna()
        distinct = pd.unique(values.astype(object))
        if len(distinct) != 1:
            continue
        value = _plain(distinct[0])
        rows = f"in the {count(len(values), 'data row')} with a value"
        if f.kind == "numeric" and not f.is_coded:
            notes[f.name] = (
                f"{f.name}: one distinct value ({value!r}) {rows}: its range is that value "
                f"alone, so under ML_API_OUT_OF_RANGE=warn or reject every other value is out of "
                f"range; give sample rows that span the values it will be sent"
            )
        elif f.kind == "categorical" and f.name not in model_categories:
            notes[f.name] = (
                f"{f.name}: one category ({str(value)!r}) {rows} and none named by the model: "
                f"every other category is refused (422); give sample rows with each category"
            )
    return notes


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
