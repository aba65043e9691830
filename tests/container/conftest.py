"""Session fixtures for the container tests: one image build per test session, reused by all.

Tests that need the engine take the ``image`` fixture (or ``docker_engine``), which marks them
``container``: they run only when asked for (``make test-container``, ``ML_API_TEST_CONTAINERS=1``,
``-m container``; see tests/tools.py), and are then skipped with the reason when no Docker Engine
answers, or fail when ``CI`` is set. Tests of static files (Dockerfile lint,
compose file) need no engine and always run.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.container.engine import (
    REPORT,
    ROOT,
    SESSION_ID,
    docker,
    engine_unavailable_reason,
    inspect_image,
)
from tests.tools import missing

IMAGE_REPO = "ml_api-test"


@dataclass(frozen=True)
class BuiltImage:
    """The image this session built: ``ref`` (repository:tag), its id and size in bytes."""

    repository: str
    tag: str
    id: str
    size_bytes: int

    @property
    def ref(self) -> str:
        return f"{self.repository}:{self.tag}"


@pytest.fixture(scope="session")
def docker_engine() -> None:
    reason = engine_unavailable_reason()
    if reason is not None:
        missing("docker", f"no Docker Engine answers ({reason})")


@pytest.fixture(scope="session")
def image(docker_engine, record_testsuite_property) -> Iterator[BuiltImage]:
    """Build the repository's Dockerfile once with ``make image`` (the README's command)."""
    tag = SESSION_ID
    started = time.monotonic()
    proc = subprocess.run(
        ["make", "--no-print-directory", "image", f"IMAGE={IMAGE_REPO}", f"TAG={tag}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    seconds = time.monotonic() - started
    assert proc.returncode == 0, f"make image failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-4000:]}"
    info = inspect_image(f"{IMAGE_REPO}:{tag}")
    built = BuiltImage(IMAGE_REPO, tag, info["Id"], int(info["Size"]))
    cached_steps = proc.stdout.count("Using cache")
    REPORT["image"] = built.ref
    REPORT["image size (MB)"] = round(built.size_bytes / 1e6, 1)
    REPORT["build time (s, this session)"] = round(seconds, 1)
    REPORT["build steps served from cache"] = cached_steps
    record_testsuite_property("image_size_bytes", built.size_bytes)
    record_testsuite_property("image_build_seconds", round(seconds, 1))
    record_testsuite_property("image_build_cached_steps", cached_steps)
    print(f"\nbuilt {built.ref}: {REPORT['image size (MB)']} MB in {seconds:.1f} s")
    yield built
    # --no-prune keeps the untagged parent layers, i.e. the build cache for the next session.
    docker("rmi", "--no-prune", built.ref, check=False)


def pytest_terminal_summary(terminalreporter) -> None:
    """Print the image size, build time and shutdown-under-load counts measured in this run."""
    if not REPORT:
        return
    terminalreporter.section("ml-api container measurements (shared machine: indicative only)")
    for key, value in REPORT.items():
        terminalreporter.write_line(f"{key}: {value}")
