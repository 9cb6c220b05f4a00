//! Every query kind on a small synthetic trace whose answers are worked out by hand: two
//! threads, a cross-thread free, address reuse, reallocs in place and moving, an unmatched free,
//! repeated marks.

mod common;

use common::{Finished, TraceBuilder};
use leakview_analyzer::{
    Analysis, GroupBy, GroupKey, LoadOptions, NoProgress, SortBy, StackId, ThreadIndex, WhenError,
};

const MAIN: u32 = 100;
const WORKER: u32 = 200;

/// Live bytes after each step (relative ns):
/// 10: A 100 | 20: +B 200 | 30: +C 300 | 40: -B | 60: +D 50 at B's address | 70: A realloc'd in
/// place to 150 | 80: C moved to 0x500 with 600 | 90: free of an unknown address | 100: -D |
/// 120: +E 5000 | 130: -E | end 150.
fn scenario() -> Finished {
    let mut b = TraceBuilder::new();
    b.stack(MAIN, 1, 0, 0x1000).stack(MAIN, 2, 1, 0x2000).stack(MAIN, 3, 1, 0x3000);
    b.stack(WORKER, 4, 2, 0x4000);
    b.thread_name(WORKER, 1, "worker");
    b.alloc(MAIN, 10, 0x100, 100, 2);
    b.alloc(MAIN, 20, 0x200, 200, 3);
    b.alloc(WORKER, 30, 0x300, 300, 4);
    b.free(WORKER, 40, 0x200);
    b.mark(MAIN, 50, "phase");
    b.alloc(MAIN, 60, 0x200, 50, 3);
    b.realloc(MAIN, 70, 0x100, 0x100, 150, 2);
    b.realloc(WORKER, 80, 0x300, 0x500, 600, 4);
    b.free(WORKER, 90, 0xdead);
    b.free(MAIN, 100, 0x200);
    b.mark(MAIN, 110, "phase");
    b.alloc(WORKER, 120, 0x600, 5000, 3);
    b.free(WORKER, 130, 0x600);
    b.finish(150)
}

fn load(trace: &Finished) -> Analysis {
    Analysis::open(&trace.path, &LoadOptions::default(), &NoProgress).expect("loads")
}

#[test]
fn summary_and_totals() {
    let trace = scenario();
    let a = load(&trace);
    let s = a.summary();
    assert_eq!(s.pid, 4242);
    assert_eq!(s.command, vec!["synthetic", "--leak"]);
    assert_eq!(s.duration_ns, 150);
    assert_eq!(s.threads, 2);
    assert_eq!(s.stacks, 4);
    assert!(s.complete);
    assert_eq!(s.event_counts.alloc, 5);
    assert_eq!(s.event_counts.free, 4);
    assert_eq!(s.event_counts.realloc, 2);
    assert_eq!(s.event_counts.mark, 2);
    assert_eq!(s.events, 5 + 4 + 2 + 4 + 1 + 2);
    let t = a.totals();
    assert_eq!(t.allocations, 7);
    assert_eq!(t.frees, 5);
    assert_eq!(t.unmatched_frees, 1);
    assert_eq!(t.bytes_allocated, 100 + 200 + 300 + 50 + 150 + 600 + 5000);
    assert_eq!((t.peak_bytes, t.peak_blocks, t.peak_at_ns), (5750, 3, 120));
    assert_eq!((s.outstanding_at_end.blocks, s.outstanding_at_end.bytes), (2, 750));
    assert_eq!(a.threads()[1].name.as_deref(), Some("worker"));
    assert_eq!(a.threads()[0].tid, MAIN);
}

#[test]
fn live_bytes_at_every_step() {
    let trace = scenario();
    let a = load(&trace);
    let expected = [
        (0, 0),
        (10, 100),
        (19, 100),
        (20, 300),
        (30, 600),
        (40, 400),
        (60, 450),
        (70, 500),
        (80, 800),
        (90, 800),
        (100, 750),
        (120, 5750),
        (130, 750),
        (150, 750),
    ];
    for (t, bytes) in expected {
        assert_eq!(a.live_at(t).bytes, bytes, "live bytes at {t}");
        assert_eq!(a.outstanding_at(t).totals().bytes, bytes, "outstanding at {t}");
    }
    let points = a.timeline().points();
    assert_eq!(points.iter().map(|p| p.max_live_bytes).max(), Some(5750));
    assert_eq!(points.last().map(|p| p.live_bytes), Some(750));
    let coarse = a.timeline().downsample(3);
    assert_eq!(coarse.len(), 3);
    assert_eq!(coarse.iter().map(|p| p.max_live_bytes).max(), Some(5750));
}

#[test]
fn outstanding_blocks_have_their_origin() {
    let trace = scenario();
    let a = load(&trace);
    let at_end: Vec<_> = a.blocks(&a.outstanding_at(a.duration_ns())).collect();
    assert_eq!(at_end.len(), 2);
    assert_eq!((at_end[0].address, at_end[0].size, at_end[0].alloc_ns), (0x100, 150, 70));
    assert_eq!((at_end[0].thread, at_end[0].stack), (ThreadIndex(0), StackId(2)));
    assert_eq!((at_end[1].address, at_end[1].size, at_end[1].alloc_ns), (0x500, 600, 80));
    assert_eq!((at_end[1].thread, at_end[1].stack), (ThreadIndex(1), StackId(4)));
    assert!(at_end.iter().all(|b| b.free_ns.is_none()));
    let at_40: Vec<_> = a.blocks(&a.outstanding_at(40)).map(|b| (b.address, b.size)).collect();
    assert_eq!(at_40, vec![(0x100, 100), (0x300, 300)]);
    // The cross-thread free ended B at 40; D reused its address from 60 to 100.
    let reused: Vec<_> = (0..a.block_count() as u32)
        .filter_map(|i| a.block(leakview_analyzer::BlockId(i)))
        .filter(|b| b.address == 0x200)
        .map(|b| (b.alloc_ns, b.free_ns))
        .collect();
    assert_eq!(reused, vec![(20, Some(40)), (60, Some(100))]);
}

#[test]
fn moments_resolve() {
    let trace = scenario();
    let a = load(&trace);
    assert_eq!(a.resolve_when("end"), Ok(150));
    assert_eq!(a.resolve_when("peak"), Ok(120));
    assert_eq!(a.resolve_when("50%"), Ok(75));
    assert_eq!(a.resolve_when("100ns"), Ok(100));
    assert_eq!(a.resolve_when("mark:phase"), Ok(50));
    assert_eq!(a.resolve_when("mark:phase#2"), Ok(110));
    assert!(matches!(a.resolve_when("mark:phase#3"), Err(WhenError::MarkOccurrence { count: 2, .. })));
    assert!(matches!(a.resolve_when("1s"), Err(WhenError::PastEnd { .. })));
    let marks: Vec<_> = a.marks().iter().map(|m| (m.label.as_str(), m.at_ns, m.occurrence)).collect();
    assert_eq!(marks, vec![("phase", 50, 1), ("phase", 110, 2)]);
    assert_eq!(a.outstanding_at(a.resolve_when("mark:phase").unwrap_or(0)).totals().bytes, 400);
}

#[test]
fn grouping_by_every_key() {
    let trace = scenario();
    let a = load(&trace);
    let end = a.outstanding_at(150);

    let by_stack = a.group(&end, GroupBy::Stack);
    let rows: Vec<_> = by_stack.iter().map(|g| (g.key.clone(), g.blocks, g.bytes)).collect();
    assert_eq!(rows, vec![(GroupKey::Stack(StackId(4)), 1, 600), (GroupKey::Stack(StackId(2)), 1, 150)]);
    let first = by_stack.group(0).expect("group");
    assert_eq!(first.threads, vec![ThreadIndex(1)]);
    assert_eq!((first.first_alloc_ns, first.last_alloc_ns), (80, 80));
    let ids = by_stack.block_ids(&by_stack.group(1).expect("group"));
    assert_eq!(ids.iter().filter_map(|&id| a.block(id)).map(|b| b.address).collect::<Vec<_>>(), vec![0x100]);

    let by_function = a.group(&end, GroupBy::Function);
    let rows: Vec<_> = by_function
        .iter()
        .map(|g| match &g.key {
            GroupKey::Function(name) => (name.to_string(), g.blocks, g.bytes),
            other => panic!("unexpected key {other:?}"),
        })
        .collect();
    // 0x1000 and 0x2000 hold the same blocks: 0x2000, nearer the allocations, comes first.
    assert_eq!(
        rows,
        vec![("0x2000".to_string(), 2, 750), ("0x1000".to_string(), 2, 750), ("0x4000".to_string(), 1, 600)]
    );
    let top = &by_function.group(0).expect("group");
    assert_eq!(top.threads, vec![ThreadIndex(0), ThreadIndex(1)]);
    assert_eq!((top.first_alloc_ns, top.last_alloc_ns), (70, 80));
    assert_eq!(by_function.block_ids(top).len(), 2);

    let by_size = a.group(&end, GroupBy::Size);
    let keys: Vec<_> = by_size.iter().map(|g| g.key.clone()).collect();
    assert_eq!(keys, vec![GroupKey::Size(600), GroupKey::Size(150)]);

    let by_class = a.group(&end, GroupBy::SizeClass);
    let keys: Vec<_> = by_class.iter().map(|g| g.key.clone()).collect();
    assert_eq!(keys, vec![GroupKey::SizeClass(10), GroupKey::SizeClass(8)]);

    let mut by_thread = a.group(&end, GroupBy::Thread);
    let keys: Vec<_> = by_thread.iter().map(|g| (g.key.clone(), g.bytes)).collect();
    assert_eq!(keys, vec![(GroupKey::Thread(ThreadIndex(1)), 600), (GroupKey::Thread(ThreadIndex(0)), 150)]);
    by_thread.sort(SortBy::Blocks);
    assert_eq!(by_thread.len(), 2);
}

#[test]
fn stacks_and_filters() {
    let trace = scenario();
    let a = load(&trace);
    assert_eq!(a.stack_addresses(StackId(4)), vec![0x4000, 0x2000, 0x1000]);
    let frames = a.stack_frames(StackId(4));
    assert_eq!(frames.iter().map(|f| f.address).collect::<Vec<_>>(), vec![0x4000, 0x2000, 0x1000]);
    let grouping = a.group(&a.outstanding_at(150), GroupBy::Stack);
    assert_eq!(a.filter_groups(&grouping, "0x4000"), vec![0]);
    assert_eq!(a.filter_groups(&grouping, "0x2000"), vec![0, 1]);
    assert!(a.filter_groups(&grouping, "nothing-like-this").is_empty());
}
