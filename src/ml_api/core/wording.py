"""Words for messages: counted nouns (``1 feature``, ``2 features``), a model's name."""

from __future__ import annotations

from typing import Any

__all__ = ["count", "describe_model"]


def count(n: int, noun: str, plural: str | None = None) -> str:
    """A number with its noun in the right form.

    Args:
        n: How many.
        noun: The singular (``"row"``, ``"refused row"``).
        plural: The plural where it is not ``noun + "s"`` (``"categories"``).

    Returns:
        ``"1 row"``, ``"0 rows"``, ``"1234 rows"``.
    """
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def describe_model(model: Any) -> str:
    """A model in words: ``LogisticRegression``, or ``a Pipeline ending in LogisticRegression``.

    Args:
        model: A fitted estimator or pipeline.

    Returns:
        The class name for a bare estimator; for a ``Pipeline``, its class and its last step's.
    """
    wrapped = getattr(model, "wraps", None)  # a library's model behind an interface of ml-api's
    if wrapped is not None:
        return type(wrapped).__name__
    steps = getattr(model, "steps", None)
    if steps:
        last = steps[-1][1]
        return f"a {type(model).__name__} ending in {describe_model(last).removeprefix('a ')}"
    return type(model).__name__
