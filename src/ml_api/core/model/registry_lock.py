"""The model registry's writer lock, version counter and durable file replace.

Every change to ``<model_root>/<name>/`` (a new version from ``train`` or ``import``, an alias
from ``promote``) is a read-modify-write: which version numbers exist, what ``aliases.json``
holds. Run concurrently without a lock, two writers read the same state and one's change is lost
(an alias dropped, a version number handed out twice). Each writer therefore holds an exclusive
``fcntl.flock`` on ``<model_root>/<name>/.lock`` for the read-modify-write, across processes and
threads alike (each holder opens its own file description). The lock is advisory: readers
(``serve``, ``versions``) take none, and see the old state or the new, never half of one, because
every change is published by one ``rename``/``os.replace`` after its bytes are fsynced.

Version numbers come from a high-water mark, ``<model_root>/<name>/.last-version``, together with
every numbered entry of the directory (complete or not): a number is never handed out twice, also
when its version directory was deleted or is incomplete (a copy interrupted by hand).
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_FILE = ".lock"
"""``<model_root>/<name>/.lock``: the file every registry writer holds ``flock``-ed."""

COUNTER_FILE = ".last-version"
"""``<model_root>/<name>/.last-version``: the highest version number ever handed out."""


@contextmanager
def registry_lock(model_dir: Path) -> Iterator[None]:
    """Hold the exclusive writer lock of one model's directory (created if missing).

    Blocks until every other holder (any process or thread) has released it.

    Args:
        model_dir: ``<model_root>/<name>``.

    Raises:
        OSError: The directory or its lock file cannot be created or locked.
    """
    model_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(model_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the last descriptor of the description releases the lock


def fsync_dir(path: Path) -> None:
    """Flush a directory's entries (a rename or a new file in it) to disk."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_file(path: Path, text: str, mode: int = 0o644) -> None:
    """Replace a file's content atomically and durably.

    The text goes to a temporary file beside ``path``, is fsynced, and is renamed over ``path``
    with :func:`os.replace`; the directory is fsynced. A reader sees the old file or the new one.

    Args:
        path: The file to write (its directory must exist).
        text: The new content (UTF-8).
        mode: Permission bits of the new file.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=path.suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    fsync_dir(path.parent)


def next_version(model_dir: Path) -> int:
    """Return the next version number of a model; call it holding :func:`registry_lock`.

    One more than the highest of the recorded high-water mark and every numbered entry of
    ``model_dir`` (complete versions, incomplete directories, stray files).

    Raises:
        ValueError: ``.last-version`` holds something other than a whole number.
    """
    counter = model_dir / COUNTER_FILE
    try:
        text = counter.read_text().strip()
    except FileNotFoundError:
        text = "0"
    if not text.isdigit():
        raise ValueError(f"version counter {counter} must hold a whole number, holds {text!r}")
    taken = [int(p.name) for p in model_dir.iterdir() if p.name.isdigit()]
    return max([int(text), *taken]) + 1


def record_version(model_dir: Path, version: int) -> None:
    """Record ``version`` as handed out (the high-water mark); call it holding the lock."""
    replace_file(model_dir / COUNTER_FILE, f"{version}\n")


def fsync_tree(path: Path) -> None:
    """Flush every file and directory under ``path`` to disk (a version about to be published)."""
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            fd = os.open(Path(dirpath) / name, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(dirpath))
