"""Batch scoring on engines that run beyond one process: Spark, Dask, one pod of a Kubernetes Job.

:mod:`~ml_api.engines.scorer` is the one scoring function every engine calls on its batches (the
rules of ``ml-api predict``, loaded once per worker process, pinned by sha256);
:mod:`~ml_api.engines.spark` and :mod:`~ml_api.engines.dask` wrap it for their engine;
:mod:`~ml_api.engines.refusals` words refused rows as ``ml-api predict`` does. The engines are
optional extras (``pip install 'ml-api[spark]'``, ``'ml-api[dask]'``): nothing here imports them
at module level.
"""
