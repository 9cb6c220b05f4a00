//! End-to-end: `stats`, `report` and `check` on a trace whose program is still being recorded
//! (fixtures/growing.c, which leaks in two steps the test lets it take) say so, and read what
//! was recorded so far; once the program has ended, the same trace reads as finished.

mod common;

use std::path::Path;

use common::{Running, compile_fixture, leakview_in, wait_for_file};
use serde_json::Value;

fn leakview(dir: &Path, args: &[&str]) -> std::process::Output {
    leakview_in(dir, &dir.join("cache")).args(args).output().expect("leakview runs")
}

/// (recording, complete, outstanding blocks, outstanding bytes) as `report --format json` says.
fn recording_state(dir: &Path) -> (bool, bool, u64, u64) {
    let out = leakview(dir, &["report", "--format", "json", "live.bin"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let field = |v: &Value| v.as_u64().unwrap_or_else(|| panic!("a number in {doc}"));
    let flag = |v: &Value| v.as_bool().unwrap_or_else(|| panic!("a bool in {doc}"));
    (
        flag(&doc["trace"]["recording"]),
        flag(&doc["trace"]["complete"]),
        field(&doc["outstanding"]["blocks"]),
        field(&doc["outstanding"]["bytes"]),
    )
}

#[test]
fn a_trace_being_recorded_says_so_until_its_program_ends() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let exe = compile_fixture(d, "growing.c", "growing", &[]);
    let mut recording = Running::record(d, &exe, "live.bin");
    wait_for_file(&d.join("ready"));

    // The first step's 10 blocks of 1,000 bytes, read while the program waits.
    assert_eq!(recording_state(d), (true, false, 10, 10_000));
    let report = String::from_utf8_lossy(&leakview(d, &["report", "live.bin"]).stdout).into_owned();
    assert!(report.contains("note     the trace is still being recorded (pid "), "{report}");
    assert!(!report.contains("incomplete"), "{report}");
    let stats = String::from_utf8_lossy(&leakview(d, &["stats", "live.bin"]).stdout).into_owned();
    assert!(stats.contains("  still being recorded (pid "), "{stats}");
    let check = leakview(d, &["check", "live.bin"]);
    assert_eq!(check.status.code(), Some(1), "10 blocks are outstanding");
    let said = String::from_utf8_lossy(&check.stderr);
    assert!(said.contains("is still being recorded"), "{said}");

    // The second step and the end: 30 blocks, 70,000 bytes, and the trace finished.
    std::fs::write(d.join("step"), "").expect("step");
    std::fs::write(d.join("finish"), "").expect("finish");
    let status = recording.0.wait().expect("leakview record ends");
    assert!(status.success(), "{status:?}");
    assert_eq!(recording_state(d), (false, true, 30, 70_000));
    let report = String::from_utf8_lossy(&leakview(d, &["report", "live.bin"]).stdout).into_owned();
    assert!(!report.contains("still being recorded"), "{report}");
}
