"""The seed app: the Flask app of the tutorial ml-api grew from, as the tutorial writes it.

The naive baseline of the benchmark. Kept as in the guide: the model is unpickled at import from
``../models/model.pkl`` relative to the working directory (the harness lays out
``<workdir>/seed/<model>/{api,models/model.pkl}`` and starts this file in ``api/``),
``model.predict`` on ``[features]``, ``jsonify``, a 500 with the exception text for anything that
goes wrong.

Two changes, both needed to run it on a shared machine: ``app.run`` binds ``HOST`` (default
127.0.0.1, the guide says 0.0.0.0) and ``PORT`` (default 5000, the guide's port) from the
environment. Under gunicorn (``gunicorn seed_app:app``) the ``__main__`` block does not run.
"""

import os
import pickle

from flask import Flask, jsonify, request

# Initialize Flask app
app = Flask(__name__)

# Load pre-trained model
model = pickle.load(open("../models/model.pkl", "rb"))  # noqa: SIM115 - the guide's line, on purpose


# Define routes
@app.route("/predict", methods=["POST"])
def predict():
    data = request.get_json()
    features = data.get("features", [])
    if not features:
        return jsonify({"error": "No input features provided"}), 400

    try:
        prediction = model.predict([features])
        return jsonify({"prediction": prediction.tolist()})
    except Exception as e:
        return jsonify({"error": str(e)}), 500


if __name__ == "__main__":
    app.run(host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "5000")))
