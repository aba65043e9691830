"""JSON that is refused, not guessed at: repeated keys, lone surrogates, wrong JSON types in V2.

Every example goes to Flask and Django through their test clients with one ``X-Request-ID``; both
must answer the same status and the same bytes, a 4xx with the usual error body naming the field.
"""

from __future__ import annotations

import json

import pytest
from django.test import Client

from ml_api.api.flask_app import create_app
from tests.clients import Reply, django_call, flask_call
from tests.contract.table import FEATURES, ROW, _v2_tensors

INFER = "/v2/models/penguins/infer"
NAMED = dict(zip(FEATURES, ROW, strict=True))
RID = {"X-Request-ID": "strict-json-1"}


@pytest.fixture(scope="module")
def both(settings, service, django_app):
    flask, django = create_app(settings, service).test_client(), Client()

    def post(path: str, body: bytes) -> Reply:
        args = ("POST", path, body, "application/json", RID)
        f, d = flask_call(flask, *args), django_call(django, *args)
        assert (f.status, f.body) == (d.status, d.body), (f.body, d.body)
        return f

    return post


def _error(reply: Reply, status: int = 400) -> dict:
    assert reply.status == status, reply.body
    body = reply.json()
    assert (
        set(body) == {"error", "details", "request_id"}
        and body["request_id"] == RID["X-Request-ID"]
    )
    reply.body.decode("utf-8")  # the body is UTF-8 (strict): nothing the client sent breaks it
    return body


def _named_body(pairs: str) -> bytes:
    return ('{"features": {' + pairs + "}}").encode()


NAMED_PAIRS = ", ".join(f'"{k}": {json.dumps(v)}' for k, v in NAMED.items())
V2_PARTS = [json.dumps(t) for t in _v2_tensors(ROW)["inputs"]]

REPEATED = {
    "feature key": (
        "/predict",
        _named_body('"island": "Dream", ' + NAMED_PAIRS),
        "island",
        None,
        "features",
    ),
    "features twice": (
        "/predict",
        b'{"features": [[1]], "features": ' + json.dumps(ROW).encode() + b"}",
        "features",
        None,
        "the body",
    ),
    "in the third instance": (
        "/predict",
        b'{"instances": ['
        + b", ".join([json.dumps(NAMED).encode()] * 2)
        + b', {"sex": "male", '
        + NAMED_PAIRS.encode()
        + b"}]}",
        "sex",
        2,
        "instances[2]",
    ),
    "V2 inputs[1] name twice": (
        INFER,
        (
            '{"inputs": ['
            + V2_PARTS[0]
            + ', {"name": "x", '
            + V2_PARTS[1][1:]
            + ", "
            + ", ".join(V2_PARTS[2:])
            + "]}"
        ).encode(),
        "name",
        1,
        "inputs[1]",
    ),
    "V2 parameters": (
        INFER,
        ('{"parameters": {"a": 1, "a": 2}, "inputs": [' + ", ".join(V2_PARTS) + "]}").encode(),
        "a",
        None,
        "parameters",
    ),
    "V2 inputs twice": (
        INFER,
        ('{"inputs": [], "inputs": [' + ", ".join(V2_PARTS) + "]}").encode(),
        "inputs",
        None,
        "the body",
    ),
    "behind a colon inside a string": (
        INFER,
        ('{"id": "a:b", "inputs": [' + ", ".join(V2_PARTS) + '], "id": "c"}').encode(),
        "id",
        None,
        "the body",
    ),
}


@pytest.mark.parametrize("name", sorted(REPEATED))
def test_a_repeated_key_is_refused_naming_it_and_where(both, name):
    path, body, key, instance, where = REPEATED[name]
    assert json.loads(body)  # the stdlib reads it (the last value wins there): valid JSON
    error = _error(both(path, body))
    assert f"key '{key}' is repeated in {where}" in error["error"]
    assert error["details"] == [{"instance": instance, "field": key, "problem": "repeated key"}]


@pytest.mark.parametrize("path", ["/predict", INFER])
def test_the_same_body_without_the_repeat_is_answered(both, path):
    body = _named_body(NAMED_PAIRS) if path == "/predict" else json.dumps(_v2_tensors(ROW))
    body = body if isinstance(body, bytes) else body.encode()
    assert both(path, body).status == 200


LONE = "\\ud83d"  # as the JSON escape, never a character of the body


def _v2_body(head: str = "", replace: tuple[str, str] = ("", "")) -> bytes:
    inputs = ", ".join(V2_PARTS).replace(*replace) if replace[0] else ", ".join(V2_PARTS)
    return ("{" + head + '"inputs": [' + inputs + "]}").encode()


SURROGATES = {
    "V1 feature key": ("/predict", _named_body(f'"{LONE}": 1, ' + NAMED_PAIRS)),
    "V1 category value": ("/predict", _named_body(NAMED_PAIRS.replace("Biscoe", LONE))),
    "V1 envelope key": ("/predict", ('{"' + LONE + '": 1, "features": [1]}').encode()),
    "V1 low surrogate first": ("/predict", _named_body(NAMED_PAIRS.replace("male", "\\ude00x"))),
    "V2 id": (INFER, _v2_body(f'"id": "{LONE}", ')),
    "V2 tensor name": (INFER, _v2_body(replace=("island", LONE))),
    "V2 BYTES data": (INFER, _v2_body(replace=("Biscoe", LONE))),
    "V2 output name": (INFER, _v2_body(f'"outputs": [{{"name": "{LONE}"}}], ')),
    "V2 parameters key": (INFER, _v2_body(f'"parameters": {{"{LONE}": 1}}, ')),
}


@pytest.mark.parametrize("name", sorted(SURROGATES))
def test_a_lone_surrogate_escape_is_a_400_never_a_500(both, name):
    path, body = SURROGATES[name]
    error = _error(both(path, body))
    assert "lone surrogate" in error["error"] and error["details"][0]["problem"] == "lone surrogate"


def test_a_surrogate_pair_escape_is_one_character_and_answered(both):
    reply = both(INFER, _v2_body('"id": "\\ud83d\\ude00", '))
    assert reply.status == 200 and reply.json()["id"] == "\U0001f600"


# ---- V2: every field of the request with every JSON type --------------------------------------

JSON_VALUES = {
    "null": None,
    "boolean": True,
    "number": 5,
    "fraction": 1.5,
    "string": "x",
    "array": [],
    "object": {},
}
JSON_TYPE_OF = {"fraction": "number"}

FIELDS = {  # path -> the JSON type the protocol gives it
    "id": "string",
    "parameters": "object",
    "inputs": "array",
    "outputs": "array",
    "inputs[0]": "object",
    "inputs[0].name": "string",
    "inputs[0].datatype": "string",
    "inputs[0].shape": "array",
    "inputs[0].data": "array",
    "inputs[0].parameters": "object",
    "outputs[0]": "object",
    "outputs[0].name": "string",
    "outputs[0].parameters": "object",
}


def _with(path: str, value) -> dict:
    body = _v2_tensors(ROW)
    body["outputs"] = [{"name": "predict"}]
    parent, key = body, path
    if "." in path or path.endswith("]"):
        head, _, key = path.rpartition(".")
        head = head or path
        top, index = head.split("[")
        parent = body[top]
        if key == path:  # the element itself: inputs[0]
            parent[int(index[:-1])] = value
            return body
        parent = parent[int(index[:-1])]
    parent[key] = value
    return body


SWEEP = [
    (path, kind)
    for path, wanted in FIELDS.items()
    for kind in JSON_VALUES
    if JSON_TYPE_OF.get(kind, kind) != wanted
]


@pytest.mark.parametrize(("path", "kind"), SWEEP, ids=[f"{p}={k}" for p, k in SWEEP])
def test_every_v2_field_of_a_wrong_json_type_is_a_400_naming_it(both, path, kind):
    error = _error(both(INFER, json.dumps(_with(path, JSON_VALUES[kind])).encode()))
    got = JSON_TYPE_OF.get(kind, kind)
    assert error["error"].startswith(path), error
    assert f"got {got}" in error["error"], error


REQUIRED = ["inputs", *(f"inputs[0].{k}" for k in ("name", "datatype", "shape", "data")),
            "outputs[0].name"]  # fmt: skip


@pytest.mark.parametrize("path", REQUIRED)
def test_every_required_v2_field_missing_is_a_400_naming_it(both, path):
    body = _v2_tensors(ROW)
    body["outputs"] = [{"name": "predict"}]
    head, _, key = path.rpartition(".")
    if not head:
        del body[key]
    else:
        top, index = head.split("[")
        del body[top][int(index[:-1])][key]
    reply = both(INFER, json.dumps(body).encode())
    assert _error(reply)["error"] == f"{path} is required ({FIELDS[path]})"


def test_the_reported_example_datatype_array(both):
    body = {"inputs": [{"name": "island", "datatype": [], "shape": [1], "data": ["Biscoe"]}]}
    error = _error(both(INFER, json.dumps(body).encode()))
    assert error["error"] == "inputs[0].datatype must be a JSON string, got array"
    assert error["details"] == [
        {"instance": 0, "field": "datatype", "problem": "not string: array"}
    ]
