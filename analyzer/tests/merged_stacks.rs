//! Stacks that read the same once symbolized and trimmed are one group in the reports, `check`
//! and folded output, with exact totals and ranked by the merged figures; the raw
//! `Analysis::group` keeps one group per recorded stack. The trace is synthetic, its return
//! addresses point into a small C program compiled with debug info.

mod common;

use common::leaky_fixture::{LEAK_STACK, LeakyTrace, PRELOAD_BASE};
use leakview_analyzer::{
    AllocWindow, Analysis, GroupBy, GroupKey, NoProgress, Report, RuntimeBlocks, StackId, Suppressions, check,
};

/// Stack 2: recorder frame 0x1234 → make_leak → main; stack 5: recorder frame 0x2000 →
/// make_leak → main; stack 4: make_leak → main (no recorder frame). All three read
/// `make_leak, main`. Stack 3: make_temp → main.
/// Outstanding at the end: 48 B (stack 2, thread 1, t=10), 24 + 8 B (stack 5, thread 2,
/// t=20 and 25), 40 B (stack 4, thread 1, t=30) — 120 B in 4 blocks reading alike — and
/// 100 B (stack 3, t=40), which the raw grouping ranks first.
fn fixture() -> LeakyTrace {
    LeakyTrace::write(60, |b| {
        b.stack(1, 5, LEAK_STACK, PRELOAD_BASE + 0x2000);
        b.alloc(1, 10, 0x100, 48, 2);
        b.alloc(2, 20, 0x200, 24, 5);
        b.alloc(2, 25, 0x280, 8, 5);
        b.alloc(1, 30, 0x300, 40, 4);
        b.alloc(1, 40, 0x400, 100, 3);
        b.alloc(1, 45, 0x500, 1000, 3);
        b.free(1, 50, 0x500);
    })
}

fn function_names(a: &Analysis, stack: StackId) -> Vec<String> {
    a.stack_frames(stack).iter().map(|f| f.function.clone().unwrap_or_default()).collect()
}

#[test]
fn stacks_that_read_alike_are_one_group_with_the_summed_figures() {
    let f = fixture();
    let a = f.load();
    let snapshot = a.outstanding_at(60);
    let raw = a.group(&snapshot, GroupBy::Stack);
    assert_eq!(raw.len(), 4, "the raw grouping keeps one group per recorded stack");
    assert_eq!(raw.group(0).map(|g| g.bytes), Some(100));

    let merged = a.group_merged(&snapshot, GroupBy::Stack);
    assert_eq!(merged.len(), 2);
    let groups = merged.all();
    // Ranked by the merged bytes: 120 B from three stacks before make_temp's 100 B.
    assert_eq!(groups.iter().map(|g| (g.bytes, g.blocks)).collect::<Vec<_>>(), vec![(120, 4), (100, 1)]);
    let alike = &groups[0];
    assert_eq!(alike.key, GroupKey::Stack(StackId(2)), "keyed by its heaviest stack");
    assert_eq!(alike.stacks, vec![StackId(2), StackId(4), StackId(5)], "most bytes first");
    assert_eq!((alike.first_alloc_ns, alike.last_alloc_ns), (10, 30));
    assert_eq!(alike.threads.len(), 2);
    for &stack in &alike.stacks {
        assert_eq!(function_names(&a, stack), vec!["make_leak", "main"]);
    }
    assert_eq!(function_names(&a, groups[1].stacks[0]), vec!["make_temp", "main"]);
    // Exact: the groups partition the outstanding blocks.
    assert_eq!(groups.iter().map(|g| g.bytes).sum::<u64>(), snapshot.totals().bytes);
    assert_eq!(groups.iter().map(|g| g.blocks).sum::<u64>(), snapshot.totals().blocks);
    let raw_bytes: u64 =
        raw.all().iter().filter(|g| alike.stacks.contains(&g.stacks[0])).map(|g| g.bytes).sum();
    assert_eq!(raw_bytes, alike.bytes);
    // Its blocks are those of every member stack, in allocation order.
    let blocks: Vec<u64> =
        merged.block_ids(alike).iter().filter_map(|&id| a.block(id)).map(|b| b.address).collect();
    assert_eq!(blocks, vec![0x100, 0x200, 0x280, 0x300]);
    let others: Vec<u64> =
        merged.block_ids(&groups[1]).iter().filter_map(|&id| a.block(id)).map(|b| b.address).collect();
    assert_eq!(others, vec![0x400]);

    // Before stack 4's block and the make_temp blocks, the merge keeps the grouping as it is.
    let early = a.group_merged(&a.outstanding_at(15), GroupBy::Stack);
    assert_eq!(early.all().iter().map(|g| (g.bytes, g.stacks.len())).collect::<Vec<_>>(), vec![(48, 1)]);
    // Other groupings are the raw ones.
    let by_function = a.group_merged(&snapshot, GroupBy::Function).all();
    assert_eq!(by_function, a.group(&snapshot, GroupBy::Function).all());
    let main = by_function.iter().find(|g| g.key == GroupKey::Function("main".into())).expect("main");
    assert_eq!((main.bytes, main.blocks, main.stacks.len()), (220, 5, 4));
}

#[test]
fn reports_and_check_show_one_group_for_stacks_that_read_alike() {
    let f = fixture();
    let a = f.load();
    let report = Report::new(&a, "end", 60, &AllocWindow::all(), GroupBy::Stack, 1, &NoProgress);
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).expect("valid JSON");
    assert_eq!(json["outstanding"]["groups"], 2);
    let top = &json["groups"][0];
    assert_eq!((&top["bytes"], &top["blocks"], &top["stacks"]), (&120.into(), &4.into(), &3.into()));
    assert_eq!(top["stack_id"], 2);
    assert_eq!(top["frames"][0]["function"], "make_leak");
    let text = report.to_text();
    assert!(text.contains("in 2 stacks"), "{text}");
    assert!(text.contains("from 3 call sites with these frames"), "{text}");
    assert_eq!(report.to_folded(), "main;make_leak 120\nmain;make_temp 100\n");

    let outcome = check(
        &a,
        60,
        &AllocWindow::all(),
        &Suppressions::default(),
        RuntimeBlocks::Counted,
        None,
        &NoProgress,
    );
    assert_eq!(outcome.leaks.iter().map(|g| g.bytes).collect::<Vec<_>>(), vec![120, 100]);
    assert_eq!((outcome.leaked.blocks, outcome.leaked.bytes), (5, 220));
    assert!(outcome.to_text(&a, "end").contains("from 2 stacks"));
    let rules = Suppressions::parse("leak:make_leak\n").expect("parses");
    let suppressed = check(&a, 60, &AllocWindow::all(), &rules, RuntimeBlocks::Counted, None, &NoProgress);
    assert_eq!((suppressed.suppressed.blocks, suppressed.suppressed.bytes), (4, 120));
    assert_eq!(suppressed.rule_hits[0].1.bytes, 120);
}
