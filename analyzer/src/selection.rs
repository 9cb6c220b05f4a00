//! Which blocks a report counts: those outstanding at a moment (the default), every block
//! allocated up to it whether freed or not (where a program allocates most: heaptrack's "most
//! calls to allocation functions"), or the temporary ones among those — blocks freed before
//! their thread allocated anything else (heaptrack's "temporary allocations", judged per thread).

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
}

/// The temporary blocks of a trace, one bit per block id: a block is temporary when it was
/// freed no later than its thread's next allocation (a realloc counts as one), or freed at all
/// when its thread allocated nothing after it.
#[derive(Debug)]
pub(crate) struct TemporaryBlocks {
    bits: Vec<u64>,
}

impl TemporaryBlocks {
    /// Finds them in one pass over the store, latest block first.
    pub fn find(store: &LifetimeStore) -> Self {
        let n = store.len();
        let mut bits = vec![0u64; n.div_ceil(64)];
        // Each thread's earliest allocation after the block at hand (OPEN: none).
        let mut next_alloc: Vec<u64> = Vec::new();
        for i in (0..n as u32).rev() {
            let (alloc_ns, free_ns, site) = store.times_and_site(i);
            let thread = store.site_by_id(site).thread as usize;
            if next_alloc.len() <= thread {
                next_alloc.resize(thread + 1, OPEN);
            }
            if free_ns != OPEN && free_ns <= next_alloc[thread] {
                bits[i as usize / 64] |= 1 << (i % 64);
            }
            next_alloc[thread] = alloc_ns;
        }
        TemporaryBlocks { bits }
    }

    pub fn contains(&self, id: u32) -> bool {
        self.bits.get(id as usize / 64).is_some_and(|w| w & (1 << (id % 64)) != 0)
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
        (0..s.len() as u32).filter(|&i| found.contains(i)).collect()
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
