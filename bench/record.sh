#!/usr/bin/env bash
# Recorder overhead benchmark: wall and CPU time of a program run plain, under `leakview record`
# and under `heaptrack -r` (heaptrack's fastest, record-only mode), plus trace bytes per event and
# peak RSS. Prints a markdown table for BENCHMARKS.md.
#
# usage: bench/record.sh [--quick] [--no-real]
#   --quick    500k pairs instead of 5M, one run each instead of REPEATS
#   --no-real  skip the sqlite3 and python3 runs
# environment: REPEATS (default 3, the median is shown), PAIRS (default 5000000),
#              CARGO_TARGET_DIR (where leakview is built), BENCH_DIR (scratch, default a temp dir)
#
# Times are medians; "x" is the ratio to the plain run. CPU time (user+sys, from /usr/bin/time)
# is shown beside wall time because on a shared machine wall time also measures the neighbours.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
REPEATS="${REPEATS:-3}"
PAIRS="${PAIRS:-5000000}"
REAL=1
for arg in "$@"; do
    case "$arg" in
        --quick) PAIRS=500000; REPEATS=1 ;;
        --no-real) REAL=0 ;;
        *) echo "usage: $0 [--quick] [--no-real]" >&2; exit 2 ;;
    esac
done
bench_setup bench

log "building leakview (release) and the workload in $WORK"
build_leakview
build_alloc_workload

if ! command -v heaptrack >/dev/null; then
    log "installing heaptrack"
    if [ "$(id -u)" = 0 ]; then
        apt-get install -y -qq heaptrack >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq heaptrack >/dev/null; }
    else
        sudo apt-get install -y -qq heaptrack >/dev/null
    fi
fi
for tool in heaptrack zstd; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is required" >&2; exit 2; }
done

# measure OUTFILE CMD...: appends "wall cpu maxrss_kb" of one run to OUTFILE.
measure() {
    local out="$1"; shift
    /usr/bin/time -f "%e %U %S %M" -o "$WORK/time.txt" "$@" >/dev/null 2>"$WORK/stderr.txt" || {
        echo "bench: failed: $*" >&2; cat "$WORK/stderr.txt" >&2; exit 1; }
    awk '{ printf "%s %.3f %s\n", $1, $2 + $3, $4 }' "$WORK/time.txt" >>"$out"
}

# median FILE COLUMN
median() {
    sort -n -k"$2" "$1" | awk -v c="$2" '{ v[NR] = $c } END { print v[int((NR + 1) / 2)] }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }'; }

# leakview trace bytes per event: the file's length in bytes (every chunk it holds, headers and
# unfilled tails included) over all its events, stack nodes and modules included, as counted by
# `leakview report --format json` (stats prints both in human units).
leakview_bytes_per_event() {
    local events
    events=$("$LEAKVIEW" report --format json --top 1 "$1" | jq '.trace.events')
    awk -v s="$(stat -c %s "$1")" -v e="$events" 'BEGIN { if (e > 0) printf "%.2f", s / e; else print "-" }'
}

# heaptrack -r stream bytes per allocation/free event (its compressed raw file)
heaptrack_bytes_per_event() {
    local file="$1" events
    events=$(zstd -dc <"$file" | grep -c '^[+-] ' || true)
    awk -v s="$(stat -c %s "$file")" -v e="$events" 'BEGIN { if (e > 0) printf "%.2f", s / e; else print "-" }'
}

ROWS=()
# bench NAME CMD...: runs the three variants REPEATS times and adds a table row.
bench() {
    local name="$1"; shift
    local plain="$WORK/plain.txt" lv="$WORK/leakview.txt" ht="$WORK/heaptrack.txt"
    : >"$plain"; : >"$lv"; : >"$ht"
    for _ in $(seq "$REPEATS"); do
        log "$name: plain"
        measure "$plain" "$@"
        log "$name: leakview record"
        rm -f "$WORK"/trace*.bin
        measure "$lv" "$LEAKVIEW" record --force -o "$WORK/trace.bin" -- "$@"
        log "$name: heaptrack -r"
        rm -f "$WORK"/ht.raw.zst
        measure "$ht" heaptrack -r -o "$WORK/ht" "$@"
    done
    local pw pc pm lw lc lm hw hc
    pw=$(median "$plain" 1); pc=$(median "$plain" 2); pm=$(median "$plain" 3)
    lw=$(median "$lv" 1); lc=$(median "$lv" 2); lm=$(median "$lv" 3)
    hw=$(median "$ht" 1); hc=$(median "$ht" 2)
    ROWS+=("| $name | ${pw} s / ${pc} s | ${lw} s ($(ratio "$lw" "$pw")) / ${lc} s ($(ratio "$lc" "$pc")) | ${hw} s ($(ratio "$hw" "$pw")) / ${hc} s ($(ratio "$hc" "$pc")) | $(leakview_bytes_per_event "$WORK/trace.bin") | $(heaptrack_bytes_per_event "$WORK/ht.raw.zst") | $((pm / 1024)) → $((lm / 1024)) MiB |")
}

bench "C workload, 1 thread, $PAIRS pairs" "$WORK/alloc_workload" 1 "$PAIRS"
bench "C workload, 2 threads, $PAIRS pairs" "$WORK/alloc_workload" 2 "$PAIRS"

if [ "$REAL" = 1 ]; then
    # sqlite3: build a 200k-row table with an index, then query it.
    cat >"$WORK/sqlite.sql" <<'SQL'
CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, value REAL);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000)
INSERT INTO t SELECT x, printf('name-%d-%s', x, hex(randomblob(8))), x * 0.5 FROM c;
CREATE INDEX t_name ON t(name);
SELECT count(*), sum(value) FROM t WHERE name LIKE 'name-1%';
SELECT name FROM t ORDER BY value DESC LIMIT 5;
SQL
    if command -v sqlite3 >/dev/null; then
        bench "sqlite3 (200k rows, index, queries)" sqlite3 :memory: ".read $WORK/sqlite.sql"
    else
        log "sqlite3 not found: skipped"
    fi
    PYTHON="$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null || true)"
    if [ -n "$PYTHON" ]; then
        cat >"$WORK/work.py" <<'PY'
import json
data = [{"id": i, "name": f"item-{i}", "tags": [str(j) for j in range(i % 7)]} for i in range(150000)]
text = json.dumps(data)
back = json.loads(text)
index = {d["name"]: d for d in back}
print(len(text), len(index))
PY
        # Set for all three runs; through `env` the recorded process would be env, not python.
        export PYTHONMALLOC=malloc
        bench "python3 (PYTHONMALLOC=malloc, json of 150k dicts)" "$PYTHON" "$WORK/work.py"
        unset PYTHONMALLOC
    else
        log "python3 not found: skipped"
    fi
fi

echo
echo "Command: \`bench/record.sh $*\` (REPEATS=$REPEATS, median shown), $(nproc) cores, $(uname -r)"
echo
echo "| workload | plain: wall / CPU | leakview record: wall / CPU | heaptrack -r: wall / CPU | leakview bytes/event | heaptrack -r bytes/event | peak RSS plain → leakview |"
echo "|---|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
