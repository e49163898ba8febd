"""Issue 16 item 5: the AuthZEN PDP endpoint, through the real app over real HTTP.

The gateway runs with the demo's public URL, clients and policies, so that the examples of
docs/authzen.md (read from the Markdown) are posted as written and their answers compared
with the documented ones. The decision equals the PEP's: the same caller and request go to
the route itself and to the AuthZEN endpoint, and the policy test cases are run through it.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jwt
import pytest
import yaml

from gateway.appkeys import KEYSTORE
from gateway.authserver.tokens import issue_token
from gateway.config.model import default_claim_mapping
from gateway.facts import OperationFacts, RouteFacts, TokenFacts
from gateway.pep.authzen import EVALUATION, EVALUATIONS, METADATA, SCOPE
from gateway.pep.lookups import Lookups
from gateway.pep.setup import PEP
from gateway.policy.tooling import _request
from gateway.refusals import Refusal
from gateway.tokens.claims import map_claims
from tests.fixtures.gateway import (
    CIZ,
    NOTIFICATIE_5151,
    POLICIES,
    REPO,
    ZA_AGB,
    ZK_5151,
    ZK_5152,
    Gateway,
    GatewayFactory,
)
from tests.pep.test_explain_matches_pep import CASES

DEMO_URL = "http://127.0.0.1:8080"
DOC = REPO / "docs" / "authzen.md"
EXAMPLE = re.compile(r"<!-- authzen (request|answer): (\w+) -->\n```json\n(.*?)^```", re.M | re.S)
IDENTIFIER_CLAIMS = ("uzovi", "agb", "kvk")
CIZ_CLAIMS = {"client_id": "ciz", "instantie_type": "Onderneming", "kvk": "62253778"}


def documented_examples() -> dict[str, dict[str, Any]]:
    """name -> {"request": ..., "answer": ...}, from the doc's marked JSON blocks."""
    examples: dict[str, dict[str, Any]] = {}
    for kind, name, text in EXAMPLE.findall(DOC.read_text(encoding="utf-8")):
        examples.setdefault(name, {})[kind] = json.loads(text)
    return examples


EXAMPLES = documented_examples()


@pytest.fixture
async def gateway(make_gateway: GatewayFactory) -> Gateway:
    """The test gateway at the demo's public URL (the demo clients' AuthZEN audiences)."""
    return await make_gateway(public_url=DEMO_URL, issuer=DEMO_URL)


def caller_token(
    gateway: Gateway, path: str = EVALUATION, scopes: tuple[str, ...] = (SCOPE,)
) -> str:
    """A demo client's token for the AuthZEN endpoint at *path* (its audience)."""
    keystore = gateway.client.app[KEYSTORE]
    return issue_token(gateway.config, keystore, "zorgkantoor-5152", list(scopes), DEMO_URL + path)


async def ask(
    gateway: Gateway, body: Any, path: str = EVALUATION, token: str | None = None
) -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = await gateway.client.post(
        path,
        data=data,
        headers={
            "Authorization": f"Bearer {token or caller_token(gateway, path)}",
            "Content-Type": "application/json",
        },
    )
    return response.status, json.loads(await response.read())


def evaluation(name: str = "allowed") -> dict[str, Any]:
    """A copy of a documented request, to vary."""
    return copy.deepcopy(EXAMPLES[name]["request"])


# ------------------------------------------------------------------------ the documented examples
def test_the_doc_has_an_allowed_and_a_refused_notification() -> None:
    assert {"allowed", "refused", "batch"} <= set(EXAMPLES)
    assert all(set(example) == {"request", "answer"} for example in EXAMPLES.values())
    assert EXAMPLES["allowed"]["answer"]["decision"] is True
    assert EXAMPLES["refused"]["answer"]["decision"] is False


@pytest.mark.parametrize("name", sorted(EXAMPLES))
async def test_a_documented_example_gets_the_documented_answer(gateway: Gateway, name: str) -> None:
    request = EXAMPLES[name]["request"]
    path = EVALUATIONS if "evaluations" in request else EVALUATION
    status, answer = await ask(gateway, request, path)
    assert (status, answer) == (200, EXAMPLES[name]["answer"]), answer
    assert gateway.upstream.received == []  # a decision only: nothing is forwarded


async def test_the_metadata_names_the_endpoints_at_the_public_url(gateway: Gateway) -> None:
    response = await gateway.client.get(METADATA)
    assert response.status == 200
    assert await response.json() == {
        "policy_decision_point": DEMO_URL,
        "issuer": DEMO_URL,
        "access_evaluation_endpoint": DEMO_URL + EVALUATION,
        "access_evaluations_endpoint": DEMO_URL + EVALUATIONS,
    }


# ------------------------------------------------------------------------ the caller's token
async def test_a_token_without_the_authzen_scope_is_403(gateway: Gateway) -> None:
    token = caller_token(gateway, EVALUATION, (NOTIFICATIE_5151,))
    response = await gateway.client.post(
        EVALUATION,
        json=evaluation(),
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status == 403
    assert (
        'error="insufficient_scope", scope="authzen:evaluate"'
        in (response.headers["WWW-Authenticate"])
    )
    assert (await response.json())["error"]["reason"] == "scope authzen:evaluate required"


@pytest.mark.parametrize("audience", [EVALUATIONS, ZK_5151])
async def test_a_token_for_another_audience_is_401(gateway: Gateway, audience: str) -> None:
    status, answer = await ask(gateway, evaluation(), EVALUATION, caller_token(gateway, audience))
    assert status == 401
    assert answer["error"]["code"] == "UNAUTHENTICATED"
    assert answer["error"]["message"] == "Token audience does not match this route"


async def test_no_token_is_401(gateway: Gateway) -> None:
    response = await gateway.client.post(EVALUATION, json=evaluation())
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="nid-gateway"'


# ------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "Request body is not valid JSON"),
        (b"", "Request body is empty"),
        (b"[]", "`request body` must be a JSON object"),
        (b'{"subject": {}, "subject": {}}', "Duplicate member `subject`"),
        (b'{"action": {"name": "MUTATION"}}', "`subject` must be a JSON object"),
    ],
)
async def test_a_malformed_request_is_400(gateway: Gateway, body: bytes, message: str) -> None:
    status, answer = await ask(gateway, body)
    assert status == 400
    assert answer["error"]["message"].startswith(message)


def _without(path: str) -> dict[str, Any]:
    request = evaluation()
    *parents, last = path.split(".")
    target = request
    for part in parents:
        target = target[part]
    del target[last]
    return request


def _with(path: str, value: Any) -> dict[str, Any]:
    request = evaluation()
    *parents, last = path.split(".")
    target = request
    for part in parents:
        target = target[part]
    target[last] = value
    return request


@pytest.mark.parametrize(
    ("request_body", "message"),
    [
        (_without("context.graphql"), "`context.graphql` must be a JSON object"),
        (_without("context.service"), "`context.service` must be a non-empty string"),
        (_without("resource"), "`resource` must be a JSON object"),
        (_with("action.name", "approve"), "Unknown `action.name` 'approve'"),
        (_with("action.name", "QUERY"), "`action.name` says query, the GraphQL request is a"),
        (_with("context.operation", "zendMelding"), "`context.operation` is 'zendMelding'"),
        (_with("subject.type", "user"), "`subject.type` must be `organization`"),
        (_with("subject.properties.id_type", "BSN"), "Unknown identifier type 'BSN'"),
        (
            _with(
                "subject",
                {"type": "organization", "id": "5151", "properties": {"claims": CIZ_CLAIMS}},
            ),
            "`subject.id` '5151' is not the organisation's identifier",
        ),
        (_with("subject.properties.scopes", "one scope"), "`subject.properties.scopes` must be"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
async def test_an_evaluation_that_does_not_fit_the_mapping_is_400(
    gateway: Gateway, request_body: dict[str, Any], message: str
) -> None:
    status, answer = await ask(gateway, request_body)
    assert status == 400, answer
    assert answer["error"]["message"].startswith(message)


async def test_a_body_that_is_not_json_media_is_415(gateway: Gateway) -> None:
    response = await gateway.client.post(
        EVALUATION,
        data=json.dumps(evaluation()),
        headers={
            "Authorization": f"Bearer {caller_token(gateway)}",
            "Content-Type": "text/plain",
        },
    )
    assert response.status == 415


async def test_an_unknown_service_is_a_deny_not_an_error(gateway: Gateway) -> None:
    status, answer = await ask(gateway, _with("context.service", "/deelnemers/uzovi/9999/graphql"))
    assert status == 200
    assert answer["decision"] is False
    assert answer["context"]["error"]["status"] == 404


async def test_a_request_the_analyser_refuses_is_a_deny_with_the_analysers_reason(
    gateway: Gateway,
) -> None:
    request = _with("context.graphql", {"query": "mutation { zendNotificatie(nope: 1) { x } }"})
    status, answer = await ask(gateway, request)
    assert status == 200
    assert answer["decision"] is False
    assert answer["context"]["rule"] == "graphql/ValidationFailed"


# ------------------------------------------------------------------------ batches
async def test_a_batch_answers_in_request_order_and_an_error_denies_only_its_item(
    gateway: Gateway,
) -> None:
    allowed, refused = evaluation("allowed"), evaluation("refused")
    body = {
        "evaluations": [
            refused,
            _without("context.graphql"),
            allowed,
            _with("context.service", "/nergens"),
            allowed,
        ]
    }
    status, answer = await ask(gateway, body, EVALUATIONS)
    assert status == 200
    decisions = [item["decision"] for item in answer["evaluations"]]
    assert decisions == [False, False, True, False, True]
    assert answer["evaluations"][0] == EXAMPLES["refused"]["answer"]
    assert answer["evaluations"][1]["context"]["error"]["status"] == 400
    assert answer["evaluations"][3]["context"]["error"]["status"] == 404


async def test_the_top_level_members_are_defaults_each_item_overrides(gateway: Gateway) -> None:
    allowed, refused = evaluation("allowed"), evaluation("refused")
    body = {
        **allowed,
        "evaluations": [{}, {"subject": refused["subject"]}, {"action": {"name": "QUERY"}}],
    }
    status, answer = await ask(gateway, body, EVALUATIONS)
    assert status == 200
    assert [item["decision"] for item in answer["evaluations"]] == [True, False, False]
    assert answer["evaluations"][2]["context"]["error"]["status"] == 400


@pytest.mark.parametrize(
    ("semantic", "decisions"),
    [
        ("execute_all", [True, False, True]),
        ("deny_on_first_deny", [True, False]),
        ("permit_on_first_permit", [True]),
    ],
)
async def test_the_evaluations_semantic_stops_where_it_says(
    gateway: Gateway, semantic: str, decisions: list[bool]
) -> None:
    allowed, refused = evaluation("allowed"), evaluation("refused")
    body = {
        "options": {"evaluations_semantic": semantic},
        "evaluations": [allowed, refused, allowed],
    }
    status, answer = await ask(gateway, body, EVALUATIONS)
    assert status == 200
    assert [item["decision"] for item in answer["evaluations"]] == decisions


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"evaluations": {}}, "`evaluations` must be a list"),
        ({"evaluations": [{}] * 101}, "At most 100 evaluations per request"),
        ({"evaluations": [], "options": {"evaluations_semantic": "x"}}, "`options.evaluations_"),
    ],
)
async def test_a_malformed_batch_is_400(gateway: Gateway, body: Any, message: str) -> None:
    status, answer = await ask(gateway, body, EVALUATIONS)
    assert status == 400
    assert answer["error"]["message"].startswith(message)


async def test_a_batch_without_evaluations_is_one_evaluation(gateway: Gateway) -> None:
    status, answer = await ask(gateway, evaluation(), EVALUATIONS)
    assert (status, answer) == (200, EXAMPLES["allowed"]["answer"])


# ------------------------------------------------------------------------ lookups
class Recording:
    """A context-fact source on the route's lookup seam; fails when told to."""

    name = "probe"

    def __init__(self, fail: bool) -> None:
        self.fail = fail
        self.asked: list[str] = []

    def wanted(self, token: TokenFacts, operation: OperationFacts, route: RouteFacts) -> bool:
        return True

    async def facts(self, token: TokenFacts, operation: OperationFacts, route: RouteFacts) -> Any:
        self.asked.append(operation.root_field)
        if self.fail:
            raise ConnectionError("register down")
        return {"ok": True}


@pytest.mark.parametrize("fail", [False, True])
async def test_a_routes_lookups_run_and_a_failing_one_denies(gateway: Gateway, fail: bool) -> None:
    handler = gateway.client.app[PEP].handlers[ZK_5151]
    probe = Recording(fail)
    handler.plan = type(handler.plan)(**{**_fields(handler.plan), "lookups": Lookups([probe])})
    status, answer = await ask(gateway, evaluation())
    assert status == 200
    assert probe.asked == ["zendNotificatie"]
    assert answer["decision"] is not fail
    if fail:
        assert answer["context"]["rule"] == "lookups/FactsUnavailable"
        assert answer["context"]["reason"] == "facts unavailable: probe: ConnectionError"


def _fields(plan: Any) -> dict[str, Any]:
    return {name: getattr(plan, name) for name in plan.__dataclass_fields__}


# ------------------------------------------------------------------------ the PEP's decision
def _operation(body: dict[str, Any]) -> str:
    return "zendMelding" if "zendMelding" in body["query"] else "zendNotificatie"


def _subject(claims: dict[str, Any]) -> dict[str, Any]:
    facts = map_claims(claims, default_claim_mapping())
    return {"type": "organization", "id": facts.identifier, "properties": {"claims": claims}}


PEP_CASES = sorted(name for name, case in CASES.items() if case.expect[0] != 401)


@pytest.mark.parametrize("name", PEP_CASES)
async def test_the_decision_is_the_routes_own(gateway: Gateway, name: str) -> None:
    """The caller's verified token payload as the subject, the body as `context.graphql`:
    the AuthZEN answer is the route's (allow, status, message), the upstream sees only the
    request posted to the route."""
    case = CASES[name]
    keystore = gateway.client.app[KEYSTORE]
    token = issue_token(gateway.config, keystore, case.client, case.scopes, DEMO_URL + case.route)
    response = await gateway.post(case.route, case.body, token=token)
    pep = json.loads(await response.read())
    message = None if response.status == 200 else pep["errors"][0]["message"]

    request = {
        "subject": _subject(jwt.decode(token, options={"verify_signature": False})),
        "action": {"name": "MUTATION"},
        "resource": {"type": "NOTIFICATIE", "id": "n"},
        "context": {
            "service": case.route,
            "operation": _operation(case.body),
            "graphql": case.body,
        },
    }
    status, answer = await ask(gateway, request)
    assert status == 200, answer
    assert (
        answer["decision"],
        answer["context"].get("status", 200),
        answer["context"].get("message"),
    ) == (response.status == 200, response.status, message)
    assert len(gateway.upstream.received) == (1 if response.status == 200 else 0)


def policy_test_cases() -> list[tuple[str, dict[str, Any]]]:
    """The notification and melding policy test cases at the test gateway's routes."""
    cases = []
    for name in ("notificatie.test.yaml", "melding.test.yaml"):
        file = POLICIES / name
        doc = yaml.safe_load(file.read_text(encoding="utf-8"))
        for case in doc["cases"]:
            caller = case["caller"]
            claims = doc["callers"][caller] if isinstance(caller, str) else caller
            if "environment" in case or case.get("strict_input") or case["route"] not in ROUTES:
                continue  # the test gateway's routes: no environment, not strict, these four
            if not any(key in claims for key in IDENTIFIER_CLAIMS):
                continue  # an AuthZEN subject is an organisation with an identifier
            request = _request(case["request"], doc.get("requests") or {}, file.parent)
            cases.append((case["name"], {**case, "caller": claims, "request": request}))
    return cases


ROUTES = (ZK_5151, ZK_5152, ZA_AGB, CIZ)
POLICY_CASES = policy_test_cases()
ROUTE_KIND = {"uzovi": "zorgkantoor", "agb": "zorgaanbieder", "kvk": "onderneming"}


def test_the_policy_cases_are_found() -> None:
    assert len(POLICY_CASES) >= 30


@pytest.mark.parametrize(("name", "case"), POLICY_CASES, ids=[n for n, _ in POLICY_CASES])
async def test_a_policy_test_case_gets_its_expected_answer(
    gateway: Gateway, name: str, case: dict[str, Any]
) -> None:
    """Each case's caller as the subject (with the route's scope), its request as
    `context.graphql`: the expected allow, status, message and rule."""
    route = case["route"]
    kind = ROUTE_KIND[route.split("/")[2]]
    operation = _operation(case["request"])
    scope = {
        "zendNotificatie": f"organisaties/{kind}/notificaties/notificatie:create",
        "zendMelding": f"organisaties/{kind}/meldingen/melding:create",
    }[operation]
    subject = _subject(dict(case["caller"]))
    subject["properties"]["scopes"] = [scope]
    request = {
        "subject": subject,
        "action": {"name": "MUTATION"},
        "resource": {"type": "NOTIFICATIE", "id": "n"},
        "context": {"service": route, "operation": operation, "graphql": case["request"]},
    }
    status, answer = await ask(gateway, request)
    assert status == 200, answer
    try:
        gateway.client.app[PEP].handlers[route].gates.operation(
            json.dumps(case["request"]).encode(), "application/json"
        )
    except Refusal as refusal:
        # Policy test cases skip the schema; the route validates before any policy (the
        # melding cases' `IDTypeEnum` variables are not the bundled schema's `String`).
        assert answer["decision"] is False
        assert answer["context"]["rule"] == f"graphql/{type(refusal).__name__}"
        assert answer["context"]["message"] == refusal.message
        return
    expect = case["expect"]
    assert answer["decision"] is expect["allow"], answer
    for key in ("status", "message", "rule"):
        if key in expect and not (key == "status" and expect["allow"]):
            assert answer["context"][key] == expect[key], (key, answer)


def test_this_module_reads_the_doc_it_tests() -> None:
    assert Path(__file__).name == "test_authzen.py"
    assert "tests/pep/test_authzen.py" in DOC.read_text(encoding="utf-8")
