"""Fixtures of the live suite: `ml-api serve` as a real gunicorn or granian process on loopback."""

import pytest

from tests.conftest import DJANGO_SECRET_KEY
from tests.live.server import LiveServer

FRAMEWORKS = ("flask", "django")
SERVERS = ("gunicorn", "granian")
"""``ML_API_SERVER`` values: tests about the server itself run against each."""
DJANGO_ENV = {"ML_API_SECRET_KEY": DJANGO_SECRET_KEY}


def framework_env(framework: str, **extra: str) -> dict[str, str]:
    """The environment ``framework`` needs (Django: a SECRET_KEY), plus ``extra``."""
    return {**(DJANGO_ENV if framework == "django" else {}), **extra}


@pytest.fixture(
    scope="module", params=[(fw, sv) for sv in SERVERS for fw in FRAMEWORKS], ids="-".join
)
def server(request, model_root):
    """``ml-api serve`` with 2 workers, Flask and Django under gunicorn and granian; stopped with
    SIGTERM, must exit 0."""
    framework, server_name = request.param
    env = framework_env(framework, ML_API_SERVER=server_name)
    srv = LiveServer(model_root, framework, workers=2, env=env)
    srv.wait_ready()
    yield srv
    code = srv.terminate()
    assert code == 0, srv.output()
