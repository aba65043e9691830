"""When the head-reading worker hands a request to a thread: :func:`is_complete` on raw bytes."""

from __future__ import annotations

import pytest

from ml_api.serving.head_reader import (
    BODY_BUFFER_BYTES,
    MAX_BUFFER_BYTES,
    head_end,
    is_complete,
)

HEAD = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"


@pytest.mark.parametrize(
    ("data", "complete"),
    [
        (b"", False),
        (b"G", False),
        (b"GET /health HTTP/1.1\r\nHost: x\r\n", False),
        (b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n", True),
        (b"GET /health HTTP/1.0\n\n", True),  # bare line feeds end a head too
        (HEAD + b"Content-Length: 5\r\n\r\n", False),  # the body is still to come
        (HEAD + b'Content-Length: 5\r\n\r\n{"a"', False),
        (HEAD + b'Content-Length: 5\r\n\r\n{"a":', True),
        (HEAD + b'content-length:5\r\n\r\n{"a":1}GET /', True),  # pipelined: the next follows
        (HEAD + b"Content-Length: 0\r\n\r\n", True),
        (HEAD + f"Content-Length: {BODY_BUFFER_BYTES + 1}\r\n\r\n".encode(), True),  # a thread
        (HEAD + b"Transfer-Encoding: chunked\r\n\r\n", True),  # a thread reads chunks
        (HEAD + b"Expect: 100-continue\r\nContent-Length: 5\r\n\r\n", True),  # waits for 100
        (HEAD + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\n", True),  # gunicorn refuses it
        (b"X" * (MAX_BUFFER_BYTES + 1), True),  # never a head: the thread's parser refuses it
    ],
)
def test_a_thread_takes_the_request_once_it_is_all_in(data, complete):
    assert is_complete(data) is complete


def test_head_end_is_just_past_the_blank_line():
    assert head_end(b"GET / HTTP/1.1\r\n\r\nbody") == len(b"GET / HTTP/1.1\r\n\r\n")
    assert head_end(b"GET / HTTP/1.1\r\n") == -1
