#!/usr/bin/env bash
# Instructions and allocations per request, counted by callgrind: a figure that, unlike the
# overhead bench's timings, does not move with the machine's load. Runs the overhead bench in
# its callgrind mode; the argument is the number of requests per row (default 1000: what comes
# with time rather than with requests, the usage writer's batches and the caches' refreshes, is
# spread over more requests; with 200 the figures came out 2–9 % higher and moved by up to 2.5 %
# between runs, with 1000 by at most 1 %).
#
#   scripts/instructions.sh        # under a minute once the release build is there
#   scripts/instructions.sh 200
#
# TOLLGATE_BENCH_DIALECTS and TOLLGATE_BENCH_CHUNKS apply as in the bench. The gateway runs on
# one CPU (TOLLGATE_BENCH_GATEWAY_CPUS, default 1), as in the timings' acceptance setting: with
# one CPU it runs a current-thread scheduler, whose work does not depend on how its threads
# happened to interleave (with two worker threads a stream row moved by 4 % between runs).
set -euo pipefail

for tool in valgrind callgrind_control; do
    if ! command -v "$tool" >/dev/null; then
        echo "$0: $tool not found; install valgrind (e.g. apt-get install valgrind)" >&2
        exit 1
    fi
done
requests="${1:-1000}"
if ! [[ "$requests" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 [requests per row, default 1000]" >&2
    exit 2
fi

cd "$(dirname "$0")/.."
TOLLGATE_BENCH_GATEWAY_CPUS="${TOLLGATE_BENCH_GATEWAY_CPUS:-1}" \
    TOLLGATE_BENCH_CALLGRIND="$requests" cargo bench --bench overhead
