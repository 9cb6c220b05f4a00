//! `leakview report --what allocated|temporary` on a real recording: `fixtures/temporary.c`
//! compiled at -O2 without frame pointers and recorded with the preload library, whose functions
//! allocate known numbers of blocks with known lifetimes (see the table at the top of the
//! fixture).

mod common;

use std::collections::HashMap;
use std::sync::OnceLock;

use common::{leakview_in, recorded_once};

static RECORDED: OnceLock<common::Recorded> = OnceLock::new();

/// `report ARGS --format json --group-by function --top 0` on the fixture's trace: blocks by
/// function, and the document.
fn blocks_by_function(args: &[&str]) -> (HashMap<String, u64>, serde_json::Value) {
    let (dir, trace) = recorded_once(&RECORDED, "temporary.c", "temporary.bin", "");
    let out = leakview_in(dir.path(), &dir.path().join("cache"))
        .arg("report")
        .args(args)
        .args(["--format", "json", "--group-by", "function", "--top", "0"])
        .arg(trace)
        .output()
        .expect("leakview runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let groups = doc["groups"].as_array().cloned().unwrap_or_default();
    let counts = groups
        .iter()
        .filter_map(|g| Some((g["function"].as_str()?.to_string(), g["blocks"].as_u64()?)))
        .collect();
    (counts, doc)
}

/// The blocks of each of the fixture's functions in `counts` (0 where absent).
fn fixture_functions(counts: &HashMap<String, u64>) -> Vec<(&'static str, u64)> {
    ["scratch", "build_list", "keep_one", "grow", "rolling", "worker_scratch"]
        .into_iter()
        .map(|f| (f, counts.get(f).copied().unwrap_or(0)))
        .collect()
}

#[test]
fn every_allocation_is_counted_freed_or_not() {
    let (counts, doc) = blocks_by_function(&["--what", "allocated"]);
    // build_list is credited with keep_one's block too (it calls it).
    assert_eq!(
        fixture_functions(&counts),
        [
            ("scratch", 100),
            ("build_list", 51),
            ("keep_one", 1),
            ("grow", 6),
            ("rolling", 21),
            ("worker_scratch", 30)
        ],
        "{doc:#}"
    );
    assert_eq!(doc["what"], "allocated");
    assert_eq!(doc["ranked_by"], "blocks");
    // Every allocation of the run (the C runtime's few included) is in the selection.
    assert_eq!(doc["selected"]["blocks"], doc["totals"]["allocations"], "{doc:#}");
}

#[test]
fn temporary_blocks_are_those_freed_before_their_thread_allocated_again() {
    let (counts, doc) = blocks_by_function(&["--what", "temporary"]);
    // The worker's 30 ran while main allocated on its own thread: per thread, all temporary.
    assert_eq!(
        fixture_functions(&counts),
        [
            ("scratch", 100),
            ("build_list", 0),
            ("keep_one", 0),
            ("grow", 6),
            ("rolling", 1),
            ("worker_scratch", 30)
        ],
        "{doc:#}"
    );
    assert_eq!(doc["what"], "temporary");
    // keep_one's block is still outstanding at the end.
    assert!(doc["outstanding"]["blocks"].as_u64().is_some_and(|n| n >= 1), "{doc:#}");

    // `stats` counts the same blocks.
    let (dir, trace) = recorded_once(&RECORDED, "temporary.c", "temporary.bin", "");
    let out =
        leakview_in(dir.path(), &dir.path().join("cache")).arg("stats").arg(trace).output().expect("runs");
    let stats = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = format!("temporary    {} (", doc["selected"]["blocks"]);
    assert!(stats.lines().any(|l| l.starts_with(&line)), "{line} in\n{stats}");
}

#[test]
fn ranking_by_bytes_and_folded_counts() {
    let (dir, trace) = recorded_once(&RECORDED, "temporary.c", "temporary.bin", "");
    let out = leakview_in(dir.path(), &dir.path().join("cache"))
        .args(["report", "--what", "temporary", "--format", "folded"])
        .arg(trace)
        .output()
        .expect("leakview runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let folded = String::from_utf8_lossy(&out.stdout).into_owned();
    // Ranked by blocks (the default here), each line carries its stack's blocks.
    let first = folded.lines().next().unwrap_or_default();
    assert!(first.ends_with(";main;scratch 100"), "{folded}");
    assert!(folded.lines().any(|l| l.ends_with(";worker;worker_scratch 30")), "{folded}");

    let out = leakview_in(dir.path(), &dir.path().join("cache"))
        .args(["report", "--what", "allocated", "--rank-by", "bytes", "--top", "1"])
        .arg(trace)
        .output()
        .expect("leakview runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    // scratch allocated 100 × 48 B, more than any other stack.
    assert!(text.contains("\n#1  4.7 KiB  100 blocks"), "{text}");
    assert!(text.contains("allocated up to then, freed or not"), "{text}");
    assert!(!text.contains("ranked by blocks"), "{text}");
}

#[test]
fn diff_counts_what_is_asked_on_both_sides() {
    let (dir, trace) = recorded_once(&RECORDED, "temporary.c", "temporary.bin", "");
    let diff = |extra: &[&str]| {
        leakview_in(dir.path(), &dir.path().join("cache"))
            .args([
                "diff",
                "--at-a",
                "start",
                "--what",
                "temporary",
                "--format",
                "json",
                "--group-by",
                "function",
            ])
            .args(extra)
            .arg(trace)
            .output()
            .expect("leakview runs")
    };
    let out = diff(&[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(doc["what"], "temporary");
    let (report, _) = blocks_by_function(&["--what", "temporary"]);
    let grown = |f: &str| {
        doc["groups"]
            .as_array()
            .and_then(|gs| gs.iter().find(|g| g["function"] == f))
            .map(|g| g["blocks_b"].clone())
    };
    // Nothing is temporary at the start; at the end, as `report` counts.
    assert_eq!(doc["totals"]["blocks_a"], 0, "{doc:#}");
    assert_eq!(grown("scratch"), Some(serde_json::json!(report["scratch"])), "{doc:#}");
    assert_eq!(grown("rolling"), Some(serde_json::json!(1)), "{doc:#}");

    // The diff browser takes --what too; here it has no terminal.
    let browser = diff(&["--tui"]);
    assert_eq!(browser.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&browser.stderr).contains("the diff browser needs a terminal"));
}
