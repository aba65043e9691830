"""The model card for people: charts made at training, stored and hashed; the page and Markdown."""

import base64
import json
import re
import shutil
import xml.etree.ElementTree as ET

import pytest
from click.testing import CliRunner

from ml_api import preprocess
from ml_api.api.flask_app import create_app
from ml_api.cli import main
from ml_api.composition import build_scoring
from ml_api.core.model.artifact import load_artifact
from ml_api.core.model.integrity import ArtifactError
from ml_api.core.pages.card_page import ABSENT, ABSENT_IMPORTED
from ml_api.settings import Settings
from ml_api.train import TrainingOptions, train

CLASSIFIER_CHARTS = ["class_balance.svg", "confusion_matrix.svg", "permutation_importance.svg"]
REGRESSOR_CHARTS = ["class_balance.svg", "predicted_vs_actual.svg", "permutation_importance.svg"]


@pytest.fixture(scope="module")
def regressor_root(tmp_path_factory, diabetes_csv):
    root = tmp_path_factory.mktemp("regressor")
    train(
        TrainingOptions(diabetes_csv, "target", estimator="random_forest"),
        model_root=root,
        name="diabetes",
    )
    return root


def _page(root, name):
    settings = Settings(model_root=root, model_name=name)
    r = create_app(settings, build_scoring(settings)).test_client().get("/model")
    assert r.status_code == 200 and r.content_type.startswith("text/html")
    return r.get_data(as_text=True)


def _images(page):
    """The chart images of a page, each decoded and parsed as SVG."""
    found = re.findall(
        r"<img class='chart' src='data:image/svg\+xml;base64,([^']+)' alt='([^']+)'", page
    )
    return [(alt, ET.fromstring(base64.b64decode(data))) for data, alt in found]


def test_charts_are_stored_hashed_and_listed_in_the_card(model_root):
    card = json.loads((model_root / "penguins" / "1" / "metadata.json").read_text())
    assert [c["file"] for c in card["charts"]] == [f"charts/{n}" for n in CLASSIFIER_CHARTS]
    for chart in card["charts"]:
        path = model_root / "penguins" / "1" / chart["file"]
        assert card["files"][chart["file"]]["bytes"] == path.stat().st_size
        assert ET.parse(path).getroot().tag.endswith("svg")


def test_classifier_page(model_root):
    page = _page(model_root, "penguins")
    assert "classifies species into 3 classes from 6 features" in page
    assert "penguins version 1" in page and "trained on" in page
    assert "Biscoe, Dream, Torgersen" in page and "32.1 to 59.6 in training" in page
    assert "Held-out metrics" in page and "accuracy" in page and "f1_macro" in page
    assert [alt for alt, _ in _images(page)] == [
        "Class balance", "Confusion matrix", "Permutation feature importance"
    ]  # fmt: skip
    svg_text = ET.tostring(_images(page)[1][1], encoding="unicode")
    for species in ("Adelie", "Chinstrap", "Gentoo"):
        assert species in svg_text  # the matrix's axes name the classes
    assert "http://" not in page.replace("http://www.w3.org", "")  # nothing fetched
    assert "<script" not in page and ABSENT not in page


def test_regressor_page(regressor_root):
    page = _page(regressor_root, "diabetes")
    assert "predicts target (regression) from 10 features" in page
    assert "r2" in page and "rmse" in page
    assert [alt for alt, _ in _images(page)] == [
        "Target distribution", "Predicted vs actual", "Permutation feature importance"
    ]  # fmt: skip
    card = json.loads((regressor_root / "diabetes" / "1" / "metadata.json").read_text())
    assert [c["file"] for c in card["charts"]] == [f"charts/{n}" for n in REGRESSOR_CHARTS]


def test_old_artifact_without_charts_still_serves(tmp_path, model_root):
    old = tmp_path / "penguins" / "1"
    shutil.copytree(model_root / "penguins" / "1", old)
    card = json.loads((old / "metadata.json").read_text())
    del card["charts"], card["files"]
    (old / "metadata.json").write_text(json.dumps(card))
    shutil.rmtree(old / "charts")
    page = _page(tmp_path, "penguins")
    assert ABSENT in page and _images(page) == []
    assert "accuracy" in page  # the rest of the card is there


def test_imported_card_without_held_out_split(tmp_path, model_root):
    version = tmp_path / "imported" / "1"
    shutil.copytree(model_root / "penguins" / "1", version)
    card = json.loads((version / "metadata.json").read_text())
    for key in ("charts", "files", "training"):
        card.pop(key)
    card.update(
        name="imported",
        estimator="imported",
        metrics=None,
        source={"format": "joblib", "file": "model.joblib", "sha256": "ab" * 32},
    )
    (version / "metadata.json").write_text(json.dumps(card))
    shutil.rmtree(version / "charts")
    page = _page(tmp_path, "imported")
    assert "imported" in page and "no held-out split of its own" in page
    assert "No metrics were recorded" in page and ABSENT_IMPORTED in page
    assert "Retrain it" not in page and "{" not in page.split("<body")[-1].split("<style")[0]
    assert f"joblib model.joblib sha256 {'ab' * 6}..." in page


def test_a_modified_chart_is_refused_like_a_modified_model(tmp_path, model_root):
    shutil.copytree(model_root / "penguins", tmp_path / "penguins")
    chart = tmp_path / "penguins" / "1" / "charts" / "confusion_matrix.svg"
    chart.write_bytes(chart.read_bytes().replace(b"Confusion", b"Confusing"))
    with pytest.raises(ArtifactError, match="does not match its card"):
        load_artifact(tmp_path, "penguins")
    chart.unlink()
    with pytest.raises(ArtifactError, match="artifact file missing"):
        load_artifact(tmp_path, "penguins")


def test_card_command_html_and_markdown(model_root, tmp_path):
    html_out = tmp_path / "card.html"
    r = CliRunner().invoke(
        main, ["card", "--model-root", str(model_root), "--output", str(html_out)]
    )
    assert r.exit_code == 0, r.output
    assert html_out.read_text() == _page(model_root, "penguins")  # the same page as GET /model
    md_out = tmp_path / "README.md"
    r = CliRunner().invoke(
        main,
        ["card", "--model-root", str(model_root), "--version", "1", "--output", str(md_out),
         "--format", "markdown"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    text = md_out.read_text()
    assert text.startswith("# Model card: penguins version 1")
    assert re.search(r"\| island \| categorical \(\w+\) \| Biscoe, Dream, Torgersen \| no \|", text)
    links = re.findall(r"!\[[^\]]+\]\(([^)]+)\)", text)
    assert links == [f"README_charts/{n}" for n in CLASSIFIER_CHARTS]
    for link in links:
        assert ET.parse(tmp_path / link).getroot().tag.endswith("svg")


def test_training_charts_need_no_display(tmp_path):
    """Training draws with the Agg backend: no display, no GUI toolkit."""
    r = train(
        TrainingOptions(
            preprocess.PENGUINS_CSV,
            "species",
            drop=preprocess.PENGUINS_DROP,
            estimator="hist_gradient_boosting",
        ),
        model_root=tmp_path,
        name="p",
    )
    assert len(json.loads((r.path / "metadata.json").read_text())["charts"]) == 3
