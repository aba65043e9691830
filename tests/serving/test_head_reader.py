"""When the head-reading worker hands a request to a thread: :func:`is_complete` on raw bytes."""

from __future__ import annotations

import socket

import pytest
from gunicorn.config import Config
from gunicorn.http.parser import RequestParser

from ml_api.serving.head_reader import (
    BODY_BUFFER_BYTES,
    MAX_BUFFER_BYTES,
    _body_done,
    body_in_hand,
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


@pytest.mark.parametrize(
    ("data", "in_hand"),
    [
        (b"GET /health HTTP/1.1\r\nHost: x\r\n", False),
        (b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n", True),  # no body at all
        (HEAD + b'Content-Length: 5\r\n\r\n{"a"', False),
        (HEAD + b'Content-Length: 5\r\n\r\n{"a":', True),
        (HEAD + b'content-length:5\r\n\r\n{"a":1}GET /', True),  # and the next request's start
        (HEAD + f"Content-Length: {BODY_BUFFER_BYTES + 1}\r\n\r\n".encode(), False),
        (HEAD + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", False),  # a thread reads it
        (HEAD + b"Expect: 100-continue\r\nContent-Length: 0\r\n\r\n", False),
        (HEAD + b"Content-Length: 0\r\nContent-Length: 0\r\n\r\n", False),  # refused
    ],
)
def test_a_request_is_in_hand_once_its_whole_body_is(data, in_hand):
    assert body_in_hand(data) is in_hand


def _parsed(data: bytes):
    """gunicorn's parser over a real socket holding ``data``; the first request parsed."""
    ours, theirs = socket.socketpair()
    theirs.sendall(data)
    theirs.close()
    parser = RequestParser(Config(), ours, ("127.0.0.1", 1))
    return parser, next(parser), ours


def test_a_body_read_to_its_end_leaves_nothing_to_drain():
    parser, req, sock = _parsed(HEAD + b'Content-Length: 7\r\n\r\n{"a":1}')
    with sock:
        assert not _body_done(parser)  # unread
        req.body.read(3)
        assert not _body_done(parser)  # partly read
        assert req.body.read() == b'":1}'
        assert _body_done(parser)


def test_a_request_without_a_body_leaves_nothing_to_drain():
    parser, _, sock = _parsed(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    with sock:
        assert _body_done(parser)


def test_a_chunked_body_is_left_to_gunicorns_drain():
    parser, req, sock = _parsed(HEAD + b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
    with sock:
        assert req.body.read() == b"{}"
        assert not _body_done(parser)  # not a Content-Length body: gunicorn's own rule decides
