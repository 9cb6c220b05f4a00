//! Diffs of synthetic traces written with the real trace writer: matching across traces whose
//! modules load at other addresses, by offset only for one shared build, trimming of the
//! recorder's frames, collapsing, statuses and byte counts, two moments of one trace, repeated
//! diffs at other moments, and the JSON and text renderings. No compiler needed: the modules
//! do not exist on disk, so frames are `module+offset`.

mod common;

use std::sync::Arc;

use common::{Finished, TraceBuilder};
use leakview_analyzer::diff::{DiffKey, FrameKey};
use leakview_analyzer::{
    Analysis, Comparison, Diff, DiffBy, DiffGroup, DiffReport, DiffStatus, LoadOptions, NoProgress, Side,
};
use leakview_format::{Event, Segment, Segments};

const APP_SEGMENT: [Segment; 1] = [Segment { vaddr: 0, memsz: 0x10000, flags: 5 }];
const PRELOAD: &str = "/usr/lib/leakview/libleakview_preload.so";

/// One leaking site: its stack as offsets in the app module (innermost first), and its
/// outstanding blocks of one size.
struct Site {
    offsets: &'static [u64],
    blocks: u64,
    size: u64,
}

/// A trace of a program whose app module `module_path` (build `build_id`) loads at `base`, with
/// the recorder's frame on top of every stack (at `preload_offset`), leaking `sites`. Each site
/// also allocates and frees one block, which must not count.
fn program(module_path: &str, build_id: &[u8], base: u64, preload_offset: u64, sites: &[Site]) -> Finished {
    let preload_base = base + 0x100_0000;
    let mut t = TraceBuilder::new();
    for (id, path, at, build) in
        [(1, module_path, base, build_id), (2, PRELOAD, preload_base, b"\x09\x09".as_slice())]
    {
        t.event(
            1,
            Event::ModuleLoad {
                ts: common::START,
                id,
                base: at,
                path: path.as_bytes(),
                build_id: build,
                segments: Segments::Slice(&APP_SEGMENT),
            },
        );
    }
    let mut next_node = 1;
    let mut now = 10;
    let mut next_addr = 0x1000_0000;
    for site in sites {
        let mut parent = 0;
        for &offset in site.offsets.iter().rev() {
            t.stack(1, next_node, parent, base + offset);
            parent = next_node;
            next_node += 1;
        }
        t.stack(1, next_node, parent, preload_base + preload_offset);
        let stack = next_node;
        next_node += 1;
        for _ in 0..site.blocks {
            t.alloc(1, now, next_addr, site.size, stack);
            next_addr += 0x1000;
            now += 10;
        }
        t.alloc(1, now, next_addr, 4096, stack);
        t.free(1, now + 5, next_addr);
        next_addr += 0x1000;
        now += 10;
    }
    t.finish(now + 100)
}

fn load(trace: &Finished) -> Arc<Analysis> {
    Arc::new(Analysis::open(&trace.path, &LoadOptions::default(), &NoProgress).expect("trace loads"))
}

fn diff_at_ends(a: &Finished, b: &Finished, by: DiffBy) -> (Comparison, Diff) {
    let comparison = Comparison::new(load(a), load(b));
    let diff = comparison.diff(comparison.a().duration_ns(), comparison.b().duration_ns(), by);
    (comparison, diff)
}

/// `(status, blocks_a, bytes_a, blocks_b, bytes_b)`.
fn counts(group: &DiffGroup) -> (DiffStatus, u64, u64, u64, u64) {
    (group.status, group.blocks_a, group.bytes_a, group.blocks_b, group.bytes_b)
}

/// The stack group whose innermost frame is `module+offset`.
fn stack_group<'a>(diff: &'a Diff, module: &str, offset: u64) -> &'a DiffGroup {
    let wanted = FrameKey::ModuleOffset { module: module.to_string(), offset };
    diff.groups
        .iter()
        .find(|g| matches!(&g.key, DiffKey::Stack(k) if k.first().map(|f| f.as_ref()) == Some(&wanted)))
        .unwrap_or_else(|| panic!("no group at {module}+{offset:#x} in {:#?}", diff.groups))
}

const MAIN: u64 = 0x900;

fn before() -> [Site; 3] {
    [
        Site { offsets: &[0x100, MAIN], blocks: 3, size: 100 },
        Site { offsets: &[0x200, MAIN], blocks: 2, size: 50 },
        Site { offsets: &[0x300, MAIN], blocks: 1, size: 10 },
    ]
}

fn after() -> [Site; 3] {
    [
        Site { offsets: &[0x200, MAIN], blocks: 2, size: 50 },
        Site { offsets: &[0x300, MAIN], blocks: 4, size: 10 },
        Site { offsets: &[0x400, MAIN], blocks: 1, size: 7 },
    ]
}

#[test]
fn same_build_matches_by_offset_across_load_addresses() {
    let a = program("/build/one/libapp.so", b"\xaa\xbb", 0x5555_0000_0000, 0x42, &before());
    let b = program("/tmp/two/libapp.so", b"\xaa\xbb", 0x7f12_3400_0000, 0x77, &after());
    let (_, diff) = diff_at_ends(&a, &b, DiffBy::Stack);
    assert_eq!(diff.groups.len(), 4, "{:#?}", diff.groups);
    assert_eq!(counts(stack_group(&diff, "libapp.so", 0x100)), (DiffStatus::Fixed, 3, 300, 0, 0));
    assert_eq!(counts(stack_group(&diff, "libapp.so", 0x200)), (DiffStatus::Same, 2, 100, 2, 100));
    assert_eq!(counts(stack_group(&diff, "libapp.so", 0x300)), (DiffStatus::Grew, 1, 10, 4, 40));
    assert_eq!(counts(stack_group(&diff, "libapp.so", 0x400)), (DiffStatus::New, 0, 0, 1, 7));
    // The recorder's frame is trimmed: every shown stack starts in the app.
    for group in &diff.groups {
        let DiffKey::Stack(key) = &group.key else { panic!("stack key expected") };
        assert_eq!(key.len(), 2, "{key:?}");
        assert!(group.frames.iter().all(|f| f.module.as_deref().is_some_and(|m| m.ends_with("libapp.so"))));
    }
    // Ranked by the size of the change, either way.
    let order: Vec<DiffStatus> = diff.groups.iter().map(|g| g.status).collect();
    assert_eq!(order, vec![DiffStatus::Fixed, DiffStatus::Grew, DiffStatus::New, DiffStatus::Same]);
    assert_eq!((diff.totals_a.blocks, diff.totals_a.bytes), (6, 410));
    assert_eq!((diff.totals_b.blocks, diff.totals_b.bytes), (7, 147));
    assert_eq!(diff.change_bytes(), 147 - 410);
}

#[test]
fn frames_come_from_b_when_b_holds_the_group() {
    let a = program("/build/one/libapp.so", b"\xaa\xbb", 0x5555_0000_0000, 0x42, &before());
    let b = program("/tmp/two/libapp.so", b"\xaa\xbb", 0x7f12_3400_0000, 0x77, &after());
    let (_, diff) = diff_at_ends(&a, &b, DiffBy::Stack);
    let same = stack_group(&diff, "libapp.so", 0x200);
    assert_eq!(same.frames[0].module.as_deref(), Some("/tmp/two/libapp.so"));
    assert_eq!(same.frames[0].address, 0x7f12_3400_0000 + 0x200);
    let fixed = stack_group(&diff, "libapp.so", 0x100);
    assert_eq!(fixed.frames[0].module.as_deref(), Some("/build/one/libapp.so"));
    assert!(fixed.stacks_b.is_empty());
    assert_eq!(fixed.stacks_a.len(), 1);
}

#[test]
fn different_builds_match_by_module_name_alone() {
    let a = program("/build/one/libapp.so", b"\xaa\xbb", 0x5555_0000_0000, 0x42, &before());
    let b = program("/tmp/two/libapp.so", b"\xcc\xdd", 0x7f12_3400_0000, 0x77, &after());
    let (_, diff) = diff_at_ends(&a, &b, DiffBy::Stack);
    // Every stack is [libapp.so, libapp.so] now: one group holding everything.
    assert_eq!(diff.groups.len(), 1, "{:#?}", diff.groups);
    let group = &diff.groups[0];
    let module = Arc::new(FrameKey::Module { module: "libapp.so".into() });
    assert_eq!(group.key, DiffKey::Stack(vec![module.clone(), module].into()));
    assert_eq!(counts(group), (DiffStatus::Shrank, 6, 410, 7, 147));
    assert_eq!(group.stacks_a.len(), 3);
    assert_eq!(group.stacks_b.len(), 3);
}

#[test]
fn unknown_builds_never_match_by_offset() {
    let a = program("/build/one/libapp.so", b"", 0x5555_0000_0000, 0x42, &before());
    let b = program("/tmp/two/libapp.so", b"", 0x5555_0000_0000, 0x42, &before());
    let (_, diff) = diff_at_ends(&a, &b, DiffBy::Stack);
    assert_eq!(diff.groups.len(), 1, "{:#?}", diff.groups);
    assert_eq!(counts(&diff.groups[0]), (DiffStatus::Same, 6, 410, 6, 410));
}

#[test]
fn function_grouping_credits_every_frame_once_per_stack() {
    let a = program("/build/one/libapp.so", b"\xaa\xbb", 0x5555_0000_0000, 0x42, &before());
    let b = program("/tmp/two/libapp.so", b"\xaa\xbb", 0x7f12_3400_0000, 0x77, &after());
    let (_, diff) = diff_at_ends(&a, &b, DiffBy::Function);
    let function = |offset: u64| {
        let key = DiffKey::Function(FrameKey::ModuleOffset { module: "libapp.so".into(), offset }.into());
        diff.groups.iter().find(|g| g.key == key).unwrap_or_else(|| panic!("no function at {offset:#x}"))
    };
    assert_eq!(diff.groups.len(), 5);
    assert_eq!(counts(function(MAIN)), (DiffStatus::Shrank, 6, 410, 7, 147));
    assert_eq!(function(MAIN).stacks_a.len(), 3);
    assert_eq!(counts(function(0x100)), (DiffStatus::Fixed, 3, 300, 0, 0));
    assert_eq!(counts(function(0x400)), (DiffStatus::New, 0, 0, 1, 7));
    // A function group shows the function's own frame, from B when B holds it.
    let main = function(MAIN);
    assert_eq!(main.frames.len(), 1);
    assert_eq!(main.frames[0].address, 0x7f12_3400_0000 + MAIN);
}

#[test]
fn growth_gate_sees_new_and_grown_groups() {
    let a = program("/build/one/libapp.so", b"\xaa\xbb", 0x5555_0000_0000, 0x42, &before());
    let b = program("/tmp/two/libapp.so", b"\xaa\xbb", 0x7f12_3400_0000, 0x77, &after());
    let (_, diff) = diff_at_ends(&a, &b, DiffBy::Stack);
    let failing = |threshold: u64| {
        let mut v: Vec<(DiffStatus, u64)> =
            diff.grown_over(threshold).iter().map(|g| (g.status, g.growth_bytes())).collect();
        v.sort();
        v
    };
    assert_eq!(failing(0), vec![(DiffStatus::New, 7), (DiffStatus::Grew, 30)]);
    assert_eq!(failing(7), vec![(DiffStatus::Grew, 30)]);
    assert_eq!(failing(30), vec![]);
    // Swapped: nothing is new or grew except what A had more of.
    let (_, reverse) = diff_at_ends(&b, &a, DiffBy::Stack);
    let reverse_failing: Vec<DiffStatus> = reverse.grown_over(0).iter().map(|g| g.status).collect();
    assert_eq!(reverse_failing, vec![DiffStatus::New]);
    assert_eq!(reverse.grown_over(0)[0].growth_bytes(), 300);
}

/// One trace: a leak before the mark, growth and a new leak after it, a block freed after it.
fn marked_trace() -> Finished {
    let mut t = TraceBuilder::new();
    t.event(
        1,
        Event::ModuleLoad {
            ts: common::START,
            id: 1,
            base: 0x4000_0000,
            path: b"/opt/app/bin/app",
            build_id: b"",
            segments: Segments::Slice(&APP_SEGMENT),
        },
    );
    // Stacks: 1 = steady (0x10 <- main), 2 = growing (0x20 <- main), 3 = late (0x30 <- main),
    // 4 = scratch (0x40 <- main), 5 = an address outside every module.
    t.stack(1, 10, 0, 0x4000_0900);
    for (id, offset) in [(1, 0x10), (2, 0x20), (3, 0x30), (4, 0x40)] {
        t.stack(1, id, 10, 0x4000_0000 + offset);
    }
    t.stack(1, 5, 0, 0xdead_0000);
    t.alloc(1, 10, 0x100, 64, 1);
    t.alloc(1, 20, 0x200, 128, 2);
    t.alloc(1, 30, 0x300, 256, 4);
    t.alloc(1, 35, 0x350, 8, 5);
    t.mark(1, 100, "warmup");
    t.alloc(1, 110, 0x400, 128, 2);
    t.alloc(1, 120, 0x500, 128, 2);
    t.alloc(1, 130, 0x600, 1000, 3);
    t.free(1, 140, 0x300);
    t.mark(1, 150, "warmup");
    t.finish(200)
}

#[test]
fn two_moments_of_one_trace() {
    let trace = marked_trace();
    let comparison = Comparison::one_trace(load(&trace));
    assert!(comparison.is_one_trace());
    let at_a = comparison.resolve_when(Side::A, "mark:warmup").expect("mark resolves");
    let at_b = comparison.resolve_when(Side::B, "end").expect("end resolves");
    let diff = comparison.diff(at_a, at_b, DiffBy::Stack);
    assert_eq!(diff.at_a_ns, 100);
    assert_eq!(diff.at_b_ns, 200);
    let group = |offset: u64| stack_group(&diff, "app", offset);
    assert_eq!(counts(group(0x10)), (DiffStatus::Same, 1, 64, 1, 64));
    assert_eq!(counts(group(0x20)), (DiffStatus::Grew, 1, 128, 3, 384));
    assert_eq!(counts(group(0x30)), (DiffStatus::New, 0, 0, 1, 1000));
    assert_eq!(counts(group(0x40)), (DiffStatus::Fixed, 1, 256, 0, 0));
    // Within one trace, a frame outside every module keeps its address.
    let outside = diff
        .groups
        .iter()
        .find(|g| g.key == DiffKey::Stack(vec![Arc::new(FrameKey::Address(0xdead_0000))].into()))
        .expect("a group for the address outside modules");
    assert_eq!(counts(outside), (DiffStatus::Same, 1, 8, 1, 8));
    assert_eq!(diff.groups.len(), 5);
    let second = comparison.resolve_when(Side::A, "mark:warmup#2").expect("second mark");
    let none = comparison.diff(second, at_b, DiffBy::Stack);
    assert!(none.groups.iter().all(|g| g.status == DiffStatus::Same), "{:#?}", none.groups);
    assert!(comparison.resolve_when(Side::A, "mark:nope").is_err());
}

#[test]
fn repeated_diffs_at_other_moments_equal_fresh_ones() {
    let trace = marked_trace();
    let analysis = load(&trace);
    let reused = Comparison::one_trace(analysis.clone());
    let moments = [(0, 200), (100, 200), (35, 120), (200, 0), (130, 140)];
    for by in [DiffBy::Stack, DiffBy::Function] {
        for &(at_a, at_b) in &moments {
            let again = reused.diff(at_a, at_b, by);
            let fresh = Comparison::one_trace(analysis.clone()).diff(at_a, at_b, by);
            assert_eq!(again, fresh, "{by:?} {at_a}..{at_b}");
            assert_eq!(again.totals_a, analysis.live_at(at_a));
            assert_eq!(again.totals_b, analysis.live_at(at_b));
            if by == DiffBy::Stack {
                let sum_a: u64 = again.groups.iter().map(|g| g.bytes_a).sum();
                let sum_b: u64 = again.groups.iter().map(|g| g.bytes_b).sum();
                assert_eq!((sum_a, sum_b), (again.totals_a.bytes, again.totals_b.bytes));
            }
        }
    }
}

#[test]
fn json_has_the_documented_shape() {
    let a = program("/build/one/libapp.so", b"\xaa\xbb", 0x5555_0000_0000, 0x42, &before());
    let b = program("/tmp/two/libapp.so", b"\xaa\xbb", 0x7f12_3400_0000, 0x77, &after());
    let (comparison, diff) = diff_at_ends(&a, &b, DiffBy::Stack);
    let json = DiffReport::new(&comparison, &diff, "end", " end ", 0).to_json();
    let doc: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    assert_eq!(doc["schema"], 1);
    assert_eq!(doc["one_trace"], false);
    assert_eq!(doc["trace_a"]["path"], a.path.display().to_string());
    assert_eq!(doc["trace_b"]["path"], b.path.display().to_string());
    assert_eq!(doc["trace_b"]["pid"], 4242);
    assert_eq!(doc["at_b"], "end");
    assert_eq!(doc["at_a_ns"], comparison.a().duration_ns());
    assert_eq!(doc["group_by"], "stack");
    assert_eq!(doc["totals"]["bytes_a"], 410);
    assert_eq!(doc["totals"]["bytes_b"], 147);
    assert_eq!(doc["totals"]["change_bytes"], -263);
    assert_eq!(doc["statuses"]["new"], 1);
    assert_eq!(doc["statuses"]["same"], 1);
    let groups = doc["groups"].as_array().expect("groups array");
    assert_eq!(groups.len(), 4);
    let grew = groups.iter().find(|g| g["status"] == "grew").expect("a grown group");
    assert_eq!(
        (&grew["blocks_a"], &grew["bytes_a"], &grew["blocks_b"], &grew["bytes_b"]),
        (&1.into(), &10.into(), &4.into(), &40.into())
    );
    assert_eq!(grew["change_bytes"], 30);
    let frame = &grew["frames"][0];
    assert_eq!(frame["module"], "/tmp/two/libapp.so");
    assert_eq!(frame["address"], format!("{:#x}", 0x7f12_3400_0000u64 + 0x300));
    assert!(frame["function"].is_null());
    let top2 = DiffReport::new(&comparison, &diff, "end", "end", 2).to_json();
    let doc: serde_json::Value = serde_json::from_str(&top2).expect("valid JSON");
    assert_eq!(doc["groups"].as_array().map(Vec::len), Some(2));
    assert_eq!(doc["group_count"], 4);
}

#[test]
fn text_lists_totals_and_groups_by_change() {
    let a = program("/build/one/libapp.so", b"\xaa\xbb", 0x5555_0000_0000, 0x42, &before());
    let b = program("/tmp/two/libapp.so", b"\xaa\xbb", 0x7f12_3400_0000, 0x77, &after());
    let (comparison, diff) = diff_at_ends(&a, &b, DiffBy::Stack);
    let text = DiffReport::new(&comparison, &diff, "end", "end", 0).to_text();
    assert!(
        text.contains("totals   A 410 B in 6 blocks, B 147 B in 7 blocks, change -263 B (+1 block)"),
        "{text}"
    );
    assert!(text.contains("groups   4 stacks: 1 new, 1 fixed, 1 grew, 0 shrank, 1 same"), "{text}");
    let rows: Vec<&str> = text.lines().filter(|l| l.starts_with('#')).collect();
    assert_eq!(rows.len(), 5, "{text}");
    let statuses: Vec<&str> = rows[1..].iter().map(|r| r.split_whitespace().nth(1).unwrap_or("")).collect();
    assert_eq!(statuses, vec!["fixed", "grew", "new", "same"]);
    assert!(rows[1].contains("-300 B") && rows[1].contains("3 → 0"), "{}", rows[1]);
    // Columns are aligned: every row puts its change column at the same width.
    let ends: Vec<usize> = rows.iter().map(|r| r.find(" B ").unwrap_or(0)).collect();
    assert!(ends[1..].windows(2).all(|w| w[0] == w[1]), "{text}");
    assert!(text.contains("libapp.so+0x100"), "{text}");
    let top1 = DiffReport::new(&comparison, &diff, "end", "end", 1).to_text();
    assert!(top1.contains("… and 3 more groups (--top 0 shows all)"), "{top1}");
}

#[test]
fn empty_sides_say_so() {
    let a = program("/build/one/libapp.so", b"\xaa\xbb", 0x5555_0000_0000, 0x42, &[]);
    let (comparison, diff) = diff_at_ends(&a, &a, DiffBy::Function);
    assert!(diff.groups.is_empty());
    let text = DiffReport::new(&comparison, &diff, "end", "end", 0).to_text();
    assert!(text.contains("Nothing outstanding on either side."), "{text}");
}
