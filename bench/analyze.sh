#!/usr/bin/env bash
# Analyzer benchmark: the same C workload recorded by heaptrack and by `leakview record`, then
# heaptrack_print on heaptrack's trace against `leakview stats` and `leakview report` on ours
# (each: load + index, plus what the command prints), and leakview's load benchmark
# (analyzer/benches/load.rs: load + index alone, analyzer memory per lifetime, `--at` queries)
# on our trace and on a synthetic trace of 100 million events. Prints a markdown table for
# BENCHMARKS.md.
#
# usage: bench/analyze.sh [--quick] [--no-big]
#   --quick   500k pairs (1M events) instead of 5M (10M events), one run each
#   --no-big  skip the 100M-event synthetic trace
# environment: REPEATS (default 3, the median is shown), PAIRS (default 5000000: 10M events),
#              BIG_EVENTS (default 100000000), CARGO_TARGET_DIR (where leakview is built),
#              BENCH_DIR (scratch, default a temp dir)
#
# The workload is bench/alloc_workload.c (one thread) with its sizes narrowed to 8 distinct
# values: heaptrack's recording pipeline runs out of memory on the original's 497 sizes.
# Times are medians; CPU time (user+sys, from /usr/bin/time) is shown beside wall time because on
# a shared machine wall time also measures the neighbours. Peak RSS includes the mapped trace.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
REPEATS="${REPEATS:-3}"
PAIRS="${PAIRS:-5000000}"
BIG_EVENTS="${BIG_EVENTS:-100000000}"
BIG=1
for arg in "$@"; do
    case "$arg" in
        --quick) PAIRS=500000; REPEATS=1 ;;
        --no-big) BIG=0 ;;
        *) echo "usage: $0 [--quick] [--no-big]" >&2; exit 2 ;;
    esac
done
bench_setup analyze
export CARGO_TARGET_DIR="$TARGET_DIR"

for tool in heaptrack heaptrack_print cc; do
    command -v "$tool" >/dev/null || { echo "analyze: $tool is required (Debian: apt-get install heaptrack)" >&2; exit 2; }
done

log "building leakview and the load benchmark (release)"
build_leakview
LOAD_BENCH=$(cd "$ROOT" && cargo bench -p leakview-analyzer --bench load --no-run 2>&1 |
    sed -n 's/.*Executable .*(\(.*\)).*/\1/p' | tail -1)
[ -x "$LOAD_BENCH" ] || { echo "analyze: cannot find the load benchmark binary" >&2; exit 1; }

log "building the workload in $WORK"
sed 's/size_t size = 16 + (r % 497);/static const size_t sizes[8] = {16, 24, 32, 48, 64, 128, 256, 512};\n    size_t size = sizes[r % 8];/' \
    "$ROOT/bench/alloc_workload.c" >"$WORK/few_sizes.c"
grep -q 'sizes\[r % 8\]' "$WORK/few_sizes.c" ||
    { echo "analyze: bench/alloc_workload.c changed; cannot narrow its sizes" >&2; exit 1; }
cc -O2 -g -fomit-frame-pointer -pthread -o "$WORK/few_sizes" "$WORK/few_sizes.c"

log "recording $PAIRS pairs with heaptrack"
rm -f "$WORK"/ht.*
heaptrack -o "$WORK/ht" "$WORK/few_sizes" 1 "$PAIRS" >/dev/null 2>"$WORK/heaptrack.log" ||
    { cat "$WORK/heaptrack.log" >&2; exit 1; }
HT_TRACE=$(ls "$WORK"/ht.*)
log "recording $PAIRS pairs with leakview"
"$LEAKVIEW" record --force -o "$WORK/lv.bin" -- "$WORK/few_sizes" 1 "$PAIRS" >/dev/null 2>&1

# measure NAME CMD...: REPEATS runs; prints "wall cpu maxrss_mib" (medians).
measure() {
    local name="$1"; shift
    local out="$WORK/$name.times"
    : >"$out"
    for _ in $(seq "$REPEATS"); do
        /usr/bin/time -f "%e %U %S %M" -o "$WORK/time.txt" "$@" >/dev/null 2>"$WORK/stderr.txt" ||
            { echo "analyze: failed: $*" >&2; cat "$WORK/stderr.txt" >&2; exit 1; }
        awk '{ printf "%s %.2f %d\n", $1, $2 + $3, $4 / 1024 }' "$WORK/time.txt" >>"$out"
    done
    local w c m
    w=$(sort -n -k1 "$out" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
    c=$(sort -n -k2 "$out" | awk '{ v[NR] = $2 } END { print v[int((NR + 1) / 2)] }')
    m=$(sort -n -k3 "$out" | awk '{ v[NR] = $3 } END { print v[int((NR + 1) / 2)] }')
    echo "$w $c $m"
}

# result FILE KEY: a value of the load benchmark's RESULT line.
result() { sed -n 's/^RESULT //p' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

# load_bench NAME ARGS...: REPEATS runs of the load benchmark; keeps the one with the median
# load wall time in $WORK/NAME.result.
load_bench() {
    local name="$1"; shift
    : >"$WORK/$name.runs"
    for k in $(seq "$REPEATS"); do
        "$LOAD_BENCH" "$@" >"$WORK/$name.$k" 2>&1 || { cat "$WORK/$name.$k" >&2; exit 1; }
        echo "$(result "$WORK/$name.$k" load_wall_s) $k" >>"$WORK/$name.runs"
    done
    local pick
    pick=$(sort -n "$WORK/$name.runs" | awk '{ v[NR] = $2 } END { print v[int((NR + 1) / 2)] }')
    cp "$WORK/$name.$pick" "$WORK/$name.result"
}

log "heaptrack_print"
read -r HT_WALL HT_CPU HT_RSS < <(measure heaptrack_print heaptrack_print "$HT_TRACE")
log "leakview stats"
read -r ST_WALL ST_CPU ST_RSS < <(measure stats "$LEAKVIEW" stats "$WORK/lv.bin")
log "leakview report"
read -r RP_WALL RP_CPU RP_RSS < <(measure report "$LEAKVIEW" report "$WORK/lv.bin")
log "load benchmark on the recorded trace"
load_bench small --load "$WORK/lv.bin"
EVENTS=$("$LEAKVIEW" stats "$WORK/lv.bin" | awk '/^events/ { gsub(",", "", $2); print $2 }')
if [ "$BIG" = 1 ]; then
    log "load benchmark on a synthetic trace of $BIG_EVENTS events (written once, then kept)"
    BIG_TRACE="$TARGET_DIR/leakview-bench/synthetic-$BIG_EVENTS.bin"
    [ -f "$BIG_TRACE" ] || "$LOAD_BENCH" "$BIG_EVENTS" >/dev/null
    load_bench big --load "$BIG_TRACE"
fi

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1fx", a / b; else print "-" }'; }
ms() { awk -v s="$1" 'BEGIN { printf "%.0f ms", s * 1000 }'; }

echo
echo "Command: \`bench/analyze.sh $*\` (REPEATS=$REPEATS, median shown), $(nproc) cores, load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "Workload: bench/alloc_workload.c with 8 distinct sizes, 1 thread, $PAIRS malloc/free pairs ($EVENTS leakview events)."
echo
echo "| tool (same workload) | wall | CPU (user+sys) | peak RSS | leakview faster (wall / CPU) |"
echo "|---|---|---|---|---|"
echo "| heaptrack_print (heaptrack $(heaptrack --version 2>/dev/null | awk '{ print $2 }')) | $HT_WALL s | $HT_CPU s | $HT_RSS MiB | — |"
echo "| leakview stats | $ST_WALL s | $ST_CPU s | $ST_RSS MiB | $(ratio "$HT_WALL" "$ST_WALL") / $(ratio "$HT_CPU" "$ST_CPU") |"
echo "| leakview report | $RP_WALL s | $RP_CPU s | $RP_RSS MiB | $(ratio "$HT_WALL" "$RP_WALL") / $(ratio "$HT_CPU" "$RP_CPU") |"
LW=$(result "$WORK/small.result" load_wall_s); LC=$(result "$WORK/small.result" load_cpu_s)
echo "| leakview load + index only (load benchmark) | $LW s | $LC s | $(result "$WORK/small.result" peak_rss_mib) MiB | $(ratio "$HT_WALL" "$LW") / $(ratio "$HT_CPU" "$LC") |"
echo
echo "| trace | events | lifetimes | load + index: wall / CPU | analyzer memory per lifetime: peak during load / after / tables | worst \`--at\` (outstanding set + group by stack) |"
echo "|---|---|---|---|---|---|"
row() {
    local f="$WORK/$2.result"
    echo "| $1 | $(result "$f" events) | $(result "$f" lifetimes) | $(result "$f" load_wall_s) s / $(result "$f" load_cpu_s) s | $(result "$f" peak_anon_b_per_lifetime) / $(result "$f" kept_anon_b_per_lifetime) / $(result "$f" tables_b_per_lifetime) B | $(result "$f" worst_at_ms) ms |"
}
row "the workload above (leakview record)" small
if [ "$BIG" = 1 ]; then
    row "synthetic (analyzer/benches/load.rs: 4 threads, 200k stacks, varied sizes)" big
fi
echo
echo "Analyzer memory is anonymous resident memory (everything but the mapped trace), sampled every"
echo "millisecond during the load; \`--at\` queries are medians of three at 10%, 50%, peak and end."
