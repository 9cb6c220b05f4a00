//! End-to-end tests of `leakview diff`: `fixtures/diff/leaks.c` built in its two variants (A, and
//! B with -DVARIANT_B) at -O2 -g without frame pointers, both recorded with the real recorder
//! through `leakview record`, then compared. The expected statuses and byte counts are the ones
//! documented at the top of the fixture.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

/// The two recorded traces, made once for all tests.
struct Recorded {
    dir: tempfile::TempDir,
    a: PathBuf,
    b: PathBuf,
}

fn leakview(cwd: &Path, cache: &Path) -> Command {
    common::leakview_in(cwd, cache)
}

fn recorded() -> &'static Recorded {
    static RECORDED: OnceLock<Recorded> = OnceLock::new();
    RECORDED.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let exe_a = common::compile_fixture(dir.path(), "diff/leaks.c", "leaks_a", &[]);
        let exe_b = common::compile_fixture(dir.path(), "diff/leaks.c", "leaks_b", &["-DVARIANT_B"]);
        let a = common::record_fixture(dir.path(), &exe_a, "a.bin", "leaks: done\n");
        let b = common::record_fixture(dir.path(), &exe_b, "b.bin", "leaks: done\n");
        Recorded { dir, a, b }
    })
}

/// `leakview diff ARGS...` in the traces' directory.
fn diff(args: &[&str]) -> Output {
    let r = recorded();
    leakview(r.dir.path(), &r.dir.path().join("cache"))
        .arg("diff")
        .args(args)
        .output()
        .expect("leakview runs")
}

fn stdout_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json_diff(args: &[&str]) -> Value {
    let mut all = vec!["--format", "json", "--top", "0"];
    all.extend_from_slice(args);
    let out = diff(&all);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr_of(&out));
    serde_json::from_slice(&out.stdout).expect("valid JSON")
}

fn a() -> &'static str {
    recorded().a.to_str().expect("utf-8 path")
}

fn b() -> &'static str {
    recorded().b.to_str().expect("utf-8 path")
}

/// `(status, blocks_a, bytes_a, blocks_b, bytes_b)` of a JSON group.
fn counts(group: &Value) -> (String, u64, u64, u64, u64) {
    let n = |field: &str| group[field].as_u64().unwrap_or_else(|| panic!("{field} in {group}"));
    (
        group["status"].as_str().unwrap_or("?").to_string(),
        n("blocks_a"),
        n("bytes_a"),
        n("blocks_b"),
        n("bytes_b"),
    )
}

fn functions_of(group: &Value) -> Vec<String> {
    group["frames"]
        .as_array()
        .map(|frames| frames.iter().filter_map(|f| f["function"].as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// The one function group named `name`.
fn function_group<'a>(doc: &'a Value, name: &str) -> &'a Value {
    let groups = doc["groups"].as_array().expect("groups");
    let found: Vec<&Value> = groups.iter().filter(|g| g["function"] == name).collect();
    assert_eq!(found.len(), 1, "groups named {name} in {doc:#}");
    found[0]
}

/// The one stack group whose frames include `name`.
fn stack_group<'a>(doc: &'a Value, name: &str) -> &'a Value {
    let groups = doc["groups"].as_array().expect("groups");
    let found: Vec<&Value> = groups.iter().filter(|g| functions_of(g).iter().any(|f| f == name)).collect();
    assert_eq!(found.len(), 1, "stack groups through {name} in {doc:#}");
    found[0]
}

fn expect(
    status: &str,
    blocks_a: u64,
    bytes_a: u64,
    blocks_b: u64,
    bytes_b: u64,
) -> (String, u64, u64, u64, u64) {
    (status.to_string(), blocks_a, bytes_a, blocks_b, bytes_b)
}

#[test]
fn two_variants_by_function() {
    let doc = json_diff(&["--group-by", "function", a(), b()]);
    assert_eq!(doc["schema"], 1);
    assert_eq!(doc["group_by"], "function");
    assert_eq!(counts(function_group(&doc, "leak_fixed")), expect("fixed", 3, 3000, 0, 0));
    assert_eq!(counts(function_group(&doc, "leak_added")), expect("new", 0, 0, 2, 1024));
    assert_eq!(counts(function_group(&doc, "leak_unchanged")), expect("same", 4, 256, 4, 256));
    assert_eq!(counts(function_group(&doc, "leak_growing")), expect("grew", 5, 640, 10, 1280));
    assert_eq!(counts(function_group(&doc, "leak_shrinking")), expect("shrank", 8, 256, 2, 64));
    // main holds every leak of the fixture, in both variants.
    let (status, _, main_a, _, main_b) = counts(function_group(&doc, "main"));
    assert!(main_a >= 3000 + 256 + 640 + 256 && main_b >= 1024 + 256 + 1280 + 64, "{main_a} {main_b}");
    assert_eq!(status, "shrank");
    let frame = &function_group(&doc, "leak_added")["frames"][0];
    assert_eq!(frame["function"], "leak_added");
    assert!(frame["file"].as_str().is_some_and(|f| f.ends_with("leaks.c")), "{frame}");
    assert!(frame["line"].as_u64().is_some(), "{frame}");
}

#[test]
fn two_variants_by_stack() {
    let doc = json_diff(&[a(), b()]);
    assert_eq!(doc["group_by"], "stack");
    assert_eq!(doc["one_trace"], false);
    assert_eq!(counts(stack_group(&doc, "leak_fixed")), expect("fixed", 3, 3000, 0, 0));
    assert_eq!(counts(stack_group(&doc, "leak_added")), expect("new", 0, 0, 2, 1024));
    assert_eq!(counts(stack_group(&doc, "leak_unchanged")), expect("same", 4, 256, 4, 256));
    assert_eq!(counts(stack_group(&doc, "leak_shrinking")), expect("shrank", 8, 256, 2, 64));
    // Two call sites in main, one group: their stacks differ only in main's line.
    let growing = stack_group(&doc, "leak_growing");
    assert_eq!(counts(growing), expect("grew", 5, 640, 10, 1280));
    assert_eq!((growing["stacks_a"].as_u64(), growing["stacks_b"].as_u64()), (Some(2), Some(2)));
    // The allocator and the recorder are trimmed: the stack starts in the leaking function.
    assert_eq!(functions_of(growing).first().map(String::as_str), Some("leak_growing"), "{growing}");
    assert!(functions_of(growing).iter().any(|f| f == "main"), "{growing}");
    // Stack groups partition the outstanding blocks.
    let groups = doc["groups"].as_array().expect("groups");
    let sum = |field: &str| groups.iter().map(|g| g[field].as_u64().unwrap_or(0)).sum::<u64>();
    assert_eq!(sum("bytes_a"), doc["totals"]["bytes_a"].as_u64().unwrap_or(u64::MAX));
    assert_eq!(sum("bytes_b"), doc["totals"]["bytes_b"].as_u64().unwrap_or(u64::MAX));
    assert_eq!(doc["trace_a"]["path"], a());
    assert_eq!(doc["trace_b"]["path"], b());
    assert!(doc["at_a_ns"].as_u64().is_some_and(|t| t > 0));
}

#[test]
fn text_is_ranked_by_change() {
    let out = diff(&[a(), b()]);
    let text = stdout_of(&out);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr_of(&out));
    assert!(text.starts_with("A        "), "{text}");
    assert!(text.contains("\nB        "), "{text}");
    assert!(text.contains("\ntotals   A "), "{text}");
    // Each leak's group: its row (`#N  status  change ...`), then its frames.
    let position = |function: &str| {
        let at = text.find(&format!("    {function} ")).unwrap_or_else(|| panic!("{function} in {text}"));
        let row = text[..at].rfind("\n#").map(|r| &text[r + 1..]).unwrap_or("");
        let row = row.lines().next().unwrap_or("").to_string();
        (at, row)
    };
    let order = ["leak_fixed", "leak_added", "leak_growing", "leak_shrinking", "leak_unchanged"];
    let found: Vec<(usize, String)> = order.iter().map(|f| position(f)).collect();
    assert!(found.windows(2).all(|w| w[0].0 < w[1].0), "ranked by the size of the change:\n{text}");
    let expected = [
        ("fixed", "-2.9 KiB", "3 → 0"),
        ("new", "+1.0 KiB", "0 → 2"),
        ("grew", "+640 B", "5 → 10"),
        ("shrank", "-192 B", "8 → 2"),
        ("same", "0 B", "4 → 4"),
    ];
    for ((_, row), (status, change, blocks)) in found.iter().zip(expected) {
        let cells: Vec<&str> = row.split("  ").map(str::trim).filter(|c| !c.is_empty()).collect();
        assert_eq!(cells.get(1), Some(&status), "{row}");
        assert_eq!(cells.get(2), Some(&change), "{row}");
        assert_eq!(cells.last(), Some(&blocks), "{row}");
    }
    assert!(text.contains("leaks.c:"), "file:line of the frames:\n{text}");
}

#[test]
fn two_moments_of_one_trace() {
    for (trace, late, late_bytes, growing_b) in
        [(a(), "leak_fixed", 3000, 640), (b(), "leak_added", 1024, 1280)]
    {
        let doc = json_diff(&["--group-by", "function", "--at-a", "mark:warmup", "--at-b", "end", trace]);
        assert_eq!(doc["one_trace"], true);
        assert_eq!(doc["at_a"], "mark:warmup");
        assert!(doc["at_a_ns"].as_u64() < doc["at_b_ns"].as_u64(), "{doc:#}");
        let blocks_late = if late == "leak_fixed" { 3 } else { 2 };
        assert_eq!(counts(function_group(&doc, late)), expect("new", 0, 0, blocks_late, late_bytes));
        assert_eq!(counts(function_group(&doc, "leak_unchanged")), expect("same", 4, 256, 4, 256));
        assert_eq!(
            counts(function_group(&doc, "leak_growing")),
            expect("grew", 2, 256, growing_b / 128, growing_b)
        );
        assert_eq!(counts(function_group(&doc, "scratch_fill")), expect("fixed", 4, 1024, 0, 0));
        let shrinking = function_group(&doc, "leak_shrinking");
        assert_eq!(counts(shrinking).0, "same");
    }
    let out = diff(&["--at-a", "mark:warmup", a()]);
    let text = stdout_of(&out);
    assert!(text.starts_with("trace    "), "{text}");
    assert!(text.contains("\nA        at mark:warmup ("), "{text}");
    // One trace at one moment twice would say nothing: both moments default to the end.
    for args in [&[a()][..], &["--at-a", "100%", "--at-b", "end", a()]] {
        let out = diff(args);
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains("are the same one ("), "{err}");
        assert!(err.contains("give another, e.g. --at-a mark:LABEL"), "{err}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn growth_gate_exit_codes() {
    let code = |args: &[&str]| {
        let out = diff(args);
        (out.status.code(), stderr_of(&out))
    };
    // Growth without the gate is fine.
    assert_eq!(code(&[a(), b()]).0, Some(0));
    // leak_added is new (1024 B) and leak_growing grew (640 B).
    let (status, stderr) = code(&["--fail-on-growth", a(), b()]);
    assert_eq!(status, Some(1), "{stderr}");
    assert!(stderr.contains("2 groups are new or grew by more than 0 B"), "{stderr}");
    assert_eq!(code(&["--fail-on-growth", "--threshold", "1000", a(), b()]).0, Some(1));
    assert_eq!(code(&["--fail-on-growth", "--threshold", "1024", a(), b()]).0, Some(0));
    // Nothing grows between a trace and itself; JSON stays clean on stdout.
    let out = diff(&["--fail-on-growth", "--format", "json", a(), a()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(serde_json::from_slice::<Value>(&out.stdout).is_ok());
    // Reversed, leak_fixed's 3000 bytes are new.
    assert_eq!(code(&["--fail-on-growth", "--threshold", "2999", b(), a()]).0, Some(1));
    assert_eq!(code(&["--fail-on-growth", "--threshold", "3000", b(), a()]).0, Some(0));
}

#[test]
fn bad_input_exits_2_with_one_line() {
    let dir = recorded().dir.path();
    let not_a_trace = dir.join("not-a-trace.bin");
    fs::write(&not_a_trace, b"hello, this is not a trace").expect("write");
    let not_a_trace = not_a_trace.to_str().expect("utf-8");
    let missing = dir.join("missing.bin");
    let missing = missing.to_str().expect("utf-8");
    let cases: Vec<Vec<&str>> = vec![
        vec![a(), missing],
        vec![not_a_trace, b()],
        vec!["--at-a", "mark:nope", a(), b()],
        vec!["--at-b", "2h", a(), b()],
        vec!["--fail-on-growth", a(), not_a_trace],
        vec!["--tui", a(), b()],
    ];
    for args in cases {
        let out = diff(&args);
        let stderr = stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("leakview: "), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    let tui = stderr_of(&diff(&["--tui", a(), b()]));
    assert!(tui.contains("the diff browser needs a terminal; leave out --tui"), "{tui}");
    let unknown_mark = stderr_of(&diff(&["--at-a", "mark:nope", a(), b()]));
    assert!(unknown_mark.contains("--at-a mark:nope") && unknown_mark.contains("warmup"), "{unknown_mark}");
    // Usage errors (clap's) also exit 2 with one line; a wrong count of arguments ends with the
    // command's usage, a bad value names the option.
    for (args, says) in [
        (&[a(), b(), a()][..], "; usage: leakview diff"),
        (&["--threshold", "lots", a(), b()], "invalid value 'lots' for '--threshold"),
        (&[], "; usage: leakview diff"),
    ] {
        let out = diff(args);
        let stderr = stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("leakview: "), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

/// Each frame of an SVG flame graph: its `<title>` text and the `fill` of its box.
fn frames_and_fills(svg: &str) -> Vec<(String, String)> {
    svg.split("<title>")
        .skip(1)
        .filter_map(|s| {
            let (title, rest) = s.split_once("</title>")?;
            let fill = rest.split_once("fill=\"")?.1.split_once('"')?.0;
            Some((title.to_string(), fill.to_string()))
        })
        .collect()
}

/// `red`, `blue` or `grey` for an SVG `rgb(R,G,B)` fill.
fn hue(fill: &str) -> &'static str {
    let channels: Vec<u32> = fill
        .trim_start_matches("rgb(")
        .trim_end_matches(')')
        .split(',')
        .map(|c| c.trim().parse().unwrap_or_else(|_| panic!("not rgb(): {fill}")))
        .collect();
    match channels[..] {
        [r, g, b] if r > b && r > g => "red",
        [r, g, b] if b > r && b > g => "blue",
        [r, g, b] if r == g && g == b => "grey",
        _ => "other",
    }
}

#[test]
fn two_variants_as_a_differential_flame_graph() {
    let out = diff(&["--format", "svg", a(), b()]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr_of(&out));
    let svg = stdout_of(&out);
    assert!(svg.starts_with("<?xml") && svg.trim_end().ends_with("</svg>"), "{svg}");
    assert!(svg.contains("Outstanding: A at end ("), "{svg}");
    // leak_fixed's 3 × 1000 B are only in A: no width in B.
    assert!(svg.contains("A 4.1 KiB in 20 blocks → B 2.6 KiB in 18 blocks (-1.5 KiB)"), "{svg}");
    assert!(svg.contains("; 1 stack only in A not drawn<"), "{svg}");
    assert!(!svg.contains("leak_fixed"), "{svg}");
    let frames = frames_and_fills(&svg);
    let frame = |function: &str| {
        frames
            .iter()
            .find(|(title, _)| title.starts_with(&format!("{function} (")))
            .unwrap_or_else(|| panic!("no frame {function} in {frames:#?}"))
            .clone()
    };
    // Widths are B's bytes; red where B holds more than A, blue where less, grey where equal.
    for (function, bytes, colour) in [
        ("leak_growing", "1,280", "red"),
        ("leak_added", "1,024", "red"),
        ("leak_shrinking", "64", "blue"),
        ("leak_unchanged", "256", "grey"),
    ] {
        let (title, fill) = frame(function);
        assert!(title.starts_with(&format!("{function} ({bytes} bytes, ")), "{title}");
        assert_eq!(hue(&fill), colour, "{title}: {fill}");
    }

    // A diff by function has no stacks to draw.
    let by_function = diff(&["--format", "svg", "--group-by", "function", a(), b()]);
    assert_eq!(by_function.status.code(), Some(2));
    assert!(stderr_of(&by_function).contains("--format svg draws stacks"), "{}", stderr_of(&by_function));
}
