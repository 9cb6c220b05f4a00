//! End-to-end tests of `leakview suspects` and of the allocation windows (`--allocated-after`,
//! `--allocated-before`) of `report`, `check` and `suspects`: `fixtures/suspects.c` built at -O2
//! -g without frame pointers, recorded with the real recorder through `leakview record`. The
//! verdict and exact counts of each allocating function are the ones documented at the top of
//! the fixture.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

const REQUESTS: u64 = 3000;
const RING: u64 = 64;

fn leakview(dir: &Path) -> Command {
    common::leakview_in(dir, &dir.join("cache"))
}

/// The fixture's trace, recorded once for all tests.
fn recorded() -> &'static common::Recorded {
    static RECORDED: OnceLock<common::Recorded> = OnceLock::new();
    common::recorded_once(&RECORDED, "suspects.c", "s.bin", "suspects: done\n")
}

fn run(command: &str, args: &[&str]) -> Output {
    let (dir, trace) = recorded();
    leakview(dir.path()).arg(command).args(args).arg(trace).output().expect("leakview runs")
}

fn suspects(args: &[&str]) -> Output {
    run("suspects", args)
}

fn json() -> Value {
    let out = suspects(&["--format", "json", "--top", "0"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("valid JSON")
}

/// The suspect whose innermost frame is `function`.
fn by_function<'a>(doc: &'a Value, function: &str) -> &'a Value {
    let all = doc["suspects"].as_array().expect("suspects");
    let found: Vec<&Value> =
        all.iter().filter(|s| s["frames"][0]["function"].as_str() == Some(function)).collect();
    assert_eq!(found.len(), 1, "one suspect allocating in {function}: {doc:#}");
    found[0]
}

/// (verdict, blocks, bytes, allocations, frees)
fn evidence(s: &Value) -> (String, u64, u64, u64, u64) {
    let n = |k: &str| s[k].as_u64().unwrap_or_else(|| panic!("{k} in {s}"));
    (s["verdict"].as_str().unwrap_or("?").to_string(), n("blocks"), n("bytes"), n("allocations"), n("frees"))
}

#[test]
fn each_function_gets_its_verdict_with_exact_counts() {
    let doc = json();
    let expect = |function: &str, verdict: &str, blocks: u64, size: u64, frees: u64, allocations: u64| {
        assert_eq!(
            evidence(by_function(&doc, function)),
            (verdict.to_string(), blocks, blocks * size, allocations, frees),
            "{function}"
        );
    };
    expect("remember_request", "growing", REQUESTS, 32, 0, REQUESTS);
    expect("format_reply", "growing", REQUESTS / 100, 64, REQUESTS - REQUESTS / 100, REQUESTS);
    expect("parse_header", "outlived", 2, 48, REQUESTS - 2, REQUESTS);
    expect("load_config", "never-freed", 1, 4096, 0, 1);
    expect("open_buffer", "in-use", RING, 128, REQUESTS - RING, REQUESTS);

    // Every frame of the growing history's stack is symbolized down to main.
    let frames = by_function(&doc, "remember_request")["frames"].as_array().expect("frames").clone();
    assert_eq!(frames[0]["file"].as_str().map(|f| f.ends_with("suspects.c")), Some(true), "{frames:?}");
    assert!(frames.iter().any(|f| f["function"] == "main"), "{frames:?}");
    // The trend: live history nodes at the last checkpoint are all of them, and rose throughout.
    let trend = &by_function(&doc, "remember_request")["trend"];
    let live: Vec<u64> =
        trend["live_blocks"].as_array().expect("live").iter().filter_map(Value::as_u64).collect();
    assert_eq!(live.len(), 16);
    assert_eq!(live[15], REQUESTS);
    assert!(live.windows(2).all(|w| w[0] <= w[1]), "{live:?}");
    assert!(trend["r2"].as_f64().is_some_and(|r2| r2 >= 0.8), "{trend}");
}

#[test]
fn the_ranking_follows_the_verdicts_and_covers_every_outstanding_block() {
    let doc = json();
    let order = ["growing", "outlived", "never-freed", "in-use"];
    let all = doc["suspects"].as_array().expect("suspects");
    let ranks: Vec<usize> =
        all.iter().map(|s| order.iter().position(|&v| s["verdict"] == v).expect("a known verdict")).collect();
    assert!(ranks.windows(2).all(|w| w[0] <= w[1]), "{ranks:?}");
    let count = |v: &str| all.iter().filter(|s| s["verdict"] == v).count();
    assert_eq!((count("growing"), count("outlived"), count("in-use")), (2, 1, 1));
    let blocks: u64 = all.iter().filter_map(|s| s["blocks"].as_u64()).sum();
    assert_eq!(doc["outstanding"]["blocks"].as_u64(), Some(blocks));
    assert_eq!(doc["outstanding"]["stacks"].as_u64(), Some(all.len() as u64));
}

#[test]
fn text_states_the_evidence_and_a_moment_can_be_chosen() {
    let out = suspects(&["--top", "3"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("verdicts 2 growing, 1 outlived, "), "{text}");
    assert!(text.contains("#1  growing"), "{text}");
    assert!(text.contains("live blocks rose steadily"), "{text}");
    assert!(text.contains("2,998 of 3,000 allocations freed"), "{text}");
    assert!(text.contains("more stacks (--top 0 shows all)"), "{text}");

    // Halfway through, half the history is there and still growing.
    let out = suspects(&["--format", "json", "--top", "0", "--at", "50%"]);
    let doc: Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    let history = by_function(&doc, "remember_request");
    assert_eq!(history["verdict"], "growing");
    let blocks = history["blocks"].as_u64().expect("blocks");
    assert_eq!(history["allocations"].as_u64(), Some(blocks));
    assert!(blocks > REQUESTS / 4 && blocks < REQUESTS * 3 / 4, "{blocks}");
}

#[test]
fn bad_input_exits_2_with_one_line() {
    let (dir, _) = recorded();
    let out = leakview(dir.path()).args(["suspects", "missing.bin"]).output().expect("leakview runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    let out = suspects(&["--at", "mark:nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no mark labelled `nope`"));
}

#[test]
fn allocation_windows_narrow_report_check_and_suspects() {
    let out = run("report", &["--format", "json", "--top", "0", "--allocated-after", "50%"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    let after = doc["allocated_after_ns"].as_u64().expect("allocated_after_ns");
    let half = doc["trace"]["duration_ns"].as_u64().expect("duration") / 2;
    assert!(after.abs_diff(half) <= 1, "{after} against {half}");
    let groups = doc["groups"].as_array().expect("groups");
    assert!(groups.iter().all(|g| g["first_alloc_ns"].as_u64() >= Some(after)), "{doc:#}");
    let history = groups.iter().find(|g| g["frames"][0]["function"] == "remember_request").expect("history");
    let blocks = history["blocks"].as_u64().expect("blocks");
    assert!(blocks > REQUESTS / 4 && blocks < REQUESTS * 3 / 4, "{blocks}");
    // The config block, allocated first thing, is outside the window.
    assert!(groups.iter().all(|g| g["frames"][0]["function"] != "load_config"), "{doc:#}");

    // Before the loop's first request only the config block is outstanding; check says so.
    let first_request = {
        let all = json();
        by_function(&all, "remember_request")["first_alloc_ns"].as_u64().expect("first_alloc_ns")
    };
    let until = format!("{first_request}ns");
    let out = run("check", &["--no-default-suppressions", "--allocated-before", &until]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("4.0 KiB in 1 block outstanding"), "{text}");
    assert!(text.contains("allocated before ") && text.contains(&format!("({until})")), "{text}");
    assert!(text.contains("load_config"), "{text}");

    let out = suspects(&["--format", "json", "--allocated-after", "50%", "--allocated-before", "75%"]);
    let doc: Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    let history = by_function(&doc, "remember_request");
    // A quarter of the run's history nodes are in the window; the evidence counts them all.
    let blocks = history["blocks"].as_u64().expect("blocks");
    assert!(blocks > REQUESTS / 8 && blocks < REQUESTS * 3 / 8, "{blocks}");
    assert_eq!(history["allocations"].as_u64(), Some(REQUESTS));

    for (args, says) in [
        (vec!["--allocated-after", "75%", "--allocated-before", "25%"], "the window is empty"),
        (vec!["--at", "10%", "--allocated-after", "20%"], "is later than the moment looked at"),
        (vec!["--allocated-after", "mark:none"], "no mark labelled `none`"),
    ] {
        let out = run("report", &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says) && err.lines().count() == 1, "{args:?}: {err}");
    }
}
