#!/usr/bin/env bash
# Cost of recording allocations made on a coroutine's stack (walked on a copy taken with
# process_vm_readv) against the same allocations on the thread's own stack: user and system CPU
# time of bench/coroutine_workload.c, plain and under `leakview record`, median of REPEATS.
#
# usage: bench/coroutines.sh      environment: BENCH_DIR, REPEATS (5), PAIRS (200000)
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
bench_setup coroutines
REPEATS="${REPEATS:-5}"
PAIRS="${PAIRS:-200000}"

log "building leakview (release) and the workload in $WORK"
build_leakview
cc -O2 -g -fomit-frame-pointer -o "$WORK/coroutine_workload" "$ROOT/bench/coroutine_workload.c"


echo "| stack | plain CPU | recorded CPU | extra per malloc/free pair |"
echo "|---|---|---|---|"
for where in coroutine thread; do
    args=("$PAIRS")
    [ "$where" = thread ] && args+=(thread)
    plain=$(median_seconds "%U %S" "$WORK/coroutine_workload" "${args[@]}")
    recorded=$(median_seconds "%U %S" "$LEAKVIEW" record --force -o "$WORK/trace.bin" -- "$WORK/coroutine_workload" "${args[@]}")
    awk -v w="$where" -v p="$plain" -v r="$recorded" -v n="$PAIRS" 'BEGIN {
        printf "| %s | %.3f s | %.3f s | %.2f us |\n", w, p, r, (r - p) / n * 1e6 }'
done
