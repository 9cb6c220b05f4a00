//! `leakview report`, `stats` and `check` as a user runs them: exit codes, output formats and the
//! one-line errors for missing, empty and damaged traces.

mod common;

use std::path::{Path, PathBuf};

use common::{leakview, stderr, stdout};

use leakview_format::{Event, ThreadStream, TraceMetadata, TraceWriter, WriterOptions};

const START: u64 = 5_000;

/// A trace with one leak (64 bytes from stack 2, thread 7), one freed block, and a mark.
fn write_trace(dir: &Path) -> PathBuf {
    let path = dir.join("leak.bin");
    let meta = TraceMetadata {
        pid: 77,
        executable: "/bin/leaky".into(),
        argv: vec!["leaky".into(), "--once".into()],
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
    let mut worker = ThreadStream::new(8);
    let events = [
        Event::StackNode { id: 1, parent: 0, ip: 0x1000 },
        Event::StackNode { id: 2, parent: 1, ip: 0x2000 },
        Event::Alloc { ts: START + 100, addr: 0x10, size: 64, align: 0, stack: 2 },
        Event::Mark { ts: START + 150, label: b"half" },
        Event::Alloc { ts: START + 200, addr: 0x20, size: 1000, align: 0, stack: 1 },
    ];
    for e in &events {
        writer.append(&mut main, e).expect("append");
    }
    writer.append(&mut worker, &Event::Free { ts: START + 300, addr: 0x20 }).expect("append");
    writer.release(&mut main);
    writer.release(&mut worker);
    writer.finish(START + 400);
    path
}

/// A trace whose program leaked one block of `size` bytes.
fn write_one_block(dir: &Path, size: u64) -> PathBuf {
    let path = dir.join("one.bin");
    let meta = TraceMetadata { pid: 78, start_monotonic_ns: START, clock_id: 1, ..TraceMetadata::default() };
    let writer = TraceWriter::create(&path, &meta, &WriterOptions::default()).expect("create");
    let mut main = ThreadStream::new(7);
    writer.append(&mut main, &Event::StackNode { id: 1, parent: 0, ip: 0x1000 }).expect("append");
    writer
        .append(&mut main, &Event::Alloc { ts: START + 100, addr: 0x10, size, align: 0, stack: 1 })
        .expect("append");
    writer.release(&mut main);
    writer.finish(START + 400);
    path
}

#[test]
fn report_text_json_and_folded() {
    let dir = tempfile::tempdir().expect("temp dir");
    let trace = write_trace(dir.path());
    let t = trace.to_str().expect("utf-8");

    let text = leakview(&["report", t]);
    assert_eq!(text.status.code(), Some(0), "{}", stderr(&text));
    let out = stdout(&text);
    assert!(out.contains("64 B"), "{out}");
    assert!(out.contains("1 block"), "{out}");
    assert!(out.contains("0x2000"), "{out}");
    assert!(!out.contains("1000 B  "), "{out}");

    let json = leakview(&["report", "--format", "json", "--at", "mark:half", t]);
    assert_eq!(json.status.code(), Some(0), "{}", stderr(&json));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON on stdout");
    assert_eq!(v["schema"], 1);
    assert_eq!(v["at_ns"], 150);
    assert_eq!(v["trace"]["pid"], 77);
    assert_eq!(v["outstanding"]["bytes"], 64);
    assert_eq!(v["totals"]["allocations"], 2);
    assert_eq!(v["totals"]["peak_bytes"], 1064);
    assert_eq!(v["groups"][0]["frames"][0]["address"], "0x2000");

    let at_peak = leakview(&["report", "--format", "json", "--at", "peak", "--group-by", "thread", t]);
    let v: serde_json::Value = serde_json::from_slice(&at_peak.stdout).expect("JSON on stdout");
    assert_eq!(v["outstanding"]["bytes"], 1064);
    assert_eq!(v["groups"][0]["thread"]["tid"], 7);

    let by_size = leakview(&["report", "--format", "json", "--at", "60%", "--group-by", "size", t]);
    let v: serde_json::Value = serde_json::from_slice(&by_size.stdout).expect("JSON on stdout");
    let sizes: Vec<_> = v["groups"].as_array().expect("groups").iter().map(|g| g["size"].clone()).collect();
    assert_eq!(sizes, vec![serde_json::json!(1000), serde_json::json!(64)]);

    let by_class = leakview(&["report", "--format", "json", "--at", "60%", "--group-by", "size-class", t]);
    assert_eq!(by_class.status.code(), Some(0), "{}", stderr(&by_class));
    let v: serde_json::Value = serde_json::from_slice(&by_class.stdout).expect("JSON on stdout");
    let classes: Vec<_> =
        v["groups"].as_array().expect("groups").iter().map(|g| g["size_class"].clone()).collect();
    assert_eq!(
        classes,
        vec![serde_json::json!({ "min": 512, "max": 1023 }), serde_json::json!({ "min": 64, "max": 127 })]
    );
    let class_text = stdout(&leakview(&["report", "--at", "60%", "--group-by", "size-class", t]));
    assert!(class_text.contains("sizes 512 B..<1.0 KiB"), "{class_text}");

    let folded = leakview(&["report", "--format", "folded", t]);
    assert_eq!(stdout(&folded), "0x1000;0x2000 64\n");

    // Every stack by default, heaviest first; --top keeps the heaviest.
    let folded_all = stdout(&leakview(&["report", "--format", "folded", "--at", "60%", t]));
    let lines: Vec<&str> = folded_all.lines().collect();
    assert_eq!(lines, ["0x1000 1000", "0x1000;0x2000 64"], "{folded_all}");
    let folded_top = stdout(&leakview(&["report", "--format", "folded", "--at", "60%", "--top", "1", t]));
    assert_eq!(folded_top, "0x1000 1000\n");

    let by_function = leakview(&["report", "--group-by", "function", "--top", "1", t]);
    assert_eq!(by_function.status.code(), Some(0));
    assert!(stdout(&by_function).contains("and 1 more group"), "{}", stdout(&by_function));
}

#[test]
fn grouped_by_size_each_group_names_its_exact_size() {
    let dir = tempfile::tempdir().expect("temp dir");
    let trace = write_one_block(dir.path(), 72_704);
    let out = leakview(&["report", "--group-by", "size", trace.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("size 72,704 B (71.0 KiB)"), "{}", stdout(&out));
}

#[test]
fn bad_moments_are_usage_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let trace = write_trace(dir.path());
    let t = trace.to_str().expect("utf-8");
    for (at, says) in [
        ("mark:nope", "no mark labelled `nope`"),
        ("mark:half#2", "occurs once"),
        ("mark:half#0", "occurs once; there is no occurrence #0 (occurrences count from 1"),
        ("10s", "past the end"),
        ("soon", "is not a moment"),
        ("120%", "percentage"),
    ] {
        let out = leakview(&["report", "--at", at, t]);
        assert_eq!(out.status.code(), Some(2), "--at {at}");
        let err = stderr(&out);
        assert!(err.contains(says), "--at {at}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(out.stdout.is_empty());
    }
    let bad_group = leakview(&["report", "--group-by", "colour", t]);
    assert_eq!(bad_group.status.code(), Some(2));
}

/// `report --format FORMAT --at 60%` of `trace`: the whole text and the lines under its
/// `call tree` header.
fn tree_at_60_percent(format: &str, trace: &str) -> (String, Vec<String>) {
    let out = leakview(&["report", "--format", format, "--at", "60%", trace]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let drawn = text.lines().skip_while(|l| !l.contains("call tree")).skip(1).map(str::to_string).collect();
    (text, drawn)
}

#[test]
fn folded_stacks_and_trees_go_with_grouping_by_stack_only() {
    let dir = tempfile::tempdir().expect("temp dir");
    let trace = write_trace(dir.path());
    let t = trace.to_str().expect("utf-8");
    for (format, says) in [
        ("folded", "one line per stack"),
        ("tree", "merges stacks into a call tree"),
        ("bottom-up", "merges stacks into a call tree"),
    ] {
        for group in ["function", "size", "size-class", "thread"] {
            let out = leakview(&["report", "--format", format, "--group-by", group, t]);
            assert_eq!(out.status.code(), Some(2), "--format {format} --group-by {group}");
            let err = stderr(&out);
            assert!(err.contains(says) && err.contains(&format!("--group-by {group}")), "{err}");
            assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
            assert!(out.stdout.is_empty());
        }
    }
    let by_stack = leakview(&["report", "--format", "folded", "--group-by", "stack", t]);
    assert_eq!(by_stack.status.code(), Some(0), "{}", stderr(&by_stack));
    assert_eq!(stdout(&by_stack), "0x1000;0x2000 64\n");
    // At 60%: the 1000-byte block from frame 0x1000, the 64-byte one from 0x2000 below it.
    let (text, drawn) = tree_at_60_percent("tree", t);
    // The frame's own 1000 bytes rank above its callee's 64.
    let expected = [
        "1.0 KiB       2  100.0%  0x1000",
        " 1000 B       1   94.0%  ├─ (allocated here)",
        "   64 B       1    6.0%  └─ 0x2000",
    ];
    assert_eq!(drawn, expected, "{text}");
    assert!(text.contains("in 2 stacks") && text.contains("(every stack)"), "{text}");
    // Bottom up: each frame that allocated, its callers below it.
    let (text, drawn) = tree_at_60_percent("bottom-up", t);
    let expected = [
        "1000 B       1  94.0%  ├─ 0x1000",
        "  64 B       1   6.0%  └─ 0x2000",
        "  64 B       1   6.0%     0x1000",
    ];
    assert_eq!(drawn, expected, "{text}");
}

#[test]
fn unreadable_traces_are_input_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let empty = dir.path().join("empty.bin");
    std::fs::write(&empty, b"").expect("write");
    let junk = dir.path().join("junk.bin");
    std::fs::write(&junk, b"this is not a leakview trace at all").expect("write");
    let missing = dir.path().join("missing.bin");
    for command in ["report", "stats", "check"] {
        for (path, says) in [(&empty, "is empty"), (&junk, "not a leakview trace"), (&missing, "cannot read")]
        {
            let out = leakview(&[command, path.to_str().expect("utf-8")]);
            assert_eq!(out.status.code(), Some(2), "{command} {}", path.display());
            let err = stderr(&out);
            assert!(err.starts_with("leakview: "), "{err}");
            assert!(err.contains(says), "{command}: {err}");
            assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        }
    }
}

#[test]
fn damaged_traces_load_what_they_can() {
    let dir = tempfile::tempdir().expect("temp dir");
    let trace = write_trace(dir.path());
    let mut bytes = std::fs::read(&trace).expect("read");
    // Garbage over the first chunk's events.
    for b in &mut bytes[4096 + 40..4096 + 60] {
        *b = 0xff;
    }
    let damaged = dir.path().join("damaged.bin");
    std::fs::write(&damaged, &bytes).expect("write");
    let d = damaged.to_str().expect("utf-8");
    let stats = leakview(&["stats", d]);
    assert_eq!(stats.status.code(), Some(0), "{}", stderr(&stats));
    assert!(stdout(&stats).contains("complete     no"), "{}", stdout(&stats));
    assert!(
        stdout(&stats).contains("  0 damaged or missing chunks, 1 undecodable chunk tail\n"),
        "{}",
        stdout(&stats)
    );
    let report = leakview(&["report", d]);
    assert_eq!(report.status.code(), Some(0), "{}", stderr(&report));
    assert!(stdout(&report).contains("incomplete"), "{}", stdout(&report));
}

#[test]
fn a_trace_cut_short_says_where_its_events_end() {
    let dir = tempfile::tempdir().expect("temp dir");
    let trace = write_trace(dir.path());
    let bytes = std::fs::read(&trace).expect("read");
    // Cut before the worker's chunk (its free at 300ns): the events read end at 200ns, while the
    // header still says the trace lasted 400ns. Chunks of 4 KiB follow a 4 KiB header page.
    let reader = leakview_format::TraceReader::open(&trace).expect("open");
    let worker = reader.chunks().iter().find(|c| c.tid == 8).expect("the worker's chunk").index as usize;
    assert!(reader.chunks().iter().all(|c| c.tid != 8 || c.index as usize == worker));
    let cut = dir.path().join("cut.bin");
    std::fs::write(&cut, &bytes[..4096 * (1 + worker)]).expect("write");
    let c = cut.to_str().expect("utf-8");
    let stats = stdout(&leakview(&["stats", c]));
    assert!(stats.contains("duration     400ns (events read: the first 200ns)\n"), "{stats}");
    let report = stdout(&leakview(&["report", c]));
    assert!(report.contains("shown is what could be read, up to 200ns of 400ns"), "{report}");
    // A diff names the side that is incomplete, with the same words.
    let diff = stdout(&leakview(&["diff", trace.to_str().expect("utf-8"), c]));
    assert!(
        diff.contains(
            "warning  trace B is incomplete (program killed, disk full or damaged file); shown is what \
                       could be read, up to 200ns of 400ns"
        ),
        "{diff}"
    );
    assert!(!diff.contains("trace A is incomplete"), "{diff}");
}

#[test]
fn stats_shows_the_analyzer_figures() {
    let dir = tempfile::tempdir().expect("temp dir");
    let trace = write_trace(dir.path());
    let out = leakview(&["stats", trace.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let s = stdout(&out);
    for line in [
        "command      leaky --once",
        "duration     400ns",
        "threads      2",
        "events       6",
        "  alloc          2",
        "  free           1",
        "  stack-node     2",
        "  mark           1",
        "allocations  2 (1.0 KiB allocated)",
        "frees        1",
        // 0x20 was freed (by another thread) and its thread allocated nothing after it.
        "temporary    1 (50.0% of the blocks): freed before their thread allocated again",
        "peak         1.0 KiB in 2 blocks at 200ns",
        "outstanding  64 B in 1 block at the end",
        "complete     yes",
        "marks        1",
        "recorder     test (preload library, whole process)",
    ] {
        assert!(s.lines().any(|l| l == line), "missing `{line}` in\n{s}");
    }
    // Each mark is listed as `--at` names it, with its time.
    assert!(s.lines().any(|l| l.starts_with("  ") && l.ends_with("ns  mark:half")), "{s}");
}

#[test]
fn check_exit_codes_and_suppressions() {
    let dir = tempfile::tempdir().expect("temp dir");
    let trace = write_trace(dir.path());
    let t = trace.to_str().expect("utf-8");

    let leaks = leakview(&["check", t]);
    assert_eq!(leaks.status.code(), Some(1), "{}", stderr(&leaks));
    assert!(stdout(&leaks).contains("leaks: 64 B in 1 block"), "{}", stdout(&leaks));

    let before = leakview(&["check", "--at", "50ns", t]);
    assert_eq!(before.status.code(), Some(0), "{}", stdout(&before));
    assert!(stdout(&before).starts_with("ok: no leaks at 50ns"), "{}", stdout(&before));
    assert!(stdout(&before).contains("nothing outstanding"), "{}", stdout(&before));

    let supp = dir.path().join("leaks.supp");
    std::fs::write(&supp, "# known\nleak:0x2*\n").expect("write");
    let suppressed = leakview(&["check", "--suppressions", supp.to_str().expect("utf-8"), t]);
    assert_eq!(suppressed.status.code(), Some(0), "{}", stdout(&suppressed));
    assert!(stdout(&suppressed).contains("suppressed: 64 B in 1 block"), "{}", stdout(&suppressed));
    assert!(stdout(&suppressed).contains("1 block outstanding, all suppressed"), "{}", stdout(&suppressed));

    std::fs::write(&supp, "leak:nothing-matches-this\n").expect("write");
    let unsuppressed = leakview(&["check", "--suppressions", supp.to_str().expect("utf-8"), t]);
    assert_eq!(unsuppressed.status.code(), Some(1));

    // Before the free both blocks are outstanding, each suppressed by its own rule: the rules
    // are listed in columns.
    std::fs::write(&supp, "leak:0x2*\nleak:0x1000\n").expect("write");
    let both = leakview(&["check", "--at", "250ns", "--suppressions", supp.to_str().expect("utf-8"), t]);
    assert_eq!(both.status.code(), Some(0), "{}", stdout(&both));
    let rules: Vec<String> =
        stdout(&both).lines().filter(|l| l.starts_with("    leak:")).map(String::from).collect();
    assert_eq!(rules.len(), 2, "{}", stdout(&both));
    let columns: Vec<Option<usize>> = rules.iter().map(|l| l.find(" in ")).collect();
    assert!(columns[0].is_some() && columns[0] == columns[1], "rule rows not aligned:\n{}", rules.join("\n"));

    std::fs::write(&supp, "race:foo\n").expect("write");
    let bad = leakview(&["check", "--suppressions", supp.to_str().expect("utf-8"), t]);
    assert_eq!(bad.status.code(), Some(2));
    let message = stderr(&bad);
    assert!(message.contains(&format!("suppressions {} line 1", supp.display())), "{message}");

    let missing = leakview(&["check", "--suppressions", "/nonexistent/x.supp", t]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("cannot read suppressions"), "{}", stderr(&missing));
}

#[test]
fn report_svg_draws_each_stack_as_wide_as_its_bytes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let trace = write_trace(dir.path());
    let t = trace.to_str().expect("utf-8");

    // At 60% both blocks are outstanding: 1000 B from stack 1 (0x1000), 64 B from stack 2
    // (0x1000 calling 0x2000).
    let out = leakview(&["report", "--format", "svg", "--at", "60%", t]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let svg = stdout(&out);
    assert!(svg.starts_with("<?xml") && svg.trim_end().ends_with("</svg>"), "{svg}");
    assert!(svg.contains("Outstanding at 60% (240ns): leaky --once (pid 77)"), "{svg}");
    assert!(svg.contains("1.0 KiB in 2 blocks, widths by bytes<"), "{svg}");
    let mut titles = common::frame_titles(&svg);
    titles.sort();
    assert_eq!(
        titles,
        ["0x1000 (1,064 bytes, 100.00%)", "0x2000 (64 bytes, 6.02%)", "all (1,064 bytes, 100%)"],
        "{svg}"
    );

    // --top keeps the heaviest stacks; ranked by blocks, widths are blocks.
    let top = stdout(&leakview(&["report", "--format", "svg", "--at", "60%", "--top", "1", t]));
    assert!(top.contains("widths by bytes; the 1 heaviest of 2 stacks<"), "{top}");
    assert!(common::frame_titles(&top).contains(&"0x1000 (1,000 bytes, 100.00%)".to_string()), "{top}");
    assert!(!top.contains("0x2000"), "{top}");
    let blocks = stdout(&leakview(&["report", "--format", "svg", "--at", "60%", "--rank-by", "blocks", t]));
    assert!(common::frame_titles(&blocks).contains(&"0x1000 (2 blocks, 100.00%)".to_string()), "{blocks}");

    // A window keeps the blocks allocated in it, and the subtitle says so.
    let window =
        stdout(&leakview(&["report", "--format", "svg", "--at", "60%", "--allocated-after", "mark:half", t]));
    assert!(
        window.contains("1000 B in 1 block, widths by bytes; only blocks allocated from 150ns (mark:half)<"),
        "{window}"
    );
    assert!(!window.contains("0x2000"), "{window}");

    // Nothing outstanding: still an SVG, saying so.
    let none = leakview(&["report", "--format", "svg", "--at", "0%", t]);
    assert_eq!(none.status.code(), Some(0), "{}", stderr(&none));
    assert!(stdout(&none).contains(">No outstanding allocations.</text>"), "{}", stdout(&none));

    // Drawn stacks go with stack grouping only.
    let by_size = leakview(&["report", "--format", "svg", "--group-by", "size", t]);
    assert_eq!(by_size.status.code(), Some(2));
    assert!(stderr(&by_size).contains("--format svg draws stacks"), "{}", stderr(&by_size));
}
