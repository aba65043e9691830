"""What many test folders share: tiny models fitted into tmp directories (no binary model is
committed), the settings and service around them, and the Django app (Django is configured once
per process). Each folder's own fixtures are in its ``conftest.py``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sklearn.datasets import load_diabetes

from ml_api import preprocess
from ml_api.composition import build_scoring
from ml_api.core.service import PredictionService
from ml_api.settings import Settings
from ml_api.train import TrainingOptions, train
from tests.tools import CONTAINER_SWITCH, containers_opted_in

ROOT = Path(__file__).resolve().parents[1]
TESTDATA = ROOT / "tests" / "testdata"

VALID_ROW = ["Biscoe", 50.0, 15.0, 220.0, 5500.0, "male"]
VALID_NAMED = dict(
    zip(
        ["island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex"],
        VALID_ROW,
        strict=True,
    )
)


@pytest.hookimpl(tryfirst=True)  # marks container tests before -m selects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Container tests are opt-in: ``make test`` never builds images or starts containers.

    A test that uses the ``docker_engine`` fixture (directly or through ``image``) gets the
    ``container`` marker; without ``ML_API_TEST_CONTAINERS=1`` (``make test-container``,
    ``.ci/run``) or ``-m container``, every ``container`` test is skipped with that reason.
    """
    opted_in = containers_opted_in(config)
    skip = pytest.mark.skip(
        reason=f"container tests are opt-in: make test-container (or {CONTAINER_SWITCH}=1, "
        "or -m container); they build the image and start containers on a Docker Engine"
    )
    for item in items:
        if "docker_engine" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.container)
        if not opted_in and item.get_closest_marker("container") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def model_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model root holding one penguins classifier (logistic regression), version 1."""
    root = tmp_path_factory.mktemp("models")
    train(
        TrainingOptions(preprocess.PENGUINS_CSV, "species", drop=preprocess.PENGUINS_DROP),
        model_root=root,
        name="penguins",
    )
    return root


@pytest.fixture(scope="session")
def diabetes_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """scikit-learn's bundled diabetes data (442 rows, 10 numeric features) as a CSV file."""
    bunch = load_diabetes(as_frame=True)
    path = tmp_path_factory.mktemp("data") / "diabetes.csv"
    bunch.frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def settings(model_root: Path) -> Settings:
    return Settings(
        model_root=model_root, model_name="penguins", max_body_bytes=65_536, max_instances=50
    )


@pytest.fixture(scope="session")
def service(settings: Settings) -> PredictionService:
    return build_scoring(settings)


@pytest.fixture(scope="session")
def penguins_frame() -> pd.DataFrame:
    return pd.read_csv(preprocess.PENGUINS_CSV)


DJANGO_SECRET_KEY = "test-only-" + "x1Y2z3" * 10
"""A SECRET_KEY long and varied enough for ``manage.py check --deploy``; tests only."""


@pytest.fixture(scope="session")
def django_settings(settings: Settings) -> Settings:
    """The ``settings`` fixture plus what Django needs (its test client sends Host: testserver)."""
    from pydantic import SecretStr

    return settings.model_copy(
        update={
            "secret_key": SecretStr(DJANGO_SECRET_KEY),
            "allowed_hosts": ["testserver", "localhost"],
        }
    )


@pytest.fixture(scope="session")
def django_app(django_settings: Settings, service: PredictionService):
    """The Django WSGI application around the shared ``service`` (configured once per process)."""
    from ml_api.api.django_app import get_wsgi_application

    return get_wsgi_application(django_settings, service)
