"""A CSV's structure, checked before any of its rows is trusted: refused, never "repaired".

pandas repairs what it should refuse: data rows with one field more than the header (a trailing
delimiter, ``3.0,1.0,7,`` under ``a,b,id``) make the first column the index and shift every
value one column left; a row cut short is filled with nulls; a repeated column name becomes
``a.1``; a blank one ``Unnamed: 0``. Training, ``ml-api import --data`` and ``ml-api predict``
(Arrow's reader and the pandas fallback, any compression) all read a CSV through this check,
so each of those files is refused naming the rows or columns, and nothing is written. A UTF-8
byte order mark is not part of the first name (Arrow and pandas both drop it).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from pathlib import Path

from pandas.io.common import get_handle  # type: ignore[import-not-found]  # no stub

from ml_api.core.errors import InvalidInput

MAX_ROWS_NAMED = 10
"""Most row numbers quoted in one refusal (then how many more)."""


def check_header(names: Sequence[str], path: Path) -> None:
    """Refuse a header with a repeated or blank column name.

    Args:
        names: The header's fields as written (a leading byte order mark dropped).
        path: The file, for the message.

    Raises:
        InvalidInput: A name is repeated (pandas would rename the second ``a.1``) or blank
            (pandas would call it ``Unnamed: 0``).
    """
    seen: set[str] = set()
    repeated = [n for n in names if n in seen or seen.add(n)]  # type: ignore[func-returns-value]
    if repeated:
        shown = ", ".join(repr(n) for n in dict.fromkeys(repeated))
        raise InvalidInput(f"{path}: the header repeats column names: {shown}; rename them")
    blank = [i + 1 for i, n in enumerate(names) if not n.strip()]
    if blank:
        raise InvalidInput(
            f"{path}: the header has no name for column {', '.join(map(str, blank))}; "
            "name every column (a trailing delimiter in the header leaves one blank)"
        )


def _records(path: Path) -> Iterator[list[str]]:
    """The file's records as the CSV reader splits them (blank lines skipped, as pandas does).

    The file is opened as pandas opens it (its compression inferred from the name: ``.gz``,
    ``.bz2``, ``.zip``, ``.xz``, ``.zst``, ``.tar.*``), as UTF-8 with any byte order mark
    dropped.
    """
    with get_handle(path, "r", encoding="utf-8-sig", compression="infer") as handles:
        for record in csv.reader(handles.handle, strict=False):
            if record:  # a blank line is no row
                yield record


def check_file(path: Path) -> None:
    """Refuse a CSV whose rows do not all have the header's number of fields.

    Reads the whole file once with Python's CSV reader (quoted fields with delimiters and line
    breaks are one field, blank lines are skipped, as pandas and Arrow read them).

    Args:
        path: The CSV (plain or compressed, by its name).

    Raises:
        InvalidInput: The header repeats or omits a column name (:func:`check_header`), or
            data rows (numbered from 1 after the header) have more or fewer fields than it, or
            a one-column file has a line of only white space (pandas skips it, Arrow reads it).
        UnicodeDecodeError: The file is not UTF-8.
        FileNotFoundError: ``path`` does not exist.
    """
    path = Path(path)
    records = _records(path)
    header = next(records, None)
    if header is None:
        return  # an empty file: the readers say so in their own words
    check_header(header, path)
    width = len(header)
    longer: list[int] = []
    shorter: list[int] = []
    spaces: list[int] = []
    for row, record in enumerate(records, start=1):
        if len(record) > width:
            longer.append(row)
        elif len(record) < width:
            shorter.append(row)
        elif width == 1 and record[0] and not record[0].strip():
            spaces.append(row)
    if longer or shorter:
        raise InvalidInput(_ragged_message(path, width, longer, shorter))
    if spaces:
        # pandas skips an unquoted line of only spaces or tabs as blank; Arrow reads it as a value
        raise InvalidInput(
            f"{path}: {_rows(spaces)} only white space in the file's one column (one reader "
            "skips such a line, another reads it as a value); nothing was read from it: remove "
            "the line, or leave it empty"
        )


def _ragged_message(path: Path, width: int, longer: list[int], shorter: list[int]) -> str:
    parts = []
    if longer:
        parts.append(
            f"{_rows(longer)} more than the header's {width} fields (a trailing delimiter?)"
        )
    if shorter:
        parts.append(f"{_rows(shorter)} fewer than the header's {width} fields (cut short?)")
    return f"{path}: {'; '.join(parts)}; nothing was read from it: fix the file"


def _rows(rows: list[int]) -> str:
    shown = ", ".join(map(str, rows[:MAX_ROWS_NAMED]))
    if len(rows) > MAX_ROWS_NAMED:
        shown += f" and {len(rows) - MAX_ROWS_NAMED} more"
    return f"row{'s' if len(rows) > 1 else ''} {shown} {'have' if len(rows) > 1 else 'has'}"
