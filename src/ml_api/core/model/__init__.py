"""The model and its contract: artifact, card, feature schema, validation, training ranges."""
