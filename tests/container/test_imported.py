"""A model from ``ml-api import`` in the container: mounted read-only, and baked in by
``Dockerfile.model`` (what ``make image MODEL=<name>`` builds on top of the image)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import requests

from ml_api import preprocess
from tests.container.engine import SESSION_ID, Container, docker, free_port
from tests.container.test_models import readable_by_anyone
from tests.importing.conftest import Case, fit_pipeline, json_rows
from tests.importing.test_serving import expected, import_case

pytestmark = pytest.mark.container
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pipeline_case(tmp_path_factory) -> Case:
    fitted = tmp_path_factory.mktemp("fitted")
    penguins = pd.read_csv(preprocess.PENGUINS_CSV).drop(columns=["year"])
    penguins.to_csv(fitted / "penguins.csv", index=False)
    return fit_pipeline(fitted, penguins, fitted / "penguins.csv")


@pytest.fixture(scope="module")
def imported_root(tmp_path_factory, pipeline_case: Case) -> Path:
    root = tmp_path_factory.mktemp("imported-models")
    import_case(pipeline_case, root, "notebook")
    return readable_by_anyone(root)


def check_served(container: Container, case: Case) -> None:
    card = requests.get(container.url + "/metadata", timeout=10).json()
    assert card["model"] == {"name": "notebook", "version": "1"}
    assert card["source"]["format"] == "joblib"
    rows = case.features().iloc[:20][[f["name"] for f in card["features"]]]
    labels, _ = expected(case, rows)
    r = requests.post(container.url + "/predict", json={"instances": json_rows(rows)}, timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["prediction"] == labels


def test_an_imported_model_mounted_read_only(image, imported_root, pipeline_case):
    env = {"ML_API_MODEL_ROOT": "/models", "ML_API_MODEL_NAME": "notebook"}
    name = f"ml_api-test-{SESSION_ID}-imported-mounted"
    volume = f"{imported_root}:/models:ro"
    with Container(image.ref, name, free_port(), env, volumes=[volume]) as container:
        container.wait_ready()
        check_served(container, pipeline_case)


def test_an_imported_model_baked_in_by_dockerfile_model(image, imported_root, pipeline_case):
    ref = f"{image.repository}:{image.tag}-notebook"
    build = docker(
        "build",
        "--network",
        "host",
        "-f",
        str(ROOT / "Dockerfile.model"),
        "--build-arg",
        f"BASE_IMAGE={image.ref}",
        "--build-arg",
        "MODEL=notebook",
        "-t",
        ref,
        str(imported_root),
        timeout=600,
    )
    assert build.returncode == 0
    try:
        name = f"ml_api-test-{SESSION_ID}-imported-baked"
        with Container(ref, name, free_port(), {}) as container:
            container.wait_ready()
            check_served(container, pipeline_case)
    finally:
        docker("rmi", ref, check=False)
