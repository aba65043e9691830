"""Errors that write their own message: the words both adapters send for 404, 405 and 413."""

from ml_api.core.errors import (
    BodyTooLarge,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RouteMethodNotAllowed,
    RouteNotFound,
    allow_header,
    to_payload,
)


def test_route_not_found_names_method_and_path():
    err = RouteNotFound("POST", "/predict//")
    assert isinstance(err, NotFound) and err.status == 404
    assert to_payload(err) == {
        "error": "no route POST /predict//; see GET /openapi.json",
        "details": [],
    }


def test_method_not_allowed_sends_the_sorted_allow_header():
    err = RouteMethodNotAllowed("GET", "/predict", ["POST", "OPTIONS"])
    assert isinstance(err, MethodNotAllowed) and err.status == 405
    assert err.message == "method GET is not allowed on /predict"
    assert err.headers == {"Allow": "OPTIONS, POST"}


def test_method_not_allowed_without_known_methods_has_no_allow_header():
    assert RouteMethodNotAllowed("GET", "/predict").headers == {}
    assert RouteMethodNotAllowed("GET", "/predict", set()).headers == {}


def test_body_too_large_names_the_limit():
    err = BodyTooLarge(65_536)
    assert isinstance(err, PayloadTooLarge) and err.status == 413
    assert err.message == "request body is larger than the limit of 65536 bytes"


def test_allow_header_is_sorted_and_comma_separated():
    assert allow_header({"POST", "HEAD", "GET"}) == "GET, HEAD, POST"
