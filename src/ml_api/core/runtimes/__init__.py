"""Runtimes: implementations of :class:`ml_api.core.runtimes.predictor.Predictor`, one module each.

:mod:`ml_api.core.runtimes.registry` decides which one serves a model version and builds it.
"""
