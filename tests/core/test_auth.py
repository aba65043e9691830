import pytest

from ml_api.core.auth import ApiKeyAuth
from ml_api.core.errors import Unauthorized


def test_disabled_without_keys():
    auth = ApiKeyAuth([])
    assert not auth.enabled
    auth.check("/predict", None, None)


@pytest.mark.parametrize(
    ("authorization", "api_key"),
    [("Bearer k1", None), ("bearer k2", None), (None, "k1"), ("Basic zzz", "k2")],
)
def test_accepted_credentials(authorization, api_key):
    ApiKeyAuth(["k1", "k2"], ["/health"]).check("/predict", authorization, api_key)


@pytest.mark.parametrize(
    ("authorization", "api_key", "message"),
    [
        (None, None, "missing API key"),
        ("Basic azE=", None, "missing API key"),
        ("Bearer k3", None, "invalid API key"),
        ("Bearer k1x", None, "invalid API key"),
        (None, "", "invalid API key"),
        ("Bearer ", None, "invalid API key"),
    ],
)
def test_refused_credentials(authorization, api_key, message):
    with pytest.raises(Unauthorized) as info:
        ApiKeyAuth(["k1", "k2"]).check("/predict", authorization, api_key)
    assert info.value.status == 401
    assert info.value.message.startswith(message)
    assert info.value.headers["WWW-Authenticate"].startswith('Bearer realm="ml-api"')
    assert "k1" not in info.value.message and "k2" not in info.value.message


def test_public_paths_with_or_without_slash():
    auth = ApiKeyAuth(["k"], ["/health", "/ready/"])
    auth.check("/health/", None, None)
    auth.check("/ready", None, None)
    with pytest.raises(Unauthorized):
        auth.check("/metadata", None, None)
