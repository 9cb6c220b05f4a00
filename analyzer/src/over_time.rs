//! What a selection counts over the whole trace, at a chart's resolution: for each of a number
//! of equal slices of the trace, the bytes it counts at the slice's end. Outstanding bytes rise
//! and fall (the live-heap timeline, [`crate::Timeline`], keeps each slice's highest); bytes
//! allocated, or freed in temporary blocks, only grow, so a chart of them is cumulative and its
//! slope is the rate (heaptrack's "allocations" and "temporary allocations" charts, in bytes).

use rayon::prelude::*;

use crate::lifetimes::{LifetimeStore, OPEN};
use crate::selection::{Selection, TemporaryBlocks};
use crate::timeline::Timeline;

/// Blocks each parallel task sums.
const BLOCKS_PER_TASK: u32 = 256 * 1024;

/// Bytes allocated (`temporary` `None`), or in temporary blocks freed (`Some`), by the end of
/// each of `buckets` equal slices of `[0, duration_ns]`.
pub(crate) fn cumulative_bytes(
    store: &LifetimeStore,
    temporary: Option<&TemporaryBlocks>,
    duration_ns: u64,
    buckets: usize,
) -> Vec<u64> {
    cumulative_bytes_in_tasks(store, temporary, duration_ns, buckets, BLOCKS_PER_TASK)
}

/// [`cumulative_bytes`] with `per_task` blocks summed by each parallel task.
fn cumulative_bytes_in_tasks(
    store: &LifetimeStore,
    temporary: Option<&TemporaryBlocks>,
    duration_ns: u64,
    buckets: usize,
    per_task: u32,
) -> Vec<u64> {
    if buckets == 0 {
        return Vec::new();
    }
    // Either selection counts each block from one moment on (`Selection::counted_from`).
    let what = if temporary.is_some() { Selection::Temporary } else { Selection::Allocated };
    let blocks = store.len() as u32;
    let tasks: Vec<std::ops::Range<u32>> =
        (0..blocks.div_ceil(per_task)).map(|k| k * per_task..((k + 1) * per_task).min(blocks)).collect();
    let per_slice = tasks
        .into_par_iter()
        .map(|ids| {
            let mut sums = vec![0u64; buckets];
            store.for_each_in(ids, |id, alloc_ns, free_ns, size| {
                let free_ns = (free_ns != OPEN).then_some(free_ns);
                let is_temporary = temporary.is_some_and(|t| t.contains(id));
                if let Some(from) = what.counted_from(alloc_ns, free_ns, is_temporary) {
                    sums[Timeline::bucket_of(duration_ns, buckets, from)] += size;
                }
            });
            sums
        })
        .reduce(
            || vec![0u64; buckets],
            |mut a, b| {
                a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
                a
            },
        );
    per_slice
        .into_iter()
        .scan(0u64, |total, bytes| {
            *total += bytes;
            Some(*total)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifetimes::Site;

    /// 3,000 blocks of two threads over 12.9 s (so the alloc times' high 32 bits change several
    /// times), most freed a little later, some never.
    fn store() -> (LifetimeStore, u64) {
        let mut store = LifetimeStore::with_capacity(3000);
        let step = 3 * (1u64 << 32) / 3000;
        let mut x = 12345u64;
        let mut frees = Vec::new();
        for i in 0..3000u64 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let alloc = i * step + 1000;
            let id = store.push(alloc, 0x1000 + 16 * i, 1 + (x >> 54), (x & 1) as u32);
            if !x.is_multiple_of(5) {
                frees.push((id, alloc + (x >> 40) % (4 * step)));
            }
        }
        for (id, free) in frees {
            store.set_free(id, free);
        }
        store.set_sites(vec![Site { stack: 0, thread: 0 }, Site { stack: 1, thread: 1 }]);
        (store, 3 * (1u64 << 32) + 5 * step)
    }

    /// What `selection` counts at `t`, block by block.
    fn brute_force(store: &LifetimeStore, temporary: &TemporaryBlocks, selection: Selection, t: u64) -> u64 {
        (0..store.len() as u32)
            .filter_map(|i| {
                let block = store.block(i)?;
                selection
                    .counts(block.alloc_ns, block.free_ns, t, temporary.contains(i))
                    .then_some(block.size)
            })
            .sum()
    }

    #[test]
    fn each_slice_holds_what_the_selection_counts_at_its_end() {
        let (store, duration) = store();
        let temporary = TemporaryBlocks::find(&store);
        assert!(temporary.count() > 100 && temporary.count() < 2400, "{}", temporary.count());
        let slices = 37;
        for (selection, temp) in [(Selection::Allocated, None), (Selection::Temporary, Some(&temporary))] {
            // Tasks of 256 blocks start in the middle of runs of equal high bits.
            let levels = cumulative_bytes_in_tasks(&store, temp, duration, slices, 256);
            assert_eq!(levels, cumulative_bytes(&store, temp, duration, slices));
            assert_eq!(levels.len(), slices);
            for (k, &level) in levels.iter().enumerate() {
                let end = Timeline::bucket_start(duration, slices, k + 1) - 1;
                assert_eq!(level, brute_force(&store, &temporary, selection, end), "{selection:?} slice {k}");
            }
            assert!(levels.windows(2).all(|w| w[0] <= w[1]));
            assert!(levels[slices - 1] > levels[slices / 2] && levels[slices / 2] > 0);
        }
        assert!(cumulative_bytes(&store, None, duration, 0).is_empty());
    }
}
