"""HTTP adapters: Flask and Django (REST framework) over the same core.

``flask_app/`` and ``django_app/`` are laid out file for file alike (routes or views, rendering,
request hooks or middleware); both bind their routes from the core's endpoint table
(:mod:`ml_api.core.protocols.routes`), and what else they share is written once in
:mod:`ml_api.api.shared`.
"""
