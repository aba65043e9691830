"""Which types a skops model file may hold, and writing and loading skops files by that rule.

``skops`` files load without executing code, trusting only the types skops itself trusts,
:data:`SKOPS_REVIEWED_TYPES`, and the types the card lists as trusted when the version was
written (``model_file.trusted_types``: the tree node types of a model ml-api fitted, or what the
user trusted by name at ``ml-api import --trust``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ml_api.core.model.card import ModelCard
from ml_api.core.model.integrity import ArtifactError

SKOPS_REVIEWED_TYPES = frozenset({"numpy.dtype"})
"""Types a skops file may hold beyond the ones skops itself trusts, each reviewed, by full name
(never a prefix: ``builtins.eval`` and ``numpy.load`` share prefixes with harmless types).

``numpy.dtype``: skops rebuilds it from its string form (``numpy.dtype("float64")``); no other
code runs. Every other type :func:`skops.io.get_untrusted_types` reports must be trusted by name
(``ml-api import --trust TYPE``) or the file is refused."""

SKOPS_NODE_TYPES = {
    "sklearn.tree._tree.Tree": "decision trees, forests and gradient boosting",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor": (
        "HistGradientBoosting models"
    ),
}
"""Tree node storage skops does not trust: scikit-learn indexes its node arrays without bounds
checks, so a crafted file's out-of-range node indices can crash the process (or read memory)
when it predicts. Trusted only in models ml-api fitted itself (``ml-api train``) or that the
user trusted by name at import."""


def skops_refused(untrusted: Sequence[str], trusted: Sequence[str] = ()) -> list[str]:
    """Return the types of a skops file that may not be loaded.

    Args:
        untrusted: What :func:`skops.io.get_untrusted_types` reports for the file (the types
            skops itself does not trust).
        trusted: Type names trusted by name for this file (``--trust``, or the card's
            ``model_file.trusted_types``).

    Returns:
        The reported types neither on :data:`SKOPS_REVIEWED_TYPES` nor in ``trusted``, sorted.
    """
    allowed = SKOPS_REVIEWED_TYPES | set(trusted)
    return sorted(t for t in untrusted if t not in allowed)


def skops_refusal(refused: Sequence[str]) -> str:
    """Say which types skops does not trust and why a type is dangerous, where known (one line)."""
    why = [
        f"{t} holds tree nodes ({SKOPS_NODE_TYPES[t]}) whose out-of-range node indices in a "
        f"crafted file crash the process at predict time"
        for t in refused
        if t in SKOPS_NODE_TYPES
    ]
    return ", ".join(refused) + (f" ({'; '.join(why)})" if why else "")


def dump_skops(model: Any, path: Path, trusted: Sequence[str]) -> list[str]:
    """Write ``model`` as a skops file; return the types it holds that were trusted by name.

    Args:
        model: The fitted model.
        path: Where to write the file.
        trusted: Types the file may hold beyond skops' own trusted set and
            :data:`SKOPS_REVIEWED_TYPES`.

    Returns:
        The types of the file outside :data:`SKOPS_REVIEWED_TYPES` that skops does not trust,
        sorted (the card's ``model_file.trusted_types``).

    Raises:
        ValueError: The file holds a type neither skops, the reviewed list nor ``trusted``
            trusts.
    """
    import skops.io as sio

    sio.dump(model, path)
    untrusted = sio.get_untrusted_types(file=path)
    refused = skops_refused(untrusted, trusted)
    if refused:
        raise ValueError(
            f"the skops format stores only types skops trusts (and "
            f"{', '.join(sorted(SKOPS_REVIEWED_TYPES))}), and this model holds "
            f"{skops_refusal(refused)}: use the joblib format"
        )
    return sorted(t for t in untrusted if t not in SKOPS_REVIEWED_TYPES)


def load_skops(model_path: Path, card: ModelCard) -> Any:
    """Load a skops model file trusting only what skops, the review and its card trust.

    Raises:
        ArtifactError: The file holds a type that is trusted by none of them.
    """
    import skops.io as sio

    untrusted = sio.get_untrusted_types(file=model_path)
    refused = skops_refused(untrusted, card.model_file.trusted_types)
    if refused:
        raise ArtifactError(
            f"{model_path} holds types skops does not trust and its card does not list as "
            f"trusted: {skops_refusal(refused)}; refusing to load it"
        )
    return sio.load(model_path, trusted=untrusted)
