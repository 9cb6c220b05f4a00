//! Reports, JSON shape, folded stacks and `check` with suppressions, on a synthetic trace whose
//! return addresses point into a small C program compiled with debug info, plus a frame in the
//! recorder's own library that must be trimmed.

mod common;

use common::leaky_fixture::LeakyTrace;
use leakview_analyzer::{
    AllocWindow, GroupBy, NoProgress, Report, RuntimeBlocks, Suppressions, WindowEnd, check,
};

/// Stack 2: recorder frame → make_leak → main. Stack 3: make_temp → main.
/// 0x100: 64 bytes from make_leak, never freed. 0x200: 16 bytes from make_temp, freed.
/// 0x300: 32 bytes from make_leak on another thread, never freed.
fn fixture() -> LeakyTrace {
    LeakyTrace::write(60, |b| {
        b.alloc(1, 10, 0x100, 64, 2);
        b.alloc(1, 20, 0x200, 16, 3);
        b.free(1, 30, 0x200);
        b.alloc(2, 40, 0x300, 32, 2);
        b.mark(1, 50, "done");
    })
}

#[test]
fn stacks_are_symbolized_and_trimmed() {
    let f = fixture();
    let a = f.load();
    let grouping = a.group(&a.outstanding_at(60), GroupBy::Stack);
    assert_eq!(grouping.len(), 1);
    let stack = grouping.group(0).expect("group").stacks[0];
    let frames = a.stack_frames(stack);
    let names: Vec<_> = frames.iter().map(|f| f.function.clone().unwrap_or_default()).collect();
    assert_eq!(names, vec!["make_leak", "main"]);
    assert!(frames[0].file.as_deref().is_some_and(|f| f.ends_with("leaky.c")));
    assert!(frames[0].line.is_some());
    let untrimmed = a.stack_frames_untrimmed(stack);
    assert_eq!(untrimmed.len(), 3);
    assert!(untrimmed[0].module.as_deref().is_some_and(|m| m.ends_with("libleakview_preload.so")));
    assert_eq!(a.modules().len(), 2);
}

#[test]
fn function_groups_are_inclusive() {
    let f = fixture();
    let a = f.load();
    let at_20 = a.group(&a.outstanding_at(20), GroupBy::Function);
    let rows: Vec<_> = at_20
        .iter()
        .map(|g| (g.frame.as_ref().and_then(|f| f.function.clone()).unwrap_or_default(), g.blocks, g.bytes))
        .collect();
    assert_eq!(
        rows,
        vec![("main".to_string(), 2, 80), ("make_leak".to_string(), 1, 64), ("make_temp".to_string(), 1, 16)]
    );
    // Any frame of a group's stacks counts: main's stacks include make_temp.
    assert_eq!(a.filter_groups(&at_20, "MAKE_T"), vec![0, 2]);
    assert!(a.filter_groups(&at_20, "nowhere").is_empty());
    assert_eq!(a.filter_groups(&at_20, "leaky.c").len(), 3);
}

#[test]
fn json_has_the_documented_shape() {
    let f = fixture();
    let a = f.load();
    let report = Report::new(&a, "end", 60, &AllocWindow::all(), GroupBy::Stack, 20, &NoProgress);
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).expect("valid JSON");
    assert_eq!(json["schema"], 1);
    let trace = &json["trace"];
    assert_eq!(trace["path"], f.trace.path.display().to_string());
    assert_eq!(trace["pid"], 4242);
    assert_eq!(trace["command"], serde_json::json!(["synthetic", "--leak"]));
    assert_eq!(trace["start_unix_ns"], 1_700_000_000_000_000_000u64);
    assert_eq!(trace["duration_ns"], 60);
    assert_eq!(trace["threads"], 2);
    assert_eq!(trace["complete"], true);
    assert!(trace["events"].as_u64().is_some_and(|n| n >= 9));
    assert_eq!(json["at_ns"], 60);
    let totals = &json["totals"];
    assert_eq!(
        (
            &totals["allocations"],
            &totals["frees"],
            &totals["bytes_allocated"],
            &totals["peak_bytes"],
            &totals["peak_at_ns"]
        ),
        (
            &serde_json::json!(3),
            &serde_json::json!(1),
            &serde_json::json!(112),
            &serde_json::json!(96),
            &serde_json::json!(40)
        )
    );
    assert_eq!(json["outstanding"]["blocks"], 2);
    assert_eq!(json["outstanding"]["bytes"], 96);
    let groups = json["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), 1);
    assert_eq!((&groups[0]["blocks"], &groups[0]["bytes"]), (&serde_json::json!(2), &serde_json::json!(96)));
    let frame = &groups[0]["frames"][0];
    assert_eq!(frame["function"], "make_leak");
    assert!(frame["file"].as_str().is_some_and(|f| f.ends_with("leaky.c")));
    assert!(frame["line"].as_u64().is_some());
    assert!(frame["module"].as_str().is_some_and(|m| m.ends_with("/leaky")));
    assert!(frame["address"].as_str().is_some_and(|a| a.starts_with("0x5555")));

    let by_function = Report::new(&a, "end", 60, &AllocWindow::all(), GroupBy::Function, 0, &NoProgress);
    let json: serde_json::Value = serde_json::from_str(&by_function.to_json()).expect("valid JSON");
    let functions: Vec<_> =
        json["groups"].as_array().expect("groups").iter().map(|g| g["function"].clone()).collect();
    // Tied in bytes: the allocating function first, then its caller.
    assert_eq!(functions, vec![serde_json::json!("make_leak"), serde_json::json!("main")]);
}

#[test]
fn folded_and_text() {
    let f = fixture();
    let a = f.load();
    let report = Report::new(&a, "mark:done", 50, &AllocWindow::all(), GroupBy::Stack, 20, &NoProgress);
    assert_eq!(report.to_folded(), "main;make_leak 96\n");
    let text = report.to_text();
    assert!(text.contains("96 B"), "{text}");
    assert!(text.contains("2 blocks"), "{text}");
    assert!(text.contains("make_leak"), "{text}");
    assert!(text.contains("leaky.c:"), "{text}");
    assert!(!text.contains("libleakview_preload"), "{text}");
    let empty = Report::new(&a, "start", 0, &AllocWindow::all(), GroupBy::Stack, 20, &NoProgress);
    assert!(empty.to_text().contains("No outstanding allocations."));
    assert_eq!(empty.to_folded(), "");
}

#[test]
fn text_names_each_group_thread_once() {
    let f = fixture();
    let a = f.load();
    let by_thread =
        Report::new(&a, "end", 60, &AllocWindow::all(), GroupBy::Thread, 20, &NoProgress).to_text();
    let titles: Vec<&str> = by_thread.lines().filter(|l| l.starts_with('#')).collect();
    assert_eq!(titles.len(), 2, "{by_thread}");
    for (title, tid) in titles.iter().zip(["1", "2"]) {
        assert!(title.contains(&format!("thread {tid}")), "{title}");
        assert_eq!(title.matches("thread").count(), 1, "{title}");
    }
    // Other groupings still say which thread allocated a group's blocks.
    let by_size = Report::new(&a, "end", 60, &AllocWindow::all(), GroupBy::Size, 20, &NoProgress).to_text();
    assert!(by_size.lines().any(|l| l.starts_with('#') && l.contains("by thread 2")), "{by_size}");
}

#[test]
fn check_with_suppressions() {
    let f = fixture();
    let a = f.load();
    let none = check(
        &a,
        60,
        &AllocWindow::all(),
        &Suppressions::default(),
        RuntimeBlocks::Counted,
        None,
        &NoProgress,
    );
    assert!(!none.passed());
    assert_eq!((none.leaked.blocks, none.leaked.bytes), (2, 96));
    assert!(none.to_text(&a, "end").contains("make_leak"));
    for pattern in ["make_leak", "make_*", "leaky.c", "^make_leak$"] {
        let rules = Suppressions::parse(&format!("# ours\nleak:{pattern}\n")).expect("parses");
        let outcome = check(&a, 60, &AllocWindow::all(), &rules, RuntimeBlocks::Counted, None, &NoProgress);
        assert!(outcome.passed(), "leak:{pattern}");
        assert_eq!((outcome.suppressed.blocks, outcome.suppressed.bytes), (2, 96));
        assert_eq!(outcome.rule_hits[0].1.blocks, 2);
    }
    let other = Suppressions::parse("leak:make_temp\nleak:^main_$\n").expect("parses");
    assert!(!check(&a, 60, &AllocWindow::all(), &other, RuntimeBlocks::Counted, None, &NoProgress).passed());
    // At 20, make_temp's block is outstanding too; suppressing it alone leaves make_leak's.
    let partial = check(&a, 20, &AllocWindow::all(), &other, RuntimeBlocks::Counted, None, &NoProgress);
    assert_eq!((partial.leaked.blocks, partial.suppressed.blocks), (1, 1));
    assert!(
        check(
            &a,
            5,
            &AllocWindow::all(),
            &Suppressions::default(),
            RuntimeBlocks::Counted,
            None,
            &NoProgress
        )
        .passed()
    );
}

fn window(after: Option<u64>, before: Option<u64>) -> AllocWindow {
    let end = |ns: u64| WindowEnd { ns, when: format!("{ns}ns") };
    AllocWindow { after: after.map(end), before: before.map(end) }
}

#[test]
fn an_allocation_window_narrows_every_report_to_the_blocks_allocated_in_it() {
    let f = fixture();
    let a = f.load();
    // Outstanding at the end: 0x100 (64 B, allocated at 10) and 0x300 (32 B, at 40).
    let late = window(Some(40), None);
    let snapshot = a.outstanding_in(60, &late);
    assert_eq!((snapshot.totals().blocks, snapshot.totals().bytes), (1, 32));
    let early = window(None, Some(40));
    assert_eq!(a.outstanding_in(60, &early).totals().bytes, 64);
    assert_eq!(a.outstanding_in(60, &window(Some(11), Some(40))).totals().blocks, 0);
    assert_eq!(a.outstanding_in(60, &window(Some(10), Some(41))).totals().blocks, 2);
    assert_eq!(a.outstanding_in(60, &window(Some(0), None)), a.outstanding_at(60));

    let report = Report::new(&a, "end", 60, &late, GroupBy::Stack, 20, &NoProgress);
    let text = report.to_text();
    assert!(text.contains("32 B in 1 block outstanding"), "{text}");
    assert!(text.contains("only     blocks allocated from 40ns"), "{text}");
    assert_eq!(report.to_folded(), "main;make_leak 32\n");
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).expect("valid JSON");
    assert_eq!((json["allocated_after_ns"].as_u64(), json["allocated_before_ns"].as_u64()), (Some(40), None));
    assert_eq!(json["outstanding"]["bytes"], 32);

    let outcome = check(&a, 60, &early, &Suppressions::default(), RuntimeBlocks::Counted, None, &NoProgress);
    assert_eq!((outcome.leaked.blocks, outcome.leaked.bytes), (1, 64));
    assert!(outcome.to_text(&a, "end").contains("allocated before 40ns"), "{}", outcome.to_text(&a, "end"));
    let none = check(
        &a,
        60,
        &window(Some(50), None),
        &Suppressions::default(),
        RuntimeBlocks::Counted,
        None,
        &NoProgress,
    );
    assert!(none.passed());

    let suspects = a.suspects_in(60, &late);
    assert_eq!(suspects.len(), 1);
    assert_eq!((suspects[0].blocks, suspects[0].bytes), (1, 32));
    // The evidence about the stack still counts both of its blocks.
    assert_eq!(suspects[0].allocations, 2);
}

#[test]
fn the_call_tree_merges_stacks_from_main_down() {
    use leakview_analyzer::{ReportSpec, Selection, SortBy, TreeOrder};
    // make_leak's 64 bytes (behind the recorder's frame), make_temp's 16 and main's own 8.
    let f = LeakyTrace::write(60, |b| {
        b.alloc(1, 10, 0x100, 64, 2);
        b.alloc(1, 20, 0x200, 16, 3);
        b.alloc(1, 30, 0x300, 8, 1);
    });
    let a = f.load();
    let spec = |top| ReportSpec {
        when: "end".to_string(),
        at_ns: 60,
        window: AllocWindow::all(),
        selection: Selection::Outstanding,
        by: GroupBy::Stack,
        sort: SortBy::Bytes,
        top,
        leak_kinds: None,
    };
    let text = Report::build(&a, &spec(0), &NoProgress).to_tree(TreeOrder::TopDown);
    let drawn: Vec<&str> = text.lines().skip_while(|l| !l.contains("call tree")).skip(1).collect();
    assert_eq!(drawn.len(), 4, "{text}");
    let starts = [
        " 88 B       3  100.0%  main  ",
        " 64 B       1   72.7%  ├─ make_leak  ",
        " 16 B       1   18.2%  ├─ make_temp  ",
    ];
    for (line, start) in drawn.iter().zip(starts) {
        assert!(line.starts_with(start) && line.contains("leaky.c:"), "{start:?} in {text}");
    }
    assert_eq!(drawn[3], "  8 B       1    9.1%  └─ (allocated here)", "{text}");
    assert!(text.contains("(every stack)") && !text.contains("libleakview_preload"), "{text}");
    // The two largest stacks only: the root holds their bytes, the rest is counted below.
    let top = Report::build(&a, &spec(2), &NoProgress).to_tree(TreeOrder::TopDown);
    assert!(top.contains("(the 2 largest of 3 stacks)"), "{top}");
    assert!(top.contains(" 80 B       2  90.9%  main  "), "{top}");
    assert!(!top.contains("(allocated here)"), "{top}");
    assert!(top.ends_with("\n… and 1 more stack, 8 B (--top 0 draws all)\n"), "{top}");
    // Bottom up: each allocating function first, main below it as its caller.
    let bottom_up = Report::build(&a, &spec(0), &NoProgress).to_tree(TreeOrder::BottomUp);
    let drawn: Vec<&str> = bottom_up.lines().skip_while(|l| !l.contains("call tree")).skip(1).collect();
    let starts = [
        " 64 B       1  72.7%  ├─ make_leak  ",
        " 64 B       1  72.7%  │  main  ",
        " 16 B       1  18.2%  ├─ make_temp  ",
        " 16 B       1  18.2%  │  main  ",
        "  8 B       1   9.1%  └─ main  ",
    ];
    assert_eq!(drawn.len(), starts.len(), "{bottom_up}");
    for (line, start) in drawn.iter().zip(starts) {
        assert!(line.starts_with(start) && line.contains("leaky.c:"), "{start:?} in {bottom_up}");
    }
    assert!(bottom_up.contains("call tree, bottom up: allocating frame first"), "{bottom_up}");
    // Before the first allocation there is nothing to draw, as the text report says.
    let empty =
        Report::build(&a, &ReportSpec { at_ns: 0, ..spec(0) }, &NoProgress).to_tree(TreeOrder::TopDown);
    assert!(empty.ends_with("\nNo outstanding allocations.\n") && !empty.contains("call tree"), "{empty}");
}
