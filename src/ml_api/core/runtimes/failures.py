"""Finding which instances of a batch the model itself refused, and which field, when it can.

A model can refuse values that passed the feature schema (a ``log1p`` step given a negative
number makes a NaN the next step refuses, a user's own transformer raises): the runtime then
raises :class:`~ml_api.core.errors.InvalidInput` quoting the library's reason, which names no
instance. :func:`locate` finds them: it bisects the batch (only the halves that fail are split
again, so ``k`` bad instances among ``n`` cost about ``2 k log2 n`` calls), then, for each
instance that fails alone, puts the schema's example value (the warm-up instance the model
answered when it loaded) in place of one field at a time: when exactly one swap makes the instance
pass, that field is named. Both searches stop at :data:`MAX_CALLS` model calls in all, so a
hostile batch costs a bounded amount of work; what was not searched is said in the message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ml_api.core.errors import MAX_DETAILS, InvalidInput, Problem
from ml_api.core.runtimes.predictor import Predictor

MAX_CALLS = 200
"""Most model calls spent finding the failing instances and fields of one refused request."""

MAX_FIELD_SEARCHES = 10
"""Failing instances whose field is searched for (each costs up to ``n_features`` calls)."""


class _Budget:
    def __init__(self, calls: int) -> None:
        self.left = calls

    def fails(self, predictor: Predictor, columns: Sequence[Sequence[Any]]) -> bool | None:
        """Whether the model refuses ``columns``; ``None`` when the budget is spent."""
        if self.left <= 0:
            return None
        self.left -= 1
        try:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
                predictor.predict(columns)
        except InvalidInput:
            return True
        return False


def locate(
    predictor: Predictor,
    columns: Sequence[Sequence[Any]],
    names: Sequence[str],
    reference: Sequence[Sequence[Any]],
    refusal: InvalidInput,
    first_index: int = 0,
) -> InvalidInput:
    """Name the instances (and fields) of a batch the model refused, as a new error.

    Args:
        predictor: The runtime that refused ``columns``.
        columns: ``n_features`` validated columns of ``n_instances`` values (one request).
        names: The ``n_features`` feature names, in column order.
        reference: ``n_features`` validated columns of one instance the model answers (the
            schema's example).
        refusal: The runtime's error for the whole batch (no details); its message is the
            library's reason.
        first_index: Index reported for the first instance (the CLI passes row numbers).

    Returns:
        An :class:`InvalidInput` (422) whose details name each failing instance found (up to
        ``MAX_DETAILS``) with its field when one swap clears it, else saying the model failed on
        that instance; ``refusal`` itself when no instance fails alone (the failure depends on
        the batch as a whole); its message saying so when the budget ran out before one was
        found.
    """
    n = len(columns[0]) if columns else 0
    budget = _Budget(MAX_CALLS)
    bad: list[int] = []
    complete = _bisect(predictor, columns, range(n), budget, bad, known_to_fail=True)
    if not bad and complete:
        return refusal
    if not bad:
        searched = f"not traced to an instance within {MAX_CALLS} model calls"
        return InvalidInput(f"{refusal.message} ({searched})")
    reason = refusal.message.removeprefix("the model could not use these values: ")
    problems = []
    for k, i in enumerate(bad[:MAX_DETAILS]):
        row = [[col[i]] for col in columns]
        field = _field(predictor, row, names, reference, budget) if k < MAX_FIELD_SEARCHES else None
        if field is None:
            text = f"the model failed on this instance: {reason}"
        else:
            text = f"the model could not use this value: {reason}"
        problems.append(Problem(text, instance=first_index + i, field=field))
    first = problems[0]
    where = f"instance {first.instance}" + (f", field {first.field!r}" if first.field else "")
    if len(problems) == 1 and complete:
        head = f"invalid instance: {where}: {first.problem}"
    else:
        counted = f"{len(problems)}" if complete else f"{len(problems)}+"
        head = f"{counted} instances the model could not use (all in details); first: {where}: "
        head += first.problem
    return InvalidInput(head, problems)


def _bisect(
    predictor: Predictor,
    columns: Sequence[Sequence[Any]],
    rows: range,
    budget: _Budget,
    bad: list[int],
    known_to_fail: bool = False,
) -> bool:
    """Append the instances of ``rows`` that fail alone to ``bad``; ``False`` if cut short."""
    if len(bad) >= MAX_DETAILS:
        return False
    if not known_to_fail:
        fails = budget.fails(predictor, [[col[i] for i in rows] for col in columns])
        if fails is None:
            return False
        if not fails:
            return True
    if len(rows) == 1:
        bad.append(rows[0])
        return True
    mid = len(rows) // 2
    left = _bisect(predictor, columns, rows[:mid], budget, bad)
    right = _bisect(predictor, columns, rows[mid:], budget, bad)
    return left and right


def _field(
    predictor: Predictor,
    row: list[list[Any]],
    names: Sequence[str],
    reference: Sequence[Sequence[Any]],
    budget: _Budget,
) -> str | None:
    """The one field whose reference value makes ``row`` pass, else ``None`` (unknown)."""
    cleared = []
    for j, name in enumerate(names):
        if row[j][0] == reference[j][0]:
            continue
        swapped: list[Sequence[Any]] = list(row)
        swapped[j] = reference[j]
        fails = budget.fails(predictor, swapped)
        if fails is None:
            return None
        if not fails:
            cleared.append(name)
            if len(cleared) > 1:
                return None
    return cleared[0] if cleared else None
