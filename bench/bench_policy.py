"""Decision latency of the compiled policy engine vs the same RFC0008 rules in Rego.

Usage: ``.venv/bin/python bench/bench_policy.py [--iterations N]`` (bounded: well under a
minute). Requests are analysed and claims mapped once up front (facts prebuilt), as in the
gateway; the timed part is one decision. The Rego side uses regopy (rego-cpp): the bundle
is built once, each call sets the (prebuilt) input and queries the entrypoint. Both engines
must agree on every request before anything is timed. Target: >= 25x faster than Rego at
p50 and p99 (the exit status); the compiled p99 is reported against 20 µs.

Raadpleging template decisions (the published QBR templates as written, with their example
variables, against ``policies/iwlz/raadplegingen``: field groups, bindings, date windows)
are timed in the same run and reported beside the Rego figure, in all and per template;
target p99 <= 20 µs. Their facts are built per decision as the register route builds them
(policy_requests.py: schema, cached plan, dates varied), outside the timed part, so no
memo keyed by the request's own objects can carry one decision's work into the next.
Instructions per template decision: bench_policy_instructions.py.

The garbage collector runs as in the gateway once serving (``settle_heap``: what start-up
built frozen, a young collection every 10,000 allocations), not disabled: a collection
that falls inside a timed decision counts, as it would in production.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import regopy  # noqa: E402
from policy_requests import (  # noqa: E402
    RAADPLEGINGEN,
    VARIANTS,
    build_cases,
    build_raadplegingen,
)

from gateway.config.model import default_claim_mapping  # noqa: E402
from gateway.facts import DecisionInput, RouteFacts  # noqa: E402
from gateway.policy import load_policy_set  # noqa: E402
from gateway.rest.analyser import offline_request  # noqa: E402
from gateway.rest.paths import PathTemplates  # noqa: E402
from gateway.serving.lifecycle import settle_heap  # noqa: E402
from gateway.tokens.claims import map_claims  # noqa: E402


def build_rest() -> tuple[Any, list[tuple[str, DecisionInput, bool]]]:
    """Seed 000's REST decisions (policies/ketenindex): each exchange allowed and refused,
    with the Ketenindex's answer as extra.overleg, analysed as the PEP analyses them."""
    rest_set = load_policy_set([ROOT / "policies" / "ketenindex"])
    templates = PathTemplates(rest_set.rest_templates)
    overleg = {
        "overleg": {
            "voorzitter": {"idType": "UZOVI", "id": "5151"},
            "deelnemers": [{"idType": "AGB", "id": "12345678"}],
        }
    }
    voorzitter = map_claims(
        {"instantie_type": "Zorgkantoor", "uzovi": "5151"}, default_claim_mapping()
    )
    deelnemer = map_claims(
        {"instantie_type": "Zorgaanbieder", "agb": "12345678"}, default_claim_mapping()
    )
    route = RouteFacts("/voorzitter/uitkomsten", "", "UZOVI", "5151", "zorgkantoor")
    event = {
        "type": "INZAGE_VERZOEK_GEDAAN",
        "overlegId": "ovl-1",
        "hoofdbetrokkene": "999993653",
        "afzender": {"idType": "AGB", "id": "12345678"},
    }
    query = "/ketenindex/gebeurtenissen?hoofdbetrokkene=999993653&overleg=ovl-1"
    specs: list[tuple[str, Any, dict[str, Any], bool]] = [
        ("inzage by a deelnemer", deelnemer, {"path": "/voorzitter/uitkomsten/ovl-1"}, True),
        ("inzage by the voorzitter", voorzitter, {"path": "/voorzitter/uitkomsten/ovl-1"}, False),
        ("query by a deelnemer", deelnemer, {"path": query}, True),
        ("gedaan by the deelnemer", deelnemer, {"method": "POST", "body": event}, True),
        ("gedaan by the voorzitter", voorzitter, {"method": "POST", "body": event}, False),
    ]
    built = []
    for name, token, spec, allow in specs:
        operation = offline_request({"path": "/ketenindex/gebeurtenissen", **spec}, templates)
        built.append((name, DecisionInput(token, operation, route, overleg), allow))
    return rest_set, built


def rego_engine(policy_data: Any) -> tuple[regopy.Interpreter, Any]:
    """Build the bundle once; return an interpreter to run it and the bundle."""
    builder = regopy.Interpreter()
    builder.add_data(
        {
            "instanties": [dict(r) for r in policy_data.tables["instanties"]],
            "alleen_in_test": [dict(r) for r in policy_data.tables["alleen_in_test"]],
            "gebonden_afzenders": [dict(r) for r in policy_data.tables["gebonden_afzenders"]],
            "notificatietypen": {
                r["code"]: dict(r) for r in policy_data.tables["notificatietypen"]
            },
        }
    )
    builder.add_module("rfc0008.rego", (ROOT / "bench" / "rego" / "rfc0008.rego").read_text())
    bundle = builder.build(None, ["rfc0008/decision"])
    return regopy.Interpreter(), bundle


def rego_decide(interp: regopy.Interpreter, bundle: Any, rego_input: dict[str, Any]) -> Any:
    interp.set_input(rego_input)
    return interp.query_bundle_entrypoint(bundle, "rfc0008/decision")


def percentiles(samples_ns: list[int]) -> tuple[float, float]:
    ordered = sorted(samples_ns)
    p50 = ordered[len(ordered) // 2] / 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] / 1000
    return p50, p99


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--iterations",
        type=int,
        default=20_000,
        help="compiled-engine decisions per case (Rego runs a tenth)",
    )
    args = parser.parse_args()
    policy_set = load_policy_set([ROOT / "policies" / "iwlz"])
    cases = build_cases()
    interp, bundle = rego_engine(policy_set.data)

    # Both engines must give the same answer before the numbers mean anything.
    for name, facts, rego_input in cases:
        ours = policy_set.decide(facts)
        theirs = json.loads(str(rego_decide(interp, bundle, rego_input)))
        result = theirs["expressions"][0] if "expressions" in theirs else theirs
        want = {"allow": True} if ours.allow else {"allow": False, "reason": ours.reason}
        if result != want:
            print(f"MISMATCH {name}: compiled {want}, rego {result}", file=sys.stderr)
            return 1
        expected_allow = name.startswith("allow")
        if ours.allow != expected_allow:
            print(f"UNEXPECTED {name}: {ours}", file=sys.stderr)
            return 1

    raadplegingen = build_raadplegingen()
    for source, (name, _c, allow) in zip(raadplegingen, RAADPLEGINGEN, strict=True):
        for _ in range(VARIANTS):  # every variant decides as the example does
            decision = policy_set.decide(source.facts())
            if decision.allow != allow:
                print(f"UNEXPECTED {name}: {decision}", file=sys.stderr)
                return 1

    rest_set, rest_cases = build_rest()
    for name, facts, allow in rest_cases:
        if rest_set.decide(facts).allow != allow:
            print(f"UNEXPECTED {name}: {rest_set.decide(facts)}", file=sys.stderr)
            return 1

    decide = policy_set.decide
    rest_decide = rest_set.decide
    rest_ns: list[int] = []
    clock = time.perf_counter_ns
    ours_ns: list[int] = []
    template_ns: list[int] = []
    per_template: list[list[int]] = [[] for _ in raadplegingen]
    settle_heap()  # as the gateway does once serving
    try:
        # One loop per kind: building a template's facts between two RFC0008 decisions
        # would time those (and Rego's, prebuilt like them) on caches the analysis evicted.
        for _ in range(args.iterations):
            for _name, facts, _ri in cases:
                start = clock()
                decide(facts)
                ours_ns.append(clock() - start)
        for _ in range(args.iterations):
            for source, samples in zip(raadplegingen, per_template, strict=True):
                facts = source.facts()  # built as the route builds it, not timed
                start = clock()
                decide(facts)
                samples.append(clock() - start)
        for _ in range(args.iterations):
            for _name, facts, _allow in rest_cases:
                start = clock()
                rest_decide(facts)
                rest_ns.append(clock() - start)
        rego_ns: list[int] = []
        for _ in range(max(50, args.iterations // 10)):
            for _name, _facts, rego_input in cases:
                start = clock()
                rego_decide(interp, bundle, rego_input)
                rego_ns.append(clock() - start)
    finally:
        gc.unfreeze()

    o50, o99 = percentiles(ours_ns)
    r50, r99 = percentiles(rego_ns)
    print(f"cases: {len(cases)} (allowed + every refusal reason), decisions agree")
    print(
        f"compiled engine: {len(ours_ns)} decisions, p50 {o50:.2f} µs, p99 {o99:.2f} µs, "
        f"mean {statistics.fmean(ours_ns) / 1000:.2f} µs"
    )
    print(f"rego (regopy):   {len(rego_ns)} decisions, p50 {r50:.1f} µs, p99 {r99:.1f} µs")
    print(f"speed-up: p50 {r50 / o50:.0f}x, p99 {r99 / o99:.0f}x")
    for samples in per_template:
        template_ns.extend(samples)
    t50, t99 = percentiles(template_ns)
    print(
        f"raadpleging templates ({len(raadplegingen)}: QBR-0001..0004, one refused): "
        f"{len(template_ns)} decisions, p50 {t50:.2f} µs, p99 {t99:.2f} µs "
        f"(target p99 <= 20 µs: {'within' if t99 <= 20.0 else 'over'}; "
        f"rego RFC0008 p99 in this run {r99:.1f} µs)"
    )
    for (name, _claims, allow), samples in zip(RAADPLEGINGEN, per_template, strict=True):
        p50, p99 = percentiles(samples)
        label = f"{name} ({'allowed' if allow else 'refused: binding'})"
        print(f"  {label:32} p50 {p50:6.2f} µs, p99 {p99:6.2f} µs")
    s50, s99 = percentiles(rest_ns)
    print(
        f"REST, seed 000 ({len(rest_cases)}: each exchange allowed and refused): "
        f"{len(rest_ns)} decisions, p50 {s50:.2f} µs, p99 {s99:.2f} µs "
        f"(target p99 <= 20 µs: {'within' if s99 <= 20.0 else 'over'})"
    )
    # Pass/fail on the ratio only (both engines measured in this run); the absolute p99 is
    # reported beside its target: these shared machines vary 2x from day to day.
    ok = r50 / o50 >= 25 and r99 / o99 >= 25
    print(
        f"target (>= 25x faster than Rego, same run): {'met' if ok else 'NOT met'}; "
        f"p99 {o99:.1f} µs against 20 µs on a quiet machine: "
        f"{'within' if o99 <= 20.0 else 'over'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
