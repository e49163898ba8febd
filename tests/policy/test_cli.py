"""``nid-gateway policy check|test|explain`` run in-process through gateway.cli.main."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from gateway.cli import main
from tests.fixtures.docs import readme_explain_command
from tests.fixtures.policy import IWLZ, REPO, Writer

SEED_QUERY = (
    "mutation zendNotificatie($afzenderID: String!, $afzenderIDType: IDTypeEnum!, "
    "$eventType: String!, $ontvangerID: String!, $ontvangerIDType: IDTypeEnum!, "
    "$timestamp: DateTime!, $subjectList: [SubjectEntity!]!) { zendNotificatie("
    "notificatieInput: {afzenderID: $afzenderID, afzenderIDType: $afzenderIDType, "
    "eventType: $eventType, ontvangerID: $ontvangerID, ontvangerIDType: $ontvangerIDType, "
    "timestamp: $timestamp, subjectList: $subjectList}) { notificatieID } }"
)
SEED_VARIABLES = {
    "afzenderID": "62253778",
    "afzenderIDType": "KVK",
    "eventType": "NIEUWE_INDICATIE_ZORGKANTOOR",
    "ontvangerID": "5151",
    "ontvangerIDType": "UZOVI",
    "timestamp": "2024-07-02T00:00:00Z",
    "subjectList": [{"recordID": "WlzIndicatie/1", "subject": "WlzIndicatie/1"}],
}
CIZ = {
    "client_id": "ciz",
    "instantie_type": "Onderneming",
    "kvk": "62253778",
    "scope": "organisaties/zorgkantoor/notificaties/notificatie:create",
}


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


def test_iwlz_policy_suites_all_pass(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["policy", "test", str(REPO / "policies")])
    out = capsys.readouterr().out
    assert code == 0, out
    passed, failed = last_line(out).split(", ")
    assert failed == "0 failed"
    assert int(passed.split()[0]) >= 70


def test_each_iwlz_policy_has_a_test_file_beside_it() -> None:
    policies = [
        p
        for p in sorted(IWLZ.rglob("*.yaml"))
        if not p.name.endswith(".test.yaml") and "\npolicy:" in "\n" + p.read_text()
    ]
    assert len(policies) == 9
    for policy in policies:
        assert policy.with_name(policy.stem + ".test.yaml").is_file(), policy


def test_failing_case_shows_expected_and_actual(
    write: Writer, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = write(
        "suite.test.yaml",
        f"""
        tests: a wrong expectation
        policies: [{IWLZ}]
        callers:
          ciz: {json.dumps(CIZ)}
        requests:
          seed: {json.dumps({"query": SEED_QUERY, "variables": SEED_VARIABLES})}
        cases:
          - name: expects a refusal that does not come
            caller: ciz
            route: /deelnemers/uzovi/5151/graphql
            request: seed
            expect: {{allow: false, message: "ZendNotificatie mutation: afzender_id is not valid"}}
          - name: expects the allow that comes
            caller: ciz
            route: /deelnemers/uzovi/5151/graphql
            request: seed
            expect: {{allow: true}}
    """,
    )
    code = main(["policy", "test", str(suite)])
    out = capsys.readouterr().out
    assert code == 1
    assert f"FAIL {suite}:8: expects a refusal that does not come" in out
    assert "  - expected allow: False\n  + actual   allow: True" in out
    assert (
        "  - expected message: 'ZendNotificatie mutation: afzender_id is not valid'\n"
        "  + actual   message: None" in out
    )
    assert last_line(out) == "1 passed, 1 failed"


def test_broken_test_file_counts_as_failure(
    write: Writer, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = write("bad.test.yaml", "tests: x\ncases:\n  - name: no caller\n")
    assert main(["policy", "test", str(suite)]) == 1
    out = capsys.readouterr().out
    assert f"ERROR {suite}:3:5: missing required key 'caller'" in out
    assert last_line(out).endswith("failed") and not last_line(out).endswith(" 0 failed")


def test_check_accepts_the_iwlz_policies(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "check", str(IWLZ)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ok: 9 policies")
    assert "productie, test" in out


def test_check_reports_every_error_with_position(
    write: Writer, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = write(
        "broken.yaml",
        """
        policy: p
        applies_to: {graphql: {operation: mutation, field: zendNotificatie}}
        checks:
          - id: a
            require: {fact: args.x, in: onbekend}
          - id: b
            require: {fact: token.naam, present: true}
    """,
    )
    write("data.yaml", "catalogue: d\nlists:\n  bekend: [x]\n")
    assert main(["policy", "check", str(broken)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{broken}: checking its policy set {broken.parent}"
    assert out[1].startswith(f"{broken}:5:33: unknown list 'onbekend'")
    assert out[2].startswith(f"{broken}:7:21: unknown fact 'token.naam'")


def test_check_finds_errors_an_overlay_brings(
    write: Writer, capsys: pytest.CaptureFixture[str]
) -> None:
    write(
        "set/p.yaml",
        """
        policy: p
        applies_to: {graphql: {operation: mutation, field: zendNotificatie}}
        checks:
          - id: a
            require: {row: t, where: {a: {fact: args.a}}}
    """,
    )
    write("set/d.yaml", "catalogue: d\ntables:\n  t:\n    - {a: x}\n")
    overlay = write("set/o.yaml", "overlay: productie\ntables:\n  t:\n    add: [{b: y}]\n")
    assert main(["policy", "check", str(overlay.parent)]) == 1
    out = capsys.readouterr().out
    # Checked in every load (columns do not depend on the environment), at the key.
    assert f"{overlay}:4:12: unknown column 'b' in table 't'" in out


DEMO_CONFIG = REPO / "config" / "demo" / "gateway.yaml"
DEMO_5151 = "http://127.0.0.1:8080/deelnemers/uzovi/5151/graphql"
CIZ_TOKEN = {
    **CIZ,
    "iss": "http://127.0.0.1:8080",
    "sub": "ciz",
    "aud": DEMO_5151,
    "scopes": [CIZ["scope"]],
}


def explain_files(
    tmp_path: Path, variables: Mapping[str, object], claims: Mapping[str, object] = CIZ_TOKEN
) -> tuple[Path, Path]:
    claims_file = tmp_path / "claims.json"
    claims_file.write_text(json.dumps(claims))
    request = tmp_path / "request.json"
    request.write_text(
        json.dumps(
            {"query": SEED_QUERY, "variables": variables, "operationName": "zendNotificatie"}
        )
    )
    return claims_file, request


def explain(claims: Path, request: Path, *extra: str) -> int:
    return main(["policy", "explain", "--claims", str(claims), "--request", str(request), *extra])


def test_explain_json_gives_decision_and_trace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    claims, request = explain_files(tmp_path, {**SEED_VARIABLES, "afzenderID": "1"})
    code = explain(
        claims,
        request,
        "--config",
        str(DEMO_CONFIG),
        "--policy",
        str(IWLZ),
        "--route",
        "/deelnemers/uzovi/5151/graphql",
        "--format",
        "json",
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    # The contract pins these keys; `audit` is the one added beside them.
    pinned = {"allow", "status", "code", "message", "rule", "location", "trace"}
    assert pinned <= set(result)
    assert set(result) - pinned == {"audit"}
    assert result["allow"] is False
    assert result["status"] == 400
    assert result["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert result["message"] == "ZendNotificatie mutation: afzender_id is not valid"
    assert result["rule"] == "iwlz-notificatie/afzender-id"
    assert result["location"] == f"{IWLZ}/notificatie.yaml:39"
    failed = [s["rule"] for s in result["trace"] if s["outcome"] == "failed"]
    assert failed == ["iwlz-notificatie/afzender-id", "iwlz-notificatie/gebonden-afzender"]
    # The PEP's gates before the policy are in the trace, in the PEP's order.
    assert [s["rule"] for s in result["trace"][:2]] == ["token/audience", "scope"]
    # A refused request is audited too, with what the policy's audit: block names.
    assert result["audit"] == {
        "event_type": "NIEUWE_INDICATIE_ZORGKANTOOR",
        "afzender": "KVK:1",
        "ontvanger": "UZOVI:5151",
        "subjects": ["WlzIndicatie/1"],
        "records": ["WlzIndicatie/1"],
    }


def test_explain_text_shows_environment_and_every_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    claims, request = explain_files(tmp_path, SEED_VARIABLES)
    code = explain(
        claims,
        request,
        "--config",
        str(DEMO_CONFIG),
        "--policy",
        str(IWLZ),
        "--route",
        "/deelnemers/uzovi/5151/graphql",
        "--environment",
        "productie",
    )
    assert code == 0
    out = capsys.readouterr().out
    assert out.startswith("decision:    ALLOW 200\n")
    assert "route:       /deelnemers/uzovi/5151/graphql\n" in out
    assert "environment productie" in out
    assert "  matched  environment\n           productie" in out
    assert "  passed   iwlz-notificatie/afzender-id" in out
    assert "  skipped  iwlz-notificatie/strict-timestamp" in out
    assert "  allowed  iwlz-notificatie" in out
    assert (
        "audit:\n"
        "  event_type: NIEUWE_INDICATIE_ZORGKANTOOR\n"
        "  afzender:   KVK:62253778\n"
        "  ontvanger:  UZOVI:5151\n"
        '  subjects:   ["WlzIndicatie/1"]\n'
        '  records:    ["WlzIndicatie/1"]\n'
        "trace:\n"
    ) in out


def test_explain_without_policy_uses_the_routes_policies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    claims, request = explain_files(tmp_path, SEED_VARIABLES)
    code = explain(
        claims,
        request,
        "--config",
        str(DEMO_CONFIG),
        "--route",
        "/deelnemers/uzovi/5151/graphql",
        "--format",
        "json",
    )
    assert code == 0, capsys.readouterr().err
    result = json.loads(capsys.readouterr().out)
    assert (result["allow"], result["rule"]) == (True, "iwlz-notificatie")
    assert result["location"] == f"{IWLZ}/notificatie.yaml:4"


def test_explain_shows_an_analyser_refusal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    claims, request = explain_files(tmp_path, SEED_VARIABLES)
    request.write_text(json.dumps({"query": "mutation a { x } mutation b { y }"}))
    args = ["--config", str(DEMO_CONFIG), "--route", "/deelnemers/uzovi/5151/graphql"]
    explain(claims, request, *args, "--format", "json")
    result = json.loads(capsys.readouterr().out)
    assert (result["allow"], result["status"], result["code"], result["message"]) == (
        False,
        400,
        "BAD_REQUEST",
        "Only one operation at the time is supported.",
    )
    assert result["rule"] == "graphql/MultipleOperations"
    # Refused before any policy ran: nothing for the audit trail beyond who and what.
    assert result["audit"] is None
    explain(claims, request, *args)
    out = capsys.readouterr().out
    assert "\naudit:       (none: no policy with an audit: block decided this request)\n" in out


def test_explain_refuses_a_token_without_the_routes_scope_as_the_pep_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other_kind = "organisaties/zorgaanbieder/notificaties/notificatie:create"
    claims, request = explain_files(
        tmp_path, SEED_VARIABLES, {**CIZ_TOKEN, "scope": other_kind, "scopes": [other_kind]}
    )
    assert (
        explain(
            claims,
            request,
            "--config",
            str(DEMO_CONFIG),
            "--route",
            "/deelnemers/uzovi/5151/graphql",
            "--format",
            "json",
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert (result["allow"], result["status"], result["code"], result["message"]) == (
        False,
        403,
        "FORBIDDEN",
        "Request Does Not Match Scopes",
    )
    assert result["rule"] == "scope/ScopeMismatch"


@pytest.mark.parametrize(
    ("aud", "message"),
    [
        (None, "Token lacks required claim aud"),
        (
            "http://127.0.0.1:8080/deelnemers/uzovi/5152/graphql",
            "Token audience does not match this route",
        ),
        (["x", 1], "Token audience is malformed"),
    ],
)
def test_explain_refuses_a_token_for_another_audience_as_the_pep_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], aud: object, message: str
) -> None:
    token: dict[str, object] = {k: v for k, v in CIZ_TOKEN.items() if k != "aud"}
    if aud is not None:
        token["aud"] = aud
    claims, request = explain_files(tmp_path, SEED_VARIABLES, token)
    assert (
        explain(
            claims,
            request,
            "--config",
            str(DEMO_CONFIG),
            "--route",
            "/deelnemers/uzovi/5151/graphql",
            "--format",
            "json",
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert (result["allow"], result["status"], result["code"], result["message"]) == (
        False,
        401,
        "UNAUTHENTICATED",
        message,
    )


def test_explain_with_route_options_instead_of_a_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    claims, request = explain_files(tmp_path, SEED_VARIABLES)
    assert (
        explain(
            claims,
            request,
            "--policy",
            str(IWLZ),
            "--route",
            DEMO_5151,
            "--scope",
            f"zendNotificatie={CIZ['scope']}",
            "--format",
            "json",
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert (result["allow"], result["rule"]) == (True, "iwlz-notificatie")
    assert (
        explain(
            claims,
            request,
            "--policy",
            str(IWLZ),
            "--route",
            DEMO_5151,
            "--scope",
            "zendNotificatie=organisaties/zorgaanbieder/x",
            "--format",
            "json",
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["status"] == 403


REFUSALS_TO_GUESS = {
    "no route in a config with several": (
        ["--config", str(DEMO_CONFIG)],
        "has 9 routes: pass --route PATH",
    ),
    "no route at all": (["--policy", str(IWLZ)], "pass --route PATH with --config FILE"),
    "a route the config does not have": (
        ["--config", str(DEMO_CONFIG), "--route", "/deelnemers/uzovi/9999/graphql"],
        "route '/deelnemers/uzovi/9999/graphql' is not in",
    ),
}


@pytest.mark.parametrize("name", sorted(REFUSALS_TO_GUESS))
def test_explain_refuses_to_guess_a_route_it_needs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    args, hint = REFUSALS_TO_GUESS[name]
    claims, request = explain_files(tmp_path, SEED_VARIABLES)
    assert explain(claims, request, *args) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    [line] = captured.err.splitlines()
    assert line.startswith("error: ") and hint in line


def test_explain_in_the_contracts_form_decides_and_names_the_unchecked_scope_gate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `--policy --claims --request --route PATH` (contract.md): the route's deelnemer and
    # the audience's path are known, its scopes are configuration and said to be unchecked.
    claims, request = explain_files(tmp_path, SEED_VARIABLES)
    assert (
        explain(
            claims,
            request,
            "--policy",
            str(IWLZ),
            "--route",
            "/deelnemers/uzovi/5151/graphql",
            "--format",
            "json",
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert (result["allow"], result["rule"]) == (True, "iwlz-notificatie")
    steps = {step["rule"]: step for step in result["trace"]}
    assert steps["scope"]["outcome"] == "skipped"
    assert "--config FILE" in steps["scope"]["detail"]
    assert steps["token/audience"]["outcome"] == "passed"


def test_explain_in_the_contracts_form_refuses_a_token_for_another_route_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    claims, request = explain_files(tmp_path, SEED_VARIABLES)
    assert (
        explain(
            claims,
            request,
            "--policy",
            str(IWLZ),
            "--route",
            "/deelnemers/uzovi/5152/graphql",
            "--format",
            "json",
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert (result["status"], result["code"]) == (401, "UNAUTHENTICATED")


def test_explain_rejects_a_bad_route_and_bad_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    claims, request = explain_files(tmp_path, SEED_VARIABLES)
    assert explain(claims, request, "--policy", str(IWLZ), "--route", "/elders") == 2
    assert "is neither /deelnemers/<idtype>/<id>/graphql nor another" in capsys.readouterr().err
    claims.write_text("{not json")
    assert explain(claims, request, "--policy", str(IWLZ)) == 2
    assert f"{claims}:1:2: claims is not JSON" in capsys.readouterr().err


def test_readme_explain_command_runs_as_written() -> None:
    command = readme_explain_command()
    assert command[0] == ".venv/bin/nid-gateway"
    script = str(Path(sys.executable).with_name("nid-gateway"))
    result = subprocess.run(
        [script, *command[1:]], cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("decision:    ALLOW 200\n")
    assert "route:       /deelnemers/uzovi/5151/graphql\n" in result.stdout
    assert "  passed   scope\n" in result.stdout


def test_explain_takes_the_lookups_facts_from_extra(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A voluntary notification is decided on the subscription the store would give
    (``extra.abonnement``): ``--extra FILE`` stands in for the lookup."""
    kenmerk = "6f1c2b9e-0000-4000-8000-000000000001"
    claims = tmp_path / "claims.json"
    claims.write_text(
        json.dumps(
            {
                "client_id": "zorgkantoor-5151",
                "instantie_type": "Zorgkantoor",
                "uzovi": "5151",
                "aud": "http://127.0.0.1:8080/deelnemers/agb/12345678/graphql",
            }
        )
    )
    request = tmp_path / "request.json"
    notificatie = {
        "afzenderIDType": "UZOVI",
        "afzenderID": "5151",
        "ontvangerIDType": "AGB",
        "ontvangerID": "12345678",
        "ontvangerKenmerk": kenmerk,
        "eventType": "GEWIJZIGDE_DOSSIERHOUDER_CZT_VOOR_ZORGAANBIEDER",
        "timestamp": "2024-07-02T00:00:00Z",
        "subjectList": [{"subject": "Bemiddeling/1", "recordID": "Bemiddeling/1"}],
    }
    query = (
        "mutation zendNotificatie($n: NotificatieInput!) "
        "{ zendNotificatie(notificatieInput: $n) { notificatieID } }"
    )
    request.write_text(json.dumps({"query": query, "variables": {"n": notificatie}}))
    subscription = {
        "found": True,
        "active": True,
        "abonnementId": kenmerk,
        "type": "GEWIJZIGDE_DOSSIERHOUDER_CZT_VOOR_ZORGAANBIEDER",
        "subscriber_id_type": "AGB",
        "subscriber_id": "12345678",
        "bronhouder_id_type": "UZOVI",
        "bronhouder_id": "5151",
    }
    facts = tmp_path / "extra.json"
    facts.write_text(json.dumps({"abonnement": subscription}))
    route = ["--policy", str(IWLZ), "--route", "/deelnemers/agb/12345678/graphql"]
    assert explain(claims, request, *route, "--format", "json") == 0
    refused = json.loads(capsys.readouterr().out)
    assert (refused["allow"], refused["rule"]) == (False, "iwlz-notificatie/abonnement")
    assert explain(claims, request, *route, "--extra", str(facts), "--format", "json") == 0
    assert json.loads(capsys.readouterr().out)["allow"] is True
    facts.write_text("[]")
    assert explain(claims, request, *route, "--extra", str(facts)) == 2
    assert "extra must be a JSON object" in capsys.readouterr().err


def test_a_misspelt_extra_name_fails_at_its_line_naming_the_known_ones(
    write: Writer, capsys: pytest.CaptureFixture[str]
) -> None:
    """``extra.abonement`` is read by no policy and declared by no lookup: without this
    check the case would decide without it and could pass for the wrong reason."""
    original = (IWLZ / "abonnement-opzeggen.test.yaml").read_text(encoding="utf-8")
    head, _, cases = original.partition("cases:\n")
    first = cases.split("  - name:")[1]
    suite = write(
        "opzeggen.test.yaml",
        f"policies: [{IWLZ}]\n"
        + head
        + "cases:\n  - name:"
        + first
        + "  - name:"
        + first.replace("    extra:\n      abonnement:", "    extra:\n      abonement:"),
    )
    assert main(["policy", "test", str(suite)]) == 1
    out = capsys.readouterr().out
    line = 2 + head.count("\n") + 1 + first.count("\n") + first.split("extra:")[0].count("\n") + 1
    assert (
        f"ERROR {suite}:{line}:7: extra.abonement: no lookup of the policy set declares it and"
        " no policy reads it (did you mean 'abonnement'? declared by lookups: IRA0002-IRA0004,"
        " IRA0003, UCBR-0012, UCBR-0013; otherwise read by policies: abonnement)"
    ) in out, out
    assert last_line(out) == "1 passed, 1 failed"


CENTRAL = "/notificaties/graphql"
CENTRAL_TOKEN = {**CIZ_TOKEN, "aud": "http://127.0.0.1:8080" + CENTRAL}


def explain_central(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], **recipient: str
) -> tuple[int, dict[str, object]]:
    claims, request = explain_files(tmp_path, {**SEED_VARIABLES, **recipient}, CENTRAL_TOKEN)
    args = ["--config", str(DEMO_CONFIG), "--route", CENTRAL, "--format", "json"]
    code = explain(claims, request, *args)
    out = capsys.readouterr().out
    return code, json.loads(out) if code == 0 else {}


def steps(result: Mapping[str, object]) -> dict[str, str]:
    trace = result["trace"]
    assert isinstance(trace, list)
    return {step["rule"]: step["detail"] for step in trace}


def test_explain_the_central_route_decides_for_the_bodys_recipient(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """As on the recipient's own route, then forwarded to its endpoint in the adresboek."""
    code, result = explain_central(tmp_path, capsys)
    assert code == 0 and result["allow"] is True, result
    trace = steps(result)
    assert trace["central/recipient"].startswith("the body's recipient UZOVI 5151 (zorgkantoor)")
    assert trace["central/adresboek"] == "forwarded to http://127.0.0.1:9001/graphql"
    assert list(trace)[-1] == "central/adresboek"
    # Another recipient: its own deelnemer facts and its own endpoint.
    code, result = explain_central(tmp_path, capsys, ontvangerID="5152")
    assert code == 0
    trace = steps(result)
    assert trace["central/recipient"].startswith("the body's recipient UZOVI 5152 (zorgkantoor)")
    assert trace["central/adresboek"] != "forwarded to http://127.0.0.1:9001/graphql"


def test_explain_the_central_route_refuses_as_the_gateway_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A zorgaanbieder recipient: the CIZ's token holds the zorgkantoor scope only.
    code, result = explain_central(tmp_path, capsys, ontvangerIDType="AGB", ontvangerID="12345678")
    assert code == 0
    assert (result["allow"], result["status"], result["rule"]) == (
        False,
        403,
        "scope/ScopeMismatch",
    )
    # A recipient the adresboek has no endpoint for: decided, then 400, never forwarded.
    code, result = explain_central(tmp_path, capsys, ontvangerID="9999")
    assert code == 0
    assert (result["allow"], result["status"], result["rule"]) == (
        False,
        400,
        "central/ValidationFailed",
    )
    assert result["message"] == "ZendNotificatie mutation: ontvanger is not valid"
    assert "iwlz-notificatie" in steps(result)


def test_explain_the_central_route_needs_the_configuration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    claims, request = explain_files(tmp_path, SEED_VARIABLES, CENTRAL_TOKEN)
    assert explain(claims, request, "--policy", str(IWLZ), "--route", CENTRAL) == 2
    assert "pass --config FILE" in capsys.readouterr().err


def test_a_test_file_naming_a_schema_validates_its_requests_against_it(
    write: Writer, capsys: pytest.CaptureFixture[str]
) -> None:
    """``schema:`` makes a case decide as the route would: a ``melding`` declaring its
    identifier types ``IDTypeEnum!`` where ``MeldingInput`` says ``String!`` is refused."""
    original = (IWLZ / "melding.test.yaml").read_text(encoding="utf-8")
    assert "\nschema: bundled " in original
    head, _, cases = original.partition("cases:\n")
    first = "cases:\n  - name:" + cases.split("  - name:")[1]
    text = f"policies: [{IWLZ}]\n" + head + first
    suite = write(
        "melding.test.yaml",
        text.replace("$afzenderIDType: String!", "$afzenderIDType: IDTypeEnum!"),
    )
    assert main(["policy", "test", str(suite)]) == 1
    out = capsys.readouterr().out
    assert (
        "Variable '$afzenderIDType' of type 'IDTypeEnum!' used in position expecting type"
        " 'String!'." in out
    ), out
    assert main(["policy", "test", str(write("ok.test.yaml", text))]) == 0
    capsys.readouterr()
    missing = write("missing.test.yaml", text.replace("schema: bundled", "schema: geen.graphql"))
    assert main(["policy", "test", str(missing)]) == 1
    assert f"ERROR {missing}:4:9: schema geen.graphql: " in capsys.readouterr().out
