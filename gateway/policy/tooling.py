"""Offline tools for security officers: run policy test files (``policy test``) as the
policy decision point decides, and print decisions (``policy explain``, whose route gates
live in :mod:`gateway.pep.explain`).

A test case's request is analysed by the gateway's own GraphQL analyser and its caller's
claims mapped by the gateway's claim mapping; an analyser refusal (``MultipleOperations``,
syntax errors, ...) is the decision, so test files cover those rules too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from graphql import GraphQLSchema

from gateway.config.errors import ConfigError, did_you_mean
from gateway.config.model import default_claim_mapping
from gateway.config.yamlsource import Source
from gateway.facts import DecisionInput, RouteFacts
from gateway.graphql.offline import facts_from_request
from gateway.graphql.schema import BUNDLED_SCHEMA, load_schema
from gateway.policy.decision import AuditValues, Decision, TraceStep
from gateway.policy.engine import PolicySet
from gateway.policy.errors import LoadIssue, PolicyLoadError
from gateway.policy.loader import TEST_SUFFIX, load_policy_set
from gateway.policy.source import read_source, schema_issues
from gateway.refusals import Refusal
from gateway.rest.analyser import offline_request
from gateway.rest.paths import PathTemplates
from gateway.tokens.claims import map_claims

ROUTE_PATTERN = re.compile(r"^/deelnemers/([^/]+)/([^/]+)/graphql$")
KIND_TABLE = "identificatietypen"
"""Catalogue table mapping ``id_type`` to deelnemer ``kind`` (scope word)."""


class ToolError(Exception):
    """A problem with the tool's input (route, claims or request file)."""


def described_route_facts(
    policy_set: PolicySet,
    route: str | Mapping[str, Any] | None,
    *,
    strict_input: bool = False,
    rest: bool = False,
) -> RouteFacts:
    """Route facts from ``/deelnemers/<idtype>/<id>/graphql`` or ``{id_type, id, kind?}``.

    The kind comes from the set's ``identificatietypen`` table, not from code.
    """
    if route is None:
        return RouteFacts(
            path="",
            audience="",
            deelnemer_id_type="",
            deelnemer_id="",
            deelnemer_kind="",
            strict_input=strict_input,
        )
    if isinstance(route, str):
        match = ROUTE_PATTERN.match(route)
        bare = route.endswith("/graphql") or (rest and not route.endswith("/"))
        if match is None and route.startswith("/") and bare:
            # A route with no deelnemer behind it: a register's (/.../graphql), or (*rest*)
            # a REST route by its prefix (/ketenindex).
            return RouteFacts(
                path=route,
                audience=route,
                deelnemer_id_type="",
                deelnemer_id="",
                deelnemer_kind="",
                strict_input=strict_input,
            )
        if match is None:
            raise ToolError(
                f"route {route!r} is neither /deelnemers/<idtype>/<id>/graphql nor another "
                "/.../graphql route (a REST request's route: its prefix, /ketenindex)"
            )
        id_type, deelnemer_id, kind = match.group(1).upper(), match.group(2), None
        path = route
    else:
        id_type = str(route["id_type"]).upper()
        deelnemer_id = str(route["id"])
        kind = route.get("kind")
        strict_input = bool(route.get("strict_input", strict_input))
        path = str(route.get("path") or f"/deelnemers/{id_type.lower()}/{deelnemer_id}/graphql")
    if kind is None:
        kinds = [
            row.get("kind") for row in policy_set.table(KIND_TABLE) if row.get("id_type") == id_type
        ]
        if not kinds:
            raise ToolError(f"identifier type {id_type!r} is not in table {KIND_TABLE!r}")
        kind = kinds[0]
    return RouteFacts(
        path=path,
        audience=path,
        deelnemer_id_type=id_type,
        deelnemer_id=deelnemer_id,
        deelnemer_kind=str(kind),
        strict_input=strict_input,
    )


def refusal_decision(refusal: Refusal, version: str) -> Decision:
    """The decision for a request the analyser refused before any policy ran."""
    rule = "graphql/" + type(refusal).__name__
    return Decision(
        allow=False,
        status=refusal.status,
        code=refusal.code,
        reason=refusal.reason,
        message=refusal.message,
        rule=rule,
        trace=(TraceStep(rule, "", "failed", refusal.message),),
        policy_version=version,
    )


def decide_request(
    policy_set: PolicySet,
    claims: Mapping[str, Any],
    request: Mapping[str, Any],
    route: RouteFacts,
    *,
    explain: bool = False,
    extra: Mapping[str, Any] | None = None,
    schema: GraphQLSchema | None = None,
) -> Decision:
    """Analyse *request*, map *claims*, and decide as the policy decision point would (the
    route's audience and scope gates are ``policy explain``'s, not a test case's).

    *extra* are the looked-up facts (``{lookup name: facts}``, as a case's ``extra:``
    gives them); as in the gateway, only those of the lookups this request wants reach
    the policy, so a case cannot pass a rule with facts the gateway would not gather.
    With *schema* a GraphQL request is validated against it, as the route validates it."""
    token = map_claims(claims, default_claim_mapping())
    try:
        if is_rest_request(request):
            # Matched against the set's own REST templates (no OpenAPI document: policy
            # explain --config uses the route's).
            operation = offline_request(request, PathTemplates(policy_set.rest_templates))
        else:
            # Without a schema (a test file names none): test cases cover the policy for
            # every route kind, including register queries the bundled network schema does
            # not have (policy explain uses the route's own schema).
            operation = facts_from_request(request, schema=schema)
    except Refusal as refusal:
        return refusal_decision(refusal, policy_set.version)
    facts = DecisionInput(token, operation, route)
    if extra:
        facts = DecisionInput(token, operation, route, wanted_extra(policy_set, facts, extra))
    return policy_set.decide(facts, explain=explain)


def wanted_extra(
    policy_set: PolicySet, facts: DecisionInput, extra: Mapping[str, Any]
) -> Mapping[str, Any]:
    """*extra* as the gateway would gather it for *facts*: the facts of a lookup the policy
    set declares (``lookups:``) only when the deciding policy's lookup wants this request;
    the facts of the gateway's own lookups (``abonnement`` from the subscription store,
    ``overleg`` from the Ketenindex) as given."""
    declared = {lk.name for p in policy_set.policies for lk in p.lookups}
    op = facts.operation
    policy = policy_set.policy_for(op.operation_type, op.root_field)
    wanted = {lk.name for lk in (policy.lookups if policy else ()) if lk.wanted(facts)}
    return {name: value for name, value in extra.items() if name not in declared or name in wanted}


EXTRA_FACT = re.compile(r"^extra\.([^.\s]+)")


def known_extra(policy_set: PolicySet) -> tuple[set[str], set[str]]:
    """The ``extra`` names a case may give: those the set's ``lookups:`` declare, and those
    its policies read as ``extra.<name>`` (the gateway's own lookups - ``abonnement`` from
    the subscription store, a REST route's ``overleg`` - are named by no lookup of the set,
    only by the rules that read them). Any other name is a typo that would pass silently."""
    declared = {lk.name for p in policy_set.policies for lk in p.lookups}
    return declared, set(_read_extra(policy_set.version, policy_set.files))


@lru_cache(maxsize=16)
def _read_extra(version: str, files: tuple[Path, ...]) -> frozenset[str]:
    """The names read as ``extra.<name>`` in *files* (*version*: their content's hash)."""
    read: set[str] = set()
    for file in files:
        source, issues = read_source(file)
        if not issues:
            read |= {m.group(1) for text in _strings(source.data) if (m := EXTRA_FACT.match(text))}
    return frozenset(read)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def unknown_extra(
    source: Source, n: int, extra: Any, known: tuple[set[str], set[str]]
) -> list[LoadIssue]:
    """A located issue for each name of case *n*'s ``extra:`` the policy set does not know."""
    if not isinstance(extra, Mapping):
        return []
    declared, read = known
    issues = []
    for name in extra:
        if name in declared or name in read:
            continue
        issues.append(
            source.issue(
                ("cases", n, "extra", name),
                f"extra.{name}: no lookup of the policy set declares it and no policy reads it",
                f"{did_you_mean(str(name), declared | read)}declared by lookups: "
                f"{', '.join(sorted(declared)) or 'none'}; otherwise read by policies: "
                f"{', '.join(sorted(read - declared)) or 'none'}",
                key=True,
            )
        )
    return issues


REST_KEYS = ("method", "path", "headers", "body")


def is_rest_request(request: Mapping[str, Any]) -> bool:
    """A REST request description (``method``/``path``/...), not a GraphQL body."""
    return any(key in request for key in REST_KEYS) and request.get("query") is None


def decision_json(decision: Decision) -> dict[str, Any]:
    """The ``--format json`` object of ``policy explain``."""
    return {
        "allow": decision.allow,
        "status": decision.status,
        "code": decision.code,
        "message": decision.message,
        "rule": decision.rule,
        "location": decision.location,
        "trace": [
            {"rule": s.rule, "location": s.location, "outcome": s.outcome, "detail": s.detail}
            for s in decision.trace
        ],
        # Added after the pinned keys (the contract's object keeps every one of them).
        "audit": audit_json(decision.audit),
    }


def audit_json(audit: AuditValues | None) -> dict[str, Any] | None:
    """What the audit trail would record for the request, as a JSON object (None when no
    policy with an ``audit:`` block decided it)."""
    if audit is None:
        return None
    return {name: list(v) if isinstance(v, tuple) else v for name, v in audit.items()}


def audit_text(audit: AuditValues | None) -> list[str]:
    """The ``audit:`` line block of the text output.

    Single values print as they are (``(none)`` when missing), lists as JSON arrays so an
    identifier holding a comma or a space stays unambiguous.
    """
    if audit is None:
        return ["audit:       (none: no policy with an audit: block decided this request)"]
    lines = ["audit:"]
    for name, value in audit.items():
        shown = (
            json.dumps(list(value), ensure_ascii=False)
            if isinstance(value, tuple)
            else value
            if value is not None
            else "(none)"
        )
        lines.append(f"  {name + ':':<11} {shown}")
    return lines


def decision_text(decision: Decision, policy_set: PolicySet, *, route: str | None = None) -> str:
    """The human-readable ``policy explain`` output."""
    verdict = "ALLOW" if decision.allow else "DENY"
    lines = [
        f"decision:    {verdict} {decision.status}" + (f" {decision.code}" if decision.code else "")
    ]
    if decision.message:
        lines.append(f"message:     {decision.message}")
    if decision.rule:
        lines.append(
            f"rule:        {decision.rule}"
            + (f" ({decision.location})" if decision.location else "")
        )
    if route is not None:
        lines.append(f"route:       {route}")
    lines.append(
        f"policy set:  {policy_set.version}, environment {policy_set.environment or '(none)'}"
    )
    lines.extend(audit_text(decision.audit))
    lines.append("trace:")
    for step in decision.trace:
        where = f"  [{step.location}]" if step.location else ""
        lines.append(f"  {step.outcome:<8} {step.rule}{where}")
        if step.detail:
            lines.append(f"           {step.detail}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- test files
EXPECT_FIELDS = ("allow", "status", "code", "message", "reason", "rule")


@dataclass(slots=True)
class CaseResult:
    """One test case's outcome."""

    file: str
    line: int
    name: str
    passed: bool
    diff: list[str] = field(default_factory=list)


@dataclass(slots=True)
class SuiteResult:
    """All cases of the test files run, plus problems reading them."""

    cases: list[CaseResult] = field(default_factory=list)
    errors: list[LoadIssue] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return sum(1 for c in self.cases if c.passed)

    @property
    def failed(self) -> int:
        return sum(1 for c in self.cases if not c.passed) + len(self.errors)

    def failures(self) -> list[LoadIssue]:
        """Every failed case and every problem, each at ``file:line``: what a reload
        refused for failing tests logs, and what a start refuses with."""
        failed = [
            LoadIssue(
                c.file,
                c.line,
                0,
                f"test case {c.name!r} fails",
                "; ".join(d.strip() for d in c.diff),
            )
            for c in self.cases
            if not c.passed
        ]
        return [*self.errors, *failed]


def test_files(paths: Sequence[Path]) -> Iterator[Path]:
    """Every ``*.test.yaml`` named or found below a named directory."""
    for path in paths:
        if path.is_dir():
            yield from sorted(path.rglob("*" + TEST_SUFFIX))
        else:
            yield path


def tests_of(paths: Sequence[Path]) -> list[Path]:
    """The test files of the policy set at *paths*: every ``*.test.yaml`` below its
    directories, and ``x.test.yaml`` beside a policy file ``x.yaml``."""
    found = list(test_files([p for p in paths if p.is_dir()]))
    found += [
        twin
        for p in paths
        if p.is_file() and not p.name.endswith(TEST_SUFFIX)
        if (twin := p.with_name(p.stem + TEST_SUFFIX)).is_file()
    ]
    return found


def _template(folder: Path, name: str) -> dict[str, Any]:
    """A published query template as a request: ``<name>.graphql`` as written, with
    ``<name>.variables.json`` when there is one."""
    query = folder / f"{name}.graphql"
    try:
        text = query.read_text(encoding="utf-8")
    except OSError as exc:
        raise ToolError(f"template {name!r}: cannot read {query} ({exc.strerror})") from None
    variables = folder / f"{name}.variables.json"
    values = load_json(variables, "variables") if variables.is_file() else {}
    return {"query": text, "variables": values, "operationName": None}


def _request(
    spec: Any, named: Mapping[str, Any], folder: Path, seen: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Build a request: a name, or a mapping whose ``base:`` (a name, resolved recursively)
    or ``template:`` (a published template file) supplies query and variables that the
    mapping's own keys override."""
    if isinstance(spec, str):
        spec = {"base": spec}
    base_name = spec.get("base")
    result: dict[str, Any] = {"query": None, "variables": {}, "operationName": None}
    if "template" in spec:
        result = _template(folder, str(spec["template"]))
    if base_name is not None:
        if base_name not in named:
            raise ToolError(f"unknown request {base_name!r}")
        if base_name in seen:
            raise ToolError(f"request {base_name!r} is its own base")
        result = _request(named[base_name], named, folder, (*seen, base_name))
    for key in REST_KEYS:
        if key in spec:
            result[key] = spec[key]
    if "query" in spec:
        result["query"] = spec["query"]
    if "operationName" in spec:
        result["operationName"] = spec["operationName"]
    variables = dict(result.get("variables") or {})
    variables.update(spec.get("variables") or {})
    result["variables"] = variables
    return result


def run_test_file(
    file: Path, result: SuiteResult, cache: dict[tuple[tuple[str, ...], str | None], PolicySet]
) -> None:
    """Run every case of one test file, adding to *result*."""
    source, issues = read_source(file)
    if not issues:
        issues = schema_issues(source, "tests")
    if issues:
        result.errors.extend(issues)
        return
    doc = source.data
    policy_paths = tuple(str((file.parent / p).resolve()) for p in doc.get("policies") or ["."])
    callers: Mapping[str, Any] = doc.get("callers") or {}
    requests: Mapping[str, Any] = doc.get("requests") or {}
    schema = _case_schema(source, file)
    if isinstance(schema, LoadIssue):
        result.errors.append(schema)
        return
    for n, case in enumerate(doc["cases"]):
        line, col = source.pos(("cases", n))
        name = str(case["name"])
        env = case.get("environment", doc.get("environment"))
        try:
            key = (policy_paths, env)
            if key not in cache:
                cache[key] = load_policy_set([Path(p) for p in policy_paths], environment=env)
            policy_set = cache[key]
            known = known_extra(policy_set) if case.get("extra") else (set(), set())
            if misspelt := unknown_extra(source, n, case.get("extra"), known):
                result.errors.extend(misspelt)
                continue
            caller = case["caller"]
            if isinstance(caller, str):
                if caller not in callers:
                    raise ToolError(f"unknown caller {caller!r}")
                caller = callers[caller]
            request = _request(case["request"], requests, file.parent)
            route = described_route_facts(
                policy_set,
                case["route"],
                strict_input=bool(case.get("strict_input", False)),
                rest=is_rest_request(request),
            )
            decision = decide_request(
                policy_set, caller, request, route, extra=case.get("extra"), schema=schema
            )
        except PolicyLoadError as exc:
            result.errors.append(
                LoadIssue(
                    str(file),
                    line,
                    col,
                    f"{name}: policy set does "
                    "not load:\n" + "\n".join("  " + e for e in exc.errors),
                )
            )
            return
        except ToolError as exc:
            result.cases.append(CaseResult(str(file), line, name, False, [f"  {exc}"]))
            continue
        expect = case["expect"]
        diff: list[str] = []
        for key_name in EXPECT_FIELDS:
            if key_name not in expect:
                continue
            actual = getattr(decision, key_name)
            if actual != expect[key_name]:
                diff.append(f"  - expected {key_name}: {expect[key_name]!r}")
                diff.append(f"  + actual   {key_name}: {actual!r}")
        if diff and not decision.allow:
            diff.append(
                f"    (decided by {decision.rule} at {decision.location}: {decision.message})"
            )
        result.cases.append(CaseResult(str(file), line, name, not diff, diff))


def _case_schema(source: Source, file: Path) -> GraphQLSchema | LoadIssue | None:
    """The file's ``schema:`` (``bundled``: the network schema a route validates against by
    default, wherever the policies are installed; else relative to the file), loaded; a
    located issue when it does not load."""
    name = source.data.get("schema")
    if name is None:
        return None
    path = BUNDLED_SCHEMA if name == "bundled" else (file.parent / str(name)).resolve()
    try:
        return load_schema(path)
    except (OSError, ConfigError) as exc:
        return source.issue(("schema",), f"schema {name}: {exc}")


def run_tests(paths: Sequence[Path]) -> SuiteResult:
    """Run the test files at *paths* (files or directories)."""
    result = SuiteResult()
    cache: dict[tuple[tuple[str, ...], str | None], PolicySet] = {}
    files = list(test_files(paths))
    if not files:
        result.errors.append(
            LoadIssue(", ".join(map(str, paths)), 0, 0, "no *.test.yaml files found")
        )
    for file in files:
        if not file.is_file():
            result.errors.append(LoadIssue(str(file), 0, 0, "no such file"))
            continue
        run_test_file(file, result, cache)
    return result


_KIND = re.compile(r"^(policy|catalogue|overlay):", re.MULTILINE)


def _kind(file: Path) -> str | None:
    try:
        match = _KIND.search(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return None
    return match.group(1) if match else None


def _kinds(folder: Path) -> set[str | None]:
    """The kinds of the YAML files in *folder* and its subfolders (test files aside)."""
    found = [
        f
        for pattern in ("*.y*ml", "*/*.y*ml")
        for f in folder.glob(pattern)
        if not f.name.endswith(TEST_SUFFIX)
    ]
    return {_kind(f) for f in found}


def set_folder(file: Path) -> Path | None:
    """The folder of the policy set that *file* belongs to: its own folder, or the one above
    when its own holds no policy (a ``catalogus/`` or ``omgevingen/`` folder), provided that
    folder holds (directly or one folder down) both a policy and a catalogue, and no YAML
    that is not policy, catalogue, overlay or test. ``None`` when there is none: the file is
    checked alone."""
    here = file.absolute().parent
    for folder in (here, here.parent):
        kinds = _kinds(folder)
        if {"policy", "catalogue"} <= kinds and None not in kinds:
            return folder
        if any(_kind(f) == "policy" for f in folder.glob("*.y*ml")):
            return None
    return None


def load_json(path: Path, what: str) -> Any:
    """Read a JSON file for the CLI (claims, request)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ToolError(f"{path}: cannot read {what}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ToolError(f"{path}:{exc.lineno}:{exc.colno}: {what} is not JSON: {exc.msg}") from None
