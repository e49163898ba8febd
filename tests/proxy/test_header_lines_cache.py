"""The upstream's header lines, cached per incoming header set: a cached entry is only ever
served for the very same headers, peer, scheme, host and Authorization rule, the cache stays
bounded, and what comes out is what the construction without a cache gave (commit 520d196).
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy, istr

from gateway.proxy import headers as headers_module
from gateway.proxy.headers import upstream_request_headers

TRACE = {"traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01", "X-Request-ID": "r1"}
TRACE_LINES = [f"{name}: {value}" for name, value in TRACE.items()]
CLAIMS = '{"sub":"x"}'


def reference_lines(
    incoming: CIMultiDictProxy[str],
    *,
    keep_authorization: bool,
    peer: str | None,
    scheme: str,
    host: str | None,
    trace: Mapping[str, str],
    claims: str | None,
) -> list[str]:
    """The construction before the cache (commit 520d196), uncached."""
    dropped = headers_module._DROP[keep_authorization, bool(peer)]
    if "Connection" in incoming:
        dropped = dropped | headers_module._connection_tokens(incoming)
    lines = [": ".join(item) for item in incoming.items() if item[0].lower() not in dropped]
    if peer:
        previous = incoming.get("X-Forwarded-For")
        lines.append(
            f"X-Forwarded-For: {previous}, {peer}" if previous else f"X-Forwarded-For: {peer}"
        )
    if "Accept-Encoding" not in incoming or "accept-encoding" in dropped:
        lines.append("Accept-Encoding: identity")
    lines.append(f"X-Forwarded-Proto: {scheme}")
    if host:
        lines.append(f"X-Forwarded-Host: {host}")
    lines.extend(map(": ".join, trace.items()))
    if claims is not None:
        lines.append("claims: " + claims)
    return lines


def received(*pairs: tuple[str, str]) -> CIMultiDictProxy[str]:
    """Headers as aiohttp's parser gives them (istr names)."""
    return CIMultiDictProxy(CIMultiDict((istr(name), value) for name, value in pairs))


def lines_for(
    incoming: CIMultiDictProxy[str],
    *,
    keep_authorization: bool = False,
    peer: str | None = "10.0.0.1",
    scheme: str = "http",
    host: str | None = "gw",
) -> list[str]:
    return upstream_request_headers(
        incoming,
        keep_authorization=keep_authorization,
        peer=peer,
        scheme=scheme,
        host=host,
        trace_lines=TRACE_LINES,
        claims=CLAIMS,
    ).lines


@pytest.fixture(autouse=True)
def empty_cache() -> None:
    headers_module._lines_cache.clear()


BASE = (("Content-Type", "application/json"), ("Authorization", "Bearer one"))


def test_a_cached_entry_is_served_for_the_same_request_only() -> None:
    first = lines_for(received(*BASE))
    assert lines_for(received(*BASE)) == first  # a hit: the same lines
    assert len(headers_module._lines_cache) == 1
    other_set = lines_for(received(*BASE, ("X-Extra", "1")))
    assert "X-Extra: 1" in other_set and "X-Extra: 1" not in first
    other_peer = lines_for(received(*BASE), peer="10.0.0.2")
    assert "X-Forwarded-For: 10.0.0.2" in other_peer
    assert "X-Forwarded-For: 10.0.0.2" not in first


def test_the_authorization_rule_and_token_are_part_of_the_key() -> None:
    dropped = lines_for(received(*BASE))
    assert not any(line.startswith("Authorization") for line in dropped)
    kept = lines_for(received(*BASE), keep_authorization=True)
    assert "Authorization: Bearer one" in kept
    other_token = lines_for(
        received(("Content-Type", "application/json"), ("Authorization", "Bearer two")),
        keep_authorization=True,
    )
    assert "Authorization: Bearer two" in other_token
    assert "Authorization: Bearer one" not in other_token


def test_a_changed_header_value_or_name_case_gives_new_lines() -> None:
    before = lines_for(received(("X-Tenant", "a")))
    after = lines_for(received(("X-Tenant", "b")))
    assert "X-Tenant: a" in before and "X-Tenant: b" in after and "X-Tenant: a" not in after
    # The caller's spelling of a name goes upstream as sent: a cache hit must keep it.
    assert "x-tenant: a" in lines_for(received(("x-tenant", "a")))


def test_the_trace_and_claims_lines_are_the_requests_own() -> None:
    first = upstream_request_headers(
        received(*BASE),
        keep_authorization=False,
        peer=None,
        scheme="http",
        host=None,
        trace_lines=["X-Request-ID: one"],
        claims="1",
    ).lines
    second = upstream_request_headers(
        received(*BASE),
        keep_authorization=False,
        peer=None,
        scheme="http",
        host=None,
        trace_lines=["X-Request-ID: two"],
        claims="2",
    ).lines
    assert first[-2:] == ["X-Request-ID: one", "claims: 1"]
    assert second[-2:] == ["X-Request-ID: two", "claims: 2"]
    assert first[:-2] == second[:-2]


def test_a_new_trace_per_request_still_hits(monkeypatch: pytest.MonkeyPatch) -> None:
    """A caller in a traced network sends a new traceparent and request id every time: the
    lines do not carry them (the request's own trace lines replace them), so neither does
    the key: one construction for them all, whatever the spelling of the names."""
    built: list[int] = []
    construction = headers_module._caller_lines

    def counted(*args: object) -> list[str]:
        built.append(1)
        return construction(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(headers_module, "_caller_lines", counted)

    def traced(number: int, spelling: str = "traceparent") -> list[str]:
        return lines_for(
            received(
                *BASE,
                (spelling, f"00-{number:032x}-{number:016x}-01"),
                ("X-Request-ID", f"req-{number}"),
                ("X-B3-TraceId", f"{number:032x}"),
            )
        )

    first = traced(1)
    assert not any(f"{1:032x}" in line or "req-1" in line for line in first)
    for number in range(2, 20):
        assert traced(number) == first
    assert traced(20, "TraceParent") == first  # any spelling
    assert len(built) == 1
    assert len(headers_module._lines_cache) == 1


def test_a_header_that_goes_upstream_as_sent_stays_in_the_key() -> None:
    """tracestate and X-B3-Sampled are not replaced by the gateway's trace lines: a new
    value is a new entry, with that value in its lines."""
    for name in ("tracestate", "X-B3-Sampled"):
        lines_for(received(*BASE, (name, "a=0")))  # the name is known from here on
        one = lines_for(received(*BASE, (name, "a=1")))
        two = lines_for(received(*BASE, (name, "a=2")))
        assert f"{name}: a=1" in one and f"{name}: a=2" in two and one != two


def test_only_trace_headers_leave_the_key() -> None:
    """The names left out of the key are those every drop set drops because the trace
    lines replace them, whatever their spelling; nothing else."""
    assert all(dropped >= headers_module.TRACE_HEADERS for dropped in headers_module._DROP.values())
    names = [*headers_module.TRACE_HEADERS, "TRACEPARENT", "x-request-id", "tracestate", "X-A"]
    lines_for(received(*((name, "v") for name in names)))
    (key,) = headers_module._lines_cache
    assert [pair[0] for pair in key[4:]] == ["tracestate", "X-A"]  # type: ignore[index]


def test_the_cache_is_bounded() -> None:
    for number in range(3 * headers_module._LINES_CACHE_SIZE):
        lines = lines_for(received(("X-Number", str(number))))
        assert f"X-Number: {number}" in lines
        assert len(headers_module._lines_cache) <= headers_module._LINES_CACHE_SIZE


_NAMES = st.sampled_from(
    [
        "Content-Type",
        "authorization",
        "Authorization",
        "Connection",
        "X-Forwarded-For",
        "Accept-Encoding",
        "Keep-Alive",
        "traceparent",
        "claims",
        "Host",
        "X-A",
        "x-a",
        # The trace headers, which the gateway replaces, in two spellings, and two that go
        # upstream as sent.
        "TraceParent",
        "X-Request-ID",
        "x-request-id",
        "b3",
        "X-B3-TraceId",
        "tracestate",
        "X-B3-Sampled",
    ]
)
_REPLACED = {"traceparent", "x-request-id", "b3", "x-b3-traceid"}
"""The trace headers among the names: a new value on every request below."""
# Now and then a fresh text (a tracestate, say, that goes upstream as sent).
_VALUES = st.sampled_from(["a", "b", "keep-alive, X-A", "close", "gzip", ""]) | st.text(
    alphabet="0123456789abcdef-", min_size=1, max_size=8
)
_REQUESTS = st.tuples(
    st.lists(st.tuples(_NAMES, _VALUES), max_size=6),
    st.booleans(),
    st.sampled_from([None, "10.0.0.1", "10.0.0.2"]),
    st.sampled_from(["http", "https"]),
    st.sampled_from([None, "", "gw", "gw:8080"]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_REQUESTS, min_size=1, max_size=8))
def test_cached_lines_are_the_uncached_construction(
    requests: list[tuple[list[tuple[str, str]], bool, str | None, str, str | None]],
) -> None:
    """A run of requests, repeats among them (cache hits), each with trace headers of its
    own as a traced caller sends them: each gets exactly the lines the construction without
    a cache gives it."""
    headers_module._lines_cache.clear()
    for number, (pairs, keep, peer, scheme, host) in enumerate(requests * 2):
        incoming = received(
            *(
                (name, f"{value}{number}") if name.lower() in _REPLACED else (name, value)
                for name, value in pairs
            )
        )
        got = lines_for(incoming, keep_authorization=keep, peer=peer, scheme=scheme, host=host)
        expected = reference_lines(
            incoming,
            keep_authorization=keep,
            peer=peer,
            scheme=scheme,
            host=host,
            trace=TRACE,
            claims=CLAIMS,
        )
        assert got == expected
