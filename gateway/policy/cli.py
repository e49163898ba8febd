"""``nid-gateway policy check|test|explain``: the security officer's tools."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from gateway.pep.explain import (
    captured_token_payload,
    configured_route,
    explain,
    explain_rest,
    option_route,
    parse_scopes,
)
from gateway.policy.decision import Decision
from gateway.policy.engine import PolicySet
from gateway.policy.errors import PolicyLoadError
from gateway.policy.loader import check_policy_set
from gateway.policy.tooling import (
    SuiteResult,
    ToolError,
    decision_json,
    decision_text,
    is_rest_request,
    load_json,
    run_tests,
    set_folder,
    tests_of,
)


def register(sub: Any) -> None:
    """Add the ``policy`` command and its subcommands to *sub* (argparse subparsers)."""
    policy = sub.add_parser("policy", help="check, test and explain policy files")
    commands = policy.add_subparsers(dest="policy_command", required=True, metavar="COMMAND")

    check = commands.add_parser(
        "check", help="validate a policy set (schema + meaning) and run its *.test.yaml cases"
    )
    check.add_argument(
        "paths",
        nargs="+",
        type=Path,
        metavar="PATH",
        help="the policy set's folder; a policy file stands for its set's folder",
    )
    check.add_argument(
        "--no-tests", action="store_true", help="do not run the set's *.test.yaml cases"
    )
    check.set_defaults(handler=cmd_check)

    test = commands.add_parser("test", help="run policy test cases (*.test.yaml)")
    test.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    test.add_argument("-v", "--verbose", action="store_true", help="list every case")
    test.set_defaults(handler=cmd_test)

    explain = commands.add_parser(
        "explain", help="decide one request as the running gateway would, and show why"
    )
    explain.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="gateway.yaml: the route's deelnemer, audience, scopes, schema, "
        "claim mapping, policies and environment",
    )
    explain.add_argument(
        "--policy",
        action="append",
        type=Path,
        metavar="PATH",
        help="policy file or directory (repeatable); with --config, replaces the route's policies",
    )
    token = explain.add_mutually_exclusive_group(required=True)
    token.add_argument("--claims", type=Path, metavar="FILE", help="token payload JSON")
    token.add_argument(
        "--token",
        metavar="JWT",
        help="a captured access token: its payload, signature not verified",
    )
    explain.add_argument(
        "--request",
        required=True,
        type=Path,
        metavar="FILE",
        help="GraphQL request JSON (query, variables, operationName), or a REST request "
        "description (method, path with query, headers, body; extra: the lookups' facts)",
    )
    explain.add_argument(
        "--route",
        metavar="PATH|URL",
        help="route path, e.g. /deelnemers/uzovi/5151/graphql (without "
        "--config: the route's URL also gives its audience)",
    )
    explain.add_argument(
        "--scope",
        action="append",
        default=None,
        metavar="FIELD=SCOPE",
        help="without --config: the scope the route requires for a root field (repeatable)",
    )
    explain.add_argument(
        "--schema",
        type=Path,
        metavar="FILE",
        help="without --config: the route's GraphQL schema (SDL), e.g. "
        "config/schemas/bemiddelingsregister.graphql (default: the "
        "bundled network schema)",
    )
    explain.add_argument(
        "--strict-input",
        action="store_true",
        help="without --config: decide as on a route with strict input checks",
    )
    explain.add_argument(
        "--environment",
        metavar="ENV",
        help="overlay to apply, e.g. productie (default: the config's)",
    )
    explain.add_argument(
        "--extra",
        type=Path,
        metavar="FILE",
        help="looked-up facts JSON, {lookup name: facts} as a test case's extra: (the policy "
        "information point's lookups, the subscription store's abonnement, ...) "
        "(nothing is asked; a lookup without facts refuses)",
    )
    explain.add_argument("--format", choices=("text", "json"), default="text")
    explain.set_defaults(handler=cmd_explain)


_NEEDS_THE_SET = (
    "unknown table",
    "unknown list",
    "overlay changes unknown",
    "the set has no policy",
)
"""Problems of a file checked alone that only mean its policy set's other files are missing."""


def _policy_sets(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """*paths* with each policy file replaced by its set's folder, and the files that have
    no set around them (checked alone)."""
    resolved: list[Path] = []
    alone: list[Path] = []
    for path in paths:
        folder = set_folder(path) if path.is_file() else None
        if folder is not None:
            shown = Path(os.path.relpath(folder)) if folder.is_relative_to(Path.cwd()) else folder
            print(f"{path}: checking its policy set {shown}")
            path = shown
        elif path.is_file():
            alone.append(path)
        if path not in resolved:
            resolved.append(path)
    return resolved, alone


def _load_errors(exc: PolicyLoadError, alone: list[Path]) -> list[str]:
    """Every problem, except that a file checked alone gets one line saying what to pass
    instead of an error for each list and table it names."""
    errors: list[str] = []
    lonely: set[str] = set()
    for issue in exc.issues:
        if issue.file in map(str, alone) and issue.message.startswith(_NEEDS_THE_SET):
            lonely.add(issue.file)
        else:
            errors.append(str(issue))
    errors += [
        f"{file}: no catalogue in its folder or the one above it, so its lists and "
        "tables cannot be checked: pass the folder of its policy set"
        for file in sorted(lonely)
    ]
    return errors


def cmd_check(args: argparse.Namespace) -> int:
    """Validate, then run the set's test cases; every problem as
    ``file:line:col: message (hint)``; exit 1 on any."""
    paths, alone = _policy_sets(args.paths)
    try:
        policy_set, environments = check_policy_set(paths)
    except PolicyLoadError as exc:
        errors = _load_errors(exc, alone)
        print("\n".join(errors))
        print("tests: not run (the policy set does not load)")
        print(f"{len(errors)} error{'s' if len(errors) != 1 else ''}", file=sys.stderr)
        return 1
    envs = ", ".join(environments) or "none"
    print(
        f"ok: {len(policy_set.policies)} policies, {len(policy_set.files)} files, "
        f"environments checked: base, {envs}; version {policy_set.version}"
    )
    if args.no_tests:
        print("tests: not run (--no-tests)")
        return 0
    files = tests_of(paths)
    if not files:
        print("tests: none found (no *.test.yaml in the policy set)")
        return 0
    result = run_tests(files)
    _print_results(result, verbose=False)
    print(f"tests: {result.passed} passed, {result.failed} failed ({len(files)} files)")
    return 1 if result.failed else 0


def _print_results(result: SuiteResult, *, verbose: bool) -> None:
    for error in result.errors:
        print(f"ERROR {error}")
    for case in result.cases:
        if not case.passed:
            print(f"FAIL {case.file}:{case.line}: {case.name}")
            for line in case.diff:
                print(line)
        elif verbose:
            print(f"ok   {case.file}:{case.line}: {case.name}")


def cmd_test(args: argparse.Namespace) -> int:
    """Run test files; ``N passed, N failed`` on the last line; exit 1 on any failure."""
    result = run_tests(args.paths)
    _print_results(result, verbose=args.verbose)
    print(f"{result.passed} passed, {result.failed} failed")
    return 1 if result.failed else 0


def _claims(args: argparse.Namespace) -> dict[str, Any]:
    """The token payload to decide with: ``--claims FILE`` or ``--token JWT`` decoded."""
    if args.token is not None:
        print(
            "note: --token decoded without verifying its signature, issuer or expiry",
            file=sys.stderr,
        )
        return captured_token_payload(args.token)
    claims = load_json(args.claims, "claims")
    if not isinstance(claims, dict):
        raise ToolError(f"{args.claims}: claims must be a JSON object")
    return claims


def cmd_explain(args: argparse.Namespace) -> int:
    """Decide one request as the PEP would; print the decision, its audit values and its
    trace. Exit 2 (one line on stderr) when the input or the route is not enough to decide."""
    try:
        claims = _claims(args)
        request = load_json(args.request, "request")
        if not isinstance(request, dict):
            raise ToolError(f"{args.request}: request must be a JSON object")
        policies = args.policy or []
        if is_rest_request(request):
            decision, policy_set, shown = explain_rest(
                request,
                claims,
                config_file=args.config,
                route=args.route,
                policies=policies,
                environment=args.environment,
            )
            return _print_decision(args, decision, policy_set, shown)
        if args.config is not None:
            if args.scope is not None or args.strict_input or args.schema is not None:
                raise ToolError(
                    "--scope, --schema and --strict-input describe a route without "
                    "--config; with --config the route's own settings apply"
                )
            route = configured_route(args.config, args.route, policies, args.environment)
        else:
            scopes = parse_scopes(args.scope) if args.scope is not None else None
            route = option_route(
                args.route,
                policies,
                args.environment,
                scopes=scopes,
                strict_input=args.strict_input,
                schema=args.schema,
            )
        extra = load_json(args.extra, "extra") if args.extra is not None else {}
        if not isinstance(extra, dict):
            raise ToolError(f"{args.extra}: extra must be a JSON object {{lookup name: facts}}")
        decision = explain(route, claims, args.request.read_bytes(), extra)
    except ToolError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return _print_decision(args, decision, route.policy_set, route.path)


def _print_decision(
    args: argparse.Namespace, decision: Decision, policy_set: PolicySet, route: str | None
) -> int:
    if args.format == "json":
        print(json.dumps(decision_json(decision), ensure_ascii=False))
    else:
        print(decision_text(decision, policy_set, route=route))
    return 0
