"""Liveness probe for the container ``HEALTHCHECK``: ``python -m gateway.healthcheck [URL]``.

Requests ``URL`` (default: the environment variable ``NID_GATEWAY_HEALTH_URL``, else
``http://127.0.0.1:8080/healthz``) and exits 0 on HTTP 200, 1 otherwise. Standard library
only, so it costs no extra start-up time in the probe's short-lived process.

For ``https`` the server certificate is not verified: the probe talks to the gateway on the
loopback, where the certificate (issued for the public host name) cannot match, and it
sends no credentials. A listener with ``server.tls.require_client_cert: true`` refuses the
probe's handshake; use a TCP probe there.
"""

from __future__ import annotations

import os
import ssl
import sys
import urllib.error
import urllib.request

DEFAULT_URL = "http://127.0.0.1:8080/healthz"
ENV = "NID_GATEWAY_HEALTH_URL"


def probe(url: str, timeout: float = 4.0) -> bool:
    """True when GET *url* answers 200 within *timeout* seconds."""
    context = None
    if url.startswith("https:"):
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError, ValueError):
        return False


def main(argv: list[str] | None = None) -> int:
    """Probe the URL given as the only argument (or from the environment); 0 = healthy."""
    args = sys.argv[1:] if argv is None else argv
    url = args[0] if args else os.environ.get(ENV) or DEFAULT_URL
    healthy = probe(url)
    if not healthy:
        print(f"unhealthy: {url}", file=sys.stderr)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
