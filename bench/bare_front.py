"""The bare Flask app (``bench/bare_flask.py``) on ml-api's own HTTP front.

``ml-api serve`` runs gunicorn with its head-reading worker
(:class:`ml_api.serving.head_reader.HeadReadingWorker`), the wire's checks in front of the app
(:func:`ml_api.serving.keepalive.for_server`: ``Host`` policy, overload gate, counting body
stream) and the settings :func:`ml_api.serving.gunicorn_app.gunicorn_options` gives it. This
runs the same, with the same settings read the same way (``ML_API_*``, ``WEB_CONCURRENCY``),
around the bare app instead of ml-api's: what the front costs per request, apart from ml-api's
own request path, so "ml-api vs bare Flask on the same front" can be read on either front.

Run from ``bench/``: ``python bare_front.py --port 8123`` (binds 127.0.0.1).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    """Serve ``bare_flask:app`` on ml-api's gunicorn front until stopped (SIGTERM)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)

    from ml_api.serving.gunicorn_app import prepare_metrics_dir

    prepare_metrics_dir()  # the worker publishes its queue length, as under ml-api serve
    from ml_api.serving.gunicorn_app import GunicornApplication, gunicorn_options
    from ml_api.serving.logging import configure_logging
    from ml_api.settings import Settings

    settings = Settings(port=args.port)
    configure_logging(settings.log_level)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bare_flask import app

    sys.argv = sys.argv[:1]  # gunicorn must not read ours
    GunicornApplication(
        lambda: app,
        gunicorn_options(settings, "flask", args.host),
        drain_seconds=0.0,
        body_timeout=settings.request_timeout_seconds,
        max_queue_wait=settings.max_queue_wait_seconds,
        max_queued=settings.max_queued_requests,
    ).run()


if __name__ == "__main__":
    main()
