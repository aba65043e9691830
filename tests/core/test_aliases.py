"""Version aliases: `ml-api versions`, `ml-api promote`, and the version serve loads."""

from __future__ import annotations

import json
import shutil

import pytest
import requests
from click.testing import CliRunner

from ml_api import preprocess
from ml_api.cli import main
from ml_api.core.model.integrity import ArtifactError
from ml_api.core.model.versions import read_aliases, resolve_version_dir, set_alias
from ml_api.train import TrainingOptions, train
from tests.conftest import DJANGO_SECRET_KEY
from tests.live.server import LiveServer


@pytest.fixture(scope="module")
def three_versions(tmp_path_factory):
    """penguins versions 1 (linear), 2 (random forest), 3 (linear), in a module-wide root."""
    root = tmp_path_factory.mktemp("aliased")
    for estimator in ("linear", "random_forest", "linear"):
        train(
            TrainingOptions(
                preprocess.PENGUINS_CSV,
                "species",
                drop=preprocess.PENGUINS_DROP,
                estimator=estimator,
            ),
            model_root=root,
            name="penguins",
        )
    return root


@pytest.fixture
def root(three_versions, tmp_path):
    copy = tmp_path / "models"
    shutil.copytree(three_versions, copy)
    return copy


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_newest_serves_until_production_is_set(root):
    assert resolve_version_dir(root, "penguins").name == "3"
    set_alias(root, "penguins", "production", 2)
    assert json.loads((root / "penguins" / "aliases.json").read_text()) == {"production": 2}
    assert resolve_version_dir(root, "penguins").name == "2"
    assert resolve_version_dir(root, "penguins", "production").name == "2"
    assert resolve_version_dir(root, "penguins", "3").name == "3"
    set_alias(root, "penguins", "staging", 1)
    assert resolve_version_dir(root, "penguins", "staging").name == "1"
    set_alias(root, "penguins", "production", None)
    assert resolve_version_dir(root, "penguins").name == "3"
    assert read_aliases(root, "penguins") == {"staging": 1}
    assert not list((root / "penguins").glob(".aliases-*"))  # the temporary file is gone


def test_unknown_alias_and_dangling_alias_are_clear_errors(root):
    with pytest.raises(ArtifactError, match=r"no version 'canary'.*available: 1, 2, 3"):
        resolve_version_dir(root, "penguins", "canary")
    set_alias(root, "penguins", "production", 1)
    shutil.rmtree(root / "penguins" / "1")
    with pytest.raises(ArtifactError, match=r"alias 'production' .* names version 1, which is not"):
        resolve_version_dir(root, "penguins")
    with pytest.raises(ArtifactError, match="no version '7'"):
        set_alias(root, "penguins", "production", 7)
    with pytest.raises(ValueError, match="not only digits"):
        set_alias(root, "penguins", "12", 2)


def test_versions_table_and_promote(root):
    r = run("versions", "penguins", "--model-root", root)
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0].split() == [
        "version", "created", "estimator", "metrics", "runtime", "size", "aliases"
    ]  # fmt: skip
    assert [line.split()[0] for line in lines[1:]] == ["1", "2", "3"]
    assert "RandomForestClassifier" in lines[2] and "accuracy=" in lines[2]
    # the runtime ML_API_RUNTIME=auto serves: the forest's ONNX form passed the gate
    assert "onnxruntime" in lines[2] and "kB" in lines[2]
    assert lines[3].endswith("serves") and not lines[2].endswith("serves")
    r = run("promote", "penguins", "2", "--model-root", root)
    assert r.exit_code == 0 and "production -> version 2 (was unset)" in r.output
    assert "roll back with: ml-api promote penguins --unset" in r.output  # back to the newest
    r = run("promote", "penguins", "1", "--model-root", root)
    assert "roll back with: ml-api promote penguins 2\n" in r.output
    run("promote", "penguins", "2", "--model-root", root)
    lines = run("versions", "penguins", "--model-root", root).output.splitlines()
    assert lines[2].endswith("production, serves") and not lines[3].endswith("serves")
    r = run("promote", "penguins", "9", "--model-root", root)
    assert r.exit_code == 1 and "no version '9'" in r.output
    r = run("promote", "penguins", "--unset", "--model-root", root)
    assert r.exit_code == 0 and "the newest version serves" in r.output
    assert "roll back with: ml-api promote penguins 2\n" in r.output
    assert read_aliases(root, "penguins") == {}
    r = run("promote", "penguins", "--unset", "--model-root", root)  # twice: nothing to remove
    assert r.exit_code == 0 and "alias production was not set" in r.output
    assert "(was unset)" not in r.output
    r = run("promote", "penguins", "1", "--unset", "--model-root", root)
    assert r.exit_code == 2 and "give a VERSION or --unset, not both" in r.output


def test_promote_refuses_a_version_a_server_would_refuse(root):
    """It set the alias and exited 0; servers refused the version and kept the old one."""
    run("promote", "penguins", "2", "--model-root", root)
    model_file = next(p for p in (root / "penguins" / "1").iterdir() if p.name.startswith("model"))
    model_file.write_bytes(model_file.read_bytes() + b"tampered")
    r = run("promote", "penguins", "1", "--model-root", root)
    assert r.exit_code == 1, r.output
    assert "version 1 fails verification" in r.output
    assert "alias production not changed" in r.output
    assert read_aliases(root, "penguins") == {"production": 2}
    # the alias moved by hand: versions never calls the refused version "serves"
    set_alias(root, "penguins", "production", 1)
    r = run("versions", "penguins", "--model-root", root)
    lines = r.output.splitlines()
    assert lines[1].endswith("production, fails verification"), r.output
    assert not any(line.endswith("serves") for line in lines[1:4]), r.output
    assert "version 1 fails verification" in r.output


def test_train_compares_with_the_serving_version(root):
    run("promote", "penguins", "2", "--model-root", root)
    r = run("train", "--model-root", root)
    assert r.exit_code == 0, r.output
    assert "compared with version 2, which was serving: accuracy " in r.output
    assert "version 2 still serves" in r.output and "ml-api promote penguins 4" in r.output
    assert "serve it with: ml-api serve --name penguins --version 4" in r.output
    run("promote", "penguins", "--unset", "--model-root", root)
    r = run("train", "--model-root", root)
    assert "compared with version 4, which was serving" in r.output
    assert "version 5 serves now" in r.output


def test_a_version_dir_without_a_card_says_so(tmp_path):
    (tmp_path / "mine" / "1").mkdir(parents=True)
    (tmp_path / "mine" / "1" / "model.joblib").write_bytes(b"not a card")
    with pytest.raises(ArtifactError, match=r"no model card \(metadata.json\).*'ml-api import'"):
        resolve_version_dir(tmp_path, "mine")


@pytest.mark.live
@pytest.mark.parametrize("framework", ["flask", "django"])
@pytest.mark.parametrize("version_env", [None, "production"])
def test_both_frameworks_serve_the_aliased_version(three_versions, framework, version_env):
    root = three_versions
    set_alias(root, "penguins", "production", 2)
    env = {"ML_API_SECRET_KEY": DJANGO_SECRET_KEY, "ML_API_MODEL_NAME": "penguins"}
    if version_env:
        env["ML_API_MODEL_VERSION"] = version_env
    try:
        with LiveServer(root, framework, workers=1, env=env) as srv:
            meta = requests.get(srv.url + "/metadata", timeout=10).json()
            assert meta["model"] == {"name": "penguins", "version": "2"}
            assert meta["estimator"] == "RandomForestClassifier"
            v2 = requests.get(srv.url + "/v2/models/penguins", timeout=10).json()
            assert v2["versions"] == ["2"]
    finally:
        set_alias(root, "penguins", "production", None)
