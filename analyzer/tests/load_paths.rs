//! The two ways a trace is loaded give the same lifetimes: in one pass when the headers of a
//! cleanly finished trace give its time span, and after a scan of every chunk otherwise (the
//! program was killed, or timestamps fall outside the span the headers promise).

mod common;

use common::{START, TraceBuilder};
use leakview_analyzer::{Analysis, BlockId, LoadOptions, NoProgress};
use leakview_format::{Event, RecorderKind, WriterOptions};

type Lifetime = (u64, u64, u64, Option<u64>, u32);

fn lifetimes(a: &Analysis) -> Vec<Lifetime> {
    (0..a.block_count() as u32)
        .filter_map(|i| a.block(BlockId(i)))
        .map(|b| (b.alloc_ns, b.address, b.size, b.free_ns, b.stack.0))
        .collect()
}

/// Two threads, address reuse, a cross-thread free, a leak, over many small chunks.
fn workload(b: &mut TraceBuilder) {
    b.stack(1, 1, 0, 0x1000).stack(1, 2, 1, 0x2000);
    for i in 0..3000u64 {
        let tid = 1 + (i % 2) as u32;
        let addr = 0x10_000 + (i % 50) * 0x40;
        b.alloc(tid, 10 + i * 4, addr, 16 + i % 9, 1 + (i % 2) as u32);
        if i % 7 != 0 {
            b.free(3 - tid, 12 + i * 4, addr);
        }
    }
}

fn load(path: &std::path::Path) -> Analysis {
    Analysis::open(path, &LoadOptions::default(), &NoProgress).expect("loads")
}

fn small_chunks() -> TraceBuilder {
    TraceBuilder::with_options(WriterOptions { chunk_size: 4096, ..WriterOptions::default() })
}

#[test]
fn a_killed_program_loads_the_same_lifetimes_as_a_finished_one() {
    let mut finished = small_chunks();
    workload(&mut finished);
    let finished = finished.finish(20_000);
    let mut killed = small_chunks();
    workload(&mut killed);
    let killed = killed.abandon();
    let (a, b) = (load(&finished.path), load(&killed.path));
    assert!(a.summary().finished && !b.summary().finished);
    assert_eq!(lifetimes(&a), lifetimes(&b));
    assert_eq!(a.totals().frees, b.totals().frees);
    assert_eq!(a.totals().peak_bytes, b.totals().peak_bytes);
    assert!(a.block_count() > 2000);
    // The killed program's trace ends at its last event.
    assert_eq!(b.duration_ns(), 12 + 2999 * 4);
    assert_eq!(a.duration_ns(), 20_000);
}

#[test]
fn events_before_the_recorded_start_move_the_origin() {
    let mut b = small_chunks();
    workload(&mut b);
    // A thread whose clock read earlier than the start the header records.
    b.event(9, Event::Alloc { ts: START - 500, addr: 0x99_000, size: 64, align: 0, stack: 1 });
    b.event(9, Event::Free { ts: START - 400, addr: 0x99_000 });
    let trace = b.finish(20_000);
    let a = load(&trace.path);
    assert_eq!(a.summary().origin_monotonic_ns, START - 500);
    let first = a.block(BlockId(0)).expect("a block");
    assert_eq!((first.alloc_ns, first.free_ns, first.address), (0, Some(100), 0x99_000));
    // Every other block is shifted by the new origin.
    let second = a.block(BlockId(1)).expect("a block");
    assert_eq!(second.alloc_ns, 500 + 10);
    assert_eq!(a.duration_ns(), 20_500);
}

#[test]
fn events_after_the_recorded_end_extend_the_trace() {
    let mut b = small_chunks();
    workload(&mut b);
    b.alloc(1, 30_000, 0x77_000, 8, 1);
    // The header says the program ended before its last event.
    let trace = b.finish(25_000);
    let a = load(&trace.path);
    assert_eq!(a.duration_ns(), 30_000);
    let last = a.block(BlockId(a.block_count() as u32 - 1)).expect("a block");
    assert_eq!((last.alloc_ns, last.address), (30_000, 0x77_000));
    // The leaks (every seventh block) and the late block.
    let leaked = (0..3000).filter(|i| i % 7 == 0).count() as u64;
    assert_eq!(a.summary().outstanding_at_end.blocks, leaked + 1);
}

/// Two pairs of events the preload recorder's clock may swap between threads (FORMAT.md,
/// "Ordering across threads"), in chunks of their own threads: thread 2 allocates 0x100 at 100
/// though thread 1's free of its block there is timed at 105; thread 1's free of 0x200 is timed
/// at 295, before thread 2's allocation of it at 300.
fn swapped(kind: RecorderKind) -> Analysis {
    let mut b =
        TraceBuilder::recorded_by(kind, WriterOptions { chunk_size: 4096, ..WriterOptions::default() });
    b.stack(1, 1, 0, 0x1000).stack(2, 2, 0, 0x2000);
    b.alloc(1, 10, 0x100, 16, 1);
    b.alloc(2, 100, 0x100, 32, 2);
    b.free(1, 105, 0x100);
    b.free(1, 295, 0x200);
    b.alloc(2, 300, 0x200, 64, 2);
    load(&b.finish(400).path)
}

#[test]
fn events_the_preload_clock_swapped_between_threads_are_replayed_in_their_order() {
    let preload = swapped(RecorderKind::Preload);
    // Thread 1's block at 0x100 freed at 105; thread 2's 0x200 came and went at 300.
    assert_eq!(
        lifetimes(&preload),
        vec![(10, 0x100, 16, Some(105), 1), (100, 0x100, 32, None, 2), (300, 0x200, 64, Some(300), 2)]
    );
    assert_eq!((preload.totals().frees, preload.totals().unmatched_frees), (2, 0));
    assert_eq!(preload.totals().reordered_pairs, 2);
    // Traces of other recorders keep the order of their times.
    let other = swapped(RecorderKind::Synthetic);
    assert_eq!(
        lifetimes(&other),
        vec![(10, 0x100, 16, None, 1), (100, 0x100, 32, Some(105), 2), (300, 0x200, 64, None, 2)]
    );
    assert_eq!((other.totals().unmatched_frees, other.totals().reordered_pairs), (1, 0));
}
