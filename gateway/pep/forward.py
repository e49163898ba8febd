"""Step 4, forward: send the allowed request to the route's upstream, stream the answer back.

What the upstream receives: the original body bytes; the caller's headers minus hop-by-hop
headers, ``Host``, any caller-sent ``claims`` and (unless the route keeps it)
``Authorization``; ``X-Forwarded-For/-Proto/-Host``; the continued trace headers and
``X-Request-ID``; and ``claims``, the verified token payload as compact JSON.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aiohttp import hdrs, web

from gateway.proxy.headers import UpstreamHeaders, upstream_request_headers
from gateway.tokens.verifier import VerifiedToken


def forward_headers(
    request: web.Request,
    token: VerifiedToken,
    trace_headers: Mapping[str, str] | None,
    *,
    keep_authorization: bool,
    trace_lines: Sequence[str] = (),
) -> UpstreamHeaders:
    """The headers the upstream receives for *request* on behalf of the verified *token*,
    with the trace headers (*trace_headers*, or *trace_lines* as ``Name: value`` lines)."""
    # The Host header as request.host reads it, without its property in between; the
    # property's fallback (the local address) only for a request without one.
    headers = request.headers
    host = headers.get(hdrs.HOST)
    return upstream_request_headers(
        headers,
        keep_authorization=keep_authorization,
        peer=request.remote,
        scheme=request.scheme,
        host=request.host if host is None else host,
        trace=trace_headers,
        trace_lines=trace_lines,
        claims=token.claims_header,
    )
