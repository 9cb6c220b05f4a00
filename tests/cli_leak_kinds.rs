//! Leak kinds from a heap scan at exit, as a user sees them: `stats`' leak summary, `report
//! --leak-kind` in text, JSON and folded stacks, `check --leak-kind` exit codes, and the
//! one-line errors where the trace or the other options cannot go with it. The traces are
//! written with the format crate: blocks, then the scan's regions, references and end.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{leakview, stderr, stdout};

use leakview_format::{
    Event, References, ThreadStream, TraceMetadata, TraceWriter, WriterOptions, region_kind,
};

const START: u64 = 5_000;
/// A module's data, and the program break's heap where the blocks are.
const DATA: u64 = 0x60_0000;
const HEAP: u64 = 0x1000_0000;

/// The blocks, each `(address, size, stack)`: A and B still reachable (a global points to A,
/// A to B), C definitely lost and D indirectly lost (C points to D), E possibly lost (a global
/// points into its middle). F is freed before the scan; its old memory still points to C,
/// which does not count.
const A: (u64, u64, u32) = (HEAP, 64, 1);
const B: (u64, u64, u32) = (HEAP + 0x100, 32, 1);
const C: (u64, u64, u32) = (HEAP + 0x200, 128, 2);
const D: (u64, u64, u32) = (HEAP + 0x400, 48, 3);
const E: (u64, u64, u32) = (HEAP + 0x500, 16, 4);
const F: (u64, u64, u32) = (HEAP + 0x600, 16, 4);
/// Allocated after the scan began: not scanned.
const G: (u64, u64, u32) = (HEAP + 0x700, 8, 4);

/// How the scan ends: completely, or not at all.
#[derive(PartialEq)]
enum Scan {
    Complete,
    Interrupted,
    None,
}

fn write(dir: &Path, name: &str, scan: Scan) -> PathBuf {
    let path = dir.join(name);
    let meta = TraceMetadata {
        pid: 91,
        executable: "/bin/lists".into(),
        argv: vec!["lists".into()],
        start_monotonic_ns: START,
        clock_id: 1,
        pointer_width: 8,
        arch: "x86_64".into(),
        recorder: "test".into(),
        ..TraceMetadata::default()
    };
    let options = WriterOptions { chunk_size: 4096, ..WriterOptions::default() };
    let writer = TraceWriter::create(&path, &meta, &options).expect("create");
    let mut main = ThreadStream::new(7);
    let mut append = |e: &Event<'_>| writer.append(&mut main, e).expect("append");
    for (id, ip) in [(1, 0x1000), (2, 0x2000), (3, 0x3000), (4, 0x4000)] {
        append(&Event::StackNode { id, parent: 0, ip });
    }
    for (i, (addr, size, stack)) in [A, B, C, D, E, F].into_iter().enumerate() {
        append(&Event::Alloc { ts: START + 100 + i as u64, addr, size, align: 0, stack });
    }
    append(&Event::Free { ts: START + 200, addr: F.0 });
    if scan != Scan::None {
        let ts = START + 300;
        append(&Event::ScanRegion { ts, start: DATA, len: 0x100, kind: region_kind::MODULE_DATA });
        append(&Event::ScanRegion { ts, start: HEAP, len: 0x1_0000, kind: region_kind::BRK_HEAP });
        let refs =
            [(DATA + 0x08, A.0), (DATA + 0x10, E.0 + 8), (A.0 + 8, B.0), (C.0 + 16, D.0), (F.0 + 8, C.0)];
        append(&Event::References { ts, refs: References::Slice(&refs) });
    }
    append(&Event::Alloc { ts: START + 350, addr: G.0, size: G.1, align: 0, stack: G.2 });
    if scan == Scan::Complete {
        append(&Event::ScanEnd { ts: START + 360, regions: 2, bytes: 4096, references: 5 });
    }
    writer.release(&mut main);
    writer.finish(START + 400);
    path
}

fn json(o: &Output) -> serde_json::Value {
    assert_eq!(o.status.code(), Some(0), "{}", stderr(o));
    serde_json::from_str(&stdout(o)).expect("valid JSON")
}

/// A usage or input error: exit 2, one line on stderr, nothing on stdout.
fn usage_error(o: &Output) -> String {
    assert_eq!(o.status.code(), Some(2), "stdout: {}\nstderr: {}", stdout(o), stderr(o));
    assert!(o.stdout.is_empty(), "{}", stdout(o));
    let message = stderr(o);
    assert_eq!(message.lines().count(), 1, "{message}");
    message
}

#[test]
fn stats_prints_a_leak_summary() {
    let dir = tempfile::tempdir().expect("temp dir");
    let trace = write(dir.path(), "scan.bin", Scan::Complete);
    let out = leakview(&["stats", trace.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let s = stdout(&out);
    let summary: Vec<&str> = s.lines().skip_while(|l| !l.starts_with("leak kinds")).take(6).collect();
    assert_eq!(
        summary,
        [
            "leak kinds   heap scan at 300ns: 4.0 KiB read in 2 regions, 5 references",
            "  definitely lost  128 B in 1 block",
            "  indirectly lost   48 B in 1 block",
            "  possibly lost     16 B in 1 block",
            "  still reachable   96 B in 2 blocks",
            "  not scanned        8 B in 1 block (allocated after the scan began)",
        ],
        "{s}"
    );
    for line in [
        "outstanding  296 B in 6 blocks at the end",
        "events       16",
        "  alloc           7",
        "  scan-region     2",
        "  scan-references 1",
        "  scan-end        1",
    ] {
        assert!(s.lines().any(|l| l == line), "missing `{line}` in\n{s}");
    }
}

#[test]
fn stats_says_when_there_are_no_leak_kinds() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (scan, name, line) in [
        (Scan::None, "none.bin", "leak kinds   not recorded (record with --leak-kinds)"),
        (Scan::Interrupted, "cut.bin", "leak kinds   unknown: the heap scan at exit did not complete"),
    ] {
        let trace = write(dir.path(), name, scan);
        let out = leakview(&["stats", trace.to_str().expect("utf-8")]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let s = stdout(&out);
        assert_eq!(s.lines().filter(|l| l.starts_with("leak kinds")).collect::<Vec<_>>(), [line], "{s}");
        assert!(!s.contains("definitely lost") && !s.contains("scan-end"), "{s}");
    }
}

#[test]
fn report_counts_only_the_kinds_asked_for() {
    let dir = tempfile::tempdir().expect("temp dir");
    let trace = write(dir.path(), "scan.bin", Scan::Complete);
    let t = trace.to_str().expect("utf-8");

    // Text: the header has the four kinds' totals, the counted line says which kinds.
    let text = leakview(&["report", "--leak-kind", "definite", t]);
    assert_eq!(text.status.code(), Some(0), "{}", stderr(&text));
    let text = stdout(&text);
    assert!(
        text.lines().any(|l| l == "leaks    at the end: definitely lost 128 B in 1 block, indirectly lost 48 B in \
                                   1 block, possibly lost 16 B in 1 block, still reachable 96 B in 2 blocks, not \
                                   scanned 8 B in 1 block"),
        "{text}"
    );
    assert!(text.contains(": 128 B in 1 block outstanding, definitely lost, in 1 stack"), "{text}");
    let plain = stdout(&leakview(&["report", t]));
    assert!(plain.contains("leaks    at the end: definitely lost 128 B in 1 block"), "{plain}");
    assert!(plain.contains(": 296 B in 6 blocks outstanding, in 4 stacks"), "{plain}");

    // JSON: the totals per kind always, and the selected blocks of the kinds asked for.
    let kinds = serde_json::json!({
        "definitely_lost": { "blocks": 1, "bytes": 128 },
        "indirectly_lost": { "blocks": 1, "bytes": 48 },
        "possibly_lost": { "blocks": 1, "bytes": 16 },
        "still_reachable": { "blocks": 2, "bytes": 96 },
        "not_scanned": { "blocks": 1, "bytes": 8 },
    });
    let lost = json(&leakview(&["report", "--leak-kind", "lost", "--format", "json", t]));
    assert_eq!(lost["leak_kinds"], kinds);
    assert_eq!(lost["leak_kinds_selected"], serde_json::json!(["definitely_lost", "indirectly_lost"]));
    assert_eq!(lost["selected"], serde_json::json!({ "blocks": 2, "bytes": 176, "groups": 2 }));
    assert_eq!(lost["outstanding"], serde_json::json!({ "blocks": 6, "bytes": 296, "groups": null }));
    let plain = json(&leakview(&["report", "--format", "json", t]));
    assert_eq!(plain["leak_kinds"], kinds);
    assert!(plain.get("leak_kinds_selected").is_none());
    assert_eq!(plain["selected"]["bytes"], 296);

    // Every grouping and format counts the same blocks.
    let reachable =
        json(&leakview(&["report", "--leak-kind", "reachable", "--group-by", "size", "--format", "json", t]));
    assert_eq!(reachable["selected"], serde_json::json!({ "blocks": 2, "bytes": 96, "groups": 2 }));
    let sizes: Vec<&serde_json::Value> =
        reachable["groups"].as_array().expect("groups").iter().map(|g| &g["size"]).collect();
    assert_eq!(sizes, [64, 32]);
    let both = json(&leakview(&["report", "--leak-kind", "possible,not-scanned", "--format", "json", t]));
    assert_eq!(both["selected"], serde_json::json!({ "blocks": 2, "bytes": 24, "groups": 1 }));
    let all = json(&leakview(&["report", "--leak-kind", "all", "--at", "100%", "--format", "json", t]));
    assert_eq!(all["selected"], serde_json::json!({ "blocks": 6, "bytes": 296, "groups": 4 }));
    let folded = leakview(&["report", "--leak-kind", "indirect", "--format", "folded", t]);
    assert_eq!(stdout(&folded), "0x3000 48\n", "{}", stderr(&folded));
    let none = stdout(&leakview(&["report", "--leak-kind", "possible", "--allocated-after", "340ns", t]));
    assert!(none.ends_with("\nNo outstanding allocations are possibly lost.\n"), "{none}");
    let tree = stdout(&leakview(&["report", "--leak-kind", "possible", "--format", "tree", t]));
    assert!(tree.contains(": 16 B in 1 block outstanding, possibly lost, in 1 stack"), "{tree}");
}

#[test]
fn report_of_a_trace_without_a_scan_has_no_leak_kinds() {
    let dir = tempfile::tempdir().expect("temp dir");
    let trace = write(dir.path(), "none.bin", Scan::None);
    let t = trace.to_str().expect("utf-8");
    let plain = json(&leakview(&["report", "--format", "json", t]));
    assert!(plain.get("leak_kinds").is_none(), "{plain}");
    assert!(!stdout(&leakview(&["report", t])).contains("leaks    "));
    let message = usage_error(&leakview(&["report", "--leak-kind", "lost", t]));
    assert_eq!(
        message,
        format!(
            "leakview: {t} has no leak kinds: it was recorded without a heap scan (record with `leakview record \
             --leak-kinds`)\n"
        )
    );
    let cut = write(dir.path(), "cut.bin", Scan::Interrupted);
    let message = usage_error(&leakview(&["report", "--leak-kind", "lost", cut.to_str().expect("utf-8")]));
    assert!(message.ends_with("has no leak kinds: its heap scan at exit did not complete\n"), "{message}");
}

#[test]
fn leak_kinds_do_not_go_with_other_moments_or_selections() {
    let dir = tempfile::tempdir().expect("temp dir");
    let trace = write(dir.path(), "scan.bin", Scan::Complete);
    let t = trace.to_str().expect("utf-8");
    let message = usage_error(&leakview(&["report", "--leak-kind", "lost", "--at", "50%", t]));
    assert_eq!(
        message,
        "leakview: --leak-kind definite,indirect classifies the blocks outstanding at the end (the heap scan is \
         taken at exit); it does not go with --at 50%\n"
    );
    let message = usage_error(&leakview(&["check", "--leak-kind", "lost", "--at", "peak", t]));
    assert!(message.contains("it does not go with --at peak"), "{message}");
    let message = usage_error(&leakview(&["report", "--leak-kind", "definite", "--what", "allocated", t]));
    assert_eq!(
        message,
        "leakview: --leak-kind definite classifies outstanding blocks; it does not go with --what allocated\n"
    );
    let message = usage_error(&leakview(&["report", "--leak-kind", "definitely", t]));
    assert!(message.contains("`definitely` is not a leak kind"), "{message}");
    let message = usage_error(&leakview(&["check", "--leak-kind", "", t]));
    assert!(message.contains("is not a leak kind"), "{message}");
}

#[test]
fn check_fails_only_for_the_kinds_asked_for() {
    let dir = tempfile::tempdir().expect("temp dir");
    let trace = write(dir.path(), "scan.bin", Scan::Complete);
    let t = trace.to_str().expect("utf-8");

    let lost = leakview(&["check", "--leak-kind", "lost", t]);
    assert_eq!(lost.status.code(), Some(1), "{}", stderr(&lost));
    let text = stdout(&lost);
    assert!(
        text.starts_with("leaks: 176 B in 2 blocks outstanding (definitely lost or indirectly lost) at end"),
        "{text}"
    );
    assert!(
        text.contains("\nnot checked: 120 B in 4 blocks outstanding at the end, not definitely lost or indirectly lost\n"),
        "{text}"
    );
    assert_eq!(leakview(&["check", "--leak-kind", "possible", t]).status.code(), Some(1));
    assert_eq!(leakview(&["check", "--leak-kind", "not-scanned", t]).status.code(), Some(1));
    assert_eq!(leakview(&["check", t]).status.code(), Some(1));

    // Suppressing the definitely lost block's stack (0x2000) leaves no definite leak.
    let supp = dir.path().join("c.supp");
    std::fs::write(&supp, "leak:0x2*\n").expect("write");
    let s = supp.to_str().expect("utf-8");
    let passed = leakview(&["check", "--leak-kind", "definite", "--suppressions", s, t]);
    assert_eq!(passed.status.code(), Some(0), "{}", stdout(&passed));
    assert!(
        stdout(&passed).starts_with(
            "ok: no leaks at end (400ns); 296 B in 6 blocks outstanding, not definitely lost, suppressed"
        ),
        "{}",
        stdout(&passed)
    );
    assert_eq!(leakview(&["check", "--leak-kind", "lost", "--suppressions", s, t]).status.code(), Some(1));

    // The JSON says which kinds were checked and what the others hold.
    let doc = leakview(&["check", "--leak-kind", "lost", "--format", "json", t]);
    assert_eq!(doc.status.code(), Some(1), "{}", stderr(&doc));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&doc)).expect("valid JSON");
    assert_eq!(doc["leaked"], serde_json::json!({ "blocks": 2, "bytes": 176 }));
    assert_eq!(doc["other_kinds"], serde_json::json!({ "blocks": 4, "bytes": 120 }));
    assert_eq!(doc["leak_kinds_checked"], serde_json::json!(["definitely_lost", "indirectly_lost"]));
    assert_eq!(doc["leak_kinds"]["still_reachable"], serde_json::json!({ "blocks": 2, "bytes": 96 }));

    let none = write(dir.path(), "none.bin", Scan::None);
    let message = usage_error(&leakview(&["check", "--leak-kind", "lost", none.to_str().expect("utf-8")]));
    assert!(message.contains("has no leak kinds"), "{message}");
}

#[test]
fn check_passes_when_only_other_kinds_are_outstanding() {
    let dir = tempfile::tempdir().expect("temp dir");
    let trace = write(dir.path(), "scan.bin", Scan::Complete);
    let t = trace.to_str().expect("utf-8");
    // Window: only G, allocated after the scan; it is not lost as far as anyone knows.
    let out = leakview(&["check", "--leak-kind", "lost", "--allocated-after", "340ns", t]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(
        stdout(&out).lines().next(),
        Some(
            "ok: no leaks at end (400ns, allocated from 340ns); 8 B in 1 block outstanding, none definitely lost or indirectly lost"
        )
    );
}
