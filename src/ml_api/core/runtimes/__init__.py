"""Runtimes: implementations of :class:`ml_api.core.predictor.Predictor`, one module each."""
