#!/usr/bin/env bash
# Fixed cost of a recording: what `leakview record` adds to a program that allocates almost
# nothing (starting the command, the recorder's start in the program, settling the trace after
# it ends), against the plain program and `heaptrack -r`. Wall and CPU time per run, in
# milliseconds, from `perf stat -r REPEATS` (mean over the runs, CPU = task-clock of every
# process of the run). Prints a markdown table for BENCHMARKS.md.
#
# usage: bench/fixed_cost.sh [LEAKVIEW]
#   LEAKVIEW  a leakview binary to measure instead of the release build here (for comparing
#             builds: run the script once per binary)
# environment: REPEATS (default 50), CARGO_TARGET_DIR (where leakview is built),
#              BENCH_DIR (scratch, default a temp dir)
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
REPEATS="${REPEATS:-50}"
bench_setup fixed_cost

for tool in perf heaptrack sqlite3; do
    command -v "$tool" >/dev/null || { echo "fixed_cost: $tool is required" >&2; exit 2; }
done
if [ $# -ge 1 ]; then
    LEAKVIEW="$1"
else
    log "building leakview (release)"
    build_leakview
fi

# per_run CMD...: CPU milliseconds of CMD (every process of it), the mean over REPEATS runs.
per_run() {
    perf stat -x, -r "$REPEATS" -e task-clock -o "$WORK/stat.csv" -- "$@" >/dev/null 2>&1 || {
        echo "fixed_cost: failed: $*" >&2; exit 1; }
    awk -F, '$3 == "task-clock" { printf "%.2f", $1 }' "$WORK/stat.csv"
}

# wall_ms CMD...: wall milliseconds of CMD, the mean over REPEATS runs in a row.
wall_ms() {
    local start end
    start=$(date +%s%N)
    for _ in $(seq "$REPEATS"); do "$@" >/dev/null 2>&1; done
    end=$(date +%s%N)
    awk -v s="$start" -v e="$end" -v n="$REPEATS" 'BEGIN { printf "%.2f", (e - s) / n / 1e6 }'
}

ROWS=()
row() {
    local name="$1"; shift
    log "$name"
    local cpu wall lv_cpu lv_wall ht_cpu ht_wall
    cpu=$(per_run "$@"); wall=$(wall_ms "$@")
    lv_cpu=$(per_run "$LEAKVIEW" record --force -o "$WORK/trace.bin" -- "$@")
    lv_wall=$(wall_ms "$LEAKVIEW" record --force -o "$WORK/trace.bin" -- "$@")
    ht_cpu=$(per_run heaptrack -r -o "$WORK/ht" "$@")
    ht_wall=$(wall_ms heaptrack -r -o "$WORK/ht" "$@")
    ROWS+=("| $name | $wall / $cpu | $lv_wall / $lv_cpu | $ht_wall / $ht_cpu |")
}

row "/bin/true" /bin/true
row "sqlite3 :memory: 'select 1'" sqlite3 :memory: "select 1"

echo
echo "Command: \`bench/fixed_cost.sh\` (REPEATS=$REPEATS, means), $(nproc) cores, $(uname -r)"
echo
echo "| program | plain: wall / CPU ms | leakview record: wall / CPU ms | heaptrack -r: wall / CPU ms |"
echo "|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
