"""Step 4, forward: send the allowed request to the route's upstream, stream the answer back.

What the upstream receives: the original body bytes; the caller's headers minus hop-by-hop
headers, ``Host``, any caller-sent ``claims`` and (unless the route keeps it)
``Authorization``; ``X-Forwarded-For/-Proto/-Host``; the continued trace headers and
``X-Request-ID``; and ``claims``, the verified token payload as compact JSON.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from gateway.proxy.headers import UpstreamHeaders, upstream_request_headers
from gateway.tokens.verifier import VerifiedToken


def forward_headers(
    request: web.Request,
    token: VerifiedToken,
    trace_headers: Mapping[str, str],
    *,
    keep_authorization: bool,
) -> UpstreamHeaders:
    """The headers the upstream receives for *request* on behalf of the verified *token*."""
    return upstream_request_headers(
        request.headers,
        keep_authorization=keep_authorization,
        peer=request.remote,
        scheme=request.scheme,
        host=request.host,
        trace=trace_headers,
        claims=token.claims_header,
    )
