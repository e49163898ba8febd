"""Which headers cross the gateway, in each direction.

Hop-by-hop headers (RFC 9110 section 7.6.1) belong to one connection and are dropped both
ways, together with every header named in ``Connection``. Towards the upstream the gateway
also drops what it sets itself or must not pass on: ``Host`` and ``Content-Length`` (set by
the client library), a caller-supplied ``claims`` header (only the PEP may speak for the
token), the incoming trace headers (replaced by the continued ones) and, unless the route
keeps it, ``Authorization`` (the upstream gets the verified payload in ``claims``; passing
the bearer token on would let the resource server replay it).
"""

from __future__ import annotations

from collections.abc import Mapping

from multidict import CIMultiDict, CIMultiDictProxy, istr

# Header names are compared lower-cased: HTTP names are case-insensitive, and a caller
# writing ``authorization`` must lose it as surely as one writing ``Authorization``.
HOP_BY_HOP = frozenset(
    name.lower()
    for name in (
        "Connection",
        "Keep-Alive",
        "TE",
        "Trailer",
        "Trailers",
        "Transfer-Encoding",
        "Upgrade",
        "Proxy-Authorization",
        "Proxy-Authenticate",
        "Proxy-Connection",
    )
)

CLAIMS_HEADER = istr("claims")
TRACE_HEADERS = frozenset(
    name.lower()
    for name in (
        "traceparent",
        "X-B3-TraceId",
        "X-B3-SpanId",
        "X-B3-ParentSpanId",
        "b3",
        "X-Request-ID",
    )
)
_NOT_TO_UPSTREAM = (
    HOP_BY_HOP
    | TRACE_HEADERS
    | {"host", "content-length", "claims", "expect"}
    | {"x-forwarded-proto", "x-forwarded-host", "forwarded"}
)
_NOT_TO_UPSTREAM_NO_AUTH = _NOT_TO_UPSTREAM | {"authorization"}
_NOT_TO_CALLER = HOP_BY_HOP | TRACE_HEADERS | {"content-length", "server", "date"}
_FORWARDED_FOR = frozenset({"x-forwarded-for"})
# The drop sets by (keep_authorization, peer known), built once rather than per request.
_DROP = {
    (True, False): _NOT_TO_UPSTREAM,
    (False, False): _NOT_TO_UPSTREAM_NO_AUTH,
    (True, True): _NOT_TO_UPSTREAM | _FORWARDED_FOR,
    (False, True): _NOT_TO_UPSTREAM_NO_AUTH | _FORWARDED_FOR,
}
# Lookups in a CIMultiDict with an istr skip the conversion of a plain str per call.
_CONNECTION = istr("Connection")
_X_FORWARDED_FOR = istr("X-Forwarded-For")
_ACCEPT_ENCODING = istr("Accept-Encoding")


def _connection_tokens(headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> set[str]:
    named: set[str] = set()
    for value in headers.getall("Connection", ()):
        named.update(part.strip().lower() for part in value.split(",") if part.strip())
    return named


def _kept(
    headers: CIMultiDictProxy[str] | CIMultiDict[str], drop: frozenset[str]
) -> tuple[list[tuple[str, str]], frozenset[str]]:
    """The (name, value) pairs of *headers* not in *drop* nor named in ``Connection``, and
    the names dropped. (A list: the result is turned into a multidict once, at the end.)"""
    if _CONNECTION in headers:
        drop = drop | _connection_tokens(headers)
    return [(k, v) for k, v in headers.items() if k.lower() not in drop], drop


def upstream_request_headers(
    incoming: CIMultiDictProxy[str],
    *,
    keep_authorization: bool,
    peer: str | None,
    scheme: str,
    host: str | None,
    trace: Mapping[str, str] | None = None,
    claims: str | None = None,
) -> CIMultiDict[str]:
    """The caller's headers as the upstream should see them: ``X-Forwarded-*``, then the
    *trace* headers and the verified *claims* (when given)."""
    items, dropped = _kept(incoming, _DROP[keep_authorization, bool(peer)])
    if peer:
        previous = incoming.get(_X_FORWARDED_FOR)
        items.append(("X-Forwarded-For", f"{previous}, {peer}" if previous else peer))
    # aiohttp adds `Accept-Encoding: gzip, deflate` when the header is absent; the answer
    # passes through undecoded, so a caller that asked for no encoding must not get one.
    if _ACCEPT_ENCODING not in incoming or "accept-encoding" in dropped:
        items.append(("Accept-Encoding", "identity"))
    items.append(("X-Forwarded-Proto", scheme))
    if host:
        items.append(("X-Forwarded-Host", host))
    if trace:
        items.extend(trace.items())
    if claims is not None:
        items.append((CLAIMS_HEADER, claims))
    return CIMultiDict(items)


def caller_response_headers(
    upstream: CIMultiDictProxy[str], trace: Mapping[str, str] | None = None
) -> list[tuple[str, str]]:
    """The upstream's response headers as the caller should see them, then *trace*.

    ``Content-Length`` is set again from the upstream's value by the proxy; ``Server`` and
    ``Date`` are the gateway's own, and so are the trace headers: the upstream's are
    replaced by the gateway's (the caller continues the trace from the gateway's span).
    """
    items, _dropped = _kept(upstream, _NOT_TO_CALLER)
    if trace:
        items.extend(trace.items())
    return items
