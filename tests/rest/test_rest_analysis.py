"""REST analysis and REST policies offline: path templates, the OpenAPI document checked at
load and compiled per operation, REST selectors and ``request.*`` facts in the policy
language."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from gateway.cli import main
from gateway.config.errors import ConfigError
from gateway.facts import DecisionInput, RouteFacts, TokenFacts
from gateway.policy import PolicyLoadError, load_policy_set
from gateway.refusals import BadRequest, NotFound, OperationNotAllowed
from gateway.rest.analyser import offline_request
from gateway.rest.openapi import OpenApiDocument
from gateway.rest.paths import PathTemplates
from tests.fixtures.gateway import REPO

DEMO = REPO / "config" / "demo" / "gateway.yaml"
KLANTINTERACTIES = REPO / "config" / "openapi" / "klantinteracties.yaml"
KI = "/klantinteracties/api/v1"
UUID = "0b7c4a52-46a1-4a8d-a1c8-111111111111"


def test_literal_segments_win_over_parameters_whatever_the_order() -> None:
    templates = PathTemplates(["/a/{id}", "/a/mijn", "/a/{id}/b"])
    assert templates.match(("a", "mijn")) == ("/a/mijn", {})
    assert templates.match(("a", "x%20y")) == ("/a/{id}", {"id": "x y"})
    assert templates.match(("a", "x", "b")) == ("/a/{id}/b", {"id": "x"})
    assert templates.match(("a",)) is None


def test_a_request_becomes_facts_with_template_params_query_headers_and_body() -> None:
    operation = offline_request(
        {
            "method": "post",
            "path": "/v/7?x=1&y=",
            "headers": {"X-Trace": "t", "Authorization": "Bearer secret"},
            "body": {"a": {"b": 2}},
        },
        PathTemplates(["/v/{n}"]),
    )
    rest = operation.rest
    assert rest is not None
    assert (operation.operation_type, operation.root_field) == ("POST", "/v/{n}")
    assert (rest.params, rest.query, rest.body) == (
        {"n": "7"},
        {"x": "1", "y": ""},
        {"a": {"b": 2}},
    )
    assert rest.headers == {"x-trace": "t"}  # the bearer token is no fact


def test_the_document_is_compiled_once_per_operation() -> None:
    document = OpenApiDocument.load(KLANTINTERACTIES, KI)
    segments = ("klantinteracties", "api", "v1", "klanten", UUID)
    first, params = document.find("GET", segments)
    again, _ = document.find("GET", segments)
    assert first is again is document.operations[("GET", f"{KI}/klanten/{{uuid}}")]
    assert params == {"uuid": UUID}
    assert first.operation_id == "klant_read"


def test_unknown_paths_are_404_and_unknown_methods_405_with_the_allowed_ones() -> None:
    document = OpenApiDocument.load(KLANTINTERACTIES, KI)
    with pytest.raises(NotFound):
        document.find("GET", ("klantinteracties", "api", "v1", "medewerkers"))
    with pytest.raises(OperationNotAllowed) as info:
        document.find("PUT", ("klantinteracties", "api", "v1", "klanten", UUID))
    assert info.value.allow == ("GET", "PATCH")


def test_a_query_parameter_is_converted_to_its_schema_type_before_it_is_validated() -> None:
    document = OpenApiDocument.load(KLANTINTERACTIES, KI)
    templates = PathTemplates(())
    assert offline_request({"path": f"{KI}/klanten?page=2"}, templates, document).rest
    with pytest.raises(BadRequest) as info:
        offline_request({"path": f"{KI}/klanten?page=twee"}, templates, document)
    assert info.value.reason == "invalid_parameter"


def test_an_invalid_openapi_document_is_a_configuration_error_naming_the_file(
    tmp_path: Path,
) -> None:
    bad = tmp_path / "api.yaml"
    bad.write_text("openapi: 3.0.3\ninfo: {title: x}\npaths: {}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        OpenApiDocument.load(bad, "/api")
    assert info.value.file == str(bad)
    assert "not a valid OpenAPI 3 document" in info.value.message


def write_policy(tmp_path: Path, name: str, text: str) -> None:
    (tmp_path / f"{name}.yaml").write_text(textwrap.dedent(text), encoding="utf-8")


REST_POLICY = """\
    policy: {name}
    applies_to:
      rest: {{method: [GET, DELETE], path: "/items/{{id}}"}}
    refusal: {{status: 403, code: FORBIDDEN}}
    checks:
      - id: eigen
        require: {{fact: {fact}, equals: {{fact: token.identifier}}}}
        reason: not yours
"""


def test_a_rest_policy_decides_on_request_facts(tmp_path: Path) -> None:
    write_policy(tmp_path, "p", REST_POLICY.format(name="items", fact="request.params.id"))
    policy_set = load_policy_set([tmp_path])
    assert policy_set.rest_templates == ("/items/{id}",)
    token = TokenFacts({}, None, None, None, None, "42")
    route = RouteFacts("/items", "/items", "", "", "")
    for path, allow in (("/items/42", True), ("/items/43", False)):
        operation = offline_request(
            {"method": "DELETE", "path": path}, PathTemplates(["/items/{id}"])
        )
        decision = policy_set.decide(DecisionInput(token, operation, route))
        assert decision.allow is allow
    get_other = offline_request(
        {"method": "PUT", "path": "/items/42"}, PathTemplates(["/items/{id}"])
    )
    assert policy_set.decide(DecisionInput(token, get_other, route)).rule == "default-deny"


def test_an_unknown_request_fact_is_a_load_error_listing_the_request_facts(tmp_path: Path) -> None:
    write_policy(tmp_path, "p", REST_POLICY.format(name="items", fact="request.parameters.id"))
    with pytest.raises(PolicyLoadError) as info:
        load_policy_set([tmp_path])
    assert "unknown fact 'request.parameters.id'" in str(info.value)
    assert "request.params" in str(info.value)


def test_two_policies_for_one_method_and_template_are_a_load_error(tmp_path: Path) -> None:
    write_policy(tmp_path, "a", REST_POLICY.format(name="a", fact="request.params.id"))
    write_policy(tmp_path, "b", REST_POLICY.format(name="b", fact="request.params.id"))
    with pytest.raises(PolicyLoadError) as info:
        load_policy_set([tmp_path])
    assert "unreachable for GET /items/{id}" in str(info.value)


def explain_rest(tmp_path: Path, client: str, ids: dict[str, str], scope: str, extra: Any) -> None:
    """``policy explain --config`` the demo's voorzitter route for a REST request file."""
    claims = tmp_path / "claims.json"
    claims.write_text(
        json.dumps(
            {
                "client_id": client,
                "instantie_type": "Zorgaanbieder",
                **ids,
                "aud": "http://127.0.0.1:8080/voorzitter/uitkomsten",
                "scope": scope,
            }
        )
    )
    request = tmp_path / "request.json"
    request.write_text(
        json.dumps({"method": "GET", "path": "/voorzitter/uitkomsten/ovl-1", "extra": extra})
    )
    args = ["policy", "explain", "--config", str(DEMO), "--route", "/voorzitter/uitkomsten"]
    files = ["--claims", str(claims), "--request", str(request), "--format", "json"]
    assert main([*args, *files]) == 0


OVERLEG = {
    "overleg": {
        "voorzitter": {"idType": "UZOVI", "id": "5151"},
        "deelnemers": [{"idType": "AGB", "id": "12345678"}],
    }
}


def test_policy_explain_decides_a_rest_request_through_the_routes_gates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    read = "uitkomstoverleg/uitkomsten:read"
    explain_rest(tmp_path, "za", {"agb": "12345678"}, read, OVERLEG)
    allowed = json.loads(capsys.readouterr().out)
    assert (allowed["allow"], allowed["rule"]) == (True, "uitkomst-inzage")
    assert [s["rule"] for s in allowed["trace"][:2]] == ["token/audience", "scope"]
    explain_rest(tmp_path, "za", {"agb": "87654321"}, read, OVERLEG)
    refused = json.loads(capsys.readouterr().out)
    assert (refused["allow"], refused["rule"]) == (False, "uitkomst-inzage/deelnemer")
    explain_rest(tmp_path, "za", {"agb": "12345678"}, "ketenindex/gebeurtenissen:read", OVERLEG)
    no_scope = json.loads(capsys.readouterr().out)
    assert (no_scope["status"], no_scope["code"]) == (403, "insufficient_scope")
