import io
import json
import logging
import warnings

import pytest

from ml_api.core import context
from ml_api.serving.logging import configure_logging


@pytest.fixture
def captured(monkeypatch):
    buf = io.StringIO()
    monkeypatch.setattr("sys.stdout", buf)
    configure_logging("INFO")
    yield buf
    logging.captureWarnings(False)
    for handler in list(logging.getLogger().handlers):
        logging.getLogger().removeHandler(handler)


def _records(buf):
    return [json.loads(line) for line in buf.getvalue().splitlines()]


def test_exception_is_one_record_with_the_stack(captured):
    try:
        raise ZeroDivisionError("division by zero")
    except ZeroDivisionError:
        logging.getLogger("ml_api.test").exception("boom")
    (record,) = _records(captured)
    assert record["level"] == "ERROR" and record["message"] == "boom"
    assert "ZeroDivisionError" in record["exc_info"] and "Traceback" in record["exc_info"]
    assert record["timestamp"].endswith("+00:00")


def test_request_id_added_to_every_record_of_the_request(captured):
    ctx = context.RequestContext("rid-42", "POST", "/predict")
    context.enter(ctx)
    logging.getLogger("flask.app").warning("inside")
    context.leave(ctx)
    logging.getLogger("ml_api").warning("outside")
    inside, outside = _records(captured)
    assert inside["request_id"] == "rid-42" and inside["logger"] == "flask.app"
    assert "request_id" not in outside


# The warning is what this test sends through the JSON logging; not an error here.
@pytest.mark.filterwarnings("always::UserWarning")
def test_warnings_become_json(captured):
    warnings.warn("careful", UserWarning, stacklevel=1)
    (record,) = _records(captured)
    assert record["logger"] == "py.warnings" and "careful" in record["message"]
