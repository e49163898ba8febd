"""``nid-gateway policy check|test|explain``: the security officer's tools."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from gateway.policy.errors import PolicyLoadError
from gateway.policy.loader import check_policy_set, load_policy_set
from gateway.policy.tooling import (
    ToolError,
    decide_request,
    decision_json,
    decision_text,
    load_json,
    route_facts,
    run_tests,
)


def register(sub: Any) -> None:
    """Add the ``policy`` command and its subcommands to *sub* (argparse subparsers)."""
    policy = sub.add_parser("policy", help="check, test and explain policy files")
    commands = policy.add_subparsers(dest="policy_command", required=True, metavar="COMMAND")

    check = commands.add_parser("check", help="validate policy files (schema + meaning)")
    check.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    check.set_defaults(handler=cmd_check)

    test = commands.add_parser("test", help="run policy test cases (*.test.yaml)")
    test.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    test.add_argument("-v", "--verbose", action="store_true", help="list every case")
    test.set_defaults(handler=cmd_test)

    explain = commands.add_parser("explain", help="decide one request and show why")
    explain.add_argument("--policy", action="append", required=True, type=Path,
                         metavar="PATH", help="policy file or directory (repeatable)")
    explain.add_argument("--claims", required=True, type=Path, metavar="FILE",
                         help="token payload JSON")
    explain.add_argument("--request", required=True, type=Path, metavar="FILE",
                         help="GraphQL request JSON (query, variables, operationName)")
    explain.add_argument("--route", metavar="PATH",
                         help="route path, e.g. /deelnemers/uzovi/5151/graphql")
    explain.add_argument("--strict-input", action="store_true",
                         help="decide as on a route with strict input checks")
    explain.add_argument("--environment", metavar="ENV", help="overlay to apply, e.g. productie")
    explain.add_argument("--format", choices=("text", "json"), default="text")
    explain.set_defaults(handler=cmd_explain)


def cmd_check(args: argparse.Namespace) -> int:
    """Validate; every problem as ``file:line:col: message (hint)``; exit 1 on any."""
    try:
        policy_set, environments = check_policy_set(args.paths)
    except PolicyLoadError as exc:
        for error in exc.errors:
            print(error)
        print(f"{len(exc.errors)} error{'s' if len(exc.errors) != 1 else ''}", file=sys.stderr)
        return 1
    envs = ", ".join(environments) or "none"
    print(f"ok: {len(policy_set.policies)} policies, {len(policy_set.files)} files, "
          f"environments checked: base, {envs}; version {policy_set.version}")
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    """Run test files; ``N passed, N failed`` on the last line; exit 1 on any failure."""
    result = run_tests(args.paths)
    for error in result.errors:
        print(f"ERROR {error}")
    for case in result.cases:
        if not case.passed:
            print(f"FAIL {case.file}:{case.line}: {case.name}")
            for line in case.diff:
                print(line)
        elif args.verbose:
            print(f"ok   {case.file}:{case.line}: {case.name}")
    print(f"{result.passed} passed, {result.failed} failed")
    return 1 if result.failed else 0


def cmd_explain(args: argparse.Namespace) -> int:
    """Decide one request and print the decision, its audit values and its trace."""
    try:
        policy_set = load_policy_set(args.policy, environment=args.environment)
    except PolicyLoadError as exc:
        for error in exc.errors:
            print(error, file=sys.stderr)
        return 2
    try:
        claims = load_json(args.claims, "claims")
        request = load_json(args.request, "request")
        if not isinstance(claims, dict):
            raise ToolError(f"{args.claims}: claims must be a JSON object")
        if not isinstance(request, dict):
            raise ToolError(f"{args.request}: request must be a JSON object")
        route = route_facts(policy_set, args.route, strict_input=args.strict_input)
    except ToolError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    decision = decide_request(policy_set, claims, request, route, explain=True)
    if args.format == "json":
        print(json.dumps(decision_json(decision), ensure_ascii=False))
    else:
        print(decision_text(decision, policy_set))
    return 0
