"""Fixtures of the live suite: ``ml-api serve`` as a real gunicorn process on loopback."""

import pytest

from tests.conftest import DJANGO_SECRET_KEY
from tests.live.server import LiveServer

FRAMEWORKS = ("flask", "django")
DJANGO_ENV = {"ML_API_SECRET_KEY": DJANGO_SECRET_KEY}


def framework_env(framework: str, **extra: str) -> dict[str, str]:
    """The environment ``framework`` needs (Django: a SECRET_KEY), plus ``extra``."""
    return {**(DJANGO_ENV if framework == "django" else {}), **extra}


@pytest.fixture(scope="module", params=FRAMEWORKS)
def server(request, model_root):
    """``ml-api serve`` with 2 workers, Flask then Django; stopped with SIGTERM, must exit 0."""
    srv = LiveServer(model_root, request.param, workers=2, env=framework_env(request.param))
    srv.wait_ready()
    yield srv
    code = srv.terminate()
    assert code == 0, srv.output()
