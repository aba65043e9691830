"""A refusal raised in a worker, carried to the driver and worded there as ``ml-api predict`` does.

A worker knows a row's position in its partition, not in the input: it raises
:class:`PartitionRefused` (the partition's number and the refusal, rows numbered from 1 in the
partition) whose text is one marked JSON line, so it survives an engine that passes only the
text on (Spark hands the driver the worker's traceback as a string). The driver, which can
count the rows of the partitions before it, turns it back into the
:class:`~ml_api.core.errors.InvalidInput` (or
:class:`~ml_api.core.model.ranges.OutOfRangeInput`) that ``ml-api predict`` would have raised,
rows numbered from 1 in the input.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from ml_api.core.errors import InvalidInput, Problem
from ml_api.core.model.ranges import OutOfRange, OutOfRangeInput

MARKER = "ml-api-refused:"
"""Starts the JSON line of a :class:`PartitionRefused` in any text that quotes it."""

_FOUND = re.compile(re.escape(MARKER) + r" (\{.*?\})\s*$", re.MULTILINE)


class PartitionRefused(Exception):
    """Rows of one partition that ``ml-api predict``'s policy refuses; picklable, text-safe.

    Args:
        payload: ``{"partition": int, "message": str, "details": [...], "range": {...}|null}``
            as :meth:`of` builds it.
    """

    def __init__(self, payload: Mapping[str, Any]) -> None:
        super().__init__(f"{MARKER} {json.dumps(payload, separators=(',', ':'))}")
        self.payload = dict(payload)

    @classmethod
    def of(cls, partition: int, exc: InvalidInput) -> PartitionRefused:
        """Wrap a refusal whose rows are numbered from 1 within partition ``partition``."""
        report = getattr(exc, "report", None)
        ranged = None
        if isinstance(report, OutOfRange):
            ranged = {
                "instances": report.instances.tolist(),
                "fields": report.fields.tolist(),
                "values": report.values.tolist(),
                "minimums": report.minimums.tolist(),
                "maximums": report.maximums.tolist(),
                "counts": report.counts,
            }
        return cls(
            {
                "partition": partition,
                "message": exc.message,
                "details": [p.as_dict() for p in exc.details],
                "range": ranged,
            }
        )

    @classmethod
    def find(cls, text: str) -> PartitionRefused | None:
        """The refusal quoted in ``text`` (an engine's error message), else ``None``."""
        found = _FOUND.search(text)
        return None if found is None else cls(json.loads(found.group(1)))

    @property
    def partition(self) -> int:
        """The partition's number (0-based, in the engine's order)."""
        return int(self.payload["partition"])

    def as_input_error(self, offset: int) -> InvalidInput:
        """The error ``ml-api predict`` raises, rows shifted by ``offset`` (rows before it).

        Args:
            offset: How many input rows the partitions before this one hold.

        Returns:
            An :class:`OutOfRangeInput` for the ``reject`` policy, else an
            :class:`InvalidInput`, rows numbered from 1 in the input.
        """
        ranged = self.payload.get("range")
        if ranged:
            report = OutOfRange(
                instances=np.asarray(ranged["instances"], dtype=np.int64) + offset,
                fields=np.asarray(ranged["fields"], dtype=object),
                values=np.asarray(ranged["values"], dtype=np.float64),
                minimums=np.asarray(ranged["minimums"], dtype=np.float64),
                maximums=np.asarray(ranged["maximums"], dtype=np.float64),
                counts=dict(ranged["counts"]),
            )
            return OutOfRangeInput(report)
        details = [
            Problem(
                d["problem"],
                instance=None if d["instance"] is None else int(d["instance"]) + offset,
                field=d["field"],
            )
            for d in self.payload["details"]
        ]
        return InvalidInput(self.payload["message"], details)


def offsets(counts: Mapping[int, int]) -> dict[int, int]:
    """Rows before each partition, from each partition's row count (partitions in order)."""
    out: dict[int, int] = {}
    total = 0
    for partition in sorted(counts):
        out[partition] = total
        total += counts[partition]
    return out
