"""The container's health probe: ``python -m ml_api.serving.healthcheck``.

The image's ``HEALTHCHECK`` runs this inside the container, so the image needs no curl or wget.
It asks the server that ``ml-api serve`` started in the same container (same ``PORT`` and
``ML_API_FRAMEWORK`` settings, hence the same port) for ``GET /ready`` on 127.0.0.1, and exits 0
when the answer is 200, else 1 with one line on stderr saying why. ``/ready`` is used rather than
``/health`` so a container that is draining before shutdown reports itself unhealthy.
"""

from __future__ import annotations

import http.client
import sys

from ml_api.settings import Settings


def probe_url(settings: Settings, path: str = "/ready") -> str:
    """Return the loopback URL the probe asks.

    Args:
        settings: Supplies ``port`` (``PORT``) and ``framework`` (``ML_API_FRAMEWORK``); without a
            port the framework's default is used (5000 Flask, 8000 Django).
        path: Endpoint to ask.

    Returns:
        ``http://127.0.0.1:<port><path>``.
    """
    return f"http://127.0.0.1:{settings.bind_port()}{path}"


def check(url: str, timeout: float = 4.0) -> tuple[bool, str]:
    """Send ``GET url`` and report whether it answered 200.

    Args:
        url: An ``http://host:port/path`` URL.
        timeout: Seconds to wait for the connection and for the answer.

    Returns:
        ``(healthy, one-line description)``.
    """
    host_port, _, path = url.removeprefix("http://").partition("/")
    host, _, port = host_port.partition(":")
    conn = http.client.HTTPConnection(host, int(port or 80), timeout=timeout)
    try:
        conn.request("GET", "/" + path)
        status = conn.getresponse().status
    except OSError as exc:
        return False, f"GET {url} failed: {exc}"
    finally:
        conn.close()
    return status == 200, f"GET {url} answered {status}"


def main() -> int:
    """Probe the local server; return the process exit status (0 healthy, 1 not).

    Returns:
        0 when ``/ready`` answered 200, else 1.
    """
    healthy, message = check(probe_url(Settings()))
    if not healthy:
        print(f"ml-api healthcheck: {message}", file=sys.stderr)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
