"""The Django app labelled ``ml_api``: the DRF views, their routes and the JSON rendering."""
