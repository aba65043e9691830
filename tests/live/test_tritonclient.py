"""A real third-party Open Inference Protocol client (Triton's) against a live ml-api server."""

import numpy as np
import pytest

from tests.live.server import LiveServer

httpclient = pytest.importorskip("tritonclient.http", reason="tritonclient[http] not installed")
pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def server(model_root):
    with LiveServer(model_root, "flask", workers=1, env={"ML_API_DRAIN_SECONDS": "0"}) as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server):
    c = httpclient.InferenceServerClient(url=f"127.0.0.1:{server.port}")
    yield c
    c.close()


def _inputs(rows):
    tensors = []
    for j, (name, numeric) in enumerate(
        [
            ("island", False),
            ("bill_length_mm", True),
            ("bill_depth_mm", True),
            ("flipper_length_mm", True),
            ("body_mass_g", True),
            ("sex", False),
        ]
    ):
        if numeric:
            data = np.array([r[j] for r in rows], dtype=np.float64)
            t = httpclient.InferInput(name, [len(rows)], "FP64")
        else:
            data = np.array([r[j].encode() for r in rows], dtype=np.object_)
            t = httpclient.InferInput(name, [len(rows)], "BYTES")
        t.set_data_from_numpy(data, binary_data=False)
        tensors.append(t)
    return tensors


def test_health_and_metadata(client):
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("penguins")
    assert client.is_model_ready("penguins", "1")
    assert not client.is_model_ready("penguins", "7")
    meta = client.get_model_metadata("penguins")
    assert meta["name"] == "penguins"
    assert [i["name"] for i in meta["inputs"]][:2] == ["island", "bill_length_mm"]
    server_meta = client.get_server_metadata()
    assert server_meta["name"] == "ml-api"


def test_inference(client):
    rows = [
        ["Biscoe", 50.0, 15.0, 220.0, 5500.0, "male"],
        ["Dream", 46.5, 17.9, 192.0, 3500.0, "female"],
    ]
    outputs = [
        httpclient.InferRequestedOutput("predict", binary_data=False),
        httpclient.InferRequestedOutput("predict_proba", binary_data=False),
    ]
    result = client.infer("penguins", _inputs(rows), outputs=outputs, request_id="t-1")
    labels = result.as_numpy("predict")
    assert [v.decode() if isinstance(v, bytes) else v for v in labels] == ["Gentoo", "Chinstrap"]
    proba = result.as_numpy("predict_proba")
    assert proba.shape == (2, 3)
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert result.get_response()["id"] == "t-1"


def test_errors_surface_as_client_exceptions(client):
    from tritonclient.utils import InferenceServerException

    rows = [["Atlantis", 50.0, 15.0, 220.0, 5500.0, "male"]]
    with pytest.raises(InferenceServerException) as info:
        client.infer("penguins", _inputs(rows))
    assert "Atlantis" in str(info.value) and info.value.status() == "400"
    with pytest.raises(InferenceServerException) as info:
        client.infer("nope", _inputs(rows))
    assert info.value.status() == "404"


@pytest.mark.parametrize("algorithm", ["gzip", "deflate"])
def test_compressed_requests(client, algorithm):
    rows = [["Biscoe", 50.0, 15.0, 220.0, 5500.0, "male"]]
    outputs = [httpclient.InferRequestedOutput("predict", binary_data=False)]
    result = client.infer(
        "penguins", _inputs(rows), outputs=outputs, request_compression_algorithm=algorithm
    )
    assert [v.decode() if isinstance(v, bytes) else v for v in result.as_numpy("predict")] == [
        "Gentoo"
    ]


def test_compressed_errors_are_still_client_errors(client):
    from tritonclient.utils import InferenceServerException

    rows = [["Atlantis", 50.0, 15.0, 220.0, 5500.0, "male"]]
    with pytest.raises(InferenceServerException) as info:
        client.infer("penguins", _inputs(rows), request_compression_algorithm="gzip")
    assert "Atlantis" in str(info.value) and info.value.status() == "400"
