"""An oversized body gets the app's JSON 413 through the Ingress's nginx, not nginx's HTML page
(issue 16, item 12): nginx's ``proxy-body-size`` must sit above ``ML_API_MAX_BODY_BYTES``.

Real nginx (``tests/container/balancer.py``, the Ingress's proxy settings) in front of a real
``ml-api serve`` on 127.0.0.1 with the production ConfigMap's body limit.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from tests.container.balancer import Balancer, ingress_annotations
from tests.live.server import LiveServer

from .kit import K8S, Variant, documents, find, render, require


@pytest.mark.live
def test_a_body_over_the_app_limit_gets_the_apps_json_413(model_root: Path, tmp_path: Path) -> None:
    require("nginx", Path("/usr/sbin/nginx"), hint="Debian package `nginx`")
    docs = documents(render(Variant("production", K8S / "overlays" / "production")))
    ingress = find(docs, "Ingress", "ml-api-ingress")
    nginx_limit = ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"]
    # The stand-in takes its body limit from the Ingress (tests/container/balancer.py).
    assert ingress_annotations()["proxy-body-size"] == nginx_limit
    config = find(docs, "ConfigMap")["data"]
    app_limit = int(config["ML_API_MAX_BODY_BYTES"])
    env = {"ML_API_MAX_BODY_BYTES": str(app_limit), "ML_API_MAX_INSTANCES": "1000"}
    over_app = b'{"features": [' + b" " * (app_limit + 1024) + b"]}"
    over_nginx = b" " * (int(nginx_limit.removesuffix("m")) * 1024 * 1024 + 1024)
    with LiveServer(model_root, workers=1, env=env) as server:
        (tmp_path / "nginx").mkdir()
        balancer = Balancer(tmp_path / "nginx", [server.port])
        try:
            headers = {"Content-Type": "application/json"}
            answer = requests.post(
                balancer.url + "/predict", data=over_app, headers=headers, timeout=30
            )
            assert answer.status_code == 413
            assert answer.headers["Content-Type"].startswith("application/json")
            assert "error" in json.dumps(answer.json()).lower()
            refused = requests.post(
                balancer.url + "/predict", data=over_nginx, headers=headers, timeout=30
            )
            assert refused.status_code == 413
            assert refused.headers["Content-Type"].startswith("text/html")  # nginx's own page
        finally:
            balancer.stop()
