//! Compact, columnar storage of allocation lifetimes, in order of allocation time: 28 bytes per
//! block. Alloc times are non-decreasing, so they are kept as their low 32 bits plus the few
//! places where the high bits change (4 bytes); free time (8), address (8), size (4, sizes of
//! 4 GiB and more in a side table) and site (4: the block's stack and thread, interned
//! together) each have a column of their own, so a query touches only the columns it needs.

use crate::hashing::IntMap;
use crate::model::{Block, BlockId, StackId, ThreadIndex};

/// `free_ns` of a block that was never freed.
pub(crate) const OPEN: u64 = u64::MAX;
/// `size32` of a block whose size is in the side table.
const BIG_SIZE: u32 = u32::MAX;

/// The 32-bit size of `size`: itself, or [`BIG_SIZE`] when it needs the side table.
pub(crate) fn size32(size: u64) -> u32 {
    u32::try_from(size).ok().filter(|&s| s != BIG_SIZE).unwrap_or(BIG_SIZE)
}

/// Whether `size32` stands for a size kept in the side table.
pub(crate) fn is_big(size32: u32) -> bool {
    size32 == BIG_SIZE
}

/// Non-decreasing `u64` times, stored as their low 32 bits plus the index at which each new
/// value of the high 32 bits starts (a handful for any real trace: one per 4.3 s).
#[derive(Debug, Default)]
pub(crate) struct SortedTimes {
    low: Vec<u32>,
    last: u64,
    /// `(first index, high bits)` of each run of equal high bits, in order.
    highs: Vec<(u32, u32)>,
}

impl SortedTimes {
    pub fn with_capacity(n: usize) -> Self {
        SortedTimes { low: Vec::with_capacity(n), last: 0, highs: Vec::new() }
    }

    /// Appends `t`, which must not be below the last time (a smaller one is stored as the last).
    #[inline(always)]
    pub fn push(&mut self, t: u64) {
        let t = t.max(self.last);
        if self.low.is_empty() || (t >> 32) != (self.last >> 32) {
            self.highs.push((self.low.len() as u32, (t >> 32) as u32));
        }
        self.last = t;
        self.low.push(t as u32);
    }

    fn high_of(&self, i: usize) -> u64 {
        let run = self.highs.partition_point(|&(first, _)| first as usize <= i);
        run.checked_sub(1).map_or(0, |r| u64::from(self.highs[r].1) << 32)
    }

    /// The `i`-th time; `i` must be below `len()`.
    pub fn get(&self, i: usize) -> u64 {
        self.high_of(i) | u64::from(self.low[i])
    }

    /// How many times are at or below `t`.
    pub fn count_at_or_below(&self, t: u64) -> usize {
        let high = (t >> 32) as u32;
        // Runs wholly below `t`'s high bits are counted whole; only the run with the same high
        // bits is searched.
        let run = self.highs.partition_point(|&(_, h)| h < high);
        let Some(&(start, h)) = self.highs.get(run) else { return self.low.len() };
        if h > high {
            return start as usize;
        }
        let end = self.highs.get(run + 1).map_or(self.low.len(), |&(first, _)| first as usize);
        let start = start as usize;
        start + self.low[start..end].partition_point(|&low| low <= t as u32)
    }

    fn heap_bytes(&self) -> usize {
        self.low.capacity() * 4 + self.highs.capacity() * 8
    }
}

/// Where a block was allocated: its stack and thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Site {
    pub stack: u32,
    pub thread: u32,
}

/// All lifetimes of a trace, sorted by (allocation time, address, free time), plus the tables
/// their compact fields refer to. Block ids are positions in this order.
#[derive(Debug, Default)]
pub(crate) struct LifetimeStore {
    alloc: SortedTimes,
    free: Vec<u64>,
    addr: Vec<u64>,
    size32: Vec<u32>,
    site: Vec<u32>,
    pub sites: Vec<Site>,
    /// Sizes of 4 GiB and more, by block id.
    big_sizes: IntMap<u32, u64>,
    /// Largest stack id of any site (for dense per-stack tables).
    max_stack: u32,
}

impl LifetimeStore {
    /// An empty store with room for `n` blocks.
    pub fn with_capacity(n: usize) -> Self {
        LifetimeStore {
            alloc: SortedTimes::with_capacity(n),
            free: Vec::with_capacity(n),
            addr: Vec::with_capacity(n),
            size32: Vec::with_capacity(n),
            site: Vec::with_capacity(n),
            ..LifetimeStore::default()
        }
    }

    pub fn len(&self) -> usize {
        self.addr.len()
    }

    /// Appends an open block allocated at `alloc_ns` (not before the last block's) and returns
    /// its id.
    #[inline(always)]
    pub fn push(&mut self, alloc_ns: u64, addr: u64, size: u64, site: u32) -> u32 {
        let id = self.addr.len() as u32;
        self.alloc.push(alloc_ns);
        self.free.push(OPEN);
        self.addr.push(addr);
        let s = size32(size);
        if is_big(s) {
            self.big_sizes.insert(id, size);
        }
        self.size32.push(s);
        self.site.push(site);
        id
    }

    /// Sets the free time of block `id`.
    pub fn set_free(&mut self, id: u32, free_ns: u64) {
        if let Some(f) = self.free.get_mut(id as usize) {
            *f = free_ns;
        }
    }

    /// Installs the site table (and notes the largest stack id).
    pub fn set_sites(&mut self, sites: Vec<Site>) {
        self.max_stack = sites.iter().map(|s| s.stack).max().unwrap_or(0);
        self.sites = sites;
    }

    /// Blocks of equal allocation time and address (which only a clock tie can produce) are
    /// ordered by free time; `runs` lists their id ranges.
    pub fn order_ties(&mut self, runs: &[std::ops::Range<u32>]) {
        for run in runs {
            let (from, to) = (run.start as usize, (run.end as usize).min(self.len()));
            if to <= from + 1 {
                continue;
            }
            let mut order: Vec<usize> = (from..to).collect();
            order.sort_by_key(|&i| self.free[i]);
            let free: Vec<u64> = order.iter().map(|&i| self.free[i]).collect();
            let size32: Vec<u32> = order.iter().map(|&i| self.size32[i]).collect();
            let site: Vec<u32> = order.iter().map(|&i| self.site[i]).collect();
            let big: Vec<Option<u64>> = order.iter().map(|&i| self.big_sizes.remove(&(i as u32))).collect();
            self.free[from..to].copy_from_slice(&free);
            self.size32[from..to].copy_from_slice(&size32);
            self.site[from..to].copy_from_slice(&site);
            for (k, b) in big.into_iter().enumerate() {
                if let Some(size) = b {
                    self.big_sizes.insert((from + k) as u32, size);
                }
            }
        }
    }

    pub fn shrink_to_fit(&mut self) {
        self.alloc.low.shrink_to_fit();
        self.free.shrink_to_fit();
        self.addr.shrink_to_fit();
        self.size32.shrink_to_fit();
        self.site.shrink_to_fit();
    }

    pub fn alloc_ns(&self, i: u32) -> u64 {
        self.alloc.get(i as usize)
    }

    /// Free time of block `i` ([`OPEN`] if never freed; also for an id out of range).
    #[inline]
    pub fn free_ns(&self, i: u32) -> u64 {
        self.free.get(i as usize).copied().unwrap_or(OPEN)
    }

    /// The free times column ([`OPEN`] for blocks never freed).
    pub fn free_column(&self) -> &[u64] {
        &self.free
    }

    /// The 32-bit sizes column (see [`LifetimeStore::size_of`] for the real size).
    pub fn size32_column(&self) -> &[u32] {
        &self.size32
    }

    /// The site ids column.
    pub fn site_column(&self) -> &[u32] {
        &self.site
    }

    /// Size of block `i` given its 32-bit size.
    pub fn full_size(&self, i: u32, size32: u32) -> u64 {
        if is_big(size32) {
            self.big_sizes.get(&i).copied().unwrap_or(u64::from(BIG_SIZE))
        } else {
            u64::from(size32)
        }
    }

    pub fn size_of(&self, i: u32) -> u64 {
        self.full_size(i, self.size32[i as usize])
    }

    pub fn site_of(&self, i: u32) -> Site {
        self.site_by_id(self.site[i as usize])
    }

    pub fn site_by_id(&self, site: u32) -> Site {
        self.sites.get(site as usize).copied().unwrap_or(Site { stack: 0, thread: 0 })
    }

    pub fn stack_of(&self, i: u32) -> u32 {
        self.site_of(i).stack
    }

    /// The largest stack id any block refers to.
    pub fn max_stack(&self) -> u32 {
        self.max_stack
    }

    /// The public view of block `index`; `None` if out of range.
    pub fn block(&self, index: u32) -> Option<Block> {
        if index as usize >= self.len() {
            return None;
        }
        let site = self.site_of(index);
        let free = self.free_ns(index);
        Some(Block {
            id: BlockId(index),
            address: self.addr[index as usize],
            size: self.size_of(index),
            alloc_ns: self.alloc_ns(index),
            free_ns: (free != OPEN).then_some(free),
            thread: ThreadIndex(site.thread),
            stack: StackId(site.stack),
        })
    }

    /// Number of blocks allocated at or before `t` (they are the ids `0..n`).
    pub fn allocated_by(&self, t: u64) -> usize {
        self.alloc.count_at_or_below(t)
    }

    /// Bytes held by the store's tables.
    pub fn heap_bytes(&self) -> usize {
        self.alloc.heap_bytes()
            + self.free.capacity() * 8
            + self.addr.capacity() * 8
            + self.size32.capacity() * 4
            + self.site.capacity() * 4
            + self.sites.capacity() * std::mem::size_of::<Site>()
            + self.big_sizes.capacity() * 16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_sizes_live_in_the_side_table() {
        let mut store = LifetimeStore::default();
        let big = 5u64 << 32;
        store.push(10, 0x1000, big, 0);
        store.push(11, 0x2000, 48, 0);
        store.set_sites(vec![Site { stack: 3, thread: 1 }]);
        assert_eq!(store.block(0).map(|b| b.size), Some(big));
        assert_eq!(store.block(1).map(|b| b.size), Some(48));
        assert_eq!(store.block(1).map(|b| b.stack), Some(StackId(3)));
        assert_eq!(store.max_stack(), 3);
        assert_eq!(store.block(2), None);
    }

    #[test]
    fn sorted_times_cross_the_32_bit_boundary() {
        let times = [0u64, 5, (1 << 32) - 1, 1 << 32, (1 << 32) + 7, (1 << 32) + 7, 3 << 32, (3 << 32) + 1];
        let mut s = SortedTimes::default();
        for &t in &times {
            s.push(t);
        }
        for (i, &t) in times.iter().enumerate() {
            assert_eq!(s.get(i), t);
        }
        for probe in [0u64, 4, 5, (1 << 32) - 1, 1 << 32, (1 << 32) + 7, 2 << 32, 3 << 32, u64::MAX] {
            let want = times.iter().filter(|&&t| t <= probe).count();
            assert_eq!(s.count_at_or_below(probe), want, "{probe:#x}");
        }
    }

    #[test]
    fn ties_are_ordered_by_free_time() {
        let mut store = LifetimeStore::default();
        store.push(10, 0x10, 1, 0);
        store.push(10, 0x10, 2, 1);
        store.push(10, 0x10, 3, 2);
        store.set_free(0, 30);
        store.set_free(2, 20);
        let runs = vec![0..3, 3..3];
        store.order_ties(&runs);
        let got: Vec<_> = (0..3).filter_map(|i| store.block(i)).map(|b| (b.size, b.free_ns)).collect();
        assert_eq!(got, vec![(3, Some(20)), (1, Some(30)), (2, None)]);
    }
}
