"""What only the Flask adapter does; what both apps do is ``tests/contract/test_adapters.py``."""

import pytest

from ml_api.api.flask_app import create_app
from ml_api.core.model.integrity import ArtifactError
from ml_api.settings import Settings


def test_create_app_without_model_fails_loudly(tmp_path):
    with pytest.raises(ArtifactError, match=str(tmp_path)):
        create_app(Settings(model_root=tmp_path))


def test_doubled_slash_is_a_json_404_not_a_redirect(client):
    # Werkzeug merges slashes with a 308 by default; the app turns that off.
    r = client.post("/predict//", json={"features": [1]})
    assert r.status_code == 404 and r.content_type == "application/json"
    assert r.get_json()["error"] == "no route POST /predict//; see GET /openapi.json"
