#!/usr/bin/env bash
# The recorder's own memory: peak anonymous resident memory (RssAnon: heap, stacks, the
# recorder's tables; not the mapped trace file, whose pages belong to the page cache) of a
# program run plain and under `leakview record`, sampled every 10 ms from /proc/PID/status (a
# peak shorter than that can slip between samples). Prints a markdown table for BENCHMARKS.md.
#
# usage: bench/recorder_memory.sh
# environment: PAIRS (default 5000000), CARGO_TARGET_DIR (where leakview is built),
#              BENCH_DIR (scratch, default a temp dir)
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
bench_setup memory
command -v pgrep >/dev/null || { echo "memory: pgrep is required (Debian: apt-get install procps)" >&2; exit 2; }
PAIRS="${PAIRS:-5000000}"
log "building leakview (release) and the workload in $WORK"
build_leakview
build_alloc_workload

# rss_anon_kb PID: the process's RssAnon in KiB (empty once it is gone).
rss_anon_kb() { awk '/^RssAnon:/ { print $2 }' "/proc/$1/status" 2>/dev/null || true; }

# peak_anon NAME CMD...: runs CMD and prints the peak RssAnon (KiB) of the process whose name is
# NAME: CMD itself, or a descendant of it (the program `leakview record` starts).
peak_anon() {
    local name="$1"; shift
    "$@" >/dev/null 2>"$WORK/stderr.txt" &
    local top=$! peak=0 pid kb
    while kill -0 "$top" 2>/dev/null; do
        for pid in $top $(pgrep -P "$top" 2>/dev/null || true); do
            if [ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" = "$name" ]; then
                kb=$(rss_anon_kb "$pid")
                if [ -n "$kb" ] && [ "$kb" -gt "$peak" ]; then peak=$kb; fi
            fi
        done
        sleep 0.01
    done
    wait "$top" || { echo "memory: failed: $*" >&2; cat "$WORK/stderr.txt" >&2; exit 1; }
    echo "$peak"
}

ROWS=()
# row LABEL NAME CMD...: plain and recorded peaks of one workload.
row() {
    local label="$1" name="$2"; shift 2
    log "$label"
    local plain recorded
    plain=$(peak_anon "$name" "$@")
    rm -f "$WORK"/trace*.bin
    recorded=$(peak_anon "$name" "$LEAKVIEW" record --force -o "$WORK/trace.bin" -- "$@")
    local events
    events=$("$LEAKVIEW" stats "$WORK"/trace.bin | awk '/^events/ { print $2 }')
    if [ "$plain" -eq 0 ] || [ "$recorded" -eq 0 ]; then
        log "$label: ended before the first 10 ms sample; raise PAIRS"
        ROWS+=("| $label | $events | not sampled (run too short) | not sampled | - |")
        return
    fi
    ROWS+=("$(awk -v l="$label" -v p="$plain" -v r="$recorded" -v e="$events" 'BEGIN {
        printf "| %s | %s | %.1f MiB | %.1f MiB | %.1f MiB |", l, e, p / 1024, r / 1024, (r - p) / 1024 }')")
}

row "C workload, 1 thread, $PAIRS pairs" alloc_workload "$WORK/alloc_workload" 1 "$PAIRS"
row "C workload, 2 threads, $PAIRS pairs" alloc_workload "$WORK/alloc_workload" 2 "$PAIRS"
row "C workload, 8 threads, $PAIRS pairs" alloc_workload "$WORK/alloc_workload" 8 "$PAIRS"
if command -v python3 >/dev/null; then
    cat >"$WORK/work.py" <<'PY'
import json
data = [{"id": i, "name": f"item-{i}", "tags": [str(j) for j in range(i % 7)]} for i in range(150000)]
text = json.dumps(data)
back = json.loads(text)
print(len(text), len(back))
PY
    export PYTHONMALLOC=malloc
    PYTHON="$(python3 -c 'import sys; print(sys.executable)')"
    row "python3 (PYTHONMALLOC=malloc, json of 150k dicts)" "$(basename "$PYTHON")" "$PYTHON" "$WORK/work.py"
    unset PYTHONMALLOC
fi

echo
echo "Command: \`bench/recorder_memory.sh\` (PAIRS=$PAIRS), $(nproc) cores, $(uname -r)"
echo
echo "| workload | events recorded | plain: peak RssAnon | leakview record: peak RssAnon | recorder's own |"
echo "|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
