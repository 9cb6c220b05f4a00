//! The time index: checkpoints of the live set, so "outstanding at T" costs work proportional to
//! the events near T (plus the answer's size), not to the whole trace. The replay feeds
//! [`IndexBuilder`] the live totals after every moment; it keeps the timeline and the peak, and
//! decides where checkpoints go. Their live sets are filled in afterwards, in parallel.
//!
//! Blocks are numbered in order of allocation time, so the blocks allocated by T are the ids
//! `0..allocated_by(T)`. A checkpoint at time C stores the ids of blocks live at C, sorted. The
//! blocks live at T ≥ C are then `{i in checkpoint : free(i) > T} ∪ {i in pos(C)..pos(T) :
//! free(i) > T}`: no free-list needs replaying. A new checkpoint is taken once the events since
//! the previous one reach `max(MIN_SPACING, 2 × its live set)`, so a query touches at most about
//! three times the larger of those, and all checkpoints together hold at most about as many ids
//! as the trace has blocks. The ids are stored as varint deltas (live blocks are spread thinly
//! over the trace, so most deltas take a byte or two), with restart points for parallel decoding.

use rayon::prelude::*;

use crate::lifetimes::{LifetimeStore, LiveBlock};
use crate::model::{LiveTotals, Totals};
use crate::progress::{Progress, Stage};
use crate::timeline::{TIMELINE_BUCKETS, Timeline, TimelinePoint};

/// Fewest events between two checkpoints.
pub const MIN_SPACING: u64 = 32 * 1024;

/// Id lists at least this long are filtered in parallel.
const PARALLEL_IDS: usize = 64 * 1024;

/// Blocks whose checkpoint membership is decided in one parallel batch, at most (after the
/// first checkpoint of the batch): they bound the batch's transient id lists (4 bytes each).
const FRESH_BATCH_IDS: usize = 1 << 20;

/// Ids per restart point of [`CompactIds`].
const RESTART: usize = 4096;

/// Sorted block ids as LEB128 deltas, with a restart point every [`RESTART`] ids.
#[derive(Debug, Default)]
struct CompactIds {
    bytes: Vec<u8>,
    len: usize,
    /// (byte offset, id before the part) of each part of [`RESTART`] ids.
    restarts: Vec<(usize, u32)>,
}

impl CompactIds {
    fn from_sorted(ids: &[u32]) -> Self {
        let mut bytes = Vec::with_capacity(ids.len() + ids.len() / 4);
        let mut restarts = Vec::with_capacity(ids.len().div_ceil(RESTART));
        let mut prev = 0u32;
        for (k, &id) in ids.iter().enumerate() {
            if k % RESTART == 0 {
                restarts.push((bytes.len(), prev));
            }
            let mut delta = id.wrapping_sub(prev);
            while delta >= 0x80 {
                bytes.push((delta as u8) | 0x80);
                delta >>= 7;
            }
            bytes.push(delta as u8);
            prev = id;
        }
        bytes.shrink_to_fit();
        CompactIds { bytes, len: ids.len(), restarts }
    }

    /// The ids of part `k`.
    fn part(&self, k: usize) -> impl Iterator<Item = u32> + '_ {
        let (offset, mut prev) = self.restarts.get(k).copied().unwrap_or((self.bytes.len(), 0));
        let count = self.len.saturating_sub(k * RESTART).min(RESTART);
        let mut pos = offset;
        (0..count).map_while(move |_| {
            let mut delta = 0u32;
            let mut shift = 0;
            loop {
                let byte = *self.bytes.get(pos)?;
                pos += 1;
                delta |= u32::from(byte & 0x7f).checked_shl(shift).unwrap_or(0);
                if byte < 0x80 {
                    break;
                }
                shift += 7;
            }
            prev = prev.wrapping_add(delta);
            Some(prev)
        })
    }

    fn parts(&self) -> usize {
        self.restarts.len()
    }

    fn heap_bytes(&self) -> usize {
        self.bytes.capacity() + self.restarts.capacity() * 16
    }
}

#[derive(Debug)]
struct Checkpoint {
    at_ns: u64,
    /// Blocks `0..alloc_pos` were allocated at or before `at_ns`.
    alloc_pos: u32,
    /// Ids of the blocks live at `at_ns`.
    live: CompactIds,
}

/// Checkpoints over a [`LifetimeStore`].
#[derive(Debug)]
pub(crate) struct TimeIndex {
    checkpoints: Vec<Checkpoint>,
}

/// `keep(i)` of each id `i` in `ids` and in `range` (all above them) for which it is `Some`, in
/// id order (in parallel parts when there are many).
fn live_filter<T: Send>(
    ids: &CompactIds,
    range: std::ops::Range<u32>,
    keep: impl Fn(u32) -> Option<T> + Sync,
) -> Vec<T> {
    if ids.len + range.len() < PARALLEL_IDS {
        let mut out: Vec<T> = (0..ids.parts()).flat_map(|k| ids.part(k)).filter_map(&keep).collect();
        out.extend(range.filter_map(&keep));
        return out;
    }
    let (head, tail): (Vec<Vec<T>>, Vec<T>) = rayon::join(
        || (0..ids.parts()).into_par_iter().map(|k| ids.part(k).filter_map(&keep).collect()).collect(),
        || range.into_par_iter().filter_map(&keep).collect(),
    );
    let mut out = Vec::with_capacity(head.iter().map(Vec::len).sum::<usize>() + tail.len());
    for part in head {
        out.extend(part);
    }
    out.extend(tail);
    out
}

/// Ids in `ids` and in `range` (all above them) whose block is still live at `t`, sorted.
fn live_ids(store: &LifetimeStore, ids: &CompactIds, range: std::ops::Range<u32>, t: u64) -> Vec<u32> {
    live_filter(ids, range, |i| store.is_live_at(i, t).then_some(i))
}

impl TimeIndex {
    fn checkpoint_for(&self, t: u64) -> &Checkpoint {
        let i = self.checkpoints.partition_point(|c| c.at_ns <= t);
        &self.checkpoints[i.saturating_sub(1)]
    }

    /// The checkpoint to start from and the window of later allocations, for a query at `t`.
    fn window(&self, store: &LifetimeStore, t: u64) -> (&Checkpoint, std::ops::Range<u32>) {
        let cp = self.checkpoint_for(t);
        let end = store.allocated_by(t) as u32;
        (cp, cp.alloc_pos..end.max(cp.alloc_pos))
    }

    /// The blocks live at `t` with their fields, in id order.
    pub fn live_at(&self, store: &LifetimeStore, t: u64) -> Vec<LiveBlock> {
        let (cp, window) = self.window(store, t);
        live_filter(&cp.live, window, |i| store.live_block(i, t))
    }

    /// Blocks and bytes live at `t`, without listing them.
    pub fn totals_at(&self, store: &LifetimeStore, t: u64) -> LiveTotals {
        let (cp, window) = self.window(store, t);
        let add = |mut acc: LiveTotals, i: u32| {
            if let Some(b) = store.live_block(i, t) {
                acc.blocks += 1;
                acc.bytes += store.full_size(i, b.size32);
            }
            acc
        };
        let sum = |a: LiveTotals, b: LiveTotals| LiveTotals {
            blocks: a.blocks + b.blocks,
            bytes: a.bytes + b.bytes,
        };
        if cp.live.len + window.len() < PARALLEL_IDS {
            let from_checkpoint =
                (0..cp.live.parts()).flat_map(|k| cp.live.part(k)).fold(LiveTotals::default(), add);
            return window.fold(from_checkpoint, add);
        }
        let (a, b) = rayon::join(
            || {
                (0..cp.live.parts())
                    .into_par_iter()
                    .map(|k| cp.live.part(k).fold(LiveTotals::default(), add))
                    .reduce(LiveTotals::default, sum)
            },
            || window.into_par_iter().fold(LiveTotals::default, add).reduce(LiveTotals::default, sum),
        );
        sum(a, b)
    }

    /// Bytes held by the checkpoints.
    pub fn heap_bytes(&self) -> usize {
        self.checkpoints.iter().map(|c| c.live.heap_bytes()).sum::<usize>()
            + self.checkpoints.capacity() * std::mem::size_of::<Checkpoint>()
    }
}

/// Builds the timeline, the peak and the checkpoint plan from the live totals after each
/// moment of the replay (moments in time order, times relative to the start).
#[derive(Debug)]
pub(crate) struct IndexBuilder {
    duration_ns: u64,
    points: Vec<Option<TimelinePoint>>,
    /// Timeline bucket of the current moment, where the next one starts (0 before the first
    /// moment), and the current bucket's point.
    bucket: usize,
    next_bucket_start: u64,
    current: TimelinePoint,
    /// A moment has come (so `current` is the point of `bucket`).
    started: bool,
    /// (bytes, blocks, time) of the first moment with the most live bytes.
    peak: (u64, u64, u64),
    /// Events applied (counted since the start of the replay) at which the next checkpoint is
    /// due.
    checkpoint_at: u64,
    /// (time, blocks allocated by then) of each checkpoint after the first.
    plan: Vec<(u64, u32)>,
}

/// What building the index found besides the index itself.
pub(crate) struct IndexBuild {
    pub index: TimeIndex,
    pub timeline: Timeline,
    pub peak: (u64, u64, u64),
}

impl IndexBuilder {
    pub fn new(duration_ns: u64) -> Self {
        IndexBuilder {
            duration_ns,
            points: vec![None; TIMELINE_BUCKETS],
            bucket: 0,
            // The first moment enters its bucket.
            next_bucket_start: 0,
            current: TimelinePoint::default(),
            started: false,
            peak: (0, 0, 0),
            checkpoint_at: MIN_SPACING,
            plan: Vec::new(),
        }
    }

    /// Counts the events applied from `applied` on (those of blocks already stored when the
    /// replay begins are not the replay's).
    pub fn count_from(&mut self, applied: u64) {
        self.checkpoint_at += applied;
    }

    /// The moment `t` ended with `bytes` and `blocks` live, `allocated` blocks allocated so far
    /// and `applied` allocations and frees applied since the replay began (so far, in all
    /// moments).
    #[inline(always)]
    pub fn step(&mut self, t: u64, bytes: u64, blocks: u64, allocated: u32, applied: u64) {
        if bytes > self.peak.0 {
            self.peak = (bytes, blocks, t);
        }
        if t >= self.next_bucket_start {
            self.enter_bucket_of(t);
        }
        let p = &mut self.current;
        p.live_bytes = bytes;
        p.live_blocks = blocks;
        p.max_live_bytes = p.max_live_bytes.max(bytes);
        if applied >= self.checkpoint_at {
            self.plan_checkpoint(t, allocated, blocks, applied);
        }
    }

    /// [`IndexBuilder::step`] for a moment after which no more bytes are live than before it:
    /// neither the peak nor the bucket's maximum can change (unless it enters a new bucket).
    #[inline(always)]
    pub fn step_down(&mut self, t: u64, bytes: u64, blocks: u64, allocated: u32, applied: u64) {
        if t >= self.next_bucket_start {
            self.step(t, bytes, blocks, allocated, applied);
            return;
        }
        self.current.live_bytes = bytes;
        self.current.live_blocks = blocks;
        if applied >= self.checkpoint_at {
            self.plan_checkpoint(t, allocated, blocks, applied);
        }
    }

    /// Moves to the timeline bucket that holds `t`.
    #[cold]
    fn enter_bucket_of(&mut self, t: u64) {
        if self.started {
            self.points[self.bucket] = Some(self.current);
        } else {
            self.started = true;
            self.next_bucket_start = Timeline::bucket_start(self.duration_ns, TIMELINE_BUCKETS, 1);
        }
        while t >= self.next_bucket_start && self.bucket + 1 < TIMELINE_BUCKETS {
            self.bucket += 1;
            self.next_bucket_start =
                Timeline::bucket_start(self.duration_ns, TIMELINE_BUCKETS, self.bucket + 1);
        }
        if self.bucket + 1 == TIMELINE_BUCKETS {
            self.next_bucket_start = u64::MAX;
        }
        // A bucket's first moment: its maximum starts from the moment's bytes.
        self.current = self.points[self.bucket].take().unwrap_or_default();
    }

    #[cold]
    fn plan_checkpoint(&mut self, t: u64, allocated: u32, blocks: u64, applied: u64) {
        self.plan.push((t, allocated));
        self.checkpoint_at = applied + MIN_SPACING.max(2 * blocks);
    }

    /// The index over `store` (which holds the replayed blocks) and the timeline.
    pub fn finish(self, store: &LifetimeStore, progress: &dyn Progress) -> IndexBuild {
        self.finish_in_batches(store, progress, FRESH_BATCH_IDS)
    }

    /// [`IndexBuilder::finish`] with batches of `batch_ids` blocks.
    fn finish_in_batches(
        mut self,
        store: &LifetimeStore,
        progress: &dyn Progress,
        batch_ids: usize,
    ) -> IndexBuild {
        if self.started {
            self.points[self.bucket] = Some(self.current);
        }
        progress.start(Stage::Indexing, self.plan.len() as u64);
        let mut checkpoints = Vec::with_capacity(self.plan.len() + 1);
        checkpoints.push(Checkpoint { at_ns: 0, alloc_pos: 0, live: CompactIds::default() });
        // A checkpoint's live set is the previous one's, filtered, plus the blocks allocated
        // since then that are still live. That second part — most of the work, a pass over
        // every block — depends on no other checkpoint, so a batch of checkpoints finds theirs
        // in parallel; only the small first part goes from one checkpoint to the next.
        let mut next = 0;
        while next < self.plan.len() {
            let mut from = checkpoints[checkpoints.len() - 1].alloc_pos;
            let mut batch: Vec<(u64, u32, std::ops::Range<u32>)> = Vec::new();
            let mut ids = 0;
            while let Some(&(at_ns, alloc_pos)) = self.plan.get(next).filter(|_| ids < batch_ids) {
                let range = from..alloc_pos.max(from);
                ids += range.len();
                batch.push((at_ns, alloc_pos, range));
                from = alloc_pos;
                next += 1;
            }
            let fresh: Vec<Vec<u32>> = batch
                .par_iter()
                .map(|(at_ns, _, range)| live_ids(store, &CompactIds::default(), range.clone(), *at_ns))
                .collect();
            for ((at_ns, alloc_pos, _), fresh) in batch.into_iter().zip(fresh) {
                let prev = &checkpoints[checkpoints.len() - 1];
                let mut live = live_ids(store, &prev.live, 0..0, at_ns);
                live.extend(fresh);
                checkpoints.push(Checkpoint { at_ns, alloc_pos, live: CompactIds::from_sorted(&live) });
                progress.advance(1);
            }
        }
        progress.finish(Stage::Indexing);

        let duration_ns = self.duration_ns;
        let buckets = TIMELINE_BUCKETS;
        let mut carried = TimelinePoint::default();
        let points = self
            .points
            .into_iter()
            .enumerate()
            .map(|(k, p)| {
                let start_ns = Timeline::bucket_start(duration_ns, buckets, k);
                let end_ns = Timeline::bucket_start(duration_ns, buckets, k + 1);
                match p {
                    Some(p) => {
                        // The bucket starts with the previous value before its first event.
                        let max = p.max_live_bytes.max(carried.live_bytes);
                        carried = TimelinePoint { start_ns, end_ns, max_live_bytes: max, ..p };
                    }
                    None => {
                        carried =
                            TimelinePoint { start_ns, end_ns, max_live_bytes: carried.live_bytes, ..carried };
                    }
                }
                carried
            })
            .collect();
        IndexBuild {
            index: TimeIndex { checkpoints },
            timeline: Timeline::from_points(duration_ns, points),
            peak: self.peak,
        }
    }
}

/// Fills the peak fields of `totals` from an index build.
pub(crate) fn apply_peak(totals: &mut Totals, peak: (u64, u64, u64)) {
    totals.peak_bytes = peak.0;
    totals.peak_blocks = peak.1;
    totals.peak_at_ns = peak.2;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NoProgress;

    #[test]
    fn compact_ids_decode_to_what_went_in() {
        let ids: Vec<u32> = (0..10_000u32).map(|i| i * 3 + (i % 7) * 1000 + i * i % 5).collect();
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        sorted.extend([u32::MAX - 1, u32::MAX]);
        let c = CompactIds::from_sorted(&sorted);
        let back: Vec<u32> = (0..c.parts()).flat_map(|k| c.part(k)).collect();
        assert_eq!(back, sorted);
        assert!(c.bytes.len() < sorted.len() * 3);
        let empty = CompactIds::from_sorted(&[]);
        assert_eq!((0..empty.parts()).flat_map(|k| empty.part(k)).count(), 0);
    }

    #[test]
    fn steps_down_build_what_full_steps_build() {
        // A random walk of live bytes over moments that cross many buckets; the moments that
        // do not raise the bytes are stepped down in one builder, fully in the other.
        let duration = 1_000_000;
        let (mut full, mut down) = (IndexBuilder::new(duration), IndexBuilder::new(duration));
        let mut rng = leakview_format::testing::XorShift::new(7);
        let (mut t, mut bytes, mut blocks, mut allocated, mut applied) = (0u64, 0u64, 0u64, 0u32, 0u64);
        let mut downs = 0;
        while t < duration {
            let before = bytes;
            if rng.below(2) == 0 || blocks == 0 {
                bytes += 1 + rng.below(1000);
                blocks += 1;
                allocated += 1;
            } else {
                bytes -= bytes.min(rng.below(1000));
                blocks -= 1;
            }
            applied += 1 + rng.below(3000);
            full.step(t, bytes, blocks, allocated, applied);
            if bytes <= before {
                downs += 1;
                down.step_down(t, bytes, blocks, allocated, applied);
            } else {
                down.step(t, bytes, blocks, allocated, applied);
            }
            t += rng.below(200);
        }
        assert!(downs > 1000 && !full.plan.is_empty(), "{downs}");
        assert_eq!(full.plan, down.plan);
        let (a, b) = (
            full.finish(&LifetimeStore::default(), &NoProgress),
            down.finish(&LifetimeStore::default(), &NoProgress),
        );
        assert_eq!(a.peak, b.peak);
        assert_eq!(a.timeline.points(), b.timeline.points());
    }

    #[test]
    fn checkpoints_hold_the_blocks_live_then_whatever_the_batches() {
        // Random lifetimes; a checkpoint planned every few hundred blocks.
        let mut rng = leakview_format::testing::XorShift::new(11);
        let mut store = LifetimeStore::default();
        let mut builder = IndexBuilder::new(1_000_000);
        let mut open: Vec<u32> = Vec::new();
        let mut applied = 0u64;
        for t in 0..20_000u64 {
            if rng.below(3) != 0 || open.is_empty() {
                open.push(store.push(t, 0x1000 + 16 * t, 8, 0));
            } else {
                let k = rng.below(open.len() as u64) as usize;
                store.set_free(open.swap_remove(k), t);
            }
            applied += 1 + rng.below(400);
            builder.step(t, 0, open.len() as u64, store.len() as u32, applied);
        }
        let plan = builder.plan.clone();
        assert!(plan.len() > 10, "{}", plan.len());
        let live_then =
            |at: u64, pos: u32| -> Vec<u32> { (0..pos).filter(|&i| store.is_live_at(i, at)).collect() };
        for batch_ids in [1, 7, 500, FRESH_BATCH_IDS] {
            let index = IndexBuilder { plan: plan.clone(), ..IndexBuilder::new(1_000_000) }
                .finish_in_batches(&store, &NoProgress, batch_ids)
                .index;
            assert_eq!(index.checkpoints.len(), plan.len() + 1);
            for (c, &(at, pos)) in index.checkpoints[1..].iter().zip(&plan) {
                let ids: Vec<u32> = (0..c.live.parts()).flat_map(|k| c.live.part(k)).collect();
                assert_eq!((c.at_ns, c.alloc_pos), (at, pos));
                assert_eq!(ids, live_then(at, pos), "checkpoint at {at}, batches of {batch_ids}");
            }
        }
    }

    #[test]
    fn timeline_buckets_follow_the_moments() {
        let mut b = IndexBuilder::new(999);
        b.step(0, 10, 1, 1, 1);
        b.step(150, 30, 2, 2, 2);
        b.step(160, 5, 1, 2, 3);
        b.step(999, 7, 1, 3, 4);
        let build = b.finish(&LifetimeStore::default(), &NoProgress);
        assert_eq!(build.peak, (30, 2, 150));
        let points = build.timeline.points();
        let at = |t: u64| points[Timeline::bucket_of(999, TIMELINE_BUCKETS, t)];
        assert_eq!((at(0).live_bytes, at(0).max_live_bytes), (10, 10));
        assert_eq!((at(150).live_bytes, at(150).max_live_bytes), (30, 30));
        assert_eq!((at(160).live_bytes, at(160).max_live_bytes), (5, 30));
        assert_eq!((at(500).live_bytes, at(500).max_live_bytes), (5, 5));
        assert_eq!(points.last().map(|p| p.live_bytes), Some(7));
    }
}
