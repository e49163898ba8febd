"""Cost of one decision-log line: our direct renderer against structlog's processor chain.

    .venv/bin/python bench/bench_log_renderer.py [--instructions]

Four ways to write the same line (same keys, same order, same redaction):

* ``fragments``: what ``GatewayObserver.decision`` does for a typical decision: the line
  from the remembered fragment of its fixed values and the per-request values rendered
  (``DecisionLine``), one ``b"".join``, queued as bytes;

and three from the event flattened by ``DecisionEvent.fields()``:

* ``direct``: :func:`~gateway.observability.logs.emit_json_event` as the observer calls it
  (orjson renders the event once, a byte scan proves it needs no redaction, an f-string adds
  ``logger``/``event``/``level``/``timestamp``);
* ``chain``: ``get_logger(name).info("decision", **fields)`` through the processors
  ``configure_logging`` installs (``add_log_level``, timestamp, ``format_exc_info``,
  ``redact_event``, ``JSONRenderer(serializer=orjson)``), into the same line buffer;
* ``stock``: structlog's own pieces only, no code of ours but the redaction processor:
  ``add_log_level``, ``TimeStamper(fmt="iso", utc=True)``, ``format_exc_info``,
  ``redact_event``, ``JSONRenderer(serializer=orjson.dumps)``, ``BytesLoggerFactory``,
  ``make_filtering_bound_logger``.

Wall clock: interleaved rounds in one run, output to /dev/null, median per mode and the
ratio to ``direct``. ``--instructions`` also counts instructions per line under callgrind
(two runs per mode, 200 and 2,200 lines; the difference over 2,000 lines), the unit of
bench_instructions.py, whose gateway figure (≈1,374k instructions per request with the
upstream round trip) is what a line's cost is compared with.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import orjson
import structlog

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_logging import EVENT, child_instructions  # noqa: E402

from gateway.observability.logs import (  # noqa: E402
    as_record,
    configure_logging,
    emit_bytes,
    emit_json_event,
    flush_pending,
    get_logger,
    render_flat,
)
from gateway.observability.observer import DecisionLine, decision_line  # noqa: E402
from gateway.observability.redact import redact_event  # noqa: E402

ROUNDS = 7
PER_ROUND = 5_000
GATEWAY_INSTRUCTIONS_PER_REQUEST = 689_000  # bench_instructions.py, decision log on (2026-12-04)


def stock_logger(out: Any) -> Any:
    """A logger built from structlog's own processors and factory (writing to *out*)."""
    return structlog.wrap_logger(
        structlog.BytesLoggerFactory(out)(),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact_event,
            structlog.processors.JSONRenderer(serializer=orjson.dumps),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(20),
    ).bind(logger="gateway.decision")


def writers(out: Any) -> dict[str, Any]:
    """One callable per mode, each logging EVENT once."""
    chain = get_logger("gateway.decision")
    stock = stock_logger(out)

    fragments = DecisionLine()

    def from_fragments() -> None:
        pieces = fragments.pieces(EVENT)
        assert pieces is not None  # the typical decision takes this path
        emit_bytes(decision_line(pieces))

    def direct() -> None:
        # As GatewayObserver.decision does: the event flattened, rendered once. Passing the
        # DecisionEvent itself rendered its nested token/operation/decision objects, which
        # the pre-check rightly sends through the full chain with redaction: that measured
        # the chain plus a failed fast path (~906k instructions), not the direct line.
        fields = EVENT.fields()
        emit_json_event("gateway.decision", "info", "decision", fields, body=render_flat(fields))

    def via_chain() -> None:
        chain.info("decision", **as_record(EVENT.fields()))

    def via_stock() -> None:
        stock.info("decision", **as_record(EVENT.fields()))

    return {"fragments": from_fragments, "direct": direct, "chain": via_chain, "stock": via_stock}


def per_line_us(write: Any) -> float:
    start = time.perf_counter()
    for _ in range(PER_ROUND):
        write()
    flush_pending()
    return (time.perf_counter() - start) / PER_ROUND * 1e6


def wall_clock() -> dict[str, float]:
    results: dict[str, list[float]] = {}
    with (
        open("/dev/null", "w") as devnull,
        open("/dev/null", "wb") as devnull_b,
        redirect_stdout(devnull),
    ):
        modes = writers(devnull_b)
        for write in modes.values():  # warm-up
            per_line_us(write)
        for _ in range(ROUNDS):
            for name, write in modes.items():
                results.setdefault(name, []).append(per_line_us(write))
    return {name: statistics.median(values) for name, values in results.items()}


def run_lines(mode: str, lines: int) -> None:
    """Child of ``--instructions``: log *lines* lines by *mode* (after imports and config)."""
    configure_logging("json", "info")
    with (
        open("/dev/null", "w") as devnull,
        open("/dev/null", "wb") as devnull_b,
        redirect_stdout(devnull),
    ):
        write = writers(devnull_b)[mode]
        for _ in range(lines):
            write()
        flush_pending()


def instructions(mode: str, tmp: Path) -> float:
    """Instructions per line of *mode* (callgrind, 2,200 minus 200 lines)."""
    return child_instructions(__file__, mode, (200, 2_200), tmp)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--instructions", action="store_true")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "LINES"))
    args = parser.parse_args()
    if args.child:
        run_lines(args.child[0], int(args.child[1]))
        return
    configure_logging("json", "info")
    medians = wall_clock()
    base = medians["direct"]
    for name, med in medians.items():
        print(f"{name:8s} {med:6.2f} µs/line  ({med / base:4.2f}x direct)")
    if args.instructions:
        with tempfile.TemporaryDirectory(prefix="bench-log-") as tmp:
            for name in medians:
                per_line = instructions(name, Path(tmp))
                share = per_line / GATEWAY_INSTRUCTIONS_PER_REQUEST * 100
                print(
                    f"{name:8s} {per_line / 1000:6.1f}k instructions/line "
                    f"({share:4.2f} % of a gateway request)"
                )


if __name__ == "__main__":
    main()
