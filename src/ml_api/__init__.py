"""ml-api: from training data to a production prediction API."""
