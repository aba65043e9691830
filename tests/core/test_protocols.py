"""The protocols over the service: the CLI builds no HTTP part; V1 and V2 read bodies alike."""

from __future__ import annotations

import gzip
import json

import pytest
from click.testing import CliRunner

from ml_api import composition
from ml_api.cli import main
from ml_api.composition import build
from ml_api.core.errors import BadRequest, InvalidInput, PayloadTooLarge, UnsupportedMediaType
from ml_api.core.protocols.request import Request
from ml_api.core.protocols.v1 import V1Protocol
from ml_api.core.protocols.v2 import OpenInferenceProtocol
from ml_api.settings import Settings
from tests.conftest import VALID_NAMED, VALID_ROW

JSON = {"Content-Type": "application/json"}
BAD_ROW = ["Atlantis", *VALID_ROW[1:]]


def _v2_body(row: dict) -> bytes:
    tensors = [
        {"name": k, "datatype": "BYTES" if isinstance(v, str) else "FP64", "shape": [1],
         "data": [v]}
        for k, v in row.items()
    ]  # fmt: skip
    return json.dumps({"inputs": tensors}).encode()


@pytest.fixture
def no_http_parts(monkeypatch):
    """Make every HTTP-only part of the composition fail if it is built."""

    def refuse(*args, **kwargs):
        raise AssertionError("an HTTP part was built")

    for name in ("build", "openapi_document", "render_html", "read_charts", "ApiKeyAuth"):
        monkeypatch.setattr(composition, name, refuse)
    monkeypatch.setattr(composition.DocsUI, "build", refuse)


def test_cli_info_and_predict_build_the_service_alone(model_root, tmp_path, no_http_parts):
    runner = CliRunner()
    info = runner.invoke(main, ["info", "--model-root", str(model_root)], catch_exceptions=False)
    assert info.exit_code == 0, info.output
    card = json.loads(info.output)
    assert card["model"] == {"name": "penguins", "version": "1"}
    assert card["limits"]["max_instances"] == Settings().max_instances
    source = tmp_path / "in.csv"
    source.write_text(",".join(VALID_NAMED) + "\n" + ",".join(map(str, VALID_ROW)) + "\n")
    out = tmp_path / "out.csv"
    args = ["predict", "--model-root", str(model_root), "--input", str(source)]
    scored = runner.invoke(main, [*args, "--output", str(out), "--quiet"], catch_exceptions=False)
    assert scored.exit_code == 0, scored.output
    assert "Gentoo" in out.read_text().splitlines()[1].split(",")


def test_info_prints_what_get_metadata_answers(model_root, settings):
    from ml_api.api.flask_app import create_app

    cli = CliRunner().invoke(main, ["info", "--model-root", str(model_root)])
    defaults = Settings()
    limits = {"max_body_bytes": defaults.max_body_bytes, "max_instances": defaults.max_instances}
    served = create_app(settings.model_copy(update=limits)).test_client().get("/metadata")
    assert json.loads(cli.output) == served.get_json()


def test_v1_and_v2_share_one_body_reader_and_differ_only_in_status(service):
    v1, v2 = V1Protocol(service), OpenInferenceProtocol(service)
    text = Request.of(b"{}", {"Content-Type": "text/plain"})
    with pytest.raises(UnsupportedMediaType) as refused_v1:
        v1.predict(text)
    with pytest.raises(BadRequest) as refused_v2:
        v2.infer(text, "penguins")
    assert refused_v1.value.message == refused_v2.value.message  # one wording, two statuses
    assert [p.field for p in refused_v2.value.details] == ["Content-Type"]
    big = Request(JSON, service.limits.max_body_bytes + 1, lambda: b"x")
    for call in (lambda: v1.predict(big), lambda: v2.infer(big, "penguins")):
        with pytest.raises(PayloadTooLarge, match="the limit is"):
            call()
    zipped = gzip.compress(json.dumps({"features": VALID_ROW}).encode())
    answer = v1.predict(Request.of(zipped, {**JSON, "Content-Encoding": "gzip"}))
    assert answer["prediction"] == ["Gentoo"]
    assert v2.infer(Request.of(_v2_body(VALID_NAMED)), "penguins")["outputs"][0]["data"] == [
        "Gentoo"
    ]


def test_v2_answers_the_services_refusal_400_with_its_words(service):
    with pytest.raises(InvalidInput) as in_service:
        service.predict_rows([BAD_ROW])
    with pytest.raises(BadRequest) as in_v2:
        OpenInferenceProtocol(service).infer(
            Request.of(_v2_body(dict(zip(VALID_NAMED, BAD_ROW, strict=True))), JSON), "penguins"
        )
    assert in_v2.value.status == 400 and in_service.value.status == 422
    assert in_v2.value.message == in_service.value.message
    assert in_v2.value.details == in_service.value.details


def test_build_wraps_the_scoring_service_it_is_given(settings, service):
    application = build(settings, service=service)
    assert application.service is service
    assert application.v1.service is service and application.v2.service is service
