"""ml-api at both ends of its scikit-learn range: the oldest (1.5.x) and the newest 1.x on PyPI.

Each test makes a scratch virtual environment in ``tmp_path`` whose own site-packages holds that
scikit-learn, installed by pip from the index (or pip's cache), and nothing else: every other
package, ml-api itself included (installed from this work tree), comes from the project's
environment through a path file placed after it. That is the set the route of docs/models.md
"Other library versions" installs in an image: ``constraints.txt`` with the model's scikit-learn
in place of its own pin. ``pip check`` then checks that set as pip sees it (ml-api, skl2onnx and
every other package accept that scikit-learn).

In that environment the test fits a ``ColumnTransformer`` pipeline, imports it (``ml-api
import``, whose own check runs the server's path there), reads its pins (``ml-api
requirements``), scores the CSV (``ml-api predict``) and serves one request over loopback (``ml-api
serve``); every answer must equal the model's own predictions in that environment. The project's
environment, at another minor, refuses the same file naming both versions and the route.

pip needs the index or its cache: without them the test skips with the reason (fails in CI).
Runtime: about a minute per end on two busy cores, most of it pip and the import's checks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pandas as pd
import pytest
import requests
from packaging.requirements import Requirement

from ml_api.core.model.libraries import installed_version, major_minor
from ml_api.importing.requirements import declared
from tests.importing.test_refusals import refused
from tests.live.server import LiveServer

pytestmark = pytest.mark.compat

ROOT = Path(__file__).resolve().parents[2]
PENGUINS = ROOT / "data" / "raw" / "penguins.csv"

FIT = """
import json, sys
import joblib, pandas as pd, sklearn
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

df = pd.read_csv(sys.argv[1])
X, y = df.drop(columns=["species", "year"]), df["species"]
numeric = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
prep = ColumnTransformer([
    ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
    ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"),
                          OneHotEncoder(handle_unknown="ignore")), ["island", "sex"]),
])
model = Pipeline([("prep", prep), ("clf", LogisticRegression(max_iter=1000))]).fit(X, y)
joblib.dump(model, "model.joblib")
json.dump({"version": sklearn.__version__, "labels": model.predict(X).tolist(),
           "probabilities": model.predict_proba(X).tolist()}, open("own.json", "w"))
"""
"""Run by the scratch environment's Python: the model and its own answers on every row."""


def ends() -> dict[str, str]:
    """pip requirements for the range's two ends, from ml-api's declared range."""
    found = declared("scikit-learn")
    assert found is not None, "ml-api's metadata does not name scikit-learn"
    requirement = found[0]
    lower = next(s.version for s in requirement.specifier if s.operator == ">=")
    return {
        "oldest": f"scikit-learn=={lower}.*",  # its newest patch release
        "newest": f"scikit-learn{requirement.specifier}",  # pip takes the newest in range
    }


def scratch_env(path: Path, requirement: str) -> Path:
    """A virtual environment with ``requirement`` alone, the project's packages behind it."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    python = path / "bin" / "python"
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
         "--no-deps", "--disable-pip-version-check", requirement],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    if pip.returncode != 0:
        reason = f"pip could not install {requirement}: {pip.stderr.strip()[-300:]}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    project = sysconfig.get_path("purelib")
    (Path(site) / "zz-project.pth").write_text(f"import site; site.addsitedir({project!r})\n")
    return python


def run(python: Path, *args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=600,
        check=False,
    )  # fmt: skip


@pytest.mark.parametrize("end", ["oldest", "newest"])
def test_ml_api_imports_scores_and_serves_at_each_end_of_its_range(tmp_path, end):
    requirement = ends()[end]
    python = scratch_env(tmp_path / "venv", requirement)
    fit = run(python, "-c", FIT, PENGUINS, cwd=tmp_path)
    assert fit.returncode == 0, fit.stderr
    own = json.loads((tmp_path / "own.json").read_text())
    version = own["version"]
    assert Requirement(requirement).specifier.contains(version), (requirement, version)
    check = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "check"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr

    models = tmp_path / "models"
    ml_api = ("-m", "ml_api.cli")
    imported = run(
        python, *ml_api, "import", "model.joblib", "--data", PENGUINS, "--target", "species",
        "--name", "compat", "--model-root", models, cwd=tmp_path,
    )  # fmt: skip
    assert imported.returncode == 0, imported.stdout + imported.stderr
    assert (
        "checked: the server's predictions on 344 data rows equal the model's own (labels exactly, "
        "probabilities within 1e-6 relative)"
    ) in imported.stdout
    card = json.loads((models / "compat" / "1" / "metadata.json").read_text())
    assert card["versions"]["scikit-learn"] == version

    pins = run(python, *ml_api, "requirements", "compat", "--model-root", models, cwd=tmp_path)
    assert pins.returncode == 0, pins.stderr
    assert pins.stdout.splitlines()[-1] == f"scikit-learn=={version}"

    scored = run(
        python, *ml_api, "predict", "--input", PENGUINS, "--output", "scored.csv",
        "--name", "compat", "--model-root", models, "--quiet", cwd=tmp_path,
    )  # fmt: skip
    assert scored.returncode == 0, scored.stdout + scored.stderr
    out = pd.read_csv(tmp_path / "scored.csv")
    assert out["prediction"].tolist() == own["labels"]
    classes = sorted(set(own["labels"]))
    served_probabilities = out[[f"probability_{c}" for c in classes]].to_numpy()
    assert abs(served_probabilities - own["probabilities"]).max() < 1e-6

    rows = pd.read_csv(PENGUINS).drop(columns=["species", "year"]).iloc[:5]
    instances = json.loads(rows.to_json(orient="records"))
    serve = [*ml_api, "serve", "--host", "127.0.0.1", "--workers", "1", "--name", "compat"]
    with LiveServer(models, argv=lambda port: [str(python), *serve, "--port", str(port)]) as server:
        answer = requests.post(server.url + "/predict", json={"instances": instances}, timeout=30)
        metadata = requests.get(server.url + "/metadata", timeout=30).json()
    assert answer.status_code == 200, answer.text
    assert answer.json()["prediction"] == own["labels"][:5]
    assert metadata["versions"]["scikit-learn"] == version

    if major_minor(version) != major_minor(installed_version("scikit-learn") or ""):
        message = refused(tmp_path / "here", tmp_path / "model.joblib", "--data", PENGUINS)
        assert f"was pickled with scikit-learn {version} and " in message
        assert f"'ml-api requirements {tmp_path / 'model.joblib'}' prints the pins" in message
