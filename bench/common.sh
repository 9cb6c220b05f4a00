# Shared set-up of the bench scripts (sourced, not run): the scratch directory, logging, and the
# release `leakview` they measure.
#
# bench_setup NAME: sets ROOT, WORK (BENCH_DIR, or a fresh temp dir), TARGET_DIR (CARGO_TARGET_DIR,
# default target/) and log(), which prefixes messages with "NAME: ".
# build_leakview: builds the release leakview (its preload library embedded) and sets LEAKVIEW.
# build_alloc_workload: compiles bench/alloc_workload.c to $WORK/alloc_workload like the fixtures
# (-O2, no frame pointers).

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
