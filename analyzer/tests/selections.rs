//! Reports of every allocation made (`Selection::Allocated`) and of the temporary ones
//! (`Selection::Temporary`): which blocks each counts, at which moment, within a window, and how
//! the text, JSON and folded reports show them.

mod common;

use common::leaky_fixture::{LeakyTrace, RECORDED_LEAK_STACK, TEMP_STACK};
use leakview_analyzer::{
    AllocWindow, Analysis, Comparison, DiffBy, DiffReport, GroupBy, NoProgress, Report, ReportSpec,
    Selection, SortBy, WindowEnd,
};

/// Thread 1: 0x100 (64 B, make_temp) freed at once: temporary; 0x200 (16 B, make_temp) freed
/// after the thread allocated 0x300 (32 B, make_leak, never freed): not; 0x400 (8 B, make_temp)
/// grown by realloc into 0x500 (100 B) and freed: both temporary.
/// Thread 2: 0x600 (24 B, make_leak) freed after thread 1's allocations but before its own
/// next one: temporary; 0x700 (40 B, make_temp) never freed.
fn fixture() -> LeakyTrace {
    LeakyTrace::write(60, |b| {
        b.alloc(1, 10, 0x100, 64, TEMP_STACK);
        b.alloc(2, 12, 0x600, 24, RECORDED_LEAK_STACK);
        b.free(1, 15, 0x100);
        b.alloc(1, 20, 0x200, 16, TEMP_STACK);
        b.alloc(1, 22, 0x300, 32, RECORDED_LEAK_STACK);
        b.free(1, 25, 0x200);
        b.free(2, 28, 0x600);
        b.alloc(2, 30, 0x700, 40, TEMP_STACK);
        b.alloc(1, 40, 0x400, 8, TEMP_STACK);
        b.realloc(1, 45, 0x400, 0x500, 100, TEMP_STACK);
        b.free(1, 50, 0x500);
    })
}

fn spec(at_ns: u64, selection: Selection, sort: SortBy) -> ReportSpec {
    ReportSpec {
        when: "end".to_string(),
        at_ns,
        window: AllocWindow::all(),
        selection,
        by: GroupBy::Stack,
        sort,
        top: 0,
        leak_kinds: None,
    }
}

/// (blocks, bytes) of each group of `report`, in rank order, with the function of its first
/// frame.
fn rows(a: &Analysis, report: &Report<'_>) -> Vec<(String, u64, u64)> {
    report
        .shown()
        .iter()
        .map(|g| {
            let frames = a.stack_frames(g.stacks[0]);
            let name = frames.first().and_then(|f| f.function.clone()).unwrap_or_default();
            (name, g.blocks, g.bytes)
        })
        .collect()
}

#[test]
fn selections_count_the_blocks_they_name() {
    let f = fixture();
    let a = f.load();
    let totals = |t: u64, s: Selection| {
        let snapshot = a.select(t, &AllocWindow::all(), s);
        (snapshot.totals().blocks, snapshot.totals().bytes)
    };
    assert_eq!(totals(60, Selection::Allocated), (7, 64 + 16 + 32 + 8 + 100 + 24 + 40));
    assert_eq!(totals(60, Selection::Temporary), (4, 64 + 8 + 100 + 24));
    assert_eq!(totals(60, Selection::Outstanding), (2, 32 + 40));
    // At 46, 0x500 is allocated but not freed yet, so not (yet) temporary.
    assert_eq!(totals(46, Selection::Allocated), (7, 284));
    assert_eq!(totals(46, Selection::Temporary), (3, 64 + 8 + 24));
    // Before 0x400 and 0x500 existed.
    assert_eq!(totals(35, Selection::Allocated), (5, 64 + 24 + 16 + 32 + 40));
    assert_eq!(totals(35, Selection::Temporary), (2, 64 + 24));
    assert_eq!(a.allocated_count(35, &AllocWindow::all()), 5);
}

#[test]
fn a_window_narrows_both_selections() {
    let f = fixture();
    let a = f.load();
    let window = AllocWindow { after: Some(WindowEnd { ns: 20, when: "20ns".into() }), before: None };
    let allocated = a.select(60, &window, Selection::Allocated);
    assert_eq!((allocated.totals().blocks, allocated.totals().bytes), (5, 16 + 32 + 40 + 8 + 100));
    let temporary = a.select(60, &window, Selection::Temporary);
    assert_eq!((temporary.totals().blocks, temporary.totals().bytes), (2, 108));
    assert_eq!(a.allocated_count(60, &window), 5);
}

#[test]
fn groups_are_ranked_by_the_figure_asked_for() {
    let f = fixture();
    let a = f.load();
    let by_blocks = Report::build(&a, &spec(60, Selection::Allocated, SortBy::Blocks), &NoProgress);
    assert_eq!(
        rows(&a, &by_blocks),
        vec![("make_temp".to_string(), 5, 228), ("make_leak".to_string(), 2, 56)]
    );
    let temporary = Report::build(&a, &spec(60, Selection::Temporary, SortBy::Blocks), &NoProgress);
    assert_eq!(
        rows(&a, &temporary),
        vec![("make_temp".to_string(), 3, 172), ("make_leak".to_string(), 1, 24)]
    );
    // Outstanding at the end, by bytes: make_temp's 40 B block beats make_leak's 32 B.
    let outstanding = Report::build(&a, &spec(60, Selection::Outstanding, SortBy::Bytes), &NoProgress);
    assert_eq!(
        rows(&a, &outstanding),
        vec![("make_temp".to_string(), 1, 40), ("make_leak".to_string(), 1, 32)]
    );
}

#[test]
fn text_says_what_is_counted_and_how_it_is_ranked() {
    let f = fixture();
    let a = f.load();
    let text = Report::build(&a, &spec(60, Selection::Temporary, SortBy::Blocks), &NoProgress).to_text();
    assert!(
        text.contains(
            "196 B in 4 blocks freed before their thread allocated again (temporary: 57.1% of 7 blocks \
             allocated), in 2 stacks, ranked by blocks"
        ),
        "{text}"
    );
    // Shares are of the ranking figure: 3 of 4 blocks.
    assert!(text.contains("172 B  3 blocks  75.0%"), "{text}");
    let allocated = Report::build(&a, &spec(60, Selection::Allocated, SortBy::Bytes), &NoProgress).to_text();
    assert!(
        allocated.contains("284 B in 7 blocks allocated up to then, freed or not, in 2 stacks\n"),
        "{allocated}"
    );
    let none = Report::build(&a, &spec(5, Selection::Temporary, SortBy::Blocks), &NoProgress).to_text();
    assert!(none.ends_with("\nNo temporary allocations.\n"), "{none}");
}

#[test]
fn json_names_the_selection_and_keeps_outstanding_apart() {
    let f = fixture();
    let a = f.load();
    let json = Report::build(&a, &spec(60, Selection::Temporary, SortBy::Blocks), &NoProgress).to_json();
    let doc: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    assert_eq!(doc["what"], "temporary");
    assert_eq!(doc["ranked_by"], "blocks");
    assert_eq!(doc["selected"], serde_json::json!({ "blocks": 4, "bytes": 196, "groups": 2 }));
    assert_eq!(doc["outstanding"]["blocks"], 2);
    assert_eq!(doc["outstanding"]["bytes"], 72);
    assert_eq!(doc["groups"][0]["blocks"], 3);
    assert_eq!(doc["groups"][0]["frames"][0]["function"], "make_temp");
    // The default report is as before, with the new fields.
    let plain = Report::new(&a, "end", 60, &AllocWindow::all(), GroupBy::Stack, 20, &NoProgress).to_json();
    let doc: serde_json::Value = serde_json::from_str(&plain).expect("valid JSON");
    assert_eq!(doc["what"], "outstanding");
    assert_eq!(doc["ranked_by"], "bytes");
    assert_eq!(doc["outstanding"], serde_json::json!({ "blocks": 2, "bytes": 72, "groups": 2 }));
    assert_eq!(doc["selected"], doc["outstanding"]);
}

#[test]
fn folded_lines_carry_blocks_when_ranked_by_blocks() {
    let f = fixture();
    let a = f.load();
    let folded = Report::build(&a, &spec(60, Selection::Temporary, SortBy::Blocks), &NoProgress).to_folded();
    assert_eq!(folded, "main;make_temp 3\nmain;make_leak 1\n");
    let mut by_function = spec(60, Selection::Allocated, SortBy::Bytes);
    by_function.by = GroupBy::Function;
    let folded = Report::build(&a, &by_function, &NoProgress).to_folded();
    assert_eq!(folded, "main;make_temp 228\nmain;make_leak 56\n");
}

#[test]
fn diffs_count_the_selected_blocks_on_each_side() {
    let f = fixture();
    let a = std::sync::Arc::new(f.load());
    let comparison = Comparison::one_trace(a.clone());
    // At 35: 5 blocks allocated, 2 temporary (0x100, 0x600); at 60: 7 and 4 (0x400, 0x500 too).
    let temporary = comparison.diff_selected(35, 60, DiffBy::Stack, Selection::Temporary, &NoProgress);
    assert_eq!((temporary.totals_a.blocks, temporary.totals_b.blocks), (2, 4));
    assert_eq!(temporary.change_bytes(), 108);
    let grown: Vec<(u64, u64)> = temporary.groups.iter().map(|g| (g.blocks_a, g.blocks_b)).collect();
    // make_temp's stack gained 0x400 and 0x500; make_leak's (0x600) stayed.
    assert_eq!(grown, vec![(1, 3), (1, 1)]);
    let allocated = comparison.diff_selected(35, 60, DiffBy::Function, Selection::Allocated, &NoProgress);
    assert_eq!((allocated.totals_a.blocks, allocated.totals_b.blocks), (5, 7));
    let report = DiffReport::new(&comparison, &temporary, "35ns", "end", 0);
    assert!(
        report.to_text().contains("counting temporary blocks: freed before their thread allocated again\n")
    );
    let doc: serde_json::Value = serde_json::from_str(&report.to_json()).expect("JSON");
    assert_eq!(doc["what"], "temporary");
    // The outstanding diff is as before.
    let outstanding = comparison.diff(35, 60, DiffBy::Stack);
    assert_eq!(outstanding.selection, Selection::Outstanding);
    assert_eq!((outstanding.totals_a.blocks, outstanding.totals_b.blocks), (2, 2));
}

#[test]
fn functions_tied_when_ranked_by_blocks_read_from_the_allocating_one_outward() {
    let f = fixture();
    let a = f.load();
    // Temporary blocks allocated from 40 on: 0x400 and 0x500, both make_temp → main, so both
    // functions hold 2 blocks; make_temp (nearer the allocations) comes first, not main (which
    // sorts first by name).
    let mut spec = spec(60, Selection::Temporary, SortBy::Blocks);
    spec.by = GroupBy::Function;
    spec.window = AllocWindow { after: Some(WindowEnd { ns: 40, when: "40ns".into() }), before: None };
    let report = Report::build(&a, &spec, &NoProgress);
    let names: Vec<(String, u64)> =
        report.shown().iter().map(|g| (format!("{:?}", g.key), g.blocks)).collect();
    assert_eq!(
        names,
        vec![("Function(\"make_temp\")".to_string(), 2), ("Function(\"main\")".to_string(), 2)]
    );
}

#[test]
fn bytes_over_time_are_cumulative_for_allocated_and_temporary_blocks() {
    let f = fixture();
    let a = f.load();
    assert_eq!(a.duration_ns(), 60);
    // Six slices of 0..=60 end at 10, 20, 30, 40, 50 and 60.
    let allocated = a.bytes_over_time(Selection::Allocated, 6);
    assert_eq!(allocated, vec![64, 64 + 24 + 16, 104 + 32 + 40, 176 + 8, 184 + 100, 284]);
    // By free time: 0x100 at 15, 0x600 at 28, 0x400 (by realloc) at 45 and 0x500 at 50.
    let temporary = a.bytes_over_time(Selection::Temporary, 6);
    assert_eq!(temporary, vec![0, 64, 88, 88, 196, 196]);
    for (k, end) in [10, 20, 30, 40, 50, 60].into_iter().enumerate() {
        for (levels, what) in [(&allocated, Selection::Allocated), (&temporary, Selection::Temporary)] {
            assert_eq!(
                levels[k],
                a.select(end, &AllocWindow::all(), what).totals().bytes,
                "{what:?} at {end}"
            );
        }
    }
    // Outstanding bytes: the most live at any moment of each slice (0x100 and 0x600 from 12 to 15).
    let outstanding = a.bytes_over_time(Selection::Outstanding, 6);
    assert_eq!(outstanding.len(), 6);
    assert_eq!(outstanding[1], 64 + 24);
    assert_eq!(outstanding[5], 32 + 40);
}
