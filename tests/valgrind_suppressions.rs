//! Valgrind's own suppressions work with `leakview check`: for a C and a C++ fixture, what
//! `valgrind --gen-suppressions=all` prints for every loss record, given to `leakview check
//! --suppressions`, suppresses every block leakview finds outstanding, and each entry on its own
//! suppresses exactly the blocks and bytes of its loss record.
//!
//! valgrind is required under CI (`.ci/run` installs it); elsewhere a missing valgrind skips the
//! tests with a note (see [`common::installed`]).

mod common;

use std::path::Path;
use std::process::Command;

use common::{compile_fixture, installed, leakview_in, record_fixture};

/// One loss record valgrind printed, with the suppression entry it generated for it.
#[derive(Debug)]
struct LossRecord {
    bytes: u64,
    blocks: u64,
    /// The entry, `{` to `}`.
    entry: String,
}

impl LossRecord {
    /// The entry's frame lines: records of one stack (but another leak kind) have the same.
    fn frames(&self) -> Vec<&str> {
        self.entry
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("fun:") || l.starts_with("obj:") || *l == "...")
            .collect()
    }
}

fn number(text: &str) -> u64 {
    text.replace(',', "").parse().unwrap_or_else(|_| panic!("not a number: {text:?}"))
}

/// Runs `exe` under memcheck, every leak kind shown, a suppression generated for each record.
fn valgrind_loss_records(exe: &Path) -> Vec<LossRecord> {
    let out = Command::new("valgrind")
        .args([
            "--leak-check=full",
            "--show-leak-kinds=all",
            "--gen-suppressions=all",
            "--num-callers=40",
            "--run-libc-freeres=no",
            "--run-cxx-freeres=no",
        ])
        .arg(exe)
        .output()
        .expect("valgrind runs");
    assert!(out.status.success(), "valgrind failed: {}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut records = Vec::new();
    let mut pending: Option<(u64, u64)> = None;
    let mut entry: Option<String> = None;
    for line in stderr.lines() {
        if let Some(text) = &mut entry {
            text.push_str(line);
            text.push('\n');
            if line.trim() == "}" {
                let (bytes, blocks) = pending.take().expect("a loss record before its suppression");
                records.push(LossRecord { bytes, blocks, entry: entry.take().unwrap_or_default() });
            }
        } else if line.trim() == "{" {
            entry = Some("{\n".to_string());
        } else if let Some((_, rest)) = line.split_once("== ")
            && rest.contains(" in loss record ")
        {
            // "==12== 133 (32 direct, 101 indirect) bytes in 1 blocks are definitely lost in loss record 5 of 6"
            let bytes = rest.split_whitespace().next().map(number).expect("bytes");
            let blocks =
                rest.split(" bytes in ").nth(1).and_then(|r| r.split_whitespace().next()).map(number);
            pending = Some((bytes, blocks.expect("blocks")));
        }
    }
    assert!(!records.is_empty(), "valgrind printed no loss records:\n{stderr}");
    records
}

/// `leakview check --format json` of `trace` with the suppressions in `supp` (and the runtimes'
/// blocks counted, so that only valgrind's entries suppress anything).
fn check(dir: &Path, trace: &Path, supp: &str) -> serde_json::Value {
    let file = dir.join("check.supp");
    std::fs::write(&file, supp).expect("write suppressions");
    let out = leakview_in(dir, &dir.join("cache"))
        .args(["check", "--format", "json", "--no-default-suppressions", "--suppressions"])
        .arg(&file)
        .arg(trace)
        .output()
        .expect("leakview runs");
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "check failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("check JSON")
}

fn totals(value: &serde_json::Value) -> (u64, u64) {
    (value["blocks"].as_u64().expect("blocks"), value["bytes"].as_u64().expect("bytes"))
}

/// The comparison for the program `exe`, recorded into `trace`.
fn every_entry_suppresses_its_loss_record(dir: &Path, exe: &Path, trace: &Path, expected: (u64, u64)) {
    let records = valgrind_loss_records(exe);
    let all: String = records.iter().map(|r| r.entry.as_str()).collect();
    let doc = check(dir, trace, &all);
    assert_eq!(totals(&doc["outstanding"]), expected, "leakview's outstanding blocks: {doc}");
    assert_eq!(doc["passed"], true, "valgrind's entries left leaks: {doc}");
    assert_eq!(totals(&doc["suppressed"]), expected, "{doc}");
    // Each stack's entry alone: exactly the blocks and bytes valgrind counted for it.
    let mut seen: Vec<Vec<&str>> = Vec::new();
    for record in &records {
        let frames = record.frames();
        if seen.contains(&frames) {
            continue;
        }
        let same: Vec<&LossRecord> = records.iter().filter(|r| r.frames() == frames).collect();
        let want = (same.iter().map(|r| r.blocks).sum::<u64>(), same.iter().map(|r| r.bytes).sum::<u64>());
        let doc = check(dir, trace, &record.entry);
        let rule = &doc["suppressions"][0];
        assert_eq!(rule["syntax"], "valgrind", "{doc}");
        assert_eq!(
            (rule["blocks"].as_u64(), rule["bytes"].as_u64()),
            (Some(want.0), Some(want.1)),
            "entry:\n{}\n{doc}",
            record.entry
        );
        seen.push(frames);
    }
}

#[test]
fn valgrinds_suppressions_of_a_c_program_suppress_exactly_its_loss_records() {
    if installed("valgrind").is_none() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = compile_fixture(dir.path(), "supp_leaks.c", "supp_leaks", &[]);
    let trace = record_fixture(dir.path(), &exe, "supp_leaks.bin", "");
    // The fixture's header: 8 blocks, 1,478 bytes.
    every_entry_suppresses_its_loss_record(dir.path(), &exe, &trace, (8, 1478));
}

#[test]
fn valgrinds_suppressions_of_a_cpp_program_suppress_exactly_its_loss_records() {
    if installed("valgrind").is_none() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = compile_fixture(dir.path(), "containers.cpp", "containers", &[]);
    let trace = record_fixture(dir.path(), &exe, "containers.bin", "containers: done\n");
    // What valgrind finds in use at exit (the fixture's blocks and libstdc++'s exception pool)
    // is what leakview finds: the sums of the loss records.
    let records = valgrind_loss_records(&exe);
    let expected = (records.iter().map(|r| r.blocks).sum(), records.iter().map(|r| r.bytes).sum());
    assert!(expected.0 >= 16, "the fixture leaks 16 blocks of its own: {records:?}");
    every_entry_suppresses_its_loss_record(dir.path(), &exe, &trace, expected);
}
