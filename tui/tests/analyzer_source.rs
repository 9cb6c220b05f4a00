//! The analyzer-backed source moves its aggregates incrementally while scrubbing; at every moment
//! of a walk (steps both ways, jumps, returns) its answers must equal the analyzer's own
//! grouping of the blocks outstanding at that moment (or allocated by it, or temporary by it).

mod common;

use std::collections::HashMap;

use common::trace::{write_synthetic_trace, write_synthetic_trace_with_scratch};
use leakview_analyzer::{AllocWindow, Analysis, GroupBy, GroupKey as AKey, LoadOptions, NoProgress};
use leakview_tui::AnalysisSource;
use leakview_tui::source::{DataSource, GroupQuery, Grouping, Selection, SortKey};

fn expected(analysis: &Analysis, at_ns: u64, by: GroupBy, what: Selection) -> HashMap<String, (u64, u64)> {
    let snapshot = analysis.select(at_ns, &AllocWindow::all(), what);
    // As the reports group (stacks that read the same are one group; this trace has none).
    let grouping = analysis.group_merged(&snapshot, by);
    grouping
        .iter()
        .map(|g| {
            let name = match &g.key {
                AKey::Stack(s) => format!("stack {}", s.0),
                AKey::Function(f) => f.to_string(),
                AKey::SizeClass(c) => format!("class {c}"),
                AKey::Thread(t) => format!("thread #{}", t.0),
                other => format!("{other:?}"),
            };
            (name, (g.bytes, g.blocks))
        })
        .collect()
}

fn actual(
    source: &AnalysisSource,
    at_ns: u64,
    grouping: Grouping,
    what: Selection,
) -> HashMap<String, (u64, u64)> {
    let query = GroupQuery { at_ns, grouping, sort: SortKey::Bytes, filter: String::new(), what };
    source
        .groups(&query)
        .into_iter()
        .map(|row| {
            let name = match grouping {
                Grouping::Stack => format!("stack {}", row.key.0),
                Grouping::Function => row.label.clone(),
                Grouping::Size => format!("class {}", row.key.0),
                Grouping::Thread => format!("thread #{}", row.key.0),
            };
            (name, (row.totals.bytes, row.totals.blocks))
        })
        .collect()
}

#[test]
fn incremental_groups_equal_the_analyzers_at_every_moment_of_a_walk() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("walk.bin");
    write_synthetic_trace_with_scratch(&path, 60_000, Some(3));
    let load = || Analysis::open(&path, &LoadOptions::default(), &NoProgress).expect("loads");
    let reference = load();
    let source = AnalysisSource::new(load());
    let end = reference.duration_ns();
    let step = end / 200;
    let mut moments = vec![end];
    moments.extend((1..=25).map(|k| end - k * step));
    moments.extend((0..12).map(|k| end - 25 * step + k * 7 * step / 3));
    moments.extend([0, step, end / 2, end / 2 - 1, end / 2 + 1, end, 0, end]);
    assert!(reference.live_at(end).blocks > 1_000, "the walk covers a sizeable live heap");
    let temporary = reference.temporary_count();
    assert!(temporary > 1_000 && temporary < reference.block_count() as u64 / 2, "{temporary} temporary");
    // The whole walk once per selection: switching rebuilds, the steps of a walk move.
    for what in [Selection::Outstanding, Selection::Allocated, Selection::Temporary, Selection::Outstanding] {
        for (i, &t) in moments.iter().enumerate() {
            let grouping = [Grouping::Stack, Grouping::Function, Grouping::Size, Grouping::Thread][i % 4];
            let by = match grouping {
                Grouping::Stack => GroupBy::Stack,
                Grouping::Function => GroupBy::Function,
                Grouping::Size => GroupBy::SizeClass,
                Grouping::Thread => GroupBy::Thread,
            };
            assert_eq!(
                actual(&source, t, grouping, what),
                expected(&reference, t, by, what),
                "{what:?} by {grouping:?} at {t} (moment {i})"
            );
            let counted = reference.select(t, &AllocWindow::all(), what).totals();
            let totals = source.totals_at(t, what);
            assert_eq!((totals.blocks, totals.bytes), (counted.blocks, counted.bytes), "{what:?} at {t}");
        }
    }
}

/// A synthetic trace of 30,000 events loaded twice: the analyzer's own answers (`reference`)
/// and the browser's source over it, and a moment three quarters in.
struct Loaded {
    _dir: tempfile::TempDir,
    reference: Analysis,
    source: AnalysisSource,
    at: u64,
}

fn load_synthetic() -> Loaded {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("synthetic.bin");
    write_synthetic_trace(&path, 30_000);
    let load = || Analysis::open(&path, &LoadOptions::default(), &NoProgress).expect("loads");
    let reference = load();
    let source = AnalysisSource::new(load());
    let at = reference.duration_ns() * 3 / 4;
    Loaded { _dir: dir, reference, source, at }
}

#[test]
fn details_and_allocations_match_the_analyzers_group() {
    let Loaded { _dir, reference, source, at } = load_synthetic();
    let grouping = reference.group(&reference.outstanding_at(at), GroupBy::Stack);
    let top = &grouping.group(0).expect("group");
    let query = GroupQuery { at_ns: at, ..GroupQuery::default() };
    let rows = source.groups(&query);
    assert_eq!(rows[0].totals.bytes, top.bytes);
    let details = source.group_details(&query, rows[0].key).expect("details");
    assert_eq!((details.first_alloc_ns, details.last_alloc_ns), (top.first_alloc_ns, top.last_alloc_ns));
    assert_eq!(details.histogram.iter().map(|b| b.blocks).sum::<u64>(), top.blocks);
    assert_eq!(details.threads.iter().map(|t| t.blocks).sum::<u64>(), top.blocks);
    let page = source.allocations(&query, rows[0].key, 0, 5);
    assert_eq!(page.total, top.blocks);
    // Sorted by bytes, the biggest block leads (the oldest of equals); by blocks, the oldest.
    let blocks: Vec<_> =
        grouping.block_ids(top).iter().map(|&id| reference.block(id).expect("block")).collect();
    let biggest =
        blocks.iter().min_by_key(|b| (std::cmp::Reverse(b.size), b.alloc_ns, b.address)).expect("one");
    assert_eq!((page.rows[0].address, page.rows[0].size), (biggest.address, biggest.size));
    assert!(page.rows.windows(2).all(|w| w[0].size >= w[1].size), "biggest first");
    let by_blocks = GroupQuery { sort: SortKey::Blocks, ..query.clone() };
    let page = source.allocations(&by_blocks, rows[0].key, 0, 5);
    assert_eq!((page.rows[0].address, page.rows[0].at_ns), (blocks[0].address, blocks[0].alloc_ns));
    assert!(page.rows.windows(2).all(|w| w[0].at_ns <= w[1].at_ns), "allocation order");
}

#[test]
fn thread_groups_details_and_allocations_match_the_analyzers() {
    let Loaded { _dir, reference, source, at } = load_synthetic();
    let grouping = reference.group(&reference.outstanding_at(at), GroupBy::Thread);
    assert_eq!(grouping.iter().count(), 4, "the synthetic trace allocates on four threads");
    let query = GroupQuery { at_ns: at, grouping: Grouping::Thread, ..GroupQuery::default() };
    let rows = source.groups(&query);
    assert_eq!(rows.len(), 4);
    for (row, group) in rows.iter().zip(grouping.iter()) {
        let group = &group;
        let AKey::Thread(thread) = &group.key else { panic!("a thread group: {:?}", group.key) };
        let info = reference.thread(*thread).expect("the thread is known");
        assert_eq!(row.key.0, u64::from(thread.0), "ranked as the analyzer ranks them");
        assert_eq!(row.label, format!("thread {}", info.tid), "unnamed: named by its tid");
        assert_eq!((row.totals.bytes, row.totals.blocks), (group.bytes, group.blocks));
        let details = source.group_details(&query, row.key).expect("details");
        assert_eq!(details.label, row.label);
        assert_eq!((details.totals.bytes, details.totals.blocks), (group.bytes, group.blocks));
        assert_eq!(
            (details.first_alloc_ns, details.last_alloc_ns),
            (group.first_alloc_ns, group.last_alloc_ns)
        );
        assert_eq!(details.stacks, group.stacks.len() as u64);
        assert_eq!(details.histogram.iter().map(|b| b.blocks).sum::<u64>(), group.blocks);
        assert_eq!(
            details.threads.iter().map(|t| (t.tid, t.blocks)).collect::<Vec<_>>(),
            [(info.tid, group.blocks)]
        );
        let by_blocks = GroupQuery { sort: SortKey::Blocks, ..query.clone() };
        let page = source.allocations(&by_blocks, row.key, 0, 5);
        assert_eq!(page.total, group.blocks);
        assert!(page.rows.iter().all(|r| r.tid == info.tid), "only the thread's blocks");
        let first = reference.block(grouping.block_ids(group)[0]).expect("block");
        assert_eq!((page.rows[0].address, page.rows[0].at_ns), (first.address, first.alloc_ns));
    }
    // Newest first: the thread of the last allocation at the moment leads.
    let newest = source.groups(&GroupQuery { sort: SortKey::Newest, ..query.clone() });
    let last = grouping.iter().max_by_key(|g| g.last_alloc_ns).expect("a group");
    assert_eq!(
        newest[0].key.0,
        match last.key {
            AKey::Thread(t) => u64::from(t.0),
            _ => u64::MAX,
        }
    );
}

/// The source over `common::trace::write_wrapper_trace`'s trace, and the trace's end.
fn wrapper_source() -> (tempfile::TempDir, AnalysisSource, u64) {
    let (dir, analysis) = common::trace::loaded(common::trace::write_wrapper_trace);
    let end = analysis.duration_ns();
    (dir, AnalysisSource::new(analysis), end)
}

#[test]
fn stack_groups_of_one_top_frame_are_told_apart_by_their_callers() {
    let (_dir, source, end) = wrapper_source();
    let query = GroupQuery { at_ns: end, grouping: Grouping::Stack, ..GroupQuery::default() };
    let labels: Vec<(String, u64)> =
        source.groups(&query).into_iter().map(|row| (row.label, row.totals.bytes)).collect();
    assert_eq!(
        labels,
        [
            ("server+0x1600 ← … ← server+0x1300".to_string(), 600),
            ("server+0x1700".to_string(), 400),
            ("server+0x1600 ← … ← server+0x1310".to_string(), 300),
            ("server+0x1600 ← server+0x1400".to_string(), 200),
        ]
    );
}

#[test]
fn the_filter_finds_what_the_frames_show_and_not_the_directories_of_their_modules() {
    let (_dir, source, end) = wrapper_source();
    let shown = |filter: &str| {
        let query = GroupQuery {
            at_ns: end,
            grouping: Grouping::Stack,
            sort: SortKey::Bytes,
            filter: filter.to_string(),
            what: Selection::Outstanding,
        };
        source.groups(&query).into_iter().map(|row| row.totals.bytes).collect::<Vec<_>>()
    };
    // Every frame is in `/opt/leakview-fixture/server`, shown as `server+0x…`.
    assert_eq!(shown(""), [600, 400, 300, 200]);
    assert_eq!(shown("server"), [600, 400, 300, 200]);
    assert_eq!(shown("SERVER+0x17"), [400]);
    assert_eq!(shown("0x1310"), [300]);
    for directory in ["opt", "leakview-fixture", "/server"] {
        assert!(shown(directory).is_empty(), "{directory} matched");
    }
}

/// The source over `common::trace::write_alike_trace`'s trace, and the trace's end.
fn alike_source() -> (tempfile::TempDir, Analysis, AnalysisSource, u64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("alike.bin");
    common::trace::write_alike_trace(&path);
    let load = || Analysis::open(&path, &LoadOptions::default(), &NoProgress).expect("loads");
    let analysis = load();
    let end = analysis.duration_ns();
    (dir, analysis, AnalysisSource::new(load()), end)
}

#[test]
fn stacks_that_read_the_same_are_one_row_with_the_allocations_of_both() {
    let (_dir, reference, source, end) = alike_source();
    let ms = 1_000_000;
    let query = |at_ns: u64| GroupQuery { at_ns, ..GroupQuery::default() };
    // At 1.5 ms only stack 4's block is outstanding: its row is keyed by stack 4 from then on.
    let early = source.groups(&query(ms + ms / 2));
    assert_eq!(early.iter().map(|r| (r.key.0, r.totals.bytes)).collect::<Vec<_>>(), vec![(4, 150)]);
    let rows = source.groups(&query(end));
    let raw = reference.group(&reference.outstanding_at(end), GroupBy::Stack);
    assert_eq!(raw.len(), 3, "three recorded stacks");
    assert_eq!(
        rows.iter().map(|r| (r.key.0, r.label.as_str(), r.totals.bytes, r.totals.blocks)).collect::<Vec<_>>(),
        vec![(4, "server+0x1600", 350, 3), (5, "server+0x1700", 300, 1)],
        "the two stacks through server+0x1600 are one row, ranked by their summed bytes"
    );
    // As the reports have it.
    let merged = reference.group_merged(&reference.outstanding_at(end), GroupBy::Stack).all();
    let figures = |bytes: u64, blocks: u64, stacks: usize| (bytes, blocks, stacks);
    assert_eq!(
        merged.iter().map(|g| figures(g.bytes, g.blocks, g.stacks.len())).collect::<Vec<_>>(),
        vec![figures(350, 3, 2), figures(300, 1, 1)]
    );
    let details = source.group_details(&query(end), rows[0].key).expect("details");
    assert_eq!((details.totals.bytes, details.totals.blocks), (350, 3));
    assert_eq!((details.stacks, details.call_sites), (1, 2));
    assert_eq!(details.frames[0].function, "server+0x1600");
    assert_eq!(details.histogram.iter().map(|b| b.blocks).sum::<u64>(), 3);
    assert_eq!((details.first_alloc_ns, details.last_alloc_ns), (ms, 3 * ms));
    let page = source.allocations(&query(end), rows[0].key, 0, 10);
    assert_eq!(page.total, 3);
    let mut stacks: Vec<u64> = page.rows.iter().map(|r| r.stack.0).collect();
    stacks.sort_unstable();
    assert_eq!(stacks, vec![3, 3, 4], "the allocations of both stacks");
    assert_eq!(page.rows.iter().map(|r| r.size).collect::<Vec<_>>(), vec![150, 100, 100], "biggest first");
    // One verdict per row, under the row's key: the analyzer's, judged on both stacks' blocks.
    let verdicts = source.suspects(end).expect("verdicts");
    let mut keys: Vec<u64> = verdicts.iter().map(|v| v.key.0).collect();
    keys.sort_unstable();
    assert_eq!(keys, vec![4, 5]);
    let suspects = reference.suspects(end);
    let pooled = suspects.iter().find(|s| s.stacks.len() == 2).expect("one suspect of two stacks");
    let mut stacks: Vec<u32> = pooled.stacks.iter().map(|s| s.0).collect();
    stacks.sort_unstable();
    assert_eq!((stacks, pooled.blocks, pooled.bytes), (vec![3, 4], 3, 350));
    let row = verdicts.iter().find(|v| v.key.0 == 4).expect("the merged row's verdict");
    assert_eq!(
        (row.verdict, row.evidence.clone()),
        (pooled.verdict, leakview_analyzer::suspects::evidence(pooled, end))
    );
    // Sorted by newest, the row's newest allocation is that of its other stack.
    let newest = GroupQuery { sort: SortKey::Newest, ..query(end) };
    let rows = source.groups(&newest);
    assert_eq!(
        rows.iter().map(|r| (r.key.0, r.newest_ns)).collect::<Vec<_>>(),
        vec![(5, 4 * ms), (4, 3 * ms)]
    );
}

#[test]
fn a_groups_history_is_its_stacks_bytes_outstanding_at_each_moment_of_the_trace() {
    let Loaded { _dir, reference, source, at } = load_synthetic();
    let end = reference.duration_ns();
    let moments: Vec<u64> = (1..=100u64).map(|k| end * k / 100).collect();
    // The level at each moment by the analyzer's own rule, from the blocks of `stacks`.
    let expected = |stacks: &[leakview_analyzer::StackId]| -> Vec<u64> {
        moments
            .iter()
            .map(|&t| {
                let snapshot = reference.outstanding_at(t);
                reference.blocks(&snapshot).filter(|b| stacks.contains(&b.stack)).map(|b| b.size).sum()
            })
            .collect()
    };
    let query = GroupQuery { at_ns: at, ..GroupQuery::default() };
    let row = &source.groups(&query)[0];
    let details = source.group_details(&query, row.key).expect("details");
    let stack = leakview_analyzer::StackId(row.key.0 as u32);
    assert_eq!(details.history, expected(&[stack]));
    assert_eq!(details.history_at, 74, "T three quarters in");
    assert!(details.history.iter().any(|&l| l > 0) && details.history[0] < details.history[50]);
    // The function every stack shares (the root): the sum over all stacks, the whole heap.
    let by_function = GroupQuery { grouping: Grouping::Function, ..query };
    let root = source.groups(&by_function).into_iter().find(|r| r.label == "server+0x100").expect("the root");
    let details = source.group_details(&by_function, root.key).expect("details");
    let all: Vec<u64> = moments.iter().map(|&t| reference.live_at(t).bytes).collect();
    assert_eq!(details.history, all);
}

#[test]
fn a_thread_or_size_groups_history_holds_its_blocks_on_the_stacks_it_holds_at_t() {
    let Loaded { _dir, reference, source, at } = load_synthetic();
    let end = reference.duration_ns();
    let moments: Vec<u64> = (1..=100u64).map(|k| end * k / 100).collect();
    let at_t: Vec<leakview_analyzer::Block> = reference.blocks(&reference.outstanding_at(at)).collect();
    // The level at each moment of the blocks `in_group` on the stacks holding such blocks at T.
    let expected = |in_group: &dyn Fn(&leakview_analyzer::Block) -> bool| -> Vec<u64> {
        let stacks: Vec<_> = at_t.iter().filter(|b| in_group(b)).map(|b| b.stack).collect();
        moments
            .iter()
            .map(|&t| {
                let snapshot = reference.outstanding_at(t);
                let blocks = reference.blocks(&snapshot);
                blocks.filter(|b| in_group(b) && stacks.contains(&b.stack)).map(|b| b.size).sum()
            })
            .collect()
    };
    let by_thread = GroupQuery { at_ns: at, grouping: Grouping::Thread, ..GroupQuery::default() };
    let row = &source.groups(&by_thread)[1];
    let details = source.group_details(&by_thread, row.key).expect("details");
    let thread = row.key.0 as u32;
    assert_eq!(details.history, expected(&|b| b.thread.0 == thread), "{}", row.label);
    let by_size = GroupQuery { grouping: Grouping::Size, ..by_thread };
    let row = &source.groups(&by_size)[2];
    let details = source.group_details(&by_size, row.key).expect("details");
    let class = row.key.0 as u8;
    let history = expected(&|b| leakview_analyzer::size_class(b.size) == class);
    assert!(history.iter().any(|&l| l > 0));
    assert_eq!(details.history, history, "{}", row.label);
}
