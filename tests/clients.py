"""One calling convention for the Flask test client, Django's test client and a live server.

Each returns a :class:`Reply` (status, headers, raw body) so the contract suite can send the very
same request to every app and compare what comes back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import requests
from requests.structures import CaseInsensitiveDict


@dataclass
class Reply:
    status: int
    headers: CaseInsensitiveDict
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def flask_call(client, method, path, body=b"", content_type=None, headers=None) -> Reply:
    all_headers = {**(headers or {})}
    if content_type is not None:
        all_headers["Content-Type"] = content_type
    r = client.open(path, method=method, data=body, headers=all_headers)
    return Reply(r.status_code, CaseInsensitiveDict(dict(r.headers)), r.get_data())


def django_call(client, method, path, body=b"", content_type=None, headers=None) -> Reply:
    # Django's client sends application/octet-stream unless told; "" is what a server passes
    # for a request without the header (the core treats it as missing).
    ct = content_type or ""
    r = client.generic(method, path, body, content_type=ct, headers=headers, CONTENT_TYPE=ct)
    return Reply(r.status_code, CaseInsensitiveDict(dict(r.headers)), r.content)


def live_call(base_url, method, path, body=b"", content_type=None, headers=None) -> Reply:
    all_headers = {**(headers or {})}
    if content_type is not None:
        all_headers["Content-Type"] = content_type
    r = requests.request(method, base_url + path, data=body, headers=all_headers, timeout=30)
    return Reply(r.status_code, CaseInsensitiveDict(dict(r.headers)), r.content)
