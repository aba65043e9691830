"""Counted nouns in messages: ``1 feature``, ``2 features`` (never ``1 features``)."""

from __future__ import annotations

__all__ = ["count"]


def count(n: int, noun: str, plural: str | None = None) -> str:
    """A number with its noun in the right form.

    Args:
        n: How many.
        noun: The singular (``"row"``, ``"refused row"``).
        plural: The plural where it is not ``noun + "s"`` (``"categories"``).

    Returns:
        ``"1 row"``, ``"0 rows"``, ``"1,234 rows"`` (thousands separated).
    """
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"
