"""Process model: gunicorn configuration, logging."""
