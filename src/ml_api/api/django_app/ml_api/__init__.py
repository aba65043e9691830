"""The ``ml_api`` Django app (the seed guide's ``api/django_app/ml_api``): DRF views and routes."""
