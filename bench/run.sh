#!/usr/bin/env bash
# `make bench`: every benchmark, each bounded in time, each comparing against a baseline
# measured in the same run (these machines are shared and noisy: read the ratios).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
mkdir -p bench/results

run() {
    local name=$1; shift
    echo
    echo "== $name =="
    "$PY" "$@" | tee "bench/results/$name.txt"
}

run tokens   bench/bench_tokens.py
run parse    bench/bench_parse.py --seconds 1
run policy   bench/bench_policy.py
run policy_instructions bench/bench_policy_instructions.py
run policy_request bench/bench_policy_request.py
run logging  bench/bench_logging.py
run log_renderer bench/bench_log_renderer.py
run gateway  bench/bench_gateway.py
run instructions bench/bench_instructions.py
run workers  bench/bench_workers.py
run workers_scaling bench/bench_workers.py --servers ours --workers 1 2 --rounds 3
run coldstart bench/bench_coldstart.py --runs 5
run delivery bench/bench_delivery.py
echo
echo "results in bench/results/"
