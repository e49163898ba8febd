"""Cost of analysing a GraphQL request: parse-cache hit vs miss, with and without schema.

Run: ``.venv/bin/python bench/bench_parse.py [--seconds S]`` (bounded: about 4*S
seconds per shape, default S=1.5; well under two minutes). Prints the median µs per
``Analyser.analyse`` and the hit/miss ratio, next to graphql-core's bare ``parse``
and ``validate`` measured in the same run as the baseline. Timing is never asserted:
these machines are noisy, read the ratios.

``--calls N`` instead runs the whole analysis step (``gateway.pep.analyse.analyse``: JSON
body, parse-cache hit, facts) on the gateway benchmark's request N times, untimed, for
callgrind: instructions per request = (count at 2N - count at N) / N::

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        .venv/bin/python bench/bench_parse.py --calls 500   # then --calls 1000
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from graphql import parse, validate  # noqa: E402

from gateway.config.model import GraphQLLimits  # noqa: E402
from gateway.graphql import BUNDLED_SCHEMA, Analyser, GraphQLRequest, load_schema  # noqa: E402
from gateway.pep.analyse import analyse  # noqa: E402

FIXTURES = ROOT / "tests" / "graphql" / "fixtures"
SHAPES = [
    ("seed 003 example (7 variables)", "seed_003_example", "seed_003_variables"),
    ("one $notificatieInput variable", "one_variable", "one_variable_variables"),
    ("inline literals", "inline_literals", None),
]


def _median_us(fn: Callable[[], object], seconds: float, batch: int) -> float:
    """Median µs per call over batches run for about ``seconds``."""
    samples: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(samples) < 5:
        start = time.perf_counter()
        for _ in range(batch):
            fn()
        samples.append((time.perf_counter() - start) / batch * 1e6)
    return statistics.median(samples)


def _calls(analyser: Analyser, calls: int) -> None:
    """The analysis step on the benchmark's request body, *calls* times after a warm-up."""
    body = json.dumps(
        {
            "query": (FIXTURES / "seed_003_example.graphql").read_text(encoding="utf-8"),
            "variables": json.loads((FIXTURES / "seed_003_variables.json").read_text()),
            "operationName": "zendNotificatie",
        }
    ).encode()
    for _ in range(50 + calls):
        analyse(body, "application/json", analyser)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.5, help="time per measurement")
    parser.add_argument("--calls", type=int, default=0, help="untimed calls (callgrind)")
    args = parser.parse_args()
    schema = load_schema(BUNDLED_SCHEMA)
    limits = GraphQLLimits()
    if args.calls:
        _calls(Analyser(limits, schema=schema), args.calls)
        return
    print(f"{'shape':34} {'schema':6} {'hit µs':>8} {'miss µs':>9} {'miss/hit':>9}")
    for label, query_name, variables_name in SHAPES:
        query = (FIXTURES / f"{query_name}.graphql").read_text(encoding="utf-8")
        variables = (
            json.loads((FIXTURES / f"{variables_name}.json").read_text(encoding="utf-8"))
            if variables_name
            else {}
        )
        request = GraphQLRequest(query=query, variables=variables, operation_name=None)
        for with_schema in (False, True):
            chosen = schema if with_schema else None
            cached = Analyser(limits, schema=chosen)
            cached.analyse(request)  # warm: the next calls are hits
            uncached = Analyser(limits, schema=chosen, cache_size=0)  # every call a miss
            hit = _median_us(partial(cached.analyse, request), args.seconds, 500)
            miss = _median_us(partial(uncached.analyse, request), args.seconds, 20)
            print(
                f"{label:34} {'yes' if with_schema else 'no':6} {hit:8.1f} {miss:9.1f} "
                f"{miss / hit:8.0f}x"
            )
    seed = (FIXTURES / "seed_003_example.graphql").read_text(encoding="utf-8")
    document = parse(seed, no_location=True)
    parse_us = _median_us(lambda: parse(seed, no_location=True), args.seconds, 20)
    validate_us = _median_us(lambda: validate(schema, document), args.seconds, 20)
    print(
        f"baseline graphql-core, seed 003: parse {parse_us:.0f} µs, validate {validate_us:.0f} µs"
    )


if __name__ == "__main__":
    main()
