"""The HTTP ceiling: a bare Flask app that parses a JSON body and returns a small JSON answer.

No model, no validation, no metrics, no logging: what one HTTP front (gunicorn gthread, or
granian's WSGI interface) and Flask cost per request, so the benchmark can say how close ml-api's
whole request path gets to it (issue 11: ml-api Flask >= 0.5x this ceiling, same front).

It answers ``POST /predict`` with ``{"prediction": [<number of features>]}`` (the same key the
seed body's answer has, so the harness probes it like the other ``/predict`` rows) and 400 for a
body without a ``features`` list. Served as ``bare_flask:app`` from ``bench/``.
"""

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.post("/predict")
def predict():
    data = request.get_json(silent=True)
    features = data.get("features") if isinstance(data, dict) else None
    if not isinstance(features, list):
        return jsonify({"error": "body must be a JSON object with a 'features' list"}), 400
    return jsonify({"prediction": [len(features)]})
