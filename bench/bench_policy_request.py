"""Instructions per request (callgrind) of the PEP's token and decision steps, in process.

    .venv/bin/python bench/bench_policy_request.py [--requests 200]

bench_gateway.py's route and request (the seed 003 notification, a token of the built-in
authorization server) through the real route handler's pieces, built from its
configuration by ``build_pep``: ``authenticate`` (a verified-token cache hit), then
``lookups.wanted``, ``RouteGates.decide`` and the allow test, as ``RouteHandler.handle`` calls them.
Each request gets operation facts of its own (analysed beforehand, uncounted), as in the
server. Runs itself under ``valgrind --tool=callgrind --collect-atstart=no``, counting
only inside ``operator.call`` (one dump after each): each step runs N and 2N times, and
the difference divided by N is one request's instructions (fixed costs cancel).
Bounded: about 30 seconds.
"""

from __future__ import annotations

import argparse
import json
import operator
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
STEPS = ("authenticate", "decide", "both")


def build(tmp: Path) -> tuple[Any, Any, bytes, Any]:
    """(route handler, request headers, body, verifier) of bench_gateway.py's gateway run."""
    from bench_gateway import ROUTE, SCOPE, SEED_QUERY, SEED_VARIABLES, gateway_config
    from multidict import CIMultiDict, CIMultiDictProxy

    from gateway.authserver.signing_keys import KeyStore
    from gateway.authserver.tokens import issue_token
    from gateway.config.loader import load_config
    from gateway.observability.events import NullObserver
    from gateway.pep.setup import build_pep

    config = load_config(gateway_config(tmp, 8080, "http://127.0.0.1:9/graphql", True))
    keystore = KeyStore.load(config)
    token = issue_token(config, keystore, "ciz", [SCOPE], f"http://127.0.0.1:8080{ROUTE}")
    pep = build_pep(config, keystore, NullObserver())
    handler = pep.handlers[ROUTE]
    headers = CIMultiDictProxy(
        CIMultiDict({"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    )
    body = json.dumps(
        {"query": SEED_QUERY, "variables": SEED_VARIABLES, "operationName": "zendNotificatie"}
    ).encode()
    return handler, headers, body, pep.verifier


def done(coroutine: Any) -> Any:
    """The value of a coroutine that finishes without suspending (a cache hit)."""
    try:
        coroutine.send(None)
    except StopIteration as stop:
        return stop.value
    raise RuntimeError("the step suspended: not a cache hit")


def child(requests: int) -> None:
    """Under callgrind: per step, one counted run of N requests and one of 2N."""
    from gateway.pep.authenticate import authenticate
    from gateway.pep.decide import refusal_for

    with tempfile.TemporaryDirectory() as tmp:
        handler, headers, body, verifier = build(Path(tmp))
    route = handler.plan.config
    audience, plain = route.audience, route.allow_plain_jwt
    gates, lookups = handler.gates, handler.plan.lookups

    def authenticated() -> Any:
        return done(authenticate(headers, verifier, audience=audience, allow_plain_jwt=plain))

    token = authenticated()  # verified once: the counted runs are cache hits

    def operation() -> Any:
        return gates.operation(body, "application/json")

    def run_authenticate(batch: list[Any]) -> int:
        for _operation in batch:
            authenticated()
        return 0

    def run_decide(batch: list[Any]) -> int:
        facts = token.facts
        for op in batch:
            if lookups.wanted(facts, op, gates.facts):
                raise RuntimeError("the benchmark's request wants no lookups")
            decision = gates.decide(facts, op, None)
            if not decision.allow:
                raise refusal_for(decision)
        return 0

    def run_both(batch: list[Any]) -> int:
        for op in batch:
            facts = authenticated().facts
            if lookups.wanted(facts, op, gates.facts):
                raise RuntimeError("the benchmark's request wants no lookups")
            decision = gates.decide(facts, op, None)
            if not decision.allow:
                raise refusal_for(decision)
        return 0

    runs: dict[str, Callable[[list[Any]], int]] = {
        "authenticate": run_authenticate,
        "decide": run_decide,
        "both": run_both,
    }
    for _ in range(50):  # warm: plans, residuals, audited decisions
        run_both([operation()])
    for step in STEPS:
        for n in (requests, 2 * requests):
            batch = [operation() for _ in range(n)]
            operator.call(runs[step], batch)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="N (the runs are N and 2N)")
    parser.add_argument("--keep", type=Path, help="keep the callgrind dumps in this directory")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.requests)
        return 0
    from bench_policy_instructions import operator_call_counts

    counts = operator_call_counts(__file__, [f"--requests={args.requests}"], args.keep)
    if len(counts) < 2 * len(STEPS):
        raise SystemExit(f"expected {2 * len(STEPS)} dumps, found {len(counts)}")
    print(f"instructions per request (callgrind, {args.requests} vs {2 * args.requests}):")
    for n, step in enumerate(STEPS):
        single, double = counts[2 * n], counts[2 * n + 1]
        print(f"  {step:14} {(double - single) / args.requests / 1000:7.2f}k")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    sys.exit(main())
