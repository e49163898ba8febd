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

from collections.abc import ItemsView, Iterator, Mapping, Sequence

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
_CLAIMS_LINE = f"{CLAIMS_HEADER!s}: "
"""The start of the ``claims`` line of a request head (its value follows)."""
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


class UpstreamHeaders(Mapping[str, str]):
    """The headers the upstream receives, as the ``Name: value`` lines of its request head
    (what the forward leg writes) and as a read-only case-insensitive mapping of them.

    The mapping is made from the lines on first use only (a queued notification stores
    them); a forwarded request never needs it, so the lines are all it builds: the
    gateway's own headers as one formatted string each, without the (name, value) pairs,
    the multidict and the second walk over it that turned them into lines (~10k
    instructions per request, ``docs/benchmarks.md``).
    """

    __slots__ = ("_multi", "lines")

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        """``Name: value`` without line ends, in the order sent."""
        self._multi: CIMultiDict[str] | None = None

    def _mapping(self) -> CIMultiDict[str]:
        if self._multi is None:
            # A name holds no colon (the parser's tokens, or the gateway's own names), so
            # the first ": " ends it.
            pairs = (line.partition(": ") for line in self.lines)
            self._multi = CIMultiDict((name, value) for name, _colon, value in pairs)
        return self._multi

    def __getitem__(self, name: str) -> str:
        return self._mapping()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._mapping())

    def __len__(self) -> int:
        return len(self.lines)

    def items(self) -> ItemsView[str, str]:
        """Every (name, value), a repeated name once per line (unlike Mapping's own)."""
        return self._mapping().items()

    def getall(self, name: str) -> list[str]:
        """Every value of *name*, in order."""
        return self._mapping().getall(name, [])

    def __repr__(self) -> str:
        return f"UpstreamHeaders({self.lines!r})"


_LINES_CACHE_SIZE = 256
_lines_cache: dict[tuple[object, ...], list[str]] = {}
"""The caller-derived lines of recent requests by (keep_authorization, peer, scheme, host,
the incoming header pairs but the trace headers): a client sends the same headers again and
again, and the filter, the lower-casing and the joins then run once. The key holds the
header values (a bearer token included) in memory only, never logged; bounded, emptied
when full."""

# Every drop set leaves out the incoming trace headers (the request's own trace lines
# replace them), so the lines never depend on them, and the cache key need not hold them.
assert all(dropped >= TRACE_HEADERS for dropped in _DROP.values())


def upstream_request_headers(
    incoming: CIMultiDictProxy[str],
    *,
    keep_authorization: bool,
    peer: str | None,
    scheme: str,
    host: str | None,
    trace: Mapping[str, str] | None = None,
    trace_lines: Sequence[str] = (),
    claims: str | None = None,
) -> UpstreamHeaders:
    """The caller's headers as the upstream should see them: ``X-Forwarded-*``, then the
    *trace* headers (or *trace_lines*, the same as ``Name: value`` lines) and the verified
    *claims* (when given)."""
    # All pairs first: the key of a request without trace headers, made in C.
    key = (keep_authorization, peer, scheme, host, *incoming.items())
    lines = _lines_cache.get(key)
    if lines is None:
        lines = _lines_for_new_key(key, incoming, keep_authorization, peer, scheme, host)
    lines = [*lines, *trace_lines]
    if trace:
        lines.extend(map(": ".join, trace.items()))
    if claims is not None:
        lines.append(_CLAIMS_LINE + claims)
    return UpstreamHeaders(lines)


def _lines_for_new_key(
    key: tuple[object, ...],
    incoming: CIMultiDictProxy[str],
    keep_authorization: bool,
    peer: str | None,
    scheme: str,
    host: str | None,
) -> list[str]:
    """The lines for a *key* not in the cache. A caller in a traced network sends a new
    ``traceparent`` (and request id) every time: without its trace headers the key may well
    be cached. Every key stored is one without trace headers, so a key with them never
    matches, and a key without them matches only the very same caller-derived lines."""
    kept = [pair for pair in incoming.items() if pair[0].lower() not in TRACE_HEADERS]
    if len(kept) != len(incoming):
        key = (keep_authorization, peer, scheme, host, *kept)
        lines = _lines_cache.get(key)
        if lines is not None:
            return lines
    lines = _caller_lines(incoming, keep_authorization, peer, scheme, host)
    if len(_lines_cache) >= _LINES_CACHE_SIZE:
        _lines_cache.clear()
    _lines_cache[key] = lines
    return lines


def _caller_lines(
    incoming: CIMultiDictProxy[str],
    keep_authorization: bool,
    peer: str | None,
    scheme: str,
    host: str | None,
) -> list[str]:
    """The caller's headers the upstream gets, then ``X-Forwarded-*``, as header lines."""
    dropped = _DROP[keep_authorization, bool(peer)]
    if _CONNECTION in incoming:
        dropped = dropped | _connection_tokens(incoming)
    # Filtered and joined in one pass, without a list of pairs between (~3k instructions a
    # request). ": ".join, not an f-string, for the caller's names: they are istr, which an
    # f-string formats through __format__ one by one.
    lines = [": ".join(item) for item in incoming.items() if item[0].lower() not in dropped]
    if peer:
        previous = incoming.get(_X_FORWARDED_FOR)
        lines.append(
            f"X-Forwarded-For: {previous}, {peer}" if previous else f"X-Forwarded-For: {peer}"
        )
    # aiohttp adds `Accept-Encoding: gzip, deflate` when the header is absent; the answer
    # passes through undecoded, so a caller that asked for no encoding must not get one.
    if _ACCEPT_ENCODING not in incoming or "accept-encoding" in dropped:
        lines.append("Accept-Encoding: identity")
    lines.append(f"X-Forwarded-Proto: {scheme}")
    if host:
        lines.append(f"X-Forwarded-Host: {host}")
    return lines


def caller_response_headers(
    upstream: CIMultiDictProxy[str], trace: Mapping[str, str] | None = None
) -> list[tuple[str, str]]:
    """The upstream's response headers as the caller should see them, then *trace*.

    ``Content-Length`` is set again from the upstream's value by the proxy; ``Server`` and
    ``Date`` are the gateway's own, and so are the trace headers: the upstream's are
    replaced by the gateway's (the caller continues the trace from the gateway's span).
    """
    dropped = _NOT_TO_CALLER
    if _CONNECTION in upstream:
        dropped = dropped | _connection_tokens(upstream)
    items = [item for item in upstream.items() if item[0].lower() not in dropped]
    if trace:
        items.extend(trace.items())
    return items
