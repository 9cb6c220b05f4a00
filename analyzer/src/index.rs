//! The time index: checkpoints of the live set, so "outstanding at T" costs work proportional to
//! the events near T (plus the answer's size), not to the whole trace; built in the same walk
//! that computes the timeline and the peak.
//!
//! Blocks are numbered in order of allocation time, so the blocks allocated by T are the ids
//! `0..allocated_by(T)`. A checkpoint at time C stores the ids of blocks live at C, sorted. The
//! blocks live at T ≥ C are then `{i in checkpoint : free(i) > T} ∪ {i in pos(C)..pos(T) :
//! free(i) > T}`: no free-list needs replaying. A new checkpoint is taken once the events since
//! the previous one reach `max(MIN_SPACING, 2 × its live set)`, so a query touches at most about
//! three times the larger of those, and all checkpoints together hold at most about as many ids
//! as the trace has blocks.

use rayon::prelude::*;

use crate::lifetimes::{LifetimeStore, OPEN};
use crate::model::{LiveTotals, Totals};
use crate::progress::{Progress, Stage};
use crate::timeline::{TIMELINE_BUCKETS, Timeline, TimelinePoint};

/// Fewest events between two checkpoints.
pub const MIN_SPACING: u64 = 32 * 1024;

#[derive(Debug)]
struct Checkpoint {
    at_ns: u64,
    /// Blocks `0..alloc_pos` were allocated at or before `at_ns`.
    alloc_pos: u32,
    /// Ids of the blocks live at `at_ns`, sorted.
    live: Box<[u32]>,
}

/// Checkpoints over a [`LifetimeStore`] sorted by allocation time.
#[derive(Debug)]
pub(crate) struct TimeIndex {
    checkpoints: Vec<Checkpoint>,
}

/// What building the index found besides the index itself.
pub(crate) struct IndexBuild {
    pub index: TimeIndex,
    pub timeline: Timeline,
    pub peak: (u64, u64, u64),
}

impl TimeIndex {
    fn checkpoint_for(&self, t: u64) -> &Checkpoint {
        let i = self.checkpoints.partition_point(|c| c.at_ns <= t);
        &self.checkpoints[i.saturating_sub(1)]
    }

    /// Ids of the blocks live at `t`, sorted.
    pub fn live_at(&self, store: &LifetimeStore, t: u64) -> Vec<u32> {
        let cp = self.checkpoint_for(t);
        let end = store.allocated_by(t) as u32;
        let lts = &store.lifetimes;
        let mut out: Vec<u32> = cp.live.iter().copied().filter(|&i| lts[i as usize].free_ns() > t).collect();
        out.extend((cp.alloc_pos..end.max(cp.alloc_pos)).filter(|&i| lts[i as usize].free_ns() > t));
        out
    }

    /// Blocks and bytes live at `t`, without listing them.
    pub fn totals_at(&self, store: &LifetimeStore, t: u64) -> LiveTotals {
        let cp = self.checkpoint_for(t);
        let end = store.allocated_by(t) as u32;
        let mut totals = LiveTotals::default();
        let lts = &store.lifetimes;
        for i in cp.live.iter().copied().chain(cp.alloc_pos..end.max(cp.alloc_pos)) {
            let l = &lts[i as usize];
            if l.free_ns() > t {
                totals.blocks += 1;
                totals.bytes += store.size_of(l);
            }
        }
        totals
    }

    /// Ids held by all checkpoints (for memory accounting).
    pub fn stored_ids(&self) -> usize {
        self.checkpoints.iter().map(|c| c.live.len()).sum()
    }

    /// Builds the index, the timeline and the peak of `store` (sorted by allocation time) over
    /// `[0, duration_ns]`.
    pub fn build(store: &LifetimeStore, duration_ns: u64, progress: &dyn Progress) -> IndexBuild {
        let lts = &store.lifetimes;
        let mut frees: Vec<u32> =
            (0..lts.len() as u32).into_par_iter().filter(|&i| lts[i as usize].free_ns() != OPEN).collect();
        frees.par_sort_unstable_by_key(|&i| (lts[i as usize].free_ns(), i));
        let total_events = (lts.len() + frees.len()) as u64;
        progress.start(Stage::Indexing, total_events);

        let buckets = TIMELINE_BUCKETS;
        let mut points: Vec<Option<TimelinePoint>> = vec![None; buckets];
        let mut checkpoints = vec![Checkpoint { at_ns: 0, alloc_pos: 0, live: Box::new([]) }];
        let (mut a, mut f) = (0usize, 0usize);
        let (mut bytes, mut blocks) = (0u64, 0u64);
        let mut peak = (0u64, 0u64, 0u64);
        let mut since_checkpoint = 0u64;
        let mut since_progress = 0u64;
        while a < lts.len() || f < frees.len() {
            let next_alloc = lts.get(a).map_or(u64::MAX, |l| l.alloc_ns);
            let next_free = frees.get(f).map_or(u64::MAX, |&i| lts[i as usize].free_ns());
            let t = next_alloc.min(next_free);
            let before = (a, f);
            while a < lts.len() && lts[a].alloc_ns == t {
                bytes += store.size_of(&lts[a]);
                blocks += 1;
                a += 1;
            }
            while f < frees.len() && lts[frees[f] as usize].free_ns() == t {
                bytes = bytes.saturating_sub(store.size_of(&lts[frees[f] as usize]));
                blocks = blocks.saturating_sub(1);
                f += 1;
            }
            if bytes > peak.0 {
                peak = (bytes, blocks, t);
            }
            let k = Timeline::bucket_of(duration_ns, buckets, t);
            let p = points[k].get_or_insert(TimelinePoint { max_live_bytes: 0, ..Default::default() });
            p.live_bytes = bytes;
            p.live_blocks = blocks;
            p.max_live_bytes = p.max_live_bytes.max(bytes);
            let stepped = ((a - before.0) + (f - before.1)) as u64;
            since_checkpoint += stepped;
            since_progress += stepped;
            if since_progress >= 1 << 20 {
                progress.advance(since_progress);
                since_progress = 0;
            }
            let last = checkpoints.last().map_or(0, |c: &Checkpoint| c.live.len() as u64);
            if since_checkpoint >= MIN_SPACING.max(2 * last) {
                let prev = &checkpoints[checkpoints.len() - 1];
                let live: Vec<u32> = prev
                    .live
                    .iter()
                    .copied()
                    .chain(prev.alloc_pos..a as u32)
                    .filter(|&i| lts[i as usize].free_ns() > t)
                    .collect();
                checkpoints.push(Checkpoint { at_ns: t, alloc_pos: a as u32, live: live.into_boxed_slice() });
                since_checkpoint = 0;
            }
        }
        progress.advance(since_progress);
        progress.finish(Stage::Indexing);

        let mut carried = TimelinePoint::default();
        let points = points
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
            peak,
        }
    }
}

/// Fills the peak fields of `totals` from an index build.
pub(crate) fn apply_peak(totals: &mut Totals, peak: (u64, u64, u64)) {
    totals.peak_bytes = peak.0;
    totals.peak_blocks = peak.1;
    totals.peak_at_ns = peak.2;
}
