"""Reading the HTTP body of a GraphQL request."""

from __future__ import annotations

import orjson
import pytest

from gateway.graphql import GraphQLRequest, parse_graphql_request, request_from_mapping
from gateway.refusals import BadRequest, UnsupportedMediaType

QUERY = "mutation M { zendNotificatie { notificatieID } }"


def body(payload: object) -> bytes:
    return orjson.dumps(payload)


def test_json_body_gives_query_variables_and_operation_name() -> None:
    parsed = parse_graphql_request(
        body({"query": QUERY, "variables": {"a": 1}, "operationName": "M"}), "application/json"
    )
    assert parsed == GraphQLRequest(query=QUERY, variables={"a": 1}, operation_name="M")


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json; charset=utf-8",
        "Application/JSON;charset=UTF-8",
        "application/graphql-response+json",
        'application/vnd.example+json; charset="utf-8"',
    ],
)
def test_json_variants_and_charset_parameters_are_accepted(content_type: str) -> None:
    assert parse_graphql_request(body({"query": QUERY}), content_type).query == QUERY


def test_null_variables_and_operation_name_mean_none_given() -> None:
    parsed = parse_graphql_request(
        body({"query": QUERY, "variables": None, "operationName": None}), "application/json"
    )
    assert parsed.variables == {}
    assert parsed.operation_name is None


def test_empty_operation_name_means_none_given() -> None:
    assert request_from_mapping({"query": QUERY, "operationName": ""}).operation_name is None


def test_application_graphql_body_is_the_query_text() -> None:
    parsed = parse_graphql_request(QUERY.encode(), "application/graphql")
    assert parsed == GraphQLRequest(query=QUERY, variables={}, operation_name=None)


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ],
)
def test_other_content_types_are_415(content_type: str | None) -> None:
    with pytest.raises(UnsupportedMediaType) as info:
        parse_graphql_request(body({"query": QUERY}), content_type)
    assert info.value.status == 415


def test_non_utf8_charset_is_415() -> None:
    with pytest.raises(UnsupportedMediaType, match="charset"):
        parse_graphql_request(body({"query": QUERY}), "application/json; charset=latin-1")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "Request body is not valid JSON"),
        (b"", "Request body is empty"),
        (b"[" * 2000 + b"]" * 2000, "Request body is not valid JSON"),
        (b'"a string"', "Request body must be a JSON object"),
        (b'[{"query": "{a}"}]', "Batched requests are not supported: send one JSON object"),
        (b"{}", "Request has no `query`"),
        (b'{"query": null}', "Request has no `query`"),
        (b'{"query": 42}', "`query` must be a string"),
        (b'{"query": "{a}", "variables": [1]}', "`variables` must be an object"),
        (b'{"query": "{a}", "variables": "{}"}', "`variables` must be an object"),
        (b'{"query": "{a}", "operationName": 3}', "`operationName` must be a string or null"),
    ],
)
def test_malformed_json_bodies_are_400_with_a_specific_message(raw: bytes, message: str) -> None:
    with pytest.raises(BadRequest) as info:
        parse_graphql_request(raw, "application/json")
    assert info.value.status == 400
    assert info.value.message == message


def test_application_graphql_body_must_be_utf8() -> None:
    with pytest.raises(BadRequest, match="UTF-8"):
        parse_graphql_request(b"\xff\xfe{a}", "application/graphql")
