"""The columnar check: one whole column of values against one feature, vectorised with Arrow.

This is the one statement of "is this value valid for this feature" that runs over columns:
the JSON fast path (:meth:`ml_api.core.model.validation.Validator.validate_columns`) calls
:func:`check_values`, the rule, and every batch reader of ``ml-api predict`` (Arrow's CSV
reader, the pandas fallback, Parquet) calls :func:`check_column`, which reads any Arrow column
into it. It never words a problem: a row it doubts goes to the per-value validator,
which accepts it or names the problem (row, field, what was expected). A hypothesis property
test (``tests/core/test_column_check.py``) shows that it accepts exactly the values the per-value
validator accepts, with the same values out.

A number written as text (a CSV cell) is one definition for every reader and for training
(:func:`parse_number`): ASCII decimal digits with an optional sign, point and exponent
(``-1.5e3``, ``.5``, ``+7``; ``inf``/``nan`` words parse and are then refused as not finite),
whitespace around it ignored; ``5_500`` or non-ASCII digits (Arabic-Indic, fullwidth) are
text, not numbers, as in JSON.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ml_api.core.model.schema import TEXT_MAX_LENGTH, Feature, FeatureKind


def parse_number(text: str) -> float | None:
    """A number written as text, or ``None`` when the text is no number.

    The definition shared by CSV scoring, training's column typing and the API's hint: ASCII
    only, no underscores (``float()`` would take ``5_500`` and non-ASCII digits), whitespace
    around it ignored; otherwise what ``float()`` reads (``inf`` and ``nan`` included).

    Args:
        text: One cell as written.

    Returns:
        The number (possibly not finite), or ``None``.
    """
    stripped = text.strip()
    if not stripped.isascii() or "_" in stripped:
        return None
    try:
        return float(stripped)
    except ValueError:
        return None


def missing_cells(feature: Feature, tokens: frozenset[str]) -> frozenset[str]:
    """The cells of ``feature``'s column read as missing: the one rule for every CSV reader.

    A missing-value token (``NA``, ``None``, ``""``...) is missing only where it cannot be a
    value: a cell whose text is one of a categorical feature's categories is that category
    (``NA``: North America, as the API reads ``"NA"``), and every cell of a text feature is
    text (an empty review is the empty text, as the API reads ``""``). ``ml-api predict``
    (Arrow and pandas), the engines, ``ml-api drift`` and ``ml-api import --data`` read cells
    by this rule.

    Args:
        feature: The feature the column feeds.
        tokens: The missing-value tokens (the card's ``missing_values.tokens``, or
            ``--na-values``).

    Returns:
        ``tokens`` less the feature's categories; none for a text feature.
    """
    if feature.kind is FeatureKind.TEXT:
        return frozenset()
    if feature.categories and feature.codes is None:
        return tokens.difference(feature.categories)
    return tokens


def reads_as_text(feature: Feature) -> bool:
    """Whether a CSV reader must keep ``feature``'s cells as the text written, never a number.

    The second half of the one rule for every CSV reader (with :func:`missing_cells`): a text
    feature, and a categorical feature whose categories are strings (not :attr:`Feature.codes`,
    not booleans), is text in every reader, so a digit-only code keeps its leading zero
    (``02134`` stays ``"02134"``, not the number ``2134``) in ``ml-api predict``'s outputs,
    ``ml-api drift`` and ``ml-api import --data``.

    Args:
        feature: The feature a column feeds.

    Returns:
        ``True`` for a text feature or a string-category feature.
    """
    if feature.kind is FeatureKind.TEXT:
        return True
    return (
        feature.kind is FeatureKind.CATEGORICAL and feature.codes is None and not feature.is_boolean
    )


@functools.lru_cache(maxsize=256)
def _arrow_set(cells: frozenset[str]) -> pa.Array:
    return pa.array(sorted(cells), type=pa.string())


@dataclass(frozen=True, slots=True)
class TextCells:
    """How text cells (a CSV's) are read: which are missing; numbers by :func:`parse_number`.

    Attributes:
        missing: The missing-value tokens (the card's ``missing_values`` tokens); a feature's
            column reads :func:`missing_cells` of them as missing.
    """

    missing: frozenset[str]

    def missing_for(self, feature: Feature | None) -> frozenset[str]:
        """The cells read as missing in ``feature``'s column (any other column: the tokens)."""
        return self.missing if feature is None else missing_cells(feature, self.missing)

    def arrow_missing(self, feature: Feature | None = None) -> pa.Array:
        """:meth:`missing_for` as an Arrow string array (a value set for ``pc.is_in``)."""
        return _arrow_set(self.missing_for(feature))


@dataclass(frozen=True, slots=True)
class CheckedColumn:
    """One column checked against one feature.

    Attributes:
        values: ``n_rows`` values as the per-value validator returns them for valid rows:
            ``float64`` (``NaN`` where missing) for numeric and numeric-coded features,
            ``object`` strings (``NaN`` where missing) for categorical ones. Rows in
            :attr:`doubt` hold no meaningful value.
        doubt: ``n_rows`` booleans: the value may break the schema (missing where not
            nullable, no finite number, an unknown category or code, a value of the wrong
            type), so its row needs the per-value validator; ``None`` when no row is.
    """

    values: np.ndarray | list[Any]
    doubt: np.ndarray | None

    def doubtful(self) -> np.ndarray:
        """The doubt per row as booleans, all false when :attr:`doubt` is ``None``."""
        if self.doubt is None:
            return np.zeros(len(self.values), dtype=bool)
        return self.doubt


def _text_type(type_: pa.DataType) -> bool:
    return bool(pa.types.is_string(type_) or pa.types.is_large_string(type_))


def _plain(column: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Dictionary-encoded columns decoded, large strings as strings, dates as ISO text."""
    type_ = column.type
    if pa.types.is_dictionary(type_):
        column = column.cast(type_.value_type)
        type_ = column.type
    if pa.types.is_large_string(type_) or pa.types.is_date(type_):
        column = column.cast(pa.string())
    return column


_NUMBER_TEXT = r"^[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?$|^[+-]?(inf|infinity|nan)$"
"""Text Arrow's cast reads as a number (a subset of :func:`parse_number`'s after trimming)."""

_Numbers = tuple[np.ndarray, np.ndarray, np.ndarray]
"""``(float64 values, missing mask, no-number mask)`` of a column meant to hold numbers."""


def _numbers(
    column: pa.Array | pa.ChunkedArray, text: TextCells | None, feature: Feature
) -> _Numbers | None:
    """A column meant to hold numbers, parsed; ``None`` for a type that holds none."""
    type_ = column.type
    n = len(column)
    if pa.types.is_null(type_):
        return np.full(n, np.nan), np.ones(n, dtype=bool), np.zeros(n, dtype=bool)
    if _text_type(type_) and text is not None:
        missing = pc.is_in(column, value_set=text.arrow_missing(feature))
        column = pc.if_else(missing, pa.scalar(None, pa.string()), column)
        try:
            return (*_with_missing(pc.cast(column, pa.float64())), np.zeros(n, dtype=bool))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        # Some cell Arrow does not read: whitespace around a number, or no number at all.
        trimmed = pc.utf8_trim_whitespace(column)  # as str.strip(): the same characters
        number = pc.match_substring_regex(trimmed, _NUMBER_TEXT, ignore_case=True)
        number = number.fill_null(False)
        try:
            values, absent = _with_missing(
                pc.cast(pc.if_else(number, trimmed, pa.scalar(None, pa.string())), pa.float64())
            )
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return np.full(n, np.nan), np.zeros(n, dtype=bool), np.ones(n, dtype=bool)
        missing_np = np.asarray(missing.to_numpy(zero_copy_only=False), dtype=bool)
        return values, missing_np, absent & ~missing_np
    if pa.types.is_decimal(type_):
        # Through the decimal's text: float() of it, correctly rounded whatever the precision.
        return (*_with_missing(pc.cast(column.cast(pa.string()), pa.float64())), np.zeros(n, bool))
    if pa.types.is_integer(type_) or pa.types.is_floating(type_):
        # unchecked: an integer past 2**53 rounds to the nearest float, as float() rounds it
        floats = pc.cast(column, pa.float64(), safe=False)
        return (*_with_missing(floats), np.zeros(n, dtype=bool))
    return None  # booleans, strings (not CSV text), dates...: the per-value validator refuses


def _with_missing(parsed: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    missing = parsed.is_null().to_numpy(zero_copy_only=False)
    values = parsed.to_numpy(zero_copy_only=False).astype("float64", copy=False)
    return values, np.asarray(missing, dtype=bool)


_BOOLEAN_TEXT = pa.array(["false", "true"], type=pa.string())


def _strings(
    column: pa.Array | pa.ChunkedArray, f: Feature, text: TextCells | None
) -> tuple[np.ndarray, np.ndarray] | None:
    """``(object strings, missing mask)`` of a column for a categorical feature, or ``None``."""
    type_ = column.type
    if pa.types.is_null(type_):
        return np.full(len(column), np.nan, dtype=object), np.ones(len(column), dtype=bool)
    if pa.types.is_boolean(type_) and f.is_boolean:
        column = pc.if_else(column, "True", "False")  # as training saw booleans (str of each)
    elif not _text_type(type_):
        return None  # numbers or booleans where strings are expected: refused per value
    elif text is not None:
        missing = pc.is_in(column, value_set=text.arrow_missing(f))
        column = pc.if_else(missing, pa.scalar(None, pa.string()), column)
        if f.is_boolean:  # true/false in any case, as training read them
            lower = pc.utf8_lower(pc.utf8_trim_whitespace(column))
            column = pc.if_else(
                pc.is_in(lower, value_set=_BOOLEAN_TEXT), pc.utf8_capitalize(lower), column
            )
    missing_np = np.asarray(column.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=object), missing_np


def check_column(
    column: pa.Array | pa.ChunkedArray, feature: Feature, text: TextCells | None = None
) -> CheckedColumn:
    """Check a whole column of values of any Arrow type against one feature.

    The column is read into numpy (numbers as ``float64``, text cells by ``text``'s rules)
    and judged by :func:`check_values`, the rule.

    Args:
        column: ``n_rows`` values of any Arrow type: numbers (integers of any width, floats
            of any width, decimals), strings (also large or dictionary-encoded), booleans,
            dates (as their ISO text), nulls (missing).
        feature: The feature the column feeds.
        text: The string cells are text to read (a CSV): its missing tokens, and numbers by
            :func:`parse_number`. ``None``: strings are strings (JSON, Parquet), nulls are
            missing.

    Returns:
        The values and a per-row doubt (see :class:`CheckedColumn`); a column of a type the
        feature never takes is doubtful on every row.
    """
    column = _plain(column)
    n = len(column)
    if feature.kind is FeatureKind.NUMERIC or feature.codes is not None:
        numbers = _numbers(column, text, feature)
        if numbers is None:
            return CheckedColumn(np.full(n, np.nan), np.ones(n, dtype=bool))
        values, missing, no_number = numbers
        checked = check_values(values, missing, feature)
        return CheckedColumn(checked.values, checked.doubtful() | no_number)
    strings = _strings(column, feature, text)
    if strings is None:
        return CheckedColumn(np.full(n, np.nan, dtype=object), np.ones(n, dtype=bool))
    return check_values(*strings, feature)


def check_values(
    values: np.ndarray | list[Any],
    missing: np.ndarray | None,
    feature: Feature,
    allowed: frozenset[str] | None = None,
) -> CheckedColumn:
    """The rule: which of a column's values are valid for ``feature`` (the values typed already).

    A value is doubtful when it is missing and the feature is not nullable, or present and
    not a finite number (numeric), not one of the codes (numeric-coded), not one of the
    categories (categorical).

    Args:
        values: ``n_rows`` values: floats for a numeric or numeric-coded feature, strings for a
            categorical one (any value where missing); an array, or a list (a JSON request's
            column: checked whole with C-level builtins first, value by value only if that
            fails).
        missing: ``n_rows`` booleans, true where the value is missing (``None``: none is).
        feature: The feature the column feeds.
        allowed: ``feature``'s categories as a set, when the caller holds one.

    Returns:
        The values (``NaN`` where missing; a list stays a list when every value is valid) and
        the doubt per row.
    """
    n = len(values)
    if feature.kind is FeatureKind.TEXT:
        return _check_text(values, missing, feature)
    numeric = feature.kind is FeatureKind.NUMERIC or feature.codes is not None
    known = None if numeric else frozenset(feature.categories or ()) if allowed is None else allowed
    if isinstance(values, list):
        if missing is None and _all_valid(values, feature, known):
            return CheckedColumn(values, None)
        values = np.array(values, dtype="float64" if numeric else object)
    if known is None:
        doubt = ~np.isfinite(values)
        if feature.codes is not None:
            doubt |= ~np.isin(values, np.asarray(feature.codes, dtype="float64"))
    else:
        doubt = ~np.fromiter(map(known.__contains__, values.tolist()), dtype=bool, count=n)
    return _with_missing_values(values, doubt, missing, feature)


def _check_text(
    values: np.ndarray | list[Any], missing: np.ndarray | None, feature: Feature
) -> CheckedColumn:
    """The rule for a text feature: a string of at most ``feature.max_length`` characters."""
    limit = feature.max_length or TEXT_MAX_LENGTH
    if isinstance(values, list):
        if (
            missing is None
            and all(type(v) is str for v in values)
            and max(map(len, values), default=0) <= limit
        ):
            return CheckedColumn(values, None)
        values = np.array(values, dtype=object)
    doubt = np.fromiter(
        (not isinstance(v, str) or len(v) > limit for v in values.tolist()),
        dtype=bool,
        count=len(values),
    )
    return _with_missing_values(values, doubt, missing, feature)


def _with_missing_values(
    values: np.ndarray, doubt: np.ndarray, missing: np.ndarray | None, feature: Feature
) -> CheckedColumn:
    """Missing values: not in doubt where the feature is nullable, ``NaN`` in object columns."""
    if missing is not None and missing.any():
        doubt &= ~missing
        if not feature.nullable:
            doubt |= missing
        if values.dtype == object:
            values = values.copy()
            values[missing] = np.nan
    return CheckedColumn(values, doubt)


def _all_valid(values: list[Any], feature: Feature, known: frozenset[str] | None) -> bool:
    """Whether every value of a list (none missing) is valid: the rule with C-level builtins."""
    if known is not None:
        return known.issuperset(values)
    try:
        if not math.isfinite(sum(values)):  # a value is not finite, or the sum overflows:
            return False  # the values are looked at one by one
    except OverflowError:
        return False
    return feature.codes is None or {float(c) for c in feature.codes}.issuperset(values)


def json_values(
    values: list[Any], feature: Feature
) -> tuple[np.ndarray | list[Any], np.ndarray | None] | None:
    """A JSON request's values for one feature, typed for :func:`check_values`.

    Only the JSON types a feature can take are converted (numbers for numeric and coded
    features, strings for categorical ones, ``true``/``false`` for boolean ones, ``null``
    anywhere); anything else, or an integer beyond float range, returns ``None`` and the
    request takes the per-value path.

    Returns:
        ``(values, missing)``: a list of floats or strings and ``None`` when no value is null,
        else an array and the null mask; or ``None``.
    """
    kinds = set(map(type, values))
    if type(None) in kinds:
        kinds.discard(type(None))
        missing = np.fromiter((v is None for v in values), dtype=bool, count=len(values))
    else:
        missing = None
    numeric = feature.kind is FeatureKind.NUMERIC or feature.codes is not None
    if numeric and kinds <= {float, int}:
        try:
            if missing is not None:
                return np.array(values, dtype="float64"), missing  # null becomes NaN
            return (values if kinds == {float} else list(map(float, values))), None
        except OverflowError:
            return None
    if numeric:
        return None
    if kinds == {bool} and feature.is_boolean:
        values = [v if v is None else str(v) for v in values]
    elif not kinds <= {str}:
        return None
    return (values, None) if missing is None else (np.array(values, dtype=object), missing)
