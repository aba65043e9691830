"""HTTP adapters: Flask and Django (REST framework) over the same core.

``flask_app/`` and ``django_app/`` are laid out file for file alike (routes or views, rendering,
request hooks or middleware); what they share is written once in :mod:`ml_api.api.shared` and
:mod:`ml_api.api.request_body`.
"""
