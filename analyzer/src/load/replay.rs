//! The replay: every chunk's allocations and frees merged into one stream in time order and fed
//! to the [`Lifecycle`], one moment (timestamp) at a time.
//!
//! Chunks are taken in order of the earliest timestamp they may hold and decoded in rounds. Once
//! the chunks of rounds up to `r` are decoded, every event before the earliest timestamp of round
//! `r + 1` is known: those events form window `r`, cut from the decoded chunks into time order.
//! A window is a list of parts, each sorted and none later than the next: a chunk taken whole
//! whose times overlap no other chunk's becomes a part as it is (the common case: one thread's
//! successive chunks, or threads that take turns), runs that overlap in time are merged into a
//! part of their own (a stable sort of a few sorted runs). Three stages run at once, on the
//! pool's threads: round `r + 1` is decoded, window `r` is cut, and window `r - 1` is replayed.
//! Only the replay is sequential, a flat loop over each part. A decoded chunk's buffer goes back
//! to a pool once its last record is replayed (a part) or cut (merged into a part).
//!
//! Events of one moment (a clock tie) are handed over together, since their order is not
//! known: the [`Lifecycle`] orders them by each address's state. A window never splits a moment;
//! a moment may go on from one part into the next.

use leakview_format::TraceReader;
use rayon::prelude::*;

use super::decode::{
    BigSizes, DecodeShared, DecodeSpec, DecodedChunk, Record, RecordPool, SiteInterner, decode_chunk,
};
use super::lifecycle::{Lifecycle, TieEvent};
use super::reorder::SiteThreads;
use super::scan::ChunkScan;
use crate::progress::Progress;

/// Events whose address-table slots are brought into the cache together.
const PREFETCH: usize = 16;

/// Chunk bytes decoded per round, at most (and at least one chunk per worker thread): enough
/// to keep the threads busy, small enough for the decoded records in flight to stay small.
const ROUND_BYTES: usize = 512 << 10;
/// Rounds a trace is split into, at least, so small traces also go through the pipeline.
const MIN_ROUNDS: usize = 32;

/// What the replay needs to know about the chunks.
pub(crate) struct ReplayPlan<'a> {
    pub reader: &'a TraceReader,
    /// No event of chunk `i` is earlier than `lower_bounds[i]`.
    pub lower_bounds: &'a [u64],
    pub chunk_threads: &'a [u32],
    /// Records expected per chunk (capacity hints).
    pub expected: &'a [usize],
    /// Every timestamp of the trace is expected in this range.
    pub times: std::ops::RangeInclusive<u64>,
    /// Stop as soon as a promise is broken.
    pub checked: bool,
    pub interner: &'a SiteInterner,
}

/// What the replay found besides the lifetimes.
pub(crate) struct Replayed {
    /// Every chunk's scan, in chunk order.
    pub scans: Vec<ChunkScan>,
    /// The promises of the plan held: every timestamp in range and no chunk earlier than its
    /// lower bound. When false, the replay's results are not to be used.
    pub promises_held: bool,
}

/// Decoded chunks not yet wholly cut into windows.
struct Merger<'p> {
    pool: &'p RecordPool,
    /// (records, position of the first record not yet in a window).
    pending: Vec<(Vec<Record>, usize)>,
    scans: Vec<Option<ChunkScan>>,
    in_range: bool,
    scratch: Vec<Record>,
    /// Buffers of merged parts already replayed, for the next merged parts (kept apart from
    /// the decoders' pool, whose buffers are chunk-sized).
    spare_parts: Vec<Vec<Record>>,
}

/// A window: its parts in time order, and which of them were merged from several runs.
#[derive(Debug, Default)]
struct Window {
    parts: Vec<Vec<Record>>,
    merged: Vec<bool>,
}

/// Merges the sorted runs of `window` that begin at `starts` (the first at 0) into one sorted
/// run, pairwise (each pass halves the runs; equal times keep their run order).
fn merge_runs(window: &mut Vec<Record>, starts: &mut Vec<usize>, scratch: &mut Vec<Record>) {
    while starts.len() > 1 {
        scratch.clear();
        scratch.reserve_exact(window.len());
        let n = starts.len();
        let end = |k: usize| if k < n { starts[k] } else { window.len() };
        let mut merged = Vec::with_capacity(n.div_ceil(2));
        let mut k = 0;
        while k < n {
            merged.push(scratch.len());
            let a = &window[starts[k]..end(k + 1)];
            if k + 1 == n {
                scratch.extend_from_slice(a);
                break;
            }
            let b = &window[end(k + 1)..end(k + 2)];
            let (mut i, mut j) = (0, 0);
            while let (Some(&x), Some(&y)) = (a.get(i), b.get(j)) {
                // Without a branch: which run comes next is as good as random.
                let take_b = y.ts < x.ts;
                scratch.push(if take_b { y } else { x });
                j += usize::from(take_b);
                i += usize::from(!take_b);
            }
            scratch.extend_from_slice(&a[i..]);
            scratch.extend_from_slice(&b[j..]);
            k += 2;
        }
        std::mem::swap(window, scratch);
        *starts = merged;
    }
}

impl Merger<'_> {
    fn add(&mut self, index: usize, mut chunk: DecodedChunk) {
        self.scans[index] = Some(std::mem::take(&mut chunk.scan));
        self.in_range &= chunk.in_range;
        if chunk.records.is_empty() {
            self.pool.put(chunk.records);
        } else {
            self.pending.push((chunk.records, 0));
        }
    }

    /// Fills `window` with every pending record before `bound` (all of them for `u64::MAX`), in
    /// time order: a list of parts, each sorted, each part's times not after the next part's.
    /// A chunk taken whole whose times overlap no other's becomes a part as it is (no copy);
    /// runs that overlap in time are merged into a part of their own.
    fn cut_window(&mut self, bound: u64, window: &mut Window) {
        // The runs to cut, by their first timestamp: a thread's successive chunks then follow
        // each other already in order, and only runs that overlap in time need merging.
        let mut runs: Vec<(u64, usize, usize)> = Vec::new();
        for (k, (records, from)) in self.pending.iter().enumerate() {
            let rest = &records[*from..];
            let take = if bound == u64::MAX { rest.len() } else { rest.partition_point(|r| r.ts < bound) };
            if take > 0 {
                runs.push((rest[0].ts, k, take));
            }
        }
        runs.sort_unstable();
        // Clusters of runs that overlap in time: `runs[a..b]`.
        let mut a = 0;
        while a < runs.len() {
            let (_, k, take) = runs[a];
            let mut last = self.pending[k].0[self.pending[k].1 + take - 1].ts;
            let mut b = a + 1;
            while let Some(&(_, k, take)) = runs.get(b).filter(|r| r.0 < last) {
                last = last.max(self.pending[k].0[self.pending[k].1 + take - 1].ts);
                b += 1;
            }
            let (records, from) = &mut self.pending[k];
            if b == a + 1 && *from == 0 && take == records.len() {
                window.parts.push(std::mem::take(records));
                window.merged.push(false);
            } else {
                // Exactly the room needed: these buffers are the largest transient memory of a
                // load.
                let needed = runs[a..b].iter().map(|r| r.2).sum();
                let mut part = self.spare_parts.pop().unwrap_or_default();
                part.clear();
                part.reserve_exact(needed);
                let mut starts: Vec<usize> = Vec::with_capacity(b - a);
                for &(first, k, take) in &runs[a..b] {
                    let (records, from) = &mut self.pending[k];
                    if part.last().is_none_or(|last| last.ts > first) {
                        starts.push(part.len());
                    }
                    part.extend_from_slice(&records[*from..*from + take]);
                    *from += take;
                }
                merge_runs(&mut part, &mut starts, &mut self.scratch);
                window.parts.push(part);
                window.merged.push(true);
            }
            a = b;
        }
        let pool = self.pool;
        self.pending.retain_mut(|(records, from)| {
            let done = *from >= records.len();
            if done && records.capacity() > 0 {
                pool.put(std::mem::take(records));
            }
            !done
        });
    }
}

/// The record at (`k`, `i`) of a window's parts, moving on to later parts past a part's end.
fn record_at(parts: &[Vec<Record>], k: &mut usize, i: &mut usize) -> Option<Record> {
    while let Some(part) = parts.get(*k) {
        if let Some(&r) = part.get(*i) {
            return Some(r);
        }
        *k += 1;
        *i = 0;
    }
    None
}

/// Replays one window (its parts in time order, no moment split with another window).
fn replay_window(
    window: &[Vec<Record>],
    big_sizes: &BigSizes,
    sites: &dyn SiteThreads,
    life: &mut Lifecycle,
    ties: &mut Vec<TieEvent>,
) {
    // While the address table fits in the caches, prefetching would only add work.
    let prefetch = life.table_is_large();
    let (mut k, mut i) = (0, 0);
    'parts: while let Some(part) = window.get(k) {
        let mut prefetched = if prefetch { i } else { usize::MAX };
        while let Some(&r) = part.get(i) {
            if i >= prefetched {
                // The address table outgrows the caches on large heaps: touch the slots of the
                // next events together, so their misses overlap instead of coming one after
                // another.
                prefetched = (i + PREFETCH).min(part.len());
                life.prefetch(&part[i..prefetched]);
            }
            let tied = match part.get(i + 1) {
                Some(next) => next.ts == r.ts,
                None => window[k + 1..].iter().find_map(|p| p.first()).is_some_and(|next| next.ts == r.ts),
            };
            if !tied {
                if r.is_free() {
                    life.free(r.ts, r.addr, r.thread(), sites);
                    life.end_moment_of_free(r.ts);
                } else {
                    life.alloc(r.ts, r.addr, big_sizes.size_of(&r), r.site(), sites);
                    life.end_moment(r.ts);
                }
                i += 1;
            } else {
                ties.clear();
                let (mut tk, mut ti) = (k, i);
                while let Some(e) = record_at(window, &mut tk, &mut ti).filter(|e| e.ts == r.ts) {
                    ties.push(TieEvent::of(&e, big_sizes.size_of(&e)));
                    ti += 1;
                }
                life.tie(r.ts, ties, sites);
                life.end_moment(r.ts);
                if tk != k {
                    // The moment went on into later parts.
                    (k, i) = (tk, ti);
                    continue 'parts;
                }
                i = ti;
            }
        }
        (k, i) = (k + 1, 0);
    }
}

/// Gives the parts of a replayed window back to the pool.
fn recycle(window: &mut Window, merger: &mut Merger<'_>) {
    for (part, merged) in window.parts.drain(..).zip(window.merged.drain(..)) {
        if merged {
            merger.spare_parts.push(part);
        } else {
            merger.pool.put(part);
        }
    }
}

/// Replays the whole trace into `life`; `None` if cancelled.
pub(crate) fn replay(
    plan: &ReplayPlan<'_>,
    life: &mut Lifecycle,
    progress: &dyn Progress,
) -> Option<Replayed> {
    let chunks = plan.reader.chunks();
    let mut order: Vec<usize> = (0..chunks.len()).collect();
    order.sort_by_key(|&i| (plan.lower_bounds[i], i));
    let workers = rayon::current_num_threads().max(1);
    let total: usize = chunks.iter().map(|c| c.body_len()).sum();
    let round_bytes = (total / MIN_ROUNDS).clamp(1, ROUND_BYTES);
    let mut rounds: Vec<&[usize]> = Vec::new();
    let mut rest = order.as_slice();
    while !rest.is_empty() {
        let mut take = 0;
        let mut bytes = 0;
        while take < rest.len() && (take < workers || bytes < round_bytes) {
            bytes += chunks[rest[take]].body_len();
            take += 1;
        }
        let (round, tail) = rest.split_at(take);
        rounds.push(round);
        rest = tail;
    }
    let pool = RecordPool::default();
    let big_sizes = BigSizes::default();
    let shared = DecodeShared { interner: plan.interner, pool: &pool, big_sizes: &big_sizes };
    let decode_round = |round: &[usize]| -> Vec<(usize, DecodedChunk)> {
        round
            .par_iter()
            .map(|&i| {
                let lower = plan.lower_bounds[i].max(*plan.times.start());
                let spec = DecodeSpec {
                    thread: plan.chunk_threads[i],
                    expected: plan.expected[i],
                    times: lower..=*plan.times.end(),
                };
                (i, decode_chunk(plan.reader, &chunks[i], &spec, &shared))
            })
            .collect()
    };
    let mut merger = Merger {
        pool: &pool,
        pending: Vec::new(),
        scans: (0..chunks.len()).map(|_| None).collect(),
        in_range: true,
        scratch: Vec::new(),
        spare_parts: Vec::new(),
    };
    let mut ties = Vec::new();
    // Window r - 1 (being replayed) and window r (being cut), swapped each round.
    let (mut replaying, mut cutting) = (Window::default(), Window::default());
    let mut decoded = rounds.first().map(|r| decode_round(r)).unwrap_or_default();
    for (k, round) in rounds.iter().enumerate() {
        if progress.cancelled() {
            return None;
        }
        for (i, d) in std::mem::take(&mut decoded) {
            merger.add(i, d);
        }
        if !merger.in_range && plan.checked {
            // The plan's promises were broken: this replay is void, stop early.
            return Some(Replayed { scans: Vec::new(), promises_held: false });
        }
        let bound = rounds.get(k + 1).and_then(|r| r.first()).map_or(u64::MAX, |&i| plan.lower_bounds[i]);
        let following = rounds.get(k + 1).copied();
        let ((next, ()), ()) = rayon::join(
            || {
                rayon::join(
                    || following.map(decode_round).unwrap_or_default(),
                    || merger.cut_window(bound, &mut cutting),
                )
            },
            || replay_window(&replaying.parts, &big_sizes, plan.interner, life, &mut ties),
        );
        decoded = next;
        recycle(&mut replaying, &mut merger);
        std::mem::swap(&mut replaying, &mut cutting);
        progress.advance(round.len() as u64);
    }
    replay_window(&replaying.parts, &big_sizes, plan.interner, life, &mut ties);
    let scans = merger.scans.into_iter().map(Option::unwrap_or_default).collect();
    Some(Replayed { scans, promises_held: merger.in_range })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::IndexBuilder;
    use crate::lifetimes::LifetimeStore;
    use crate::progress::NoProgress;

    fn alloc(ts: u64, addr: u64) -> Record {
        Record::alloc(ts, addr, (addr as u32 % 7) + 1, 0)
    }

    fn free(ts: u64, addr: u64) -> Record {
        Record::free(ts, addr, 0)
    }

    fn merger(pool: &RecordPool, chunks: Vec<Vec<Record>>) -> Merger<'_> {
        Merger {
            pool,
            pending: chunks.into_iter().map(|c| (c, 0)).collect(),
            scans: Vec::new(),
            in_range: true,
            scratch: Vec::new(),
            spare_parts: Vec::new(),
        }
    }

    /// `chunks` stably sorted by time, earlier chunks first at equal times (as the merger orders
    /// runs: by first time, then by position).
    fn expected(chunks: &[Vec<Record>], bound: u64) -> Vec<Record> {
        let mut order: Vec<usize> = (0..chunks.len()).collect();
        order.sort_by_key(|&k| (chunks[k].first().map_or(u64::MAX, |r| r.ts), k));
        let mut all: Vec<Record> =
            order.iter().flat_map(|&k| chunks[k].iter().copied().filter(|r| r.ts < bound)).collect();
        all.sort_by_key(|r| r.ts);
        all
    }

    #[test]
    fn windows_are_parts_in_time_order_and_whole_chunks_are_not_copied() {
        let pool = RecordPool::default();
        // A and B follow each other (B starts at A's last time); C overlaps D; E lies beyond
        // the bound in part.
        let a = vec![alloc(1, 0x10), free(2, 0x10), alloc(3, 0x20)];
        let b = vec![free(3, 0x20), alloc(4, 0x30)];
        let c = vec![alloc(10, 0x40), alloc(12, 0x50), free(14, 0x40)];
        let d = vec![free(11, 0x99), alloc(12, 0x60), alloc(13, 0x70)];
        let e = vec![free(15, 0x50), alloc(30, 0x80)];
        let chunks = vec![a.clone(), b.clone(), c, d, e];
        let mut m = merger(&pool, chunks.clone());
        let mut cut = Window::default();
        m.cut_window(20, &mut cut);
        assert_eq!(cut.merged, vec![false, false, true, true]);
        let window = cut.parts;
        let flat: Vec<Record> = window.iter().flatten().copied().collect();
        assert_eq!(flat, expected(&chunks, 20));
        assert!(window.iter().all(|p| !p.is_empty()));
        assert!(window.windows(2).all(|w| w[0].last().map(|r| r.ts) <= w[1].first().map(|r| r.ts)));
        // A and B are parts as they were; C and D merged into one; E's first record cut.
        assert_eq!(window.len(), 4);
        assert_eq!((&window[0], &window[1]), (&a, &b));
        assert_eq!(window[2].len(), 6);
        assert_eq!(m.pending.len(), 1);
        let mut rest = Window::default();
        m.cut_window(u64::MAX, &mut rest);
        assert_eq!(rest.parts, vec![vec![alloc(30, 0x80)]]);
        assert!(m.pending.is_empty());
    }

    /// Everything a replay leaves: blocks, counts, timeline and peak.
    type Outcome =
        (Vec<crate::model::Block>, u64, u64, (u64, u64), crate::timeline::Timeline, (u64, u64, u64));

    fn replay_parts(parts: &[Vec<Record>]) -> Outcome {
        let store = LifetimeStore::with_capacity(64);
        let mut life = Lifecycle::new(0, store, IndexBuilder::new(100), 4, 0);
        let mut ties = Vec::new();
        replay_window(parts, &BigSizes::default(), &[0u32; 0], &mut life, &mut ties);
        let totals = life.live_totals();
        let Lifecycle { mut store, index, matched, unmatched, tie_runs, .. } = life;
        store.order_ties(&tie_runs);
        let build = index.finish(&store, &NoProgress);
        let blocks = (0..store.len() as u32).filter_map(|i| store.block(i)).collect();
        (blocks, matched, unmatched, totals, build.timeline, build.peak)
    }

    #[test]
    fn a_moment_may_go_on_from_one_part_into_the_next() {
        // Moments 5 and 9 cross part boundaries (9 spans three parts); 0x10 is freed and
        // allocated again at 5, 0x20 freed twice at 9 (once unmatched).
        let parts = vec![
            vec![alloc(1, 0x10), alloc(2, 0x20), alloc(5, 0x10)],
            vec![free(5, 0x10), free(6, 0x30), free(9, 0x20)],
            vec![free(9, 0x20)],
            vec![alloc(9, 0x40), free(12, 0x10)],
        ];
        let split = replay_parts(&parts);
        let whole = replay_parts(&[parts.concat()]);
        assert_eq!(split, whole);
        // The tie at 5 closed the first block of 0x10 there, not the new one.
        assert_eq!(split.0.len(), 4);
        assert_eq!((split.0[0].free_ns, split.0[2].free_ns), (Some(5), Some(12)));
        assert_eq!((split.1, split.2), (3, 2));
    }
}
