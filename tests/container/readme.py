"""The README's ``curl`` examples, read from the README itself so the container tests send exactly
what a reader would copy (and notice when the README and the server disagree).

Every ``curl -X POST ... -d '<json>' http://host:port/path`` line in a ``bash`` block is one
example. When the next fenced block right after that ``bash`` block is a ``json`` block, it is the
documented answer to the block's last ``curl``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from tests.container.engine import ROOT

FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.DOTALL | re.MULTILINE)
BODY = re.compile(r"-d '([^']*)'")
URL = re.compile(r"(https?://\S+)")


@dataclass(frozen=True)
class Example:
    """One ``curl`` from the README: request path and body, and the documented answer if any."""

    path: str
    body: str
    documented: dict[str, Any] | None

    def n_instances(self) -> int:
        """How many instances the body carries (one positional or named instance counts 1)."""
        payload = json.loads(self.body)
        if "instances" in payload:
            return len(payload["instances"])
        features = payload["features"]
        if isinstance(features, list) and features and isinstance(features[0], list):
            return len(features)
        return 1


def post_examples(text: str | None = None) -> list[Example]:
    """Return every POST example in the README, in document order."""
    text = (ROOT / "README.md").read_text() if text is None else text
    blocks = [(m.group(1), m.group(2)) for m in FENCE.finditer(text)]
    examples: list[Example] = []
    for i, (lang, code) in enumerate(blocks):
        if lang != "bash":
            continue
        commands = [c for c in code.replace("\\\n", " ").splitlines() if "curl" in c]
        found = [c for c in commands if "-X POST" in c and BODY.search(c) and URL.search(c)]
        for j, command in enumerate(found):
            documented = None
            if j == len(found) - 1 and i + 1 < len(blocks) and blocks[i + 1][0] == "json":
                documented = json.loads(blocks[i + 1][1])
            path = urlsplit(URL.search(command).group(1)).path
            examples.append(Example(path, BODY.search(command).group(1), documented))
    return examples
