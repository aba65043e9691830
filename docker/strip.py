"""Strip the symbol tables of the virtualenv's native libraries where the result still loads.

``strip --strip-unneeded`` keeps every symbol the dynamic loader needs, yet it corrupts files
that patchelf rewrote (auditwheel does, for the libraries a wheel bundles in ``<name>.libs/``:
"ELF load command address/offset not page-aligned"). So each file is stripped in place, loaded
with :func:`ctypes.CDLL` by a fresh interpreter, and put back as it was when that fails; files
that did not load before stripping are left alone. Run by docker/slim.sh in the build only.

Usage: ``python strip.py <virtualenv>``; prints the bytes saved.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

LOAD = "import ctypes, os, sys; ctypes.CDLL(sys.argv[1], mode=os.RTLD_LAZY)"


def loads(path: Path) -> bool:
    """Whether a fresh interpreter can load the shared object at ``path``."""
    proc = subprocess.run([sys.executable, "-c", LOAD, str(path)], capture_output=True, check=False)
    return proc.returncode == 0


def strip(path: Path) -> int:
    """Strip one file if it loads before and after; return the bytes saved (0 when left alone)."""
    if not loads(path):
        return 0
    before = path.stat().st_size
    backup = path.with_name(path.name + ".unstripped")
    shutil.copy2(path, backup)
    proc = subprocess.run(["strip", "--strip-unneeded", str(path)], capture_output=True)
    if proc.returncode != 0 or not loads(path):
        shutil.move(backup, path)
        return 0
    backup.unlink()
    return before - path.stat().st_size


if __name__ == "__main__":
    root = Path(sys.argv[1])
    files = sorted(p for p in root.rglob("*.so*") if p.is_file() and not p.is_symlink())
    saved = sum(strip(p) for p in files if p.stat().st_size > 64 * 1024)
    print(f"strip.py: {saved / 1e6:.1f} MB of symbol tables removed from {len(files)} files")
