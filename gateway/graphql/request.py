"""The GraphQL-over-HTTP request body: what a client sent, before any GraphQL parsing.

Accepted (GraphQL over HTTP, POST):

* ``application/json`` and any ``application/*+json`` media type (charset, if given,
  must be UTF-8): a JSON object with ``query`` (string), ``variables`` (object or
  null) and ``operationName`` (string or null);
* ``application/graphql``: the body is the query text itself.

Anything else is refused with a specific message (415 for the media type, 400 for
the body) so a sender can see what to fix.

The body is forwarded byte for byte, so it must mean one thing to every reader
(``docs/security.md``): a JSON body with a member name twice in one object, at any depth,
or a top-level member other than ``query``, ``variables`` and ``operationName``
(``extensions``, ``Query``, ``documentId``, ...) is refused, because another parser or
server could read a different query out of the same bytes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import orjson

from gateway.refusals import BadRequest, UnsupportedMediaType

__all__ = [
    "Fields",
    "GraphQLRequest",
    "parse_graphql_fields",
    "parse_graphql_request",
    "request_fields",
    "request_from_mapping",
]

_UTF8_CHARSETS = frozenset({"utf-8", "utf8", "us-ascii"})

MEMBERS = ("query", "variables", "operationName")
"""The only top-level members of a JSON request (GraphQL over HTTP); anything else is refused."""
_MEMBERS = frozenset(MEMBERS)


@dataclass(frozen=True, slots=True)
class GraphQLRequest:
    """One GraphQL request: the query text, its variables and the chosen operation."""

    query: str
    variables: Mapping[str, Any] = field(default_factory=dict)
    operation_name: str | None = None


def _media_type(content_type: str | None) -> tuple[str, str | None]:
    """Split ``type/subtype; charset=x`` into the lower-cased media type and charset."""
    if not content_type:
        raise UnsupportedMediaType(
            "Missing content type: use application/json or application/graphql",
            reason="missing_content_type",
        )
    parts = content_type.split(";")
    media = parts[0].strip().lower()
    charset: str | None = None
    for param in parts[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
    return media, charset


def _is_json_media(media: str) -> bool:
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


Fields = tuple[str, Mapping[str, Any], str | None]
"""A request's ``query``, ``variables`` and operation name, as :class:`GraphQLRequest` holds
them (the per-request path passes them on without building one)."""


def request_from_mapping(payload: object) -> GraphQLRequest:
    """Check a decoded JSON request (``query``, ``variables``, ``operationName``).

    Used for HTTP bodies and for request files of the policy tools alike, so both
    reject the same mistakes with the same messages.
    """
    return GraphQLRequest(*request_fields(payload))


def request_fields(payload: object) -> Fields:
    """:func:`request_from_mapping`'s checks, its fields as a tuple."""
    if type(payload) is dict and payload.keys() <= _MEMBERS:
        # The usual case, decoded JSON with known members only: the same checks as below.
        query = payload.get("query")
        variables = payload.get("variables")
        operation_name = payload.get("operationName")
        if (
            type(query) is str
            and (variables is None or type(variables) is dict)
            and (operation_name is None or type(operation_name) is str)
        ):
            return query, {} if variables is None else variables, operation_name or None
    if isinstance(payload, list):
        raise BadRequest(
            "Batched requests are not supported: send one JSON object", reason="batched_request"
        )
    if not isinstance(payload, Mapping):
        raise BadRequest("Request body must be a JSON object", reason="body_not_object")
    unknown = [key for key in payload if key not in _MEMBERS]
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
    # Some clients send "" for "no operation name"; it can never name an operation.
    return query, variables, operation_name or None


def parse_graphql_request(body: bytes, content_type: str | None) -> GraphQLRequest:
    """Read a POSTed GraphQL request body (:func:`parse_graphql_fields`)."""
    return GraphQLRequest(*parse_graphql_fields(body, content_type))


_prefix: tuple[bytes, int] = (b"", 0)
"""The last body's bytes before ``"variables"`` and their quotes (:func:`_quotes`)."""
_texts: tuple[str, str | None, int] = ("", None, -1)
"""The last ``query`` and ``operationName`` and their quotes written back by orjson."""
_BEFORE_MEMBER = frozenset(b", \t\r\n{")
"""Bytes a remembered prefix may end with: none is part of ``\\u0022``, so no quote
escape spans its end and the body's quotes are the prefix's plus the rest's."""
_known: tuple[bytes, bytes, str, str | None] | None = None
"""The last repeated body read by parts (:func:`_parts`): the bytes before and after its
``variables`` value and the query and operation name they hold."""
_SPACE = rb"[ \t\r\n]*"
_STRING = rb'"[^"\\]*(?:\\.[^"\\]*)*"'
_MEMBER = _SPACE + _STRING + _SPACE + rb":" + _SPACE + rb"(?:" + _STRING + rb"|null)" + _SPACE
_HEAD = re.compile(
    _SPACE + rb"\{(?:" + _MEMBER + rb",)*" + _SPACE + rb'"variables"' + _SPACE + rb":", re.S
)
_TAIL = re.compile(_SPACE + rb"(?:," + _MEMBER + rb")*\}" + _SPACE + rb"\Z", re.S)


def parse_graphql_fields(body: bytes, content_type: str | None) -> Fields:
    """Read a POSTed GraphQL request body into its fields.

    Raises :class:`~gateway.refusals.UnsupportedMediaType` (415) for a media type or
    charset other than the ones above, and :class:`~gateway.refusals.BadRequest` (400)
    for a body that is not a GraphQL request.

    The usual JSON body is read here in one frame: the duplicate-member proof of
    :func:`loads_unique` (the body's quotes equal those of the decoded value written back)
    counted by parts, since senders repeat most of a body. The bytes before ``"variables"``
    are remembered with their quotes (a body that starts with the same bytes counts only
    the rest), the query text and operation name with theirs, and only the variables are
    written back per request. The parts add up to the whole (orjson writes each member as
    its quoted name, a colon and its value; ``[v]`` nests the variables as deep as the body
    does, so orjson refuses to write the same values). Any other body, and any body the
    proof fails for, takes the general path, which decides and words the refusal
    (``tests/graphql/test_json_body_property.py``).

    A body that repeats the last repeated one's bytes before and after its variables value
    (:func:`_parts` says why that is enough) decodes only the bytes between: the query text
    is not read again. Anything else there goes on as above.
    """
    global _prefix, _texts, _known
    if _body_kind(content_type) == "graphql":
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest("Request body is not valid UTF-8", reason="invalid_utf8") from None
        return text, {}, None
    known = _known
    if known is not None and body.startswith(known[0]) and body.endswith(known[1]):
        # The last repeated body's query and operation name around new variables (_parts).
        middle = body[len(known[0]) : len(body) - len(known[1])]
        try:
            values = orjson.loads(b"[" + middle + b"]")
            variables = values[0] if len(values) == 1 else False
            if variables is None:
                return known[2], {}, known[3]
            quotes = middle.count(b'"')
            if b"\\" in middle:
                quotes += middle.count(b"\\u0022")
            if type(variables) is dict and quotes == orjson.dumps(values).count(b'"'):
                return known[2], variables, known[3]
        except (orjson.JSONDecodeError, orjson.JSONEncodeError):
            pass  # not one value, or not written back: today's path below decides
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return request_fields(load_json(body))  # its refusal, worded by the general path
    if type(payload) is not dict or not payload.keys() <= _MEMBERS:
        return request_fields(load_json(body))
    query = payload.get("query")
    variables = payload.get("variables")
    operation_name = payload.get("operationName")
    if (
        type(query) is not str
        or not (variables is None or type(variables) is dict)
        or not (operation_name is None or type(operation_name) is str)
    ):
        return request_fields(load_json(body))
    prefix, start = _prefix
    if prefix and body.startswith(prefix):
        n = len(prefix)
        repeated = True
    else:
        repeated = False
        n = body.find(b'"variables"')
        if n > 0 and body[n - 1] in _BEFORE_MEMBER:
            prefix = body[:n]
            start = prefix.count(b'"') + prefix.count(b"\\u0022")
            _prefix = (prefix, start)
        else:
            n = start = 0
    quotes = start + body.count(b'"', n)
    if body.find(b"\\", n) >= 0:  # a \u0022 starts with one (variables rarely hold any)
        quotes += body.count(b"\\u0022", n)
    try:
        texts = _texts
        if texts[0] != query or texts[1] != operation_name:
            written = orjson.dumps(query).count(b'"')
            if operation_name is not None:
                written += orjson.dumps(operation_name).count(b'"')
            texts = _texts = (query, operation_name, written)
        if variables is not None:
            quotes -= orjson.dumps([variables]).count(b'"')
    except orjson.JSONEncodeError:  # not written back: the general path's exact check decides
        return request_fields(load_json(body))
    if quotes != 2 * len(payload) + texts[2]:
        return request_fields(load_json(body))
    if repeated:
        _known = _parts(body, query, operation_name or None)
    return query, {} if variables is None else variables, operation_name or None


def _parts(
    body: bytes, query: str, operation_name: str | None
) -> tuple[bytes, bytes, str, str | None] | None:
    """An accepted *body*, split around its ``variables`` value for the next bodies: the
    bytes before it, after it, and the *query* and *operation_name* they hold; None when
    the split below is not proven.

    The head (``_HEAD``) is ``{``, members whose values are strings or null, and the name
    ``"variables"`` and its colon; the tail (``_TAIL``) is members of that kind and the
    closing ``}``. Both are read token by token from a point where a JSON reader of *body*
    stands as well (the start; the end of the variables value, which orjson's complaint
    about what follows it suggests and the checks below prove): a string runs to the
    first quote no backslash escapes, as in JSON. The bytes between parse as exactly one
    JSON value when ``[middle]`` decodes to a list of one (``[`` and ``]`` enclose it all,
    so it is optional whitespace, one value, optional whitespace). So a later body made of
    the same head, any middle that is one value, and the same tail is, to every JSON
    reader, the same object with that value as ``variables``: the head leaves the reader
    expecting that value; the value ends where the middle does (the tail starts with
    whitespace, ``,`` or ``}``, which no number or literal continues); the tail's tokens
    are the same bytes read from the same place, so they decode to the same names and the
    same query and operation name. *body* was accepted, so those names are distinct
    members of the request: only the value is new. Its nesting counts the same (``[``
    stands where the body's ``{`` does, for orjson's reading and writing limits) and its
    duplicate-member proof is :func:`_written_quotes`'s on the middle alone, which no
    ``\\u0022`` spans (the middle follows a colon and precedes the tail). A middle that
    fails any of this goes the usual way.
    """
    head = _HEAD.match(body)
    if head is None:
        return None
    start = head.end()
    try:  # where orjson finds the value's end: a candidate, proven below
        orjson.loads(body[start:])
        return None
    except orjson.JSONDecodeError as error:
        if error.doc is None:
            return None
        end = start + len(error.doc[: error.pos].encode("utf-8", "surrogatepass"))
    if _TAIL.match(body, end) is None:
        return None
    try:
        values = orjson.loads(b"[" + body[start:end] + b"]")
    except orjson.JSONDecodeError:
        return None
    if len(values) != 1:
        return None
    return body[:start], body[end:], query, operation_name


def load_json(body: bytes) -> Any:
    """A JSON request body, decoded; :class:`~gateway.refusals.BadRequest` when it is empty,
    not JSON, or names a member twice in one object (two readers could take different
    values: the gateway never decides on one of them)."""
    if not body.strip():
        raise BadRequest("Request body is empty", reason="empty_body")
    return loads_unique(body)


def loads_unique(body: bytes) -> Any:
    """The decoded JSON *body*; :class:`BadRequest` when it is no JSON or an object in it
    names a member twice (parsers disagree on which one counts, so the upstream could
    execute another value than the one the policy saw)."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequest("Request body is not valid JSON", reason="invalid_json") from None
    if _quotes(body) != _written_quotes(payload):
        _refuse_duplicate_member(body)
    return payload


def _quotes(body: bytes) -> int:
    """The quote characters of *body*, plain or escaped as ``\\u0022`` (the only escape
    that decodes to one).

    A member name is two quotes; a string (name or value) with a quote in it holds it as
    ``\\"`` (a plain quote) or ``\\u0022``. So *body* holds at least two quotes per name
    written plus, per string, the quotes the string decodes to.
    """
    return body.count(b'"') + body.count(b"\\u0022")


def _written_quotes(payload: object) -> int:
    """The quotes of the decoded *payload* written back as JSON by orjson (in C), or -1
    when it cannot write it (nested deeper than it writes, say).

    Every name and string the objects hold is written once, as two quotes plus one per
    quote it decodes to (``\\"``). A name that the body writes twice in one object is held
    once: then the body holds at least two quotes more than this (:func:`_quotes`), so
    equal counts prove that no object of the body names a member twice. Whitespace, escapes
    of other characters and number spellings change no quote count. Any difference goes to
    the exact check.
    """
    try:
        return orjson.dumps(payload).count(b'"')
    except orjson.JSONEncodeError:
        return -1


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
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


def _refuse_duplicate_member(body: bytes) -> None:
    """Refuse *body* if an object in it names a member twice (the exact check).

    Only reached when the cheap count above cannot rule it out: the decoded objects hold
    fewer members than the text names, or a string holds a quote-colon pair.
    """
    try:
        json.loads(body, object_pairs_hook=_no_duplicates)
    except RecursionError:
        raise BadRequest(
            "The request is nested too deeply to analyse", reason="nested_too_deeply"
        ) from None


@lru_cache(maxsize=64)
def _body_kind(content_type: str | None) -> str:
    """``json`` or ``graphql`` for an acceptable ``Content-Type``, else the 415 refusal.

    Cached per header value (clients send the same few; refusals are not cached): parsing
    the media type and charset is per-request work otherwise.
    """
    media, charset = _media_type(content_type)
    if charset is not None and charset not in _UTF8_CHARSETS:
        raise UnsupportedMediaType(
            f"Unsupported charset {charset!r}: GraphQL requests must be UTF-8",
            reason="unsupported_charset",
        )
    if _is_json_media(media):
        return "json"
    if media == "application/graphql":
        return "graphql"
    raise UnsupportedMediaType(
        f"Unsupported content type {media!r}: use application/json or application/graphql",
        reason="unsupported_content_type",
    )
