"""Reading training data and building the preprocessing half of the model pipeline.

The preprocessing is fitted as part of the model's :class:`~sklearn.pipeline.Pipeline`, so serving
applies exactly what training did: median imputation and (for linear models) standard scaling of
numeric features; most-frequent imputation and one-hot encoding of categorical features, with
``handle_unknown="ignore"`` as the explicit policy for a category the encoder never saw (it encodes
as all zeros). The API refuses unseen categories before they reach the model (see
``ml_api.core.schema``); the encoder's policy only matters for callers that bypass validation.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from ml_api.core.schema import FeatureKind, FeatureSchema
from ml_api.settings import project_root

PENGUINS_CSV = project_root() / "data" / "raw" / "penguins.csv"
"""The default data set: Palmer penguins (Horst, Hill & Gorman 2020, CC0), 344 rows, from the
``palmerpenguins`` PyPI package."""

PENGUINS_TARGET = "species"
PENGUINS_DROP = ("year",)


def load_csv(path: Path) -> pd.DataFrame:
    """Read a CSV file; empty cells and ``NA`` / ``NaN`` / ``null`` become missing values.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: The file has no rows.
    """
    frame = pd.read_csv(path)
    if frame.empty:
        raise ValueError(f"{Path(path).resolve()} has no data rows")
    return frame


def split_features_target(
    frame: pd.DataFrame, target: str, drop: tuple[str, ...] = ()
) -> tuple[pd.DataFrame, pd.Series]:
    """Separate the features from the target and drop rows whose target is missing.

    Args:
        frame: Shape ``(n_rows, n_columns)``.
        target: Target column name.
        drop: Columns to leave out of the features (ignored where absent).

    Returns:
        ``(X, y)``: ``X`` shape ``(n_kept, n_features)``, ``y`` shape ``(n_kept,)``.

    Raises:
        KeyError: ``target`` is not a column.
    """
    if target not in frame.columns:
        raise KeyError(f"target column {target!r} not in {list(frame.columns)}")
    kept = frame[frame[target].notna()]
    features = kept.drop(columns=[target, *[c for c in drop if c in kept.columns]])
    return features.reset_index(drop=True), kept[target].reset_index(drop=True)


def build_preprocessor(schema: FeatureSchema, *, scale: bool) -> ColumnTransformer | Pipeline:
    """Build the column transformer for a schema.

    Args:
        schema: The features, in column order.
        scale: Standardize numeric features (needed by linear models, not by trees).

    Returns:
        An unfitted transformer whose output has the numeric then the one-hot columns; for an
        all-numeric schema, a plain imputer (+ scaler) pipeline that needs no column names.
    """
    numeric = [f.name for f in schema.features if f.kind is FeatureKind.NUMERIC]
    categorical = [f.name for f in schema.features if f.kind is FeatureKind.CATEGORICAL]
    num_steps: list[tuple[str, object]] = [("impute", SimpleImputer(strategy="median"))]
    if scale:
        num_steps.append(("scale", StandardScaler()))
    if not categorical:
        # All numeric: no column selection needed; the pipeline then takes a float matrix
        # (n_instances, n_features) in schema order as well as a frame.
        return Pipeline(num_steps)
    transformers = []
    if numeric:
        transformers.append(("numeric", Pipeline(num_steps), numeric))
    if categorical:
        transformers.append(
            (
                "categorical",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="most_frequent")),
                        ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
                    ]
                ),
                categorical,
            )
        )
    return ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)


def write_splits(
    X_train: pd.DataFrame,
    y_train: pd.Series,
    X_test: pd.DataFrame,
    y_test: pd.Series,
    out_dir: Path,
) -> tuple[Path, Path]:
    """Write the processed train and test splits as CSV (features then target).

    Returns:
        The paths of ``train.csv`` and ``test.csv``.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = out_dir / "train.csv", out_dir / "test.csv"
    for (X, y), path in zip(((X_train, y_train), (X_test, y_test)), paths, strict=True):
        X.assign(**{str(y.name): y.to_numpy()}).to_csv(path, index=False)
    return paths
