"""Cost of the decision log: bytes per decision line and µs per ``observer.decision()``.

Run: ``.venv/bin/python bench/bench_logging.py [--instructions]`` (about 10 s; with
``--instructions`` a few minutes more: callgrind, 1,000 and 3,000 requests per mode, the
difference over 2,000: a request's event built as the pipeline builds it, the same cached
token facts, a new operation and decision copy with its audit values, then
``observer.decision`` and one event-loop iteration with the line's flush). Logging on and off are
measured side by side in the same run (interleaved rounds, median of rounds), output to
/dev/null so the terminal is not what is measured. Also reports the audit file (fsync
``never`` and ``interval``) on top of logging.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.config.model import AuditConfig  # noqa: E402
from gateway.facts import OperationFacts, TokenFacts  # noqa: E402
from gateway.observability.audit_trail import AuditWriter  # noqa: E402
from gateway.observability.events import DecisionEvent  # noqa: E402
from gateway.observability.logs import configure_logging, flush_pending  # noqa: E402
from gateway.observability.metrics import GatewayMetrics  # noqa: E402
from gateway.observability.observer import GatewayObserver  # noqa: E402
from gateway.policy.decision import AuditValues, Decision, with_audit  # noqa: E402

ROUTE = "/deelnemers/uzovi/5151/graphql"
AUDIT: AuditValues = {
    "event_type": "NIEUWE_INDICATIE_ZORGKANTOOR",
    "afzender": "KVK:62253778",
    "ontvanger": "UZOVI:5151",
    "subjects": ("Client",),
    "records": ("a1b2c3d4-0000-4000-8000-000000000001",),
}
EVENT = DecisionEvent(
    decision_id="0b6a8c1e-6f7d-4f59-9a57-2f1f3c4d5e6f",
    route=ROUTE,
    trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
    request_id="r-42",
    outcome="allow",
    status=200,
    token=TokenFacts(
        claims={},
        client_id="ciz",
        subject="ciz",
        instantie_type="Onderneming",
        identifier_type="KVK",
        identifier="62253778",
    ),
    operation=OperationFacts("mutation", "zendNotificatie", "zendNotificatie", {}),
    decision=(
        DECIDED := Decision(
            allow=True,
            status=200,
            rule="allow_notificatie",
            location="policies/iwlz/notificaties.yaml:12",
            policy_version="sha256:3f1c9e",
            audit=AUDIT,
        )
    ),
    audit=AUDIT,
    upstream_ms=2.734,
    policy_ms=0.006,
    total_ms=3.912,
)
ROUNDS = 7
PER_ROUND = 5_000


def per_call_us(observer: GatewayObserver) -> float:
    start = time.perf_counter()
    for _ in range(PER_ROUND):
        observer.decision(EVENT)
    return (time.perf_counter() - start) / PER_ROUND * 1e6


def run_requests(log: bool, requests: int) -> None:
    """Child of ``--instructions``: *requests* decisions as the pipeline reports them."""
    configure_logging("json", "info")
    observer = GatewayObserver(GatewayMetrics(routes=frozenset({ROUTE})), decision_log=log)
    token, decided = EVENT.token, DECIDED

    async def serve() -> None:
        for _ in range(requests):
            event = DecisionEvent(
                decision_id=EVENT.decision_id,
                route=ROUTE,
                trace_id=EVENT.trace_id,
                request_id=EVENT.request_id,
                audit={},
            )
            event.token = token
            event.operation = OperationFacts("mutation", "zendNotificatie", "zendNotificatie", {})
            event.decision = decision = with_audit(decided, dict(AUDIT))
            event.policy_ms = 0.006
            event.audit = decision.audit or {}
            event.outcome, event.status, event.upstream_ms = "allow", 200, 2.734
            event.total_ms = 3.912
            observer.decision(event)
            await asyncio.sleep(0)  # the loop iteration that flushes the line

    with open("/dev/null", "w") as devnull, redirect_stdout(devnull):
        asyncio.run(serve())
        flush_pending()


def child_instructions(script: str, mode: str, counts: tuple[int, int], tmp: Path) -> float:
    """Instructions per call of ``python SCRIPT --child MODE N`` (callgrind, the larger N
    minus the smaller, divided by their difference: start-up cancels)."""
    totals = []
    for n in counts:
        out = tmp / f"{mode}-{n}.out"
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                sys.executable,
                script,
                "--child",
                mode,
                str(n),
            ],
            check=True,
            capture_output=True,
        )
        summary = [ln for ln in out.read_text().splitlines() if ln.startswith("summary:")]
        totals.append(int(summary[0].split()[1]))
    return (totals[1] - totals[0]) / (counts[1] - counts[0])


def instructions(log: bool, tmp: Path) -> float:
    """Instructions per request (callgrind, 3,000 minus 1,000 requests)."""
    return child_instructions(__file__, "on" if log else "off", (1_000, 3_000), tmp)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--instructions", action="store_true")
    parser.add_argument("--child", nargs=2, metavar=("LOG", "REQUESTS"))
    args = parser.parse_args()
    if args.child:
        run_requests(args.child[0] == "on", int(args.child[1]))
        return
    configure_logging("json", "info")
    metrics = GatewayMetrics(routes=frozenset({ROUTE}))
    tmp = Path(tempfile.mkdtemp(prefix="bench-audit-"))
    observers = {
        "logging off": GatewayObserver(metrics, decision_log=False),
        "logging on (JSON)": GatewayObserver(metrics, decision_log=True),
        "logging on + audit fsync=never": GatewayObserver(
            metrics, audit=AuditWriter(AuditConfig(path=tmp / "n.jsonl", fsync="never"))
        ),
        "logging on + audit fsync=interval": GatewayObserver(
            metrics, audit=AuditWriter(AuditConfig(path=tmp / "i.jsonl", fsync="interval"))
        ),
    }
    sample = io.StringIO()
    with redirect_stdout(sample):
        observers["logging on (JSON)"].decision(EVENT)
    line = sample.getvalue().splitlines()[0]

    results: dict[str, list[float]] = {name: [] for name in observers}
    with open("/dev/null", "w") as devnull, redirect_stdout(devnull):
        for observer in observers.values():  # warm-up
            per_call_us(observer)
        for _ in range(ROUNDS):
            for name, observer in observers.items():
                results[name].append(per_call_us(observer))
    for observer in observers.values():
        observer.close()

    print(f"decision log line: {len(line.encode())} bytes (typical allow, JSON)")
    print(line)
    base = statistics.median(results["logging off"])
    for name, values in results.items():
        med = statistics.median(values)
        print(f"{name:36s} {med:7.2f} µs/decision  ({med / base:4.1f}x off)")
    if args.instructions:
        with tempfile.TemporaryDirectory(prefix="bench-logging-") as scratch:
            on, off = (instructions(log, Path(scratch)) for log in (True, False))
        print(f"instructions/request: log on {on / 1000:.1f}k, off {off / 1000:.1f}k")
        print(f"the decision log: {(on - off) / 1000:.1f}k instructions/request")


if __name__ == "__main__":
    main()
