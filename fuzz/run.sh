#!/usr/bin/env bash
# Builds the fuzz targets with libFuzzer coverage instrumentation on the stable toolchain (the
# same flags `cargo fuzz build -s none` uses) and runs each for a while.
# Usage: fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(read_trace load_trace)
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/instrumented"
# With an explicit --target, RUSTFLAGS reach the fuzz targets but not build scripts.
host=$(rustc -vV | sed -n 's/^host: //p')
cargo build --release --bins --target "$host"
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  echo "fuzzing $t for ${seconds}s"
  "$CARGO_TARGET_DIR/$host/release/$t" -max_total_time="$seconds" -print_final_stats=1 \
    -artifact_prefix="artifacts/$t/" "corpus/$t" "seeds/$t" 2>&1 | tail -n 12
done
