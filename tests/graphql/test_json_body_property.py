"""The JSON body parser's fast paths decide exactly as the plain ones they replace.

``loads_unique`` compares the quotes of the text (plain or ``\\u0022``) with those of the
decoded value written back by orjson, and ``request_from_mapping`` takes a shortcut for
plain dicts. Each is compared here with the implementation before those fast paths (kept
below as the reference) over generated JSON texts: duplicates at any depth, names spelled
with escapes (``"a"`` and ``"\\u0061"``), whitespace anywhere a JSON text allows it
(``"a" : 1``), quote-colon pairs inside strings, big numbers, ``NaN``/``Infinity`` and lone
surrogates. The same value or the
same refusal (class, message and reason) must come out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.graphql import request
from gateway.graphql.request import (
    MEMBERS,
    GraphQLRequest,
    loads_unique,
    parse_graphql_fields,
    parse_graphql_request,
    request_from_mapping,
)
from gateway.refusals import BadRequest, Refusal

# ----------------------------------------------------------------- the reference (before)

_REF_MEMBER_END = re.compile(rb'"[ \t\r\n]*:')


def _ref_member_count(value: object) -> int:
    count = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            count += len(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return count


def _ref_no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for name, _value in pairs:
            if name in seen:
                raise BadRequest(
                    f"Duplicate member `{name}` in the request body: each name may occur "
                    "once per object",
                    reason="duplicate_member",
                )
            seen.add(name)
    return result


def ref_loads_unique(body: bytes) -> Any:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequest("Request body is not valid JSON", reason="invalid_json") from None
    if len(_REF_MEMBER_END.findall(body)) != _ref_member_count(payload):
        try:
            json.loads(body, object_pairs_hook=_ref_no_duplicates)
        except RecursionError:
            raise BadRequest(
                "The request is nested too deeply to analyse", reason="nested_too_deeply"
            ) from None
    return payload


def ref_request_from_mapping(payload: object) -> GraphQLRequest:
    if isinstance(payload, list):
        raise BadRequest(
            "Batched requests are not supported: send one JSON object", reason="batched_request"
        )
    if not isinstance(payload, Mapping):
        raise BadRequest("Request body must be a JSON object", reason="body_not_object")
    unknown = [key for key in payload if key not in frozenset(MEMBERS)]
    if unknown:
        raise BadRequest(
            f"Unknown member `{unknown[0]}` in the request: only "
            + ", ".join(f"`{m}`" for m in MEMBERS)
            + " are accepted",
            reason="unknown_member",
        )
    query = payload.get("query")
    if query is None:
        raise BadRequest("Request has no `query`", reason="missing_query")
    if not isinstance(query, str):
        raise BadRequest("`query` must be a string", reason="query_not_string")
    variables = payload.get("variables")
    if variables is None:
        variables = {}
    elif not isinstance(variables, Mapping):
        raise BadRequest("`variables` must be an object", reason="variables_not_object")
    operation_name = payload.get("operationName")
    if operation_name is not None and not isinstance(operation_name, str):
        raise BadRequest(
            "`operationName` must be a string or null", reason="operation_name_not_string"
        )
    return GraphQLRequest(query=query, variables=variables, operation_name=operation_name or None)


# ------------------------------------------------------------------------ generated texts

_WS = st.sampled_from(["", "", "", " ", "\n", "\t", "\r\n", "  "])
_NAMES = st.sampled_from(
    ["a", "b", "query", "variables", "operationName", 'x":', "é", "\U0001f600"]
)
_STRING_CHARS = st.sampled_from(['"', ":", '":', '" :', "\\", "a", " ", "\n", "é", "\ud800"])


def _encode_string(text: str, draw: st.DrawFn) -> str:
    """*text* as a JSON string, each character written plainly or as a \\u escape."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        escaped_only = ch in '"\\' or code < 0x20 or 0xD800 <= code <= 0xDFFF
        plain = not escaped_only and draw(st.booleans())
        if plain:
            out.append(ch)
        elif ch == '"' and draw(st.booleans()):
            out.append('\\"')
        elif code > 0xFFFF:
            high = 0xD800 + ((code - 0x10000) >> 10)
            low = 0xDC00 + ((code - 0x10000) & 0x3FF)
            out.append(f"\\u{high:04x}\\u{low:04X}")
        else:
            out.append(f"\\u{code:04x}")
    out.append('"')
    return "".join(out)


@st.composite
def _json_text(draw: st.DrawFn, depth: int = 0) -> str:
    kinds = ["scalar", "string"] + (["object", "object", "array"] if depth < 4 else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "scalar":
        return draw(
            st.sampled_from(
                [
                    *("1", "-0", "1.5e3", "true", "false", "null", "NaN", "Infinity", "-Infinity"),
                    *("18446744073709551616", "123456789012345678901234567890", "1e400", "01"),
                ]
            )
        )
    if kind == "string":
        text = "".join(draw(st.lists(_STRING_CHARS, max_size=4)))
        return _encode_string(text, draw)
    if kind == "array":
        items = draw(st.lists(_json_text(depth + 1), max_size=3))
        return "[" + ",".join(draw(_WS) + item + draw(_WS) for item in items) + "]"
    names = draw(st.lists(_NAMES, max_size=4))  # repeats: duplicate members
    members = []
    for name in names:
        members.append(
            draw(_WS)
            + _encode_string(name, draw)
            + draw(_WS)
            + ":"
            + draw(_WS)
            + draw(_json_text(depth + 1))
            + draw(_WS)
        )
    return "{" + ",".join(members) + "}"


@st.composite
def _request_text(draw: st.DrawFn) -> str:
    """A GraphQL request body: mostly the three members (in any order, maybe repeated)."""
    members = []
    for name in draw(st.lists(st.sampled_from((*MEMBERS, "extensions")), max_size=4)):
        value = draw(
            st.one_of(
                st.just('"{ a }"'),
                st.just("null"),
                st.just('"op"'),
                st.just('""'),
                _json_text(1),
            )
        )
        members.append(_encode_string(name, draw) + draw(_WS) + ":" + draw(_WS) + value)
    return draw(_WS) + "{" + ",".join(members) + "}" + draw(_WS)


def _outcome(fn: Any, arg: Any) -> tuple[str, Any]:
    try:
        return "value", fn(arg)
    except Refusal as refusal:
        return "refused", (type(refusal), refusal.message, refusal.reason)


_SETTINGS = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(st.one_of(_json_text(), _request_text()))
def test_loads_unique_decides_as_the_reference(text: str) -> None:
    body = text.encode("utf-8", "surrogatepass")
    assert _outcome(loads_unique, body) == _outcome(ref_loads_unique, body)


@_SETTINGS
@given(_request_text())
def test_request_parsing_decides_as_the_reference(text: str) -> None:
    body = text.encode("utf-8", "surrogatepass")

    def reference(data: bytes) -> GraphQLRequest:
        return ref_request_from_mapping(ref_loads_unique(data))

    def parsed(data: bytes) -> GraphQLRequest:
        return parse_graphql_request(data, "application/json")

    assert _outcome(parsed, body) == _outcome(reference, body)


@_SETTINGS
@given(
    st.one_of(
        st.dictionaries(
            st.sampled_from((*MEMBERS, "x")),
            st.one_of(
                st.none(),
                st.text(),
                st.integers(),
                st.dictionaries(st.text(), st.integers()),
                st.lists(st.integers()),
            ),
            max_size=4,
        ),
        st.lists(st.integers(), max_size=2),
        st.text(),
    )
)
def test_request_from_mapping_decides_as_the_reference(payload: object) -> None:
    assert _outcome(request_from_mapping, payload) == _outcome(ref_request_from_mapping, payload)


def test_generated_texts_include_duplicates_and_spaced_names() -> None:
    """The generator reaches the cases that matter (a guard against a vacuous property)."""
    assert _outcome(loads_unique, b'{"a" : 1, "\\u0061":2}')[1][2] == "duplicate_member"
    assert _outcome(loads_unique, b'{"b":{"a":1,"a":2}}')[1][2] == "duplicate_member"
    assert _outcome(loads_unique, b'{"a":"\\":","b":1}') == ("value", {"a": '":', "b": 1})


def test_quote_counts_miss_no_duplicate() -> None:
    """The quote count (``_quotes`` against orjson's writing) is fooled neither by quotes
    escaped as ``\\u0022`` in a kept value, nor by names ending in a backslash, nor by
    nesting deeper than orjson writes, nor by a duplicate inside ``extensions``, a list or
    an unknown member; each still refused or accepted exactly as the reference."""
    bodies = [
        b'{"a":1,"a":"\\u0022\\u0022"}',
        b'{"a":"x","a":"\\u0022\\u0022"}',
        b'{"a\\\\":1,"b":2}',
        b'{"a\\\\":1,"a\\\\":2}',
        b'{"query":"{ a }","extensions":{"x":1,"x":2}}',
        b'{"query":"{ a }","variables":{"l":[{"x":1},{"y":1,"y" :2}]}}',
        b'{"query":"{ a }","other":{"x":{},"x":[]}}',
        b'{"q\\u0022":1,"q\\"":2}',
        b"[" * 300 + b'{"a":1,"a":2}' + b"]" * 300,
        b"[" * 300 + b'{"a":1,"b":2}' + b"]" * 300,
    ]
    for body in bodies:
        assert _outcome(loads_unique, body) == _outcome(ref_loads_unique, body), body
    assert _outcome(loads_unique, bodies[0])[1][2] == "duplicate_member"
    assert _outcome(loads_unique, bodies[7])[1][2] == "duplicate_member"
    assert _outcome(loads_unique, bodies[9])[0] == "value"


# ------------------------------------------------------- bodies read by parts, in sequence


@st.composite
def _usual_body(draw: st.DrawFn) -> str:
    """A request body as senders write it (the three members, usually in this order),
    with the edits that matter to a reader by parts: members reordered, repeated or
    missing, names and quotes escaped, duplicates inside the variables, whitespace."""
    query = _encode_string(draw(st.sampled_from(["{ a }", 'q(x: "v")', "{ b }", "\\"])), draw)
    names = list(MEMBERS)
    if draw(st.booleans()):
        names = draw(st.permutations(names))
    if draw(st.booleans()):
        names = draw(st.lists(st.sampled_from(names), max_size=4))
    values = {
        "query": st.just(query),
        "variables": st.one_of(st.just('{"a":1,"b":"\\u0022"}'), _json_text(1)),
        "operationName": st.sampled_from(['"op"', "null", '""', '"o\\"p"', "1"]),
    }
    members = [
        _encode_string(name, draw) + draw(_WS) + ":" + draw(_WS) + draw(values[name])
        for name in names
    ]
    return draw(_WS) + "{" + ("," + draw(_WS)).join(members) + "}" + draw(_WS)


@st.composite
def _body_sequence(draw: st.DrawFn) -> list[bytes]:
    """Bodies in a row, later ones often sharing the earlier ones' bytes before
    ``"variables"`` (the remembered prefix) with another tail: other variables, a
    duplicate member, an escape split at the prefix's end (``\\`` then ``u0022``)."""
    bodies = [draw(_usual_body()).encode("utf-8", "surrogatepass")]
    for _ in range(draw(st.integers(1, 4))):
        earlier = draw(st.sampled_from(bodies))
        at = earlier.find(b'"variables"')
        tail = draw(
            st.sampled_from(
                [
                    b'"variables":{"a":2}}',
                    b'"variables":{"a":1,"a":2}}',
                    b'"variables":{"a":"\\u0022"},"variables":{}}',
                    b'"variables":null,"operationName":"op"}',
                    b'u0022variables":{}}',
                    b'"variables":{"a":"\\u0022\\""}, "query":"{ b }"}',
                ]
            )
        )
        if at > 0 and draw(st.booleans()):
            bodies.append(earlier[:at] + tail)
        else:
            bodies.append(draw(_usual_body()).encode("utf-8", "surrogatepass"))
    return bodies


def _fields_reference(body: bytes) -> tuple[str, Any, str | None]:
    request = ref_request_from_mapping(ref_loads_unique(body))
    return request.query, request.variables, request.operation_name


def _fields(body: bytes) -> tuple[str, Any, str | None]:
    return parse_graphql_fields(body, "application/json")


@_SETTINGS
@given(_body_sequence())
def test_bodies_read_by_parts_decide_as_the_reference(bodies: list[bytes]) -> None:
    """Whatever was remembered from the bodies before, each body gives the reference's
    fields or refusal, byte for byte."""
    for body in bodies:
        assert _outcome(_fields, body) == _outcome(_fields_reference, body), body


def test_a_prefix_ending_in_a_backslash_then_u0022_decides_as_the_reference() -> None:
    """Bytes before ``"variables"`` that end in ``\\``, continued by the next body with
    ``u0022`` (a quote escape across the prefix's end), still give the reference's outcome."""
    first = b'{"query":"{ a }","operationName":"x\\"variables","variables":{}}'
    second = first[: first.find(b'"variables"')] + b'u0022","operationName":"y"}'
    for body in (first, second):
        assert _outcome(_fields, body) == _outcome(_fields_reference, body)
    assert _fields(first) == ("{ a }", {}, 'x"variables')
    assert _outcome(_fields, second)[1][2] == "duplicate_member"


def test_the_same_prefix_with_a_duplicate_in_the_variables_is_refused() -> None:
    prefix = b'{"query":"query q($a: Int) { a(x: $a) }",'
    assert _fields(prefix + b'"variables":{"a":1}}')[1] == {"a": 1}
    refused = _outcome(_fields, prefix + b'"variables":{"a":1,"a":2}}')
    assert refused[0] == "refused" and refused[1][2] == "duplicate_member"


# ---------------------------------------- bodies around a remembered query (head and tail)

_PIECES = st.sampled_from(
    [
        *('{"a":1}', '{"a":1,"a":2}', '{"a":"\\u0022"}', '{"a":"\\\\u0022"}', "null", "{}"),
        *("}{", "{", "}", ",", ":", '"', "\\", "u0022", " ", "\n", "1", "[", "]", "2"),
        *('"variables"', '"variables":', ',"operationName":"op"}', ',"query":"{ b }"'),
        *('{"s":"', '"}', '{"v":"\\"variables\\":{}"}', "[" * 300, "]" * 300),
    ]
)


@st.composite
def _around_a_query(draw: st.DrawFn) -> list[bytes]:
    """A body sent twice (so its bytes around the variables are remembered), then bodies
    of the same head and tail around other bytes: values, duplicates, two values (``}{``,
    ``1,2``), the tail's or head's own bytes, escapes cut in two, deep nesting; some with
    another head or tail."""
    query = _encode_string(draw(st.sampled_from(["{ a }", 'q(x: "v")', '"variables"'])), draw)
    name = draw(st.sampled_from(['"op"', "null", '"\\"variables\\":"']))
    head_members = [f'"query"{draw(_WS)}:{draw(_WS)}{query}']
    tail_members: list[str] = []
    (head_members if draw(st.booleans()) else tail_members).append(f'"operationName":{name}')
    head = draw(_WS) + "{" + ",".join(m + draw(_WS) for m in head_members) + ","
    head += draw(_WS) + '"variables"' + draw(_WS) + ":"
    tail = draw(_WS) + "".join("," + draw(_WS) + m for m in tail_members) + "}" + draw(_WS)

    def middle() -> str:
        if draw(st.booleans()):
            return draw(_WS) + draw(_json_text(1)) + draw(_WS)
        return "".join(draw(st.lists(_PIECES, min_size=1, max_size=4)))

    first = head + '{"a":1}' + tail
    texts = [first, first]
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["same", "same", "same", "other tail", "other head"]))
        if kind == "same":
            texts.append(head + middle() + tail)
        elif kind == "other tail":
            texts.append(head + middle() + "".join(draw(st.lists(_PIECES, max_size=2))) + "}")
        else:
            texts.append('{"query":"{ b }","variables":' + middle() + tail)
    return [text.encode("utf-8", "surrogatepass") for text in texts]


@_SETTINGS
@given(_around_a_query())
def test_bodies_around_a_remembered_query_decide_as_the_reference(bodies: list[bytes]) -> None:
    """Only the bytes between a remembered head and tail are decoded: whatever they are,
    each body gives the reference's fields or refusal, byte for byte."""
    for body in bodies:
        assert _outcome(_fields, body) == _outcome(_fields_reference, body), body


def _today(body: bytes) -> tuple[str, Any, str | None]:
    """:func:`parse_graphql_fields` with nothing remembered."""
    saved = request._prefix, request._texts, request._known
    request._prefix, request._texts, request._known = (b"", 0), ("", None, -1), None
    try:
        return _fields(body)
    finally:
        request._prefix, request._texts, request._known = saved


def test_a_repeated_body_reuses_the_query_and_decodes_only_the_variables() -> None:
    """The third body's query is the remembered string itself (not decoded again); the
    variables are the new ones."""
    head = b'{"query":"query q($a: Int) { a(x: $a) }", "variables": '
    tail = b' , "operationName":"q"}'
    first = _fields(head + b'{"a":1}' + tail)
    assert _fields(head + b'{"a":1}' + tail)[0] is not first[0]
    second = _fields(head + b'{"a":2}' + tail)
    third = _fields(head + b'{"a":3}' + tail)
    assert third == ("query q($a: Int) { a(x: $a) }", {"a": 3}, "q")
    assert third[0] is second[0]
    assert request._known is not None and request._known[:2] == (head.rstrip(), tail.lstrip())


def test_near_a_remembered_query_two_values_or_a_duplicate_are_refused_as_today() -> None:
    """Bytes between the head and tail that are not exactly one value, or a value naming
    a member twice, or nested at orjson's limits (reading 1024 deep, writing 254), decide
    as with nothing remembered (and as the reference, where it does not nest too deep)."""
    head = b'{"query":"{ a }","variables":'
    tail = b',"operationName":"op"}'
    _fields(head + b"{}" + tail)
    _fields(head + b"{}" + tail)
    middles = [
        b'{"a":1}{"b":2}',
        b"}{",
        b'{"a":1},{"b":2}',
        b'{"a":1},"variables":{"a":2}',
        b'{"a":1,"a":2}',
        b'{"a":"\\u0022","a":1}',
        b' {"a":"\\"variables\\":"} ',
        b"",
        b" ",
        b"[]",
        b'{"a":' * 253 + b"1" + b"}" * 253,
        b'{"a":' * 254 + b"1" + b"}" * 254,
        b'{"a":' + b"[" * 1022 + b"]" * 1022 + b"}",
        b'{"a":' + b"[" * 1023 + b"]" * 1023 + b"}",
    ]
    for middle in middles:
        body = head + middle + tail
        assert _outcome(_fields, body) == _outcome(_today, body), middle[:40]
        if len(middle) < 1000:
            assert _outcome(_fields, body) == _outcome(_fields_reference, body), middle
    assert _outcome(_fields, head + b'{"a":1,"a":2}' + tail)[1][2] == "duplicate_member"
    assert _outcome(_fields, head + b"}{" + tail)[1][2] == "invalid_json"
    assert _outcome(_fields, head + b"{" * 1024 + tail)[1][2] == "invalid_json"
