"""Put a model's own library versions into the image's constraints (``make image MODEL=<name>``).

    python constraints.py constraints.txt scikit-learn==1.6.1 xgboost-cpu==2.1.4

Each pin (the output of ``ml-api requirements``) replaces the line of its distribution in the
constraints file, so pip installs the model's versions and ml-api's own pins for the rest. The
standard library only: it runs in the image's first stage, before anything is installed.
"""

import re
import sys


def name(requirement: str) -> str:
    """A requirement's distribution name, PEP 503 normalized (``Scikit_Learn``: scikit-learn)."""
    return re.sub(
        r"[-_.]+", "-", re.split(r"[=<>!~;\[\s]", requirement.strip(), maxsplit=1)[0]
    ).lower()


def main(path: str, pins: list[str]) -> None:
    """Rewrite the constraints file ``path``: ``pins`` replace their distributions' lines."""
    with open(path) as f:
        lines = f.readlines()
    pinned = {name(p) for p in pins}
    kept = [line for line in lines if line.lstrip().startswith("#") or name(line) not in pinned]
    with open(path, "w") as f:
        f.writelines(kept + [p + "\n" for p in pins])


if __name__ == "__main__":
    main(sys.argv[1], [p for p in sys.argv[2:] if p.strip()])
