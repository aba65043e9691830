"""A model's own code: the user's modules its pickle needs (``--code-path mytransforms.py``).

A pipeline holding a transformer class from a notebook's ``mytransforms.py`` unpickles only where
``import mytransforms`` works. ``ml-api import --code-path`` (``code_paths=`` in Python) takes such
files (or package directories): they are importable while the model file is read, copied into the
artifact under ``code/`` with their sha256 in the card's ``files`` (verified at every load like
the model file), named in the card's ``code`` section, and put on ``sys.path`` only while that
version's model is unpickled (:func:`ml_api.core.model.artifact.code_on_path`). The image of a
model (``make image MODEL=...``) holds its version directory, so the code goes with it.

The code runs whenever the model loads: it gets the same trust as the pickle itself.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import sys
import sysconfig
import tempfile
import types
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ml_api.core.model.artifact import CODE_DIR
from ml_api.importing.source import ImportRefused

CodeFiles = dict[str, bytes]
"""Relative path under the artifact's ``code/`` directory (``mytransforms.py``,
``mypackage/__init__.py``) to the file's bytes."""


def read_code(paths: Sequence[str | Path]) -> CodeFiles:
    """Read the ``--code-path`` files and packages.

    Args:
        paths: ``.py`` files (a module each, named by the file's stem) or package directories
            (holding ``__init__.py``; every ``.py`` file below is taken).

    Returns:
        The files by their path under ``code/``.

    Raises:
        ImportRefused: A path is missing or neither a ``.py`` file nor a package, a module
            name is not an identifier or is also the name of an installed module (which would
            shadow it, or be shadowed by it), or two paths give the same module.
    """
    files: CodeFiles = {}
    for raw in paths:
        path = Path(raw).expanduser().resolve()
        if path.is_file() and path.suffix == ".py":
            found = {path.name: path}
        elif path.is_dir() and (path / "__init__.py").is_file():
            found = {
                f"{path.name}/{p.relative_to(path).as_posix()}": p
                for p in sorted(path.rglob("*.py"))
                if "__pycache__" not in p.parts
            }
        else:
            raise ImportRefused(
                f"--code-path {raw}: not a .py file or a package directory (with __init__.py)"
            )
        module = path.stem if path.is_file() else path.name
        if not module.isidentifier():
            raise ImportRefused(f"--code-path {raw}: {module!r} is not a Python module name")
        if any(rel.split("/")[0] in (module, f"{module}.py") for rel in files):
            raise ImportRefused(f"--code-path {raw}: module {module!r} is given twice")
        loaded = sys.modules.get(module)
        spec = importlib.util.find_spec(module) if loaded is None else None
        origin = getattr(loaded, "__file__", None) or getattr(spec, "origin", None)
        own = origin is not None and Path(origin).resolve() in (path, path / "__init__.py")
        if module in sys.builtin_module_names or (
            (loaded is not None or spec is not None) and not own
        ):
            raise ImportRefused(
                f"--code-path {raw}: a module named {module!r} is already installed "
                f"({origin or 'built in'}); rename your file"
            )
        files.update({rel: p.read_bytes() for rel, p in found.items()})
    return files


def modules(files: Mapping[str, bytes]) -> list[str]:
    """The top-level module names of the code files, sorted."""
    return sorted({rel.split("/")[0].removesuffix(".py") for rel in files})


@contextlib.contextmanager
def importable(files: Mapping[str, bytes]) -> Iterator[None]:
    """Make the code files importable (a temporary directory first on ``sys.path``).

    Modules imported meanwhile stay imported (the model's classes live in them).
    """
    if not files:
        yield
        return
    with tempfile.TemporaryDirectory(prefix="ml-api-code-") as tmp:
        for rel, data in files.items():
            (Path(tmp) / rel).parent.mkdir(parents=True, exist_ok=True)
            (Path(tmp) / rel).write_bytes(data)
        sys.path.insert(0, tmp)
        try:
            yield
        finally:
            sys.path.remove(tmp)


def check_provided(objects: Sequence[Any], files: Mapping[str, bytes]) -> None:
    """Refuse a model whose classes (or functions) come from a module neither installed nor given.

    Such a model unpickles here (the module was imported from a notebook's folder) but not in
    the server or its image: the import says which module to pass as a code path.

    Args:
        objects: The model and every estimator and parameter inside it.
        files: The code files given.

    Raises:
        ImportRefused: Naming the class, its module and the file it was imported from.
    """
    given = set(modules(files))
    installed = {Path(p).resolve() for p in sysconfig.get_paths().values() if p}
    distributed = set(importlib.metadata.packages_distributions())  # editable installs too
    for obj in objects:
        kind = obj if isinstance(obj, types.FunctionType) else type(obj)
        top = str(getattr(kind, "__module__", "") or "").split(".")[0]
        if top == "__main__":  # a notebook's or script's own class: no --code-path can give it
            raise ImportRefused(defined_in_main(kind.__qualname__))
        if not top or top in given or top in distributed or top in sys.builtin_module_names:
            continue
        origin = getattr(sys.modules.get(top), "__file__", None)
        if origin is None:
            continue
        where = Path(origin).resolve()
        if any(root == where or root in where.parents for root in installed):
            continue
        raise ImportRefused(
            f"the model's {kind.__qualname__} comes from the module {top!r} ({where}), which is "
            f"not an installed package: the server could not load it; pass it with --code-path "
            f"{where.name if where.name != '__init__.py' else where.parent} "
            f"(code_paths=[...] in Python)"
        )


def defined_in_main(qualname: str) -> str:
    """The refusal for a class (or function) defined in the notebook or script itself.

    Its pickle names the module ``__main__``, which is whatever program loads it (the server,
    then), so no code path can provide it: it must live in a module file the model imports.

    Args:
        qualname: The class's (or function's) qualified name.

    Returns:
        One line saying to move it into a module file, import it from there, refit (or rebuild)
        the model and pass that file with ``--code-path``.
    """
    return (
        f"the model's {qualname} is defined in the notebook or script itself (module "
        f"'__main__'), which no server can import: move {qualname} into a module file (say "
        f"mytransforms.py), import it from there (from mytransforms import {qualname}), "
        f"rebuild and save the model, then pass that file: --code-path mytransforms.py "
        f"(code_paths=[...] in Python)"
    )


def artifact_files(files: Mapping[str, bytes]) -> dict[str, bytes]:
    """The code files as artifact files (under ``code/``), for ``save_artifact(files=...)``."""
    return {f"{CODE_DIR}/{rel}": data for rel, data in files.items()}
