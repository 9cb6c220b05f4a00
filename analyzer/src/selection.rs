//! Which blocks a report counts: those outstanding at a moment (the default), every block
//! allocated up to it whether freed or not (where a program allocates most: heaptrack's "most
//! calls to allocation functions"), or the temporary ones among those — blocks freed before
//! their thread allocated anything else (memray's temporary allocations with its default
//! threshold; heaptrack counts frees by the size and stack of the last allocation instead).

use std::ops::Range;

use rayon::prelude::*;

use crate::lifetimes::{LifetimeStore, LiveBlock, OPEN};

/// Id ranges at least this long are scanned in parallel.
const PARALLEL_IDS: usize = 64 * 1024;

/// Which blocks a report counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Selection {
    /// Allocated at or before the moment and not freed by it.
    #[default]
    Outstanding,
    /// Allocated at or before the moment, freed or not.
    Allocated,
    /// Allocated at or before the moment and freed by it, before their thread's next
    /// allocation.
    Temporary,
}

impl Selection {
    pub fn name(self) -> &'static str {
        match self {
            Selection::Outstanding => "outstanding",
            Selection::Allocated => "allocated",
            Selection::Temporary => "temporary",
        }
    }

    /// Whether this selection counts at `t` a block allocated at `alloc_ns` and freed at
    /// `free_ns` (`None`: never); `temporary` says whether the block is temporary (see
    /// [`TemporaryBlocks`]), which only [`Selection::Temporary`] asks.
    #[inline]
    pub fn counts(self, alloc_ns: u64, free_ns: Option<u64>, t: u64, temporary: bool) -> bool {
        let from = self.counted_from(alloc_ns, free_ns, temporary);
        let until = if self == Selection::Outstanding { free_ns } else { None };
        from.is_some_and(|from| from <= t) && until.is_none_or(|f| f > t)
    }

    /// From which moment on this selection counts such a block (`None`: never): its allocation
    /// (outstanding and allocated blocks), or its free (temporary ones; freed at or after its
    /// allocation, so freed by `t` means allocated by it too). Allocated and temporary blocks are
    /// counted from then on; an outstanding one until its free.
    #[inline]
    pub fn counted_from(self, alloc_ns: u64, free_ns: Option<u64>, temporary: bool) -> Option<u64> {
        match self {
            Selection::Outstanding | Selection::Allocated => Some(alloc_ns),
            Selection::Temporary => free_ns.filter(|_| temporary),
        }
    }
}

/// The temporary blocks of a trace, one bit per block id: a block is temporary when it was
/// freed no later than its thread's next allocation (a realloc counts as one), or freed at all
/// when its thread allocated nothing after it.
#[derive(Debug)]
pub(crate) struct TemporaryBlocks {
    bits: Vec<u64>,
}

impl TemporaryBlocks {
    /// Finds them: runs of blocks in parallel, each from its latest block back, then the last
    /// block of each thread in each run against that thread's first allocation in the later
    /// runs, from the last run back.
    pub fn find(store: &LifetimeStore) -> Self {
        Self::find_in_runs(store, RUN_IDS)
    }

    /// [`TemporaryBlocks::find`] with runs of `run_ids` blocks (a multiple of 64).
    fn find_in_runs(store: &LifetimeStore, run_ids: usize) -> Self {
        let n = store.len();
        let threads = store.sites.iter().map(|s| s.thread as usize + 1).max().unwrap_or(0);
        let runs: Vec<Range<u32>> = (0..n.div_ceil(run_ids))
            .map(|k| (k * run_ids) as u32..(((k + 1) * run_ids).min(n)) as u32)
            .collect();
        let found: Vec<RunFindings> =
            runs.into_par_iter().map(|run| RunFindings::of(store, run, threads)).collect();
        let mut bits: Vec<u64> = Vec::with_capacity(n.div_ceil(64));
        for run in &found {
            bits.extend_from_slice(&run.bits);
        }
        // Each thread's earliest allocation in the runs after the one at hand (none: OPEN).
        let mut next_alloc = vec![OPEN; threads];
        for run in found.iter().rev() {
            for &(id, thread, free_ns) in &run.last_of_thread {
                if free_ns <= next_alloc[thread as usize] {
                    bits[id as usize / 64] |= 1 << (id % 64);
                }
            }
            for &(thread, alloc_ns) in &run.first_alloc {
                next_alloc[thread as usize] = alloc_ns;
            }
        }
        TemporaryBlocks { bits }
    }

    /// How many blocks are temporary.
    pub fn count(&self) -> u64 {
        self.bits.iter().map(|w| u64::from(w.count_ones())).sum()
    }

    pub fn contains(&self, id: u32) -> bool {
        self.bits.get(id as usize / 64).is_some_and(|w| w & (1 << (id % 64)) != 0)
    }
}

/// Blocks per run of [`TemporaryBlocks::find`] (a multiple of 64, so runs own whole words).
const RUN_IDS: usize = 64 * 1024;

/// What one run of blocks tells about temporary blocks on its own.
struct RunFindings {
    /// The run's words of the bit set: blocks freed no later than their thread's next
    /// allocation in the run.
    bits: Vec<u64>,
    /// (id, thread, free time) of each thread's last block in the run, if freed: temporary if
    /// freed no later than the thread's next allocation after the run.
    last_of_thread: Vec<(u32, u32, u64)>,
    /// (thread, time) of each thread's first allocation in the run.
    first_alloc: Vec<(u32, u64)>,
}

impl RunFindings {
    /// The findings of `run`; thread indexes are below `threads`.
    fn of(store: &LifetimeStore, run: Range<u32>, threads: usize) -> Self {
        let mut bits = vec![0u64; run.len().div_ceil(64)];
        // Each thread's earliest allocation in the run after the block at hand (none: OPEN).
        let mut next_alloc = vec![OPEN; threads];
        let mut first_alloc = Vec::new();
        let mut last_of_thread = Vec::new();
        for i in run.clone().rev() {
            let (alloc_ns, free_ns, site) = store.times_and_site(i);
            let thread = store.site_by_id(site).thread;
            let Some(next) = next_alloc.get_mut(thread as usize) else { continue };
            if *next == OPEN {
                first_alloc.push(thread);
                if free_ns != OPEN {
                    last_of_thread.push((i, thread, free_ns));
                }
            } else if free_ns != OPEN && free_ns <= *next {
                let k = (i - run.start) as usize;
                bits[k / 64] |= 1 << (k % 64);
            }
            *next = alloc_ns;
        }
        let first_alloc = first_alloc.into_iter().map(|t| (t, next_alloc[t as usize])).collect();
        RunFindings { bits, last_of_thread, first_alloc }
    }
}

/// The blocks of `ids` (all allocated at or before `t`), or with `temporary` only those of them
/// that are temporary and freed by `t`, in id order.
pub(crate) fn allocated_blocks(
    store: &LifetimeStore,
    ids: Range<u32>,
    t: u64,
    temporary: Option<&TemporaryBlocks>,
) -> Vec<LiveBlock> {
    let pick = |i: u32| {
        if let Some(temporary) = temporary
            && !(temporary.contains(i) && store.free_ns(i) <= t)
        {
            return None;
        }
        store.any_block(i)
    };
    if ids.len() < PARALLEL_IDS {
        ids.filter_map(pick).collect()
    } else {
        ids.into_par_iter().filter_map(pick).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifetimes::Site;

    /// A store of `(alloc_ns, free_ns or OPEN, thread)` blocks, one site per thread.
    fn store(blocks: &[(u64, u64, u32)]) -> LifetimeStore {
        let mut s = LifetimeStore::default();
        for (k, &(alloc, free, thread)) in blocks.iter().enumerate() {
            let id = s.push(alloc, 0x1000 + 16 * k as u64, 8 + k as u64, thread);
            if free != OPEN {
                s.set_free(id, free);
            }
        }
        let threads = blocks.iter().map(|b| b.2).max().map_or(0, |m| m + 1);
        s.set_sites((0..threads).map(|thread| Site { stack: 1, thread }).collect());
        s
    }

    fn temporary_ids(s: &LifetimeStore) -> Vec<u32> {
        let found = TemporaryBlocks::find(s);
        let ids: Vec<u32> = (0..s.len() as u32).filter(|&i| found.contains(i)).collect();
        assert_eq!(found.count(), ids.len() as u64);
        ids
    }

    #[test]
    fn each_selection_counts_a_block_by_its_own_rule() {
        let (alloc, free) = (10, Some(20));
        let at = |what: Selection, t, temporary| what.counts(alloc, free, t, temporary);
        assert!(!at(Selection::Outstanding, 9, false) && at(Selection::Outstanding, 10, false));
        assert!(at(Selection::Outstanding, 19, false) && !at(Selection::Outstanding, 20, false));
        assert!(Selection::Outstanding.counts(alloc, None, u64::MAX, false), "never freed");
        assert!(!at(Selection::Allocated, 9, false) && at(Selection::Allocated, 10, false));
        assert!(at(Selection::Allocated, 1_000, false), "freed or not");
        assert!(
            !at(Selection::Temporary, 19, true) && at(Selection::Temporary, 20, true),
            "from its free on"
        );
        assert!(!at(Selection::Temporary, 1_000, false), "only a temporary block");
        assert!(!Selection::Temporary.counts(alloc, None, 1_000, true), "a block never freed is not");
        assert_eq!(Selection::Allocated.counted_from(alloc, free, false), Some(10));
        assert_eq!(Selection::Temporary.counted_from(alloc, free, true), Some(20));
        assert_eq!(Selection::Temporary.counted_from(alloc, free, false), None);
    }

    #[test]
    fn a_block_freed_before_its_threads_next_allocation_is_temporary() {
        let s = store(&[
            (10, 15, 0),   // 0: freed before thread 0 allocates again at 20: temporary
            (20, 35, 0),   // 1: thread 0 allocates again at 30 before freeing it: not
            (30, 31, 0),   // 2: temporary
            (32, 50, 1),   // 3: thread 1's only block, freed: temporary
            (40, OPEN, 0), // 4: never freed: not
            (45, 45, 0),   // 5: freed at its thread's next allocation's time: temporary
            (45, 46, 0),   // 6: thread 0's last block, freed: temporary
        ]);
        assert_eq!(temporary_ids(&s), vec![0, 2, 3, 5, 6]);
    }

    /// The definition, one block at a time from the latest back.
    fn temporary_one_by_one(s: &LifetimeStore) -> Vec<u32> {
        let mut next_alloc: Vec<u64> = Vec::new();
        let mut ids = Vec::new();
        for i in (0..s.len() as u32).rev() {
            let (alloc_ns, free_ns, site) = s.times_and_site(i);
            let thread = s.site_by_id(site).thread as usize;
            if next_alloc.len() <= thread {
                next_alloc.resize(thread + 1, OPEN);
            }
            if free_ns != OPEN && free_ns <= next_alloc[thread] {
                ids.push(i);
            }
            next_alloc[thread] = alloc_ns;
        }
        ids.reverse();
        ids
    }

    #[test]
    fn runs_found_in_parallel_agree_with_the_definition() {
        // 1,000 blocks on 5 threads with pseudo-random lifetimes (some never freed), so that
        // threads' last blocks of a run are decided by later runs, some several runs later.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let blocks: Vec<(u64, u64, u32)> = (0..1000u64)
            .map(|k| {
                let r = next();
                let thread = if k % 97 < 3 { 4 } else { (r % 4) as u32 };
                let free = if r % 11 == 0 { OPEN } else { k * 10 + 1 + (r >> 8) % 200 };
                (k * 10, free, thread)
            })
            .collect();
        let s = store(&blocks);
        let want = temporary_one_by_one(&s);
        assert!(want.len() > 100 && want.len() < 900, "{}", want.len());
        for run_ids in [64, 128, 64 * 1024] {
            let found = TemporaryBlocks::find_in_runs(&s, run_ids);
            let got: Vec<u32> = (0..s.len() as u32).filter(|&i| found.contains(i)).collect();
            assert_eq!(got, want, "runs of {run_ids}");
            assert_eq!(found.count(), want.len() as u64);
        }
    }

    #[test]
    fn other_threads_allocations_do_not_matter() {
        // Thread 1 allocates between thread 0's allocation and its free.
        let s = store(&[(10, 30, 0), (20, OPEN, 1), (40, OPEN, 0)]);
        assert_eq!(temporary_ids(&s), vec![0]);
    }

    #[test]
    fn allocated_blocks_are_all_of_the_range_and_temporary_ones_freed_by_the_moment() {
        let s = store(&[(10, 15, 0), (20, 35, 0), (30, 31, 0), (40, OPEN, 0), (50, 60, 0)]);
        let ids = |blocks: Vec<LiveBlock>| blocks.iter().map(|b| b.id).collect::<Vec<_>>();
        assert_eq!(ids(allocated_blocks(&s, 0..4, 40, None)), vec![0, 1, 2, 3]);
        assert_eq!(ids(allocated_blocks(&s, 1..3, 40, None)), vec![1, 2]);
        let temporary = TemporaryBlocks::find(&s);
        assert_eq!(ids(allocated_blocks(&s, 0..5, 60, Some(&temporary))), vec![0, 2, 4]);
        // At 55, block 4 is not freed yet.
        assert_eq!(ids(allocated_blocks(&s, 0..5, 55, Some(&temporary))), vec![0, 2]);
        // Sizes and sites come along.
        let first = allocated_blocks(&s, 3..4, 40, None);
        assert_eq!((first[0].size32, first[0].site), (11, 0));
    }
}
