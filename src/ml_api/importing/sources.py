"""Reading a fitted model from where it was saved: joblib/pickle, skops, or an MLflow directory.

Each reader returns a :class:`Source`: the model object plus what the card records about where it
came from (format, file, sha256) and, for MLflow, the signature's column names and the input
example. Every failure is an :class:`ImportRefused` with one line that names the path.

joblib and pickle files run code while they are loaded: the caller says so to the user once
(``ml-api import`` prints it); the artifact made from the model is then pinned by its sha256.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import re
import warnings
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ml_api.core.model.integrity import sha256_file
from ml_api.core.model.libraries import installed_version, major_minor
from ml_api.core.model.skops_trust import SKOPS_REVIEWED_TYPES, skops_refusal, skops_refused
from ml_api.importing.custom_code import defined_in_main
from ml_api.importing.native import is_native, read_native
from ml_api.importing.requirements import pickled_sklearn_versions, version_route
from ml_api.importing.source import ImportRefused, Source

RUNS_CODE_WARNING = (
    "joblib, pickle and MLflow's scikit-learn models run code while they are loaded, and so does "
    "a model's own code (--code-path) each time it loads: import only files you trust (the "
    "artifact made from them is pinned by sha256 from then on)"
)
"""Said once by ``ml-api import`` (and in the README) before such a file is opened."""

MLFLOW_FLAVORS = {
    "sklearn": "mlflow.sklearn",
    "xgboost": "mlflow.xgboost",
    "lightgbm": "mlflow.lightgbm",
}
"""The MLflow flavors ml-api imports, and the module whose ``load_model`` reads each."""


def from_object(model: Any) -> Source:
    """Wrap a model handed over in Python (``ml_api.save_model``)."""
    cls = type(model)
    return Source(
        model=model, info={"format": "python", "class": f"{cls.__module__}.{cls.__name__}"}
    )


def read_source(
    path: Path, trust: Sequence[str] = (), *, allow_version_mismatch: bool = False
) -> Source:
    """Read a model file or MLflow model directory.

    Args:
        path: A joblib/pickle file, a skops file (a zip holding ``schema.json``), XGBoost's
            (``.json``, ``.ubj``) or LightGBM's (``.txt``) own model file
            (:mod:`ml_api.importing.native`), or a directory holding an ``MLmodel`` file.
        trust: Type names (``"xgboost.sklearn.XGBClassifier"``) a skops file may hold besides
            the ones skops trusts and :data:`~ml_api.core.model.skops_trust.SKOPS_REVIEWED_TYPES`.
        allow_version_mismatch: Accept a model scikit-learn says was pickled by another
            major.minor version (``InconsistentVersionWarning``); the source then records that
            version under ``info["fitted_with"]`` for the card, so the serving version gate
            compares against it.

    Returns:
        The model and its source section.

    Raises:
        ImportRefused: The path is missing, is not one of these, or cannot be loaded here; or
            the model was pickled by another scikit-learn major.minor (unless allowed).
    """
    path = Path(path).expanduser().resolve()
    if not path.exists():
        raise ImportRefused(f"{path}: no such file or directory")
    if path.is_dir():
        if not (path / "MLmodel").is_file():
            raise ImportRefused(
                f"{path} is a directory without an MLmodel file: not an MLflow model"
            )
        read: Callable[[], Source] = lambda: _from_mlflow(path, trust)  # noqa: E731
    elif _is_skops(path):
        read = lambda: _from_skops(path, trust)  # noqa: E731
    elif is_native(path):
        read = lambda: read_native(path)  # noqa: E731
    else:
        read = lambda: _from_pickle(path)  # noqa: E731
    source, pickled_with = _noting_sklearn_version(read)
    return _checked_version(source, pickled_with, path, allow_version_mismatch)


ALLOW_MISMATCH = "--allow-version-mismatch (allow_version_mismatch=True in Python)"
"""How to import a model pickled by another scikit-learn major.minor anyway."""


def _noting_sklearn_version(read: Callable[[], Source]) -> tuple[Source, list[str]]:
    """Run ``read``; return its source and the scikit-learn versions unpickled estimators name.

    scikit-learn warns (``InconsistentVersionWarning``, one per estimator) when an estimator
    pickled by another version is unpickled; the warning carries that version. Other warnings
    are passed on unchanged.
    """
    from sklearn.exceptions import InconsistentVersionWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", InconsistentVersionWarning)
        source = read()
    versions: set[str] = set()
    for w in caught:
        if isinstance(w.message, InconsistentVersionWarning):
            versions.add(str(w.message.original_sklearn_version))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return source, sorted(versions)


def _checked_version(source: Source, pickled_with: list[str], path: Path, allow: bool) -> Source:
    if not pickled_with:
        return source
    installed = installed_version("scikit-learn") or "unknown"
    other = [v for v in pickled_with if major_minor(v) != major_minor(installed)]
    if other and not allow:
        raise ImportRefused(
            f"{path} was pickled with scikit-learn {', '.join(other)} and {installed} is "
            f"installed (predictions may be wrong or fail): {version_route(other[0], path)}; "
            f"or pass {ALLOW_MISMATCH} to import it here anyway (the card records {other[0]}, "
            f"so serving then needs that version or ML_API_ALLOW_VERSION_MISMATCH=true)"
        )
    # The card's scikit-learn version is the one that pickled the model, not the installed one.
    recorded = other[0] if other else pickled_with[0]
    info = {**source.info, "fitted_with": {"scikit-learn": recorded}}
    return dataclasses.replace(source, info=info)


def _other_sklearn_versions(versions: list[str]) -> list[str]:
    installed = installed_version("scikit-learn") or ""
    return [v for v in versions if major_minor(v) != major_minor(installed)]


def _is_skops(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return "schema.json" in zf.namelist()


def _missing_module(exc: ModuleNotFoundError, path: Path) -> ImportRefused:
    return ImportRefused(
        f"cannot load {path}: unpickling it needs the module {exc.name!r}, which is not installed "
        f"here; install the package that provides it (the one the model was fitted with), or, "
        f"if it is your own file, pass it: --code-path {exc.name}.py (code_paths=[...] in Python)"
    )


def _from_pickle(path: Path) -> Source:
    import joblib

    try:
        model = joblib.load(path)
    except ModuleNotFoundError as exc:
        raise _missing_module(exc, path) from None
    except Exception as exc:  # pickle raises many types for a file that is not a pickle
        # "Can't get attribute 'X' on <module '__main__' ...>": a class of the saving script
        in_main = re.search(r"attribute '([\w.]+)' on <module '[\w.]*__main__'", str(exc))
        if in_main is not None:
            raise ImportRefused(f"cannot load {path}: {defined_in_main(in_main[1])}") from None
        reason = str(exc).splitlines()[0][:200] if str(exc) else ""
        other = _other_sklearn_versions(pickled_sklearn_versions(path))
        if other:
            raise ImportRefused(
                f"{path} was pickled with scikit-learn {', '.join(other)} and "
                f"{installed_version('scikit-learn')} is installed, and it cannot be read with "
                f"this one ({type(exc).__name__}: {reason}): {version_route(other[0], path)}"
            ) from None
        raise ImportRefused(
            f"{path} is not a model file ml-api can read (joblib, pickle, skops): "
            f"{type(exc).__name__}: {reason}"
        ) from None
    fmt = "joblib" if path.suffix == ".joblib" else "pickle"
    return Source(model=model, info={"format": fmt, "file": path.name, "sha256": sha256_file(path)})


def _checked_skops(path: Path, trust: Sequence[str], what: str | None = None) -> list[str]:
    """Return the untrusted types of a skops file, refusing any not trusted by ml-api or name."""
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:
        raise ImportRefused(f"{path} is not a readable skops file: {exc!r}") from None
    refused = skops_refused(untrusted, trust)
    if refused:
        raise ImportRefused(
            f"{what or path} holds types skops does not trust: {skops_refusal(refused)}; if you "
            f"trust them, pass --trust TYPE for each (trust=[...] in Python)"
        )
    return untrusted


def _from_skops(path: Path, trust: Sequence[str]) -> Source:
    import skops.io as sio

    untrusted = _checked_skops(path, trust)
    try:
        model = sio.load(path, trusted=untrusted)
    except ModuleNotFoundError as exc:
        raise _missing_module(exc, path) from None
    info: dict[str, Any] = {"format": "skops", "file": path.name, "sha256": sha256_file(path)}
    by_name = sorted(t for t in untrusted if t not in SKOPS_REVIEWED_TYPES)
    if by_name:
        info["trusted_types"] = by_name
    return Source(model=model, info=info)


def _from_mlflow(path: Path, trust: Sequence[str] = ()) -> Source:
    try:
        from mlflow.models import Model
    except ImportError:
        raise ImportRefused(
            f"{path} is an MLflow model; reading it needs mlflow: "
            f"pip install 'ml-api[mlflow]' (or mlflow-skinny)"
        ) from None
    try:
        meta = Model.load(str(path))
    except Exception as exc:
        raise ImportRefused(f"unreadable MLmodel file in {path}: {exc!r}") from None
    flavors = meta.flavors or {}
    flavor = next((f for f in MLFLOW_FLAVORS if f in flavors), None)
    if flavor is None:
        pyfunc = flavors.get("python_function", {})
        if pyfunc:
            raise ImportRefused(
                f"{path} is an MLflow model with only the python_function flavor (loader "
                f"{pyfunc.get('loader_module')!r}): a custom pyfunc is arbitrary Python code, with "
                f"no fitted estimator whose features, classes and versions ml-api can check; log "
                f"the model with mlflow.sklearn, mlflow.xgboost or mlflow.lightgbm instead"
            )
        raise ImportRefused(
            f"{path} is an MLflow model with flavors {sorted(flavors)}; ml-api imports "
            f"{', '.join(MLFLOW_FLAVORS)}"
        )
    conf = flavors[flavor]
    if flavor == "sklearn" and conf.get("serialization_format") == "skops":
        # MLflow loads it trusting the skops_trusted_types its own MLmodel file lists, which
        # whoever wrote the directory chose: the file is checked here by ml-api's rule first.
        model_file = path / str(conf.get("pickled_model", "model.skops"))
        _checked_skops(model_file, trust, f"{path} (its skops model file {model_file.name})")
    try:
        model = importlib.import_module(MLFLOW_FLAVORS[flavor]).load_model(str(path))
    except ModuleNotFoundError as exc:
        raise _missing_module(exc, path) from None
    except Exception as exc:
        raise ImportRefused(f"cannot load the {flavor} model in {path}: {exc!r}") from None
    info = {
        "format": "mlflow",
        "flavor": flavor,
        "file": path.name,
        "sha256": directory_sha256(path),
        "sha256_of": "every file in the directory (relative path and sha256 of each, sorted)",
        "run_id": meta.run_id,
        "model_uuid": getattr(meta, "model_uuid", None),
        "mlflow_version": getattr(meta, "mlflow_version", None),
    }
    return Source(
        model=model,
        info=info,
        signature=_signature_names(meta),
        optional=_signature_optional(meta),
        example=_input_example(meta, path),
    )


def _signature_names(meta: Any) -> tuple[str, ...] | None:
    signature = getattr(meta, "signature", None)
    inputs = getattr(signature, "inputs", None)
    if inputs is None or not inputs.has_input_names():
        return None
    return tuple(str(n) for n in inputs.input_names())


def _signature_optional(meta: Any) -> frozenset[str]:
    inputs = getattr(getattr(meta, "signature", None), "inputs", None)
    if inputs is None or not inputs.has_input_names():
        return frozenset()
    return frozenset(str(c.name) for c in inputs.inputs if not getattr(c, "required", True))


def _input_example(meta: Any, path: Path) -> pd.DataFrame | None:
    try:
        example = meta.load_input_example(str(path))
    except Exception:  # an example that cannot be read is the same as none: --data is needed
        return None
    if example is None:
        return None
    if isinstance(example, pd.DataFrame):
        return example
    names = _signature_names(meta)
    try:
        frame = pd.DataFrame(example)
    except ValueError:
        return None
    if names is not None and len(names) == frame.shape[1]:
        frame.columns = list(names)
    return frame


def directory_sha256(path: Path) -> str:
    """Return one sha256 for a directory's files: of each relative path and that file's sha256."""
    h = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(f"{file.relative_to(path).as_posix()}\0{sha256_file(file)}\n".encode())
    return h.hexdigest()
