#!/usr/bin/env bash
# What short-lived threads cost: bench/thread_churn.c starts and joins THREADS threads one after
# another, plain and under `leakview record` (trace in BENCH_DIR, so on that filesystem); prints
# the wall time of each (median of REPEATS) and the trace's length and disk usage.
#
# usage: bench/threads.sh      environment: BENCH_DIR, REPEATS (3), THREADS (20000)
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
bench_setup threads
REPEATS="${REPEATS:-3}"
THREADS="${THREADS:-20000}"

log "building leakview (release) and the workload in $WORK"
build_leakview
cc -O2 -g -pthread -o "$WORK/thread_churn" "$ROOT/bench/thread_churn.c"


plain=$(median_seconds "%e" "$WORK/thread_churn" "$THREADS")
recorded=$(median_seconds "%e" "$LEAKVIEW" record --force -o "$WORK/trace.bin" -- "$WORK/thread_churn" "$THREADS")
echo "| threads | filesystem | plain wall | leakview record wall | trace length | trace on disk |"
echo "|---|---|---|---|---|---|"
echo "| $THREADS | $(stat -f -c %T "$WORK") | ${plain} s | ${recorded} s | $(($(stat -c %s "$WORK/trace.bin") / 1048576)) MiB | $(($(du -k "$WORK/trace.bin" | cut -f1) / 1024)) MiB |"
