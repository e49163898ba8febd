"""Cost of the decision log: bytes per decision line and µs per ``observer.decision()``.

Run: ``.venv/bin/python bench/bench_logging.py`` (about 10 s). Logging on and off are
measured side by side in the same run (interleaved rounds, median of rounds), output to
/dev/null so the terminal is not what is measured. Also reports the audit file (fsync
``never`` and ``interval``) on top of logging.
"""

from __future__ import annotations

import io
import statistics
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
from gateway.observability.logs import configure_logging  # noqa: E402
from gateway.observability.metrics import GatewayMetrics  # noqa: E402
from gateway.observability.observer import GatewayObserver  # noqa: E402
from gateway.policy.decision import AuditValues, Decision  # noqa: E402

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
    decision=Decision(
        allow=True,
        status=200,
        rule="allow_notificatie",
        location="policies/iwlz/notificaties.yaml:12",
        policy_version="sha256:3f1c9e",
        audit=AUDIT,
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


def main() -> None:
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


if __name__ == "__main__":
    main()
