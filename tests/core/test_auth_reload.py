"""API keys from a file are re-read when the file changes (issue 16, item 11): a revoked key
stops working without a restart. Unit tests with a fake clock, then a real server over HTTP."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import requests

from ml_api.core.auth import RELOAD_INTERVAL_SECONDS, ApiKeyAuth
from ml_api.core.errors import Unauthorized
from tests.live.server import LiveServer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def write(path: Path, text: str, bump: int) -> None:
    """Write the file and give it a distinct mtime (the filesystem's may be coarse)."""
    path.write_text(text)
    stamp = 1_700_000_000_000_000_000 + bump * 1_000_000_000
    os.utime(path, ns=(stamp, stamp))


def allowed(auth: ApiKeyAuth, key: str) -> bool:
    try:
        auth.check("/predict", None, key)
    except Unauthorized:
        return False
    return True


def test_a_revoked_key_stops_working_after_the_next_check(tmp_path: Path) -> None:
    keys, clock = tmp_path / "api-keys", Clock()
    write(keys, "# team keys\nold-key\nkept-key\n", 1)
    auth = ApiKeyAuth(["static-key"], ["/health"], keys_file=keys, clock=clock)
    assert auth.enabled and allowed(auth, "old-key") and allowed(auth, "kept-key")

    write(keys, "kept-key\nnew-key\n", 2)
    # Checked at most once per interval: within it the old list still applies.
    clock.now += RELOAD_INTERVAL_SECONDS / 2
    assert allowed(auth, "old-key") and not allowed(auth, "new-key")
    clock.now += RELOAD_INTERVAL_SECONDS
    assert not allowed(auth, "old-key")
    assert allowed(auth, "new-key") and allowed(auth, "kept-key")
    assert allowed(auth, "static-key")  # ML_API_API_KEYS are not in the file; they stay
    auth.check("/health", None, None)  # public paths stay public


def test_an_emptied_file_locks_the_api_rather_than_opening_it(tmp_path: Path) -> None:
    keys, clock = tmp_path / "api-keys", Clock()
    write(keys, "only-key\n", 1)
    auth = ApiKeyAuth([], keys_file=keys, clock=clock)
    write(keys, "\n", 2)
    clock.now += RELOAD_INTERVAL_SECONDS * 2
    assert auth.enabled
    assert not allowed(auth, "only-key")
    with pytest.raises(Unauthorized):
        auth.check("/predict", None, None)


def test_a_keys_file_empty_at_start_keeps_the_api_closed_until_a_key_is_written(
    tmp_path: Path,
) -> None:
    keys, clock = tmp_path / "api-keys", Clock()
    write(keys, "# keys go here\n\n", 1)
    auth = ApiKeyAuth([], ["/health"], keys_file=keys, clock=clock)
    assert auth.enabled
    with pytest.raises(Unauthorized):
        auth.check("/predict", None, None)
    assert not allowed(auth, "any-key") and not allowed(auth, "")
    auth.check("/health", None, None)  # public paths stay public
    write(keys, "first-key\n", 2)
    clock.now += RELOAD_INTERVAL_SECONDS * 2
    assert allowed(auth, "first-key") and not allowed(auth, "other")


def test_no_keys_and_no_file_means_no_authentication() -> None:
    auth = ApiKeyAuth([], ["/health"])
    assert not auth.enabled
    auth.check("/predict", None, None)


def test_an_unreadable_moment_keeps_the_keys_read_before(tmp_path: Path) -> None:
    keys, clock = tmp_path / "api-keys", Clock()
    write(keys, "key-1\n", 1)
    auth = ApiKeyAuth([], keys_file=keys, clock=clock)
    keys.unlink()
    clock.now += RELOAD_INTERVAL_SECONDS * 2
    assert allowed(auth, "key-1")
    write(keys, "key-2\n", 3)
    clock.now += RELOAD_INTERVAL_SECONDS * 2
    assert allowed(auth, "key-2") and not allowed(auth, "key-1")


def test_a_kubernetes_style_symlink_swap_is_seen(tmp_path: Path) -> None:
    """The kubelet updates a Secret volume by pointing ``..data`` at a new directory."""
    clock = Clock()
    for version, key in (("v1", "first"), ("v2", "second")):
        (tmp_path / version).mkdir()
        (tmp_path / version / "api-keys").write_text(key + "\n")
    (tmp_path / "..data").symlink_to("v1")
    (tmp_path / "api-keys").symlink_to("..data/api-keys")
    auth = ApiKeyAuth([], keys_file=tmp_path / "api-keys", clock=clock)
    assert allowed(auth, "first")
    (tmp_path / "..data_tmp").symlink_to("v2")
    os.replace(tmp_path / "..data_tmp", tmp_path / "..data")
    clock.now += RELOAD_INTERVAL_SECONDS * 2
    assert allowed(auth, "second") and not allowed(auth, "first")


@pytest.mark.live
def test_a_running_server_with_an_empty_keys_file_refuses_then_accepts_the_first_key(
    model_root: Path, tmp_path: Path
) -> None:
    keys = tmp_path / "api-keys"
    write(keys, "", 1)
    body = {"features": ["Biscoe", 50.0, 15.0, 220.0, 5500.0, "male"]}
    with LiveServer(model_root, workers=2, env={"ML_API_API_KEYS_FILE": str(keys)}) as server:

        def status(key: str | None) -> int:
            headers = {} if key is None else {"X-API-Key": key}
            return requests.post(
                server.url + "/predict", json=body, headers=headers, timeout=10
            ).status_code

        assert status(None) == 401 and status("anything") == 401
        assert requests.get(server.url + "/ready", timeout=10).status_code == 200
        write(keys, "alice\n", 2)
        deadline, accepted = time.monotonic() + 60, 0
        while accepted < 10 and time.monotonic() < deadline:
            accepted = accepted + 1 if status("alice") == 200 else 0
            time.sleep(0.1)
        assert accepted == 10, server.output()[-2000:]
        assert status(None) == 401


@pytest.mark.live
def test_a_running_server_stops_accepting_a_revoked_key(model_root: Path, tmp_path: Path) -> None:
    keys = tmp_path / "api-keys"
    write(keys, "alice\nmallory\n", 1)
    body = {"features": ["Biscoe", 50.0, 15.0, 220.0, 5500.0, "male"]}
    with LiveServer(model_root, workers=2, env={"ML_API_API_KEYS_FILE": str(keys)}) as server:

        def status(key: str) -> int:
            headers = {"X-API-Key": key}
            return requests.post(
                server.url + "/predict", json=body, headers=headers, timeout=10
            ).status_code

        assert status("mallory") == 200 and status("alice") == 200
        write(keys, "alice\n", 2)
        # Every worker re-reads within about a second; poll (no timing is asserted) until the
        # revoked key has been refused several times in a row, across both workers.
        deadline, refused = time.monotonic() + 60, 0
        while refused < 10 and time.monotonic() < deadline:
            refused = refused + 1 if status("mallory") == 401 else 0
            time.sleep(0.1)
        assert refused == 10, server.output()[-2000:]
        assert status("alice") == 200
