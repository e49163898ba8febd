"""The request head the forward leg writes: the same bytes as the plain construction it
replaced (one f-string line per header, CR/LF counted), and never a line break smuggled in
through a header name or value."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict, istr

from gateway.proxy.headers import UpstreamHeaders
from gateway.proxy.upstream import request_head
from gateway.refusals import BadGateway


def reference_head(
    method: str, target: str, host: str, headers: CIMultiDict[str], length: int | None
) -> bytes:
    """The construction before (commit ba577e2)."""
    lines = [f"{k}: {v}\r\n" for k, v in headers.items()]
    text = "".join(lines)
    if text.count("\n") != len(lines) or text.count("\r") != len(lines):
        raise BadGateway("Header value holds a line break", reason="bad_header")
    length_line = "" if length is None else f"Content-Length: {length}\r\n"
    head = f"{method} {target} HTTP/1.1\r\nHost: {host}\r\n{text}{length_line}\r\n"
    return head.encode("utf-8", "surrogateescape")


_NAMES = st.sampled_from(["Content-Type", "claims", "X-Request-ID", "a", "Ä", "X\r", "Y\n"])
_VALUES = st.text(
    alphabet=st.sampled_from(["a", " ", ":", "\r", "\n", "é", "\udcff", "\t", '"']), max_size=6
)


def _outcome(fn: object, *args: object) -> object:
    try:
        return fn(*args)  # type: ignore[operator]
    except BadGateway as refusal:
        return ("refused", refusal.reason, refusal.message)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.tuples(_NAMES, _VALUES), max_size=6),
    st.one_of(st.none(), st.integers(min_value=0, max_value=10**6)),
    st.booleans(),
)
def test_the_head_is_the_plain_construction(
    pairs: list[tuple[str, str]], length: int | None, as_istr: bool
) -> None:
    headers: CIMultiDict[str] = CIMultiDict(
        (istr(name) if as_istr else name, value) for name, value in pairs
    )
    args = ("POST", "/graphql?x=1", "upstream:8080", headers, length)
    assert _outcome(request_head, *args) == _outcome(reference_head, *args)


@pytest.mark.parametrize(
    ("name", "value"),
    [("claims", "{}\r\nX-Injected: 1"), ("X-A", "b\nc"), ("X-A", "b\rc"), ("X\r\nY", "v")],
)
def test_a_line_break_in_a_header_is_refused(name: str, value: str) -> None:
    headers = CIMultiDict([("Content-Type", "application/json"), (name, value)])
    with pytest.raises(BadGateway) as caught:
        request_head("POST", "/graphql", "upstream", headers, 2)
    assert caught.value.reason == "bad_header"


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(_NAMES, _VALUES), max_size=6),
    st.one_of(st.none(), st.integers(min_value=0, max_value=10**6)),
)
def test_upstream_headers_give_the_head_of_their_pairs(
    pairs: list[tuple[str, str]], length: int | None
) -> None:
    lines = [f"{name}: {value}" for name, value in pairs]
    args = ("POST", "/graphql", "upstream:8080")
    assert _outcome(request_head, *args, UpstreamHeaders(lines), length) == _outcome(
        reference_head, *args, CIMultiDict(pairs), length
    )


def test_upstream_headers_read_as_a_case_insensitive_multidict() -> None:
    headers = UpstreamHeaders(
        ["Content-Type: application/json", "X-A: 1", "x-a: 2: two", 'claims: {"a": 1}', "X-E: "]
    )
    assert headers["content-type"] == "application/json"
    assert headers["CLAIMS"] == '{"a": 1}'
    assert headers.getall("X-A") == ["1", "2: two"]
    assert list(headers.items()) == [
        ("Content-Type", "application/json"),
        ("X-A", "1"),
        ("x-a", "2: two"),
        ("claims", '{"a": 1}'),
        ("X-E", ""),
    ]
    assert len(headers) == 5 and "x-e" in headers and "X-Missing" not in headers
