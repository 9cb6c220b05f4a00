//! Stacks that read the same are one group, end to end: `fixtures/alike_stacks.c` built at -O2
//! -g without frame pointers (its loop unrolled twice, so one source line calls the allocating
//! function from two return addresses), recorded with the real recorder through `leakview
//! record`. `report`'s JSON counts two recorded stacks in the group (and grouped by function,
//! `remember` is on two stacks); `report` (text, JSON, folded), `suspects`, `check` and `diff`
//! show one group (one suspect) with their blocks.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

/// Blocks of 40 bytes that the fixture keeps from the marked line.
const KEPT: u64 = 8;

fn fixture_source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/alike_stacks.c")
}

/// The line of the fixture marked `ALLOC_LINE`.
fn alloc_line() -> u64 {
    let source = std::fs::read_to_string(fixture_source()).expect("the fixture is readable");
    let index = source.lines().position(|l| l.contains("ALLOC_LINE */")).expect("the marked line");
    index as u64 + 1
}

fn leakview(dir: &Path) -> Command {
    common::leakview_in(dir, &dir.join("cache"))
}

/// The fixture's trace, recorded once for all tests.
fn recorded() -> &'static common::Recorded {
    static RECORDED: OnceLock<common::Recorded> = OnceLock::new();
    common::recorded_once(&RECORDED, "alike_stacks.c", "alike.bin", &format!("alike: {KEPT} kept\n"))
}

fn run(args: &[&str]) -> Output {
    let (dir, trace) = recorded();
    leakview(dir.path()).args(args).arg(trace).output().expect("leakview runs")
}

fn stdout_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(args: &[&str]) -> Value {
    let out = run(args);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("valid JSON")
}

/// The entries of `list` whose innermost frame is in `remember`.
fn remembering(list: &Value) -> Vec<&Value> {
    let all = list.as_array().expect("a list");
    all.iter().filter(|g| g["frames"][0]["function"].as_str() == Some("remember")).collect()
}

/// The frame of `main` in `frames`.
fn main_frame(frames: &Value) -> &Value {
    let frames = frames.as_array().expect("frames");
    frames.iter().find(|f| f["function"] == "main").expect("main on the stack")
}

fn n(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("{key} in {v}"))
}

#[test]
fn the_recording_has_two_stacks_on_one_line_and_the_report_one_group() {
    let line = alloc_line();
    // The unrolled loop calls remember from two return addresses in main, on the marked line.
    let by_function = json(&["report", "--format", "json", "--top", "0", "--group-by", "function"]);
    let functions = by_function["groups"].as_array().expect("groups");
    let remember = functions.iter().find(|g| g["function"] == "remember").expect("remember");
    assert_eq!(n(remember, "stacks"), 2, "{remember}");

    let report = json(&["report", "--format", "json", "--top", "0"]);
    let groups = remembering(&report["groups"]);
    assert_eq!(groups.len(), 1, "one group for the marked line: {report:#}");
    let group = groups[0];
    assert_eq!((n(group, "blocks"), n(group, "bytes")), (KEPT, KEPT * 40));
    assert_eq!(n(group, "stacks"), 2, "two recorded stacks: {group:#}");
    let main = main_frame(&group["frames"]);
    assert_eq!(main["line"], line);
    assert!(main["file"].as_str().is_some_and(|f| f.ends_with("alike_stacks.c")), "{main}");
    // Every other group is of one recorded stack, and the groups hold every outstanding block.
    let all = report["groups"].as_array().expect("groups");
    assert_eq!(all.len() as u64, n(&report["outstanding"], "groups"));
    assert_eq!(all.iter().map(|g| n(g, "blocks")).sum::<u64>(), n(&report["outstanding"], "blocks"));
    assert_eq!(all.iter().map(|g| n(g, "bytes")).sum::<u64>(), n(&report["outstanding"], "bytes"));

    // The suspects judge the two stacks as one, on all their blocks, as the report groups them.
    let suspects = json(&["suspects", "--format", "json", "--top", "0"]);
    let judged = remembering(&suspects["suspects"]);
    assert_eq!(judged.len(), 1, "one suspect for the marked line: {suspects:#}");
    let suspect = judged[0];
    assert_eq!((n(suspect, "blocks"), n(suspect, "bytes"), n(suspect, "stacks")), (KEPT, KEPT * 40, 2));
    assert!(n(suspect, "allocations") >= KEPT, "{suspect:#}");
    assert_eq!(main_frame(&suspect["frames"])["line"], line);
    let ids = suspect["stack_ids"].as_array().expect("stack_ids");
    assert_eq!(ids.len(), 2, "{suspect:#}");
    assert_eq!(ids[0], suspect["stack_id"], "the heaviest stack first");
    assert_eq!(suspect["stack_id"], group["stack_id"], "the report's group is keyed by the same stack");
    // As many suspects as report groups; `outstanding.stacks` still counts recorded stacks.
    let outstanding = &suspects["outstanding"];
    assert_eq!(n(outstanding, "suspects"), all.len() as u64);
    assert_eq!(suspects["suspects"].as_array().map(Vec::len), Some(all.len()));
    assert_eq!(n(outstanding, "stacks"), all.iter().map(|g| n(g, "stacks")).sum::<u64>());
    assert_eq!(n(outstanding, "blocks"), n(&report["outstanding"], "blocks"));
}

#[test]
fn text_suspects_folded_check_and_diff_show_the_line_once() {
    let line = alloc_line();
    let text = stdout_of(&run(&["report"]));
    let headed_by_remember = text
        .split("\n#")
        .skip(1)
        .filter(|g| g.lines().nth(1).is_some_and(|l| l.trim_start().starts_with("remember ")))
        .collect::<Vec<_>>();
    assert_eq!(headed_by_remember.len(), 1, "{text}");
    let group = headed_by_remember[0];
    assert!(group.lines().next().is_some_and(|h| h.contains(&format!("{KEPT} blocks"))), "{group}");
    assert!(group.contains(&format!("alike_stacks.c:{line}")), "{group}");
    assert!(group.contains("call sites with these frames"), "{group}");

    let suspects = stdout_of(&run(&["suspects", "--top", "0"]));
    let judged = suspects
        .split("\n#")
        .skip(1)
        .filter(|s| s.lines().nth(2).is_some_and(|l| l.trim_start().starts_with("remember ")))
        .collect::<Vec<_>>();
    assert_eq!(judged.len(), 1, "{suspects}");
    assert!(judged[0].lines().next().is_some_and(|h| h.contains(&format!("{KEPT} blocks"))), "{}", judged[0]);
    assert!(judged[0].contains("from 2 call sites with these frames"), "{}", judged[0]);

    let folded = stdout_of(&run(&["report", "--format", "folded"]));
    let lines: Vec<&str> = folded.lines().filter(|l| l.contains(";remember ")).collect();
    assert_eq!(lines.len(), 1, "{folded}");
    assert!(lines[0].ends_with(&format!(" {}", KEPT * 40)), "{folded}");

    let check = run(&["check"]);
    assert_eq!(check.status.code(), Some(1));
    let check = stdout_of(&check);
    let listed = check.lines().filter(|l| l.trim_start().starts_with("remember ")).count();
    assert_eq!(listed, 1, "{check}");
    assert!(check.contains(&format!("{} B in {KEPT} blocks", KEPT * 40)), "{check}");

    let (dir, trace) = recorded();
    let out = leakview(dir.path())
        .args(["diff", "--format", "json", "--at-a", "50%"])
        .arg(trace)
        .arg(trace)
        .output()
        .expect("leakview runs");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let diff: Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    let groups = remembering(&diff["groups"]);
    assert_eq!(groups.len(), 1, "{diff:#}");
    assert_eq!(n(groups[0], "blocks_b"), KEPT);
    assert!(n(groups[0], "stacks_b") >= 2, "{diff:#}");

    // Grouped by function, remember holds the line's blocks, from every stack through it.
    let by_function = json(&["report", "--format", "json", "--top", "0", "--group-by", "function"]);
    let all = by_function["groups"].as_array().expect("groups");
    let remember = all.iter().find(|g| g["function"] == "remember").expect("remember");
    assert_eq!((n(remember, "blocks"), n(remember, "bytes")), (KEPT, KEPT * 40));
    assert!(n(remember, "stacks") >= 2, "{remember}");
}
