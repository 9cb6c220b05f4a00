#!/usr/bin/env bash
# Recorder cost in instructions, counted by valgrind --tool=callgrind (exact and repeatable even
# when the machine is busy, unlike times): each workload runs plain and under the preload
# library; the table gives both counts, their ratio and the extra instructions per allocation
# (allocations as `leakview stats` counts them: every block that came into being).
#
# usage: bench/instructions.sh [PRELOAD_LIBRARY]
#   PRELOAD_LIBRARY  the library to measure; default: the one embedded in the release
#                    `leakview` built here (CARGO_TARGET_DIR, default target/)
# environment: BENCH_DIR (scratch, default a temp dir)
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
bench_setup instructions

command -v valgrind >/dev/null || { echo "instructions: valgrind is required" >&2; exit 2; }
log "building leakview (release) and the workloads in $WORK"
build_leakview
LIBRARY="${1:-}"
if [ -z "$LIBRARY" ]; then
    # The library `leakview record` preloads (it sets LD_PRELOAD for the command it runs).
    LIBRARY=$("$LEAKVIEW" record --force -o "$WORK/probe.bin" -- /usr/bin/env | sed -n 's/^LD_PRELOAD=//p')
    rm -f "$WORK"/probe*.bin
fi
[ -f "$LIBRARY" ] || { echo "instructions: no preload library at '$LIBRARY'" >&2; exit 2; }
cp "$LIBRARY" "$WORK/libleakview_preload.so"
cc -O2 -g -fomit-frame-pointer -pthread -o "$WORK/churn" "$ROOT/fixtures/churn.c"
build_alloc_workload

# instructions OUT CMD...: total instructions of one run of CMD (stdout and stderr dropped).
instructions() {
    local out="$1"; shift
    valgrind --tool=callgrind --callgrind-out-file="$out" "$@" >/dev/null 2>&1 || {
        echo "instructions: failed: $*" >&2; exit 1; }
    awk '/^(summary|totals):/ { print $2; exit }' "$out"
}

ROWS=()
# bench NAME CMD...: plain and recorded runs of CMD, one table row.
bench() {
    local name="$1"; shift
    log "$name"
    local plain recorded allocations
    plain=$(instructions "$WORK/plain.cg" "$@")
    # valgrind's launcher is a shell script: it records a trace of its own, hence one per pid.
    recorded=$(LD_PRELOAD="$WORK/libleakview_preload.so" LEAKVIEW_OUTPUT="$WORK/cg-%p.bin" \
        instructions "$WORK/recorded.cg" "$@")
    rm -f "$WORK"/cg-*.bin "$WORK"/trace*.bin
    # The allocations, from a recording of the same run outside valgrind.
    LD_PRELOAD="$WORK/libleakview_preload.so" LEAKVIEW_OUTPUT="$WORK/trace.bin" "$@" >/dev/null 2>&1
    allocations=$("$LEAKVIEW" stats "$WORK/trace.bin" | awk '/^allocations/ { gsub(",", "", $2); print $2 }')
    ROWS+=("$(awk -v n="$name" -v p="$plain" -v r="$recorded" -v a="$allocations" 'BEGIN {
        printf "| %s | %.1f M | %.1f M | %.2fx | %d | %.0f |", n, p / 1e6, r / 1e6, r / p, a, (r - p) / a }')")
}

bench "churn.c, 200000 pairs" "$WORK/churn" 200000
bench "C workload (bench/alloc_workload.c), 1 thread, 200000 pairs" "$WORK/alloc_workload" 1 200000
if command -v sqlite3 >/dev/null; then
    cat >"$WORK/sqlite.sql" <<'SQL'
CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, value REAL);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20000)
INSERT INTO t SELECT x, printf('name-%d-%s', x, hex(randomblob(8))), x * 0.5 FROM c;
CREATE INDEX t_name ON t(name);
SELECT count(*), sum(value) FROM t WHERE name LIKE 'name-1%';
SELECT name FROM t ORDER BY value DESC LIMIT 5;
SQL
    bench "sqlite3 (20k rows, index, queries)" sqlite3 :memory: ".read $WORK/sqlite.sql"
fi
PYTHON="$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null || true)"
if [ -n "$PYTHON" ]; then
    cat >"$WORK/work.py" <<'PY'
import json
data = [{"id": i, "name": f"item-{i}", "tags": [str(j) for j in range(i % 7)]} for i in range(15000)]
text = json.dumps(data)
back = json.loads(text)
index = {d["name"]: d for d in back}
print(len(text), len(index))
PY
    export PYTHONMALLOC=malloc
    bench "python3 (PYTHONMALLOC=malloc, json of 15k dicts)" "$PYTHON" "$WORK/work.py"
    unset PYTHONMALLOC
fi

echo
echo "Command: \`bench/instructions.sh $*\`, $(valgrind --version), $(uname -r)"
echo
echo "| workload | plain | leakview | ratio | allocations | extra instructions per allocation |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
