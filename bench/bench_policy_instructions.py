"""Instructions per raadpleging template decision (callgrind), beside bench_policy.py.

    .venv/bin/python bench/bench_policy_instructions.py [--decisions 100]

bench_policy.py times decisions in wall-clock microseconds, which on a shared 2-core
machine move with whatever else runs. Instructions executed do not: this runs itself under
``valgrind --tool=callgrind --collect-atstart=no``, builds each template's requests as the
register route builds them (bench_policy.TemplateRequests: fresh facts, dates varied), and
counts only inside ``operator.call`` (``--toggle-collect=_operator_call``, one dump after
each; nothing else calls it): one call runs the decisions, the next the same loop over the
same facts calling an empty function, and the difference divided by the count is the
instructions of one decision. Then the same for bench_policy's RFC0008 notification cases
(zendNotificatie, allowed and every refusal reason; facts prebuilt as there), reported as
their mean.
About 200k instructions of CPython make 20 µs on these machines. Bounded: ~1 minute.
"""

from __future__ import annotations

import argparse
import operator
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def child(decisions: int) -> None:
    """Under callgrind: for each template, one counted run of *decisions* decisions and one
    of the empty loop (the facts of both built beforehand, uncounted)."""
    sys.path.insert(0, str(HERE))
    from policy_requests import RAADPLEGINGEN, ROOT, VARIANTS, build_cases, build_raadplegingen

    from gateway.policy import load_policy_set

    policy_set = load_policy_set([ROOT / "policies" / "iwlz"])
    decide = policy_set.decide

    def empty(_facts: Any) -> None:
        return None

    def run(fn: Any, batch: list[Any]) -> int:
        for facts in batch:
            fn(facts)
        return 0

    for source, (name, _claims, allow) in zip(build_raadplegingen(), RAADPLEGINGEN, strict=True):
        for _ in range(VARIANTS):  # warm, as bench_policy: plans compiled, each variant seen
            assert decide(source.facts()).allow is allow, name
        batch = [source.facts() for _ in range(decisions)]
        operator.call(run, decide, batch)
        operator.call(run, empty, batch)
    for _name, facts, _rego in build_cases():
        decide(facts)
        batch = [facts] * decisions
        operator.call(run, decide, batch)
        operator.call(run, empty, batch)


def totals(out: Path) -> list[int]:
    """The instruction total of each dump (``out.1``, ``out.2``, ...), in order."""
    dumps = sorted(out.parent.glob(out.name + ".*"), key=lambda p: int(p.suffix[1:]))
    found = []
    for dump in dumps:
        match = re.search(r"^(?:summary|totals): (\d+)", dump.read_text(), re.M)
        found.append(int(match.group(1)) if match else 0)
    return found


def operator_call_counts(script: str, args: list[str], keep: Path | None = None) -> list[int]:
    """Run ``python SCRIPT --child ARGS`` under callgrind, counting only inside each
    ``operator.call`` (one dump after each): the instruction totals of the dumps, in order.
    *keep*: a directory to leave the dumps in."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("valgrind is required (apt-get install valgrind)")
    with tempfile.TemporaryDirectory() as tmp:
        out = (keep or Path(tmp)) / "callgrind.out"
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                valgrind,
                "--tool=callgrind",
                "--collect-atstart=no",
                "--toggle-collect=_operator_call",
                "--dump-after=_operator_call",
                f"--callgrind-out-file={out}",
                sys.executable,
                script,
                "--child",
                *args,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return totals(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=100, help="decisions per template")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.decisions)
        return 0
    from policy_requests import RAADPLEGINGEN, build_cases

    notifications = len(build_cases())
    counts = operator_call_counts(__file__, [f"--decisions={args.decisions}"])
    expected = 2 * (len(RAADPLEGINGEN) + notifications)
    if len(counts) < expected:
        raise SystemExit(f"expected {expected} dumps, found {len(counts)}")
    print(f"instructions per template decision (callgrind, {args.decisions} decisions each):")
    every = []
    for n, (name, _claims, allow) in enumerate(RAADPLEGINGEN):
        decided, empty = counts[2 * n], counts[2 * n + 1]
        per = (decided - empty) / args.decisions
        every.append(per)
        label = f"{name} ({'allowed' if allow else 'refused: binding'})"
        print(f"  {label:32} {per / 1000:7.1f}k instructions")
    print(
        f"largest {max(every) / 1000:.1f}k (~200k instructions of CPython is 20 µs here); "
        f"mean {sum(every) / len(every) / 1000:.1f}k"
    )
    start = 2 * len(RAADPLEGINGEN)
    rfc = [
        (counts[start + 2 * n] - counts[start + 2 * n + 1]) / args.decisions
        for n in range(notifications)
    ]
    print(
        f"RFC0008 notification decision (bench_policy's {notifications} cases): "
        f"mean {sum(rfc) / len(rfc) / 1000:.1f}k, largest {max(rfc) / 1000:.1f}k instructions"
    )
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    sys.exit(main())
