"""Step 2 of a REST route, analyse: what the request asks, as :class:`OperationFacts`.

The request is taken as received: the raw path (not decoded, not normalised) is matched to
a path template, the raw query string is split (a parameter sent twice is refused: servers
disagree on which one counts), the JSON body is parsed with duplicate members refused. The
upstream gets exactly these bytes, so it executes what the policy decided on.

Where the templates come from: the route's OpenAPI document when it names one (an operation
outside it is refused here, 404/405, before any policy), else the REST selectors of the
route's policy set (a path no policy names keeps its own path as template and meets the
default deny).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from urllib.parse import parse_qsl

import orjson

from gateway.config.model import RouteConfig
from gateway.facts import OperationFacts, RestFacts
from gateway.graphql.request import loads_unique
from gateway.refusals import BadRequest, UnsupportedMediaType
from gateway.rest.openapi import OpenApiDocument
from gateway.rest.paths import PathTemplates, split_path

HIDDEN_HEADERS = frozenset({"authorization", "cookie", "claims"})
"""Headers the policy never sees: the bearer token is the token facts' business, and the
``claims`` header is the gateway's own (a caller-sent one is dropped on forward)."""


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";")[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def parse_query(query_string: str) -> dict[str, str]:
    """The query parameters, each sent once; :class:`BadRequest` for a repeated one."""
    query: dict[str, str] = {}
    try:
        pairs = parse_qsl(query_string, keep_blank_values=True, strict_parsing=bool(query_string))
    except ValueError:
        raise BadRequest("Malformed query string", reason="malformed_query") from None
    for name, value in pairs:
        if name in query:
            raise BadRequest(
                f"Query parameter {name!r} is sent more than once", reason="duplicate_parameter"
            )
        query[name] = value
    return query


def policy_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Headers by lower-case name, repeated ones joined with ``, `` (RFC 9110 5.3)."""
    out: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        if key in HIDDEN_HEADERS:
            continue
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


class RestAnalyser:
    """The analyser of one REST route."""

    def __init__(
        self, document: OpenApiDocument | None, templates: Callable[[], PathTemplates]
    ) -> None:
        self.document = document
        self._templates = templates
        """The policy set's REST templates (read per request: a reload may change them)."""

    def analyse(
        self,
        method: str,
        raw_path: str,
        headers: Iterable[tuple[str, str]],
        body: bytes,
        content_type: str | None,
    ) -> OperationFacts:
        """The facts of one request; refusals: 400, 404, 405, 415."""
        path, _, query_string = raw_path.partition("?")
        segments = split_path(path)
        query = parse_query(query_string)
        header_facts = policy_headers(headers)
        has_body = bool(body)
        if has_body and not _is_json(content_type):
            raise UnsupportedMediaType(
                "Unsupported content type: a REST request body is JSON (application/json)",
                reason="unsupported_media_type",
            )
        value = loads_unique(body) if has_body else None
        operation_id = None
        if self.document is not None:
            operation, params = self.document.find(method, segments)
            operation.check(params, query, header_facts, value, has_body)
            template, operation_id = operation.template, operation.operation_id
        else:
            found = self._templates().match(segments)
            template, params = found if found is not None else (path, {})
        return rest_operation(
            RestFacts(method, path, template, params, query, header_facts, value), operation_id
        )


def load_openapi(route: RouteConfig) -> OpenApiDocument | None:
    """The route's OpenAPI document, loaded and checked (None when it names none)."""
    if route.rest is None or route.rest.openapi is None:
        return None
    return OpenApiDocument.load(route.rest.openapi, route.path)


def rest_operation(rest: RestFacts, operation_id: str | None = None) -> OperationFacts:
    """The operation facts of a REST request: the method is the operation type and the
    template the root field, so policies are found by the same (type, field) index."""
    return OperationFacts(
        operation_type=rest.method,
        operation_name=operation_id,
        root_field=rest.template,
        arguments={},
        rest=rest,
    )


def offline_request(
    spec: Mapping[str, object], templates: PathTemplates, document: OpenApiDocument | None = None
) -> OperationFacts:
    """A REST request description (``method``, ``path`` with query, ``headers``, ``body``)
    of a test case or ``policy explain --request``, analysed as the PEP analyses it."""
    method = str(spec.get("method", "GET")).upper()
    raw_headers = spec.get("headers") or {}
    if not isinstance(raw_headers, Mapping):
        raise BadRequest("headers must be a mapping", reason="bad_headers")
    headers = [(str(k), str(v)) for k, v in raw_headers.items()]
    body = b""
    content_type = None
    if spec.get("body") is not None:
        body = orjson.dumps(spec["body"])
        content_type = "application/json"
    analyser = RestAnalyser(document, lambda: templates)
    return analyser.analyse(method, str(spec.get("path", "/")), headers, body, content_type)
