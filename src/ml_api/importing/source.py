"""What every model reader returns (:class:`Source`) and how it refuses (:class:`ImportRefused`).

Kept apart from the readers (``sources``, ``native``) so each reader can use them without
importing the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd


class ImportRefused(ValueError):
    """The model or its data cannot become a servable artifact; the message is one line.

    Nothing has been written when this is raised (``ml-api import`` exits with status 1).
    """

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


@dataclass(frozen=True)
class Source:
    """A model read from its original form.

    Attributes:
        model: The fitted estimator or pipeline.
        info: The card's ``source`` section (``format``, ``file``, ``sha256``, ...).
        signature: Column names from an MLflow signature, in order, or ``None``.
        optional: Columns the MLflow signature marks as not required (they accept ``null``).
        example: An MLflow input example as a frame, or ``None``.
    """

    model: Any
    info: dict[str, Any]
    signature: tuple[str, ...] | None = None
    optional: frozenset[str] = frozenset()
    example: pd.DataFrame | None = field(default=None, compare=False)
