# Shared set-up of the bench scripts (sourced, not run): the scratch directory, logging, and the
# release `leakview` they measure.
#
# bench_setup NAME: sets ROOT, WORK (BENCH_DIR, or a fresh temp dir), TARGET_DIR (CARGO_TARGET_DIR,
# default target/) and log(), which prefixes messages with "NAME: ".
# build_leakview: builds the release leakview (its preload library embedded) and sets LEAKVIEW.
# build_alloc_workload: compiles bench/alloc_workload.c to $WORK/alloc_workload like the fixtures
# (-O2, no frame pointers).
# median_seconds FORMAT CMD...: the median over REPEATS runs of CMD (output dropped, traces in
# $WORK removed before each) of the sum of the /usr/bin/time fields in FORMAT ("%e": wall time,
# "%U %S": CPU time).

bench_setup() {
    BENCH_NAME="$1"
    ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    WORK="${BENCH_DIR:-$(mktemp -d "/tmp/leakview-$BENCH_NAME.XXXXXX")}"
    mkdir -p "$WORK"
    TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
}

log() { echo "$BENCH_NAME: $*" >&2; }

build_leakview() {
    (cd "$ROOT" && cargo build --release -p leakview-cli --quiet)
    LEAKVIEW="$TARGET_DIR/release/leakview"
}

build_alloc_workload() {
    cc -O2 -g -fomit-frame-pointer -pthread -o "$WORK/alloc_workload" "$ROOT/bench/alloc_workload.c"
}

median_seconds() {
    local format="$1"; shift
    for _ in $(seq "$REPEATS"); do
        rm -f "$WORK"/trace*.bin
        /usr/bin/time -f "$format" -o "$WORK/time" "$@" >/dev/null 2>&1
        awk '{ s = 0; for (i = 1; i <= NF; i++) s += $i; printf "%.3f\n", s }' "$WORK/time"
    done | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}
