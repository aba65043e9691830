"""The framework-free prediction core: schema, codecs, predictor, service, errors."""
