"""The access record's formatter writes python-json-logger's own line, byte for byte.

``BoundedJsonFormatter`` merges fields and writes the timestamp itself (per-record cost); these
tests format the same records with python-json-logger's stock ``JsonFormatter`` configured as
``formatter()`` says, and require identical text, so a change on either side shows here.
"""

import json
import logging
import sys

import pytest
from pythonjsonlogger.json import JsonFormatter

from ml_api.serving.logging import (
    FORMAT,
    MAX_FIELD_CHARS,
    MAX_LINE_BYTES,
    RENAMED,
    formatter,
)

ACCESS = {
    "request_id": "5f0c2a",
    "method": "POST",
    "path": "/predict",
    "route": "/predict",
    "status": 200,
    "duration_ms": 1.234,
    "instances": 1,
    "model_version": "3",
}


def stock() -> JsonFormatter:
    return JsonFormatter(FORMAT, rename_fields=RENAMED, timestamp=True, json_ensure_ascii=False)


def record(msg="%s %s %d", args=("POST", "/predict", 200), extra=None, created=None, **kw):
    logger = logging.getLogger("ml_api.access")
    rec = logger.makeRecord(logger.name, logging.INFO, "f.py", 1, msg, args, None, extra=extra)
    for key, value in kw.items():
        setattr(rec, key, value)
    if created is not None:
        rec.created = created
    return rec


def exc_info():
    try:
        raise ValueError("bad ünïcode")
    except ValueError:
        return sys.exc_info()


CASES = {
    "access record": dict(extra=ACCESS),
    "access record, no model": dict(extra={**ACCESS, "instances": None, "model_version": None}),
    "whole second (no microseconds)": dict(extra=ACCESS, created=1_765_000_000.0),
    "plain message": dict(msg="Booting worker with pid: %s", args=(42,)),
    "non-ASCII and escapes": dict(msg='chemin "é"\n\t\x01 ☃ 😀', args=()),
    "dict message": dict(msg={"event": "swap", "version": 2}, args=()),
    "private and numeric-looking extras": dict(extra={"_hidden": 1, "x1": [1, 2.5, None]}),
    "exception": dict(msg="boom", args=(), exc_info=exc_info()),
    "stack info": dict(msg="here", args=(), stack_info="Stack (most recent call last):\n  x"),
    "request id from the filter": dict(request_id="rid-7"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_text_as_python_json_logger(case):
    rec = record(**CASES[case])
    ours = formatter().format(rec)
    theirs = stock().format(record(**{**CASES[case], "created": rec.created}))
    assert ours == theirs
    json.loads(ours)  # and it is JSON


def test_access_record_fields_in_order():
    line = formatter().format(record(extra=ACCESS))
    keys = list(json.loads(line))
    assert keys == ["level", "logger", "message", *ACCESS, "timestamp"]
    assert line.startswith('{"level": "INFO", "logger": "ml_api.access", "message": "POST')


@pytest.mark.parametrize("size", [MAX_FIELD_CHARS - 200, MAX_FIELD_CHARS + 1, 50_000])
def test_long_fields_are_shortened_and_lines_bounded(size):
    path = "/p" + "x" * size
    rec = record(args=("GET", path, 404), extra={**ACCESS, "path": path})
    line = formatter().format(rec)
    data = json.loads(line)
    assert len(line.encode()) <= MAX_LINE_BYTES
    if size + 20 <= MAX_FIELD_CHARS:  # a long line, no field to shorten: the library's text
        theirs = stock().format(record(args=rec.args, extra={**ACCESS, "path": path}))
        assert line.split(', "timestamp"')[0] == theirs.split(', "timestamp"')[0]
        assert data["path"] == path and len(line) > MAX_FIELD_CHARS
    else:
        assert len(data["path"]) <= MAX_FIELD_CHARS and data["path"] != path
        assert str(len(path)) in data["path"]  # the original length is named


def test_multibyte_text_stays_under_the_byte_bound():
    text = "😀" * 30_000  # 4 bytes each: shortening to 2,000 characters is still 8 KB + escapes
    line = formatter().format(record(msg=text, args=()))
    assert len(line.encode()) <= MAX_LINE_BYTES
    assert json.loads(line)["message"].startswith("😀")
