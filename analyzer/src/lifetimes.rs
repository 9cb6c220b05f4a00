//! Compact storage of allocation lifetimes, in order of allocation time: 28 bytes per block.
//! Alloc times are non-decreasing, so they are kept as their low 32 bits plus the few places
//! where the high bits change. Everything a time query and a grouping read about a block —
//! free time (its two halves), alloc time (low bits), size (4 bytes; sizes of 4 GiB and more
//! in a side table) and site (the block's stack and thread, interned together) — shares one
//! 20-byte entry, so "is it live at T, and what is it" costs one memory access per block, not
//! one per column. The address (8) has a column of its own.

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

/// The fields of a block read together.
#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    alloc_low: u32,
    size32: u32,
    site: u32,
    /// Free time ([`OPEN`] if never freed), low and high halves.
    free_low: u32,
    free_high: u32,
}

impl Entry {
    #[inline(always)]
    fn free_ns(&self) -> u64 {
        (u64::from(self.free_high) << 32) | u64::from(self.free_low)
    }
}

/// A block live at some moment, with the fields a grouping reads (16 bytes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LiveBlock {
    pub id: u32,
    pub alloc_low: u32,
    pub size32: u32,
    pub site: u32,
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
    entries: Vec<Entry>,
    /// `(first id, high 32 bits)` of each run of equal high bits of the alloc times, in order.
    alloc_highs: Vec<(u32, u32)>,
    last_alloc: u64,
    addr: Vec<u64>,
    pub sites: Vec<Site>,
    /// Sizes of 4 GiB and more, by block id.
    big_sizes: IntMap<u32, u64>,
    /// Largest stack id of any site (for dense per-stack tables).
    max_stack: u32,
}

impl LifetimeStore {
    /// An empty store with room for `n` blocks (address space only until filled).
    pub fn with_capacity(n: usize) -> Self {
        LifetimeStore {
            entries: Vec::with_capacity(n),
            addr: Vec::with_capacity(n),
            ..LifetimeStore::default()
        }
    }

    pub fn len(&self) -> usize {
        self.addr.len()
    }

    /// Appends an open block allocated at `alloc_ns` (not before the last block's; an earlier
    /// time is stored as the last one) and returns its id.
    #[inline(always)]
    pub fn push(&mut self, alloc_ns: u64, addr: u64, size: u64, site: u32) -> u32 {
        let id = self.addr.len() as u32;
        let t = alloc_ns.max(self.last_alloc);
        if id == 0 || (t >> 32) != (self.last_alloc >> 32) {
            self.alloc_highs.push((id, (t >> 32) as u32));
        }
        self.last_alloc = t;
        let s = size32(size);
        if is_big(s) {
            self.big_sizes.insert(id, size);
        }
        self.entries.push(Entry {
            alloc_low: t as u32,
            size32: s,
            site,
            free_low: OPEN as u32,
            free_high: (OPEN >> 32) as u32,
        });
        self.addr.push(addr);
        id
    }

    /// Sets the free time of block `id`.
    #[inline]
    pub fn set_free(&mut self, id: u32, free_ns: u64) {
        if let Some(e) = self.entries.get_mut(id as usize) {
            e.free_low = free_ns as u32;
            e.free_high = (free_ns >> 32) as u32;
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
            order.sort_by_key(|&i| self.entries[i].free_ns());
            let entries: Vec<Entry> = order.iter().map(|&i| self.entries[i]).collect();
            let big: Vec<Option<u64>> = order.iter().map(|&i| self.big_sizes.remove(&(i as u32))).collect();
            self.entries[from..to].copy_from_slice(&entries);
            for (k, b) in big.into_iter().enumerate() {
                if let Some(size) = b {
                    self.big_sizes.insert((from + k) as u32, size);
                }
            }
        }
    }

    pub fn shrink_to_fit(&mut self) {
        self.entries.shrink_to_fit();
        self.addr.shrink_to_fit();
    }

    /// High bits of the alloc time of block `i`.
    #[inline]
    fn alloc_high(&self, i: usize) -> u64 {
        let run = self.alloc_highs.partition_point(|&(first, _)| first as usize <= i);
        run.checked_sub(1).map_or(0, |r| u64::from(self.alloc_highs[r].1) << 32)
    }

    /// The alloc time of block `i` whose low 32 bits are `low` (from a [`LiveBlock`]).
    #[inline]
    pub fn alloc_ns_from_low(&self, i: u32, low: u32) -> u64 {
        self.alloc_high(i as usize) | u64::from(low)
    }

    /// Free time of block `i` ([`OPEN`] if never freed; also for an id out of range).
    #[inline]
    pub fn free_ns(&self, i: u32) -> u64 {
        self.entries.get(i as usize).map_or(OPEN, Entry::free_ns)
    }

    /// Whether block `i` (allocated at or before `t`) is still live at `t`.
    #[inline]
    pub fn is_live_at(&self, i: u32, t: u64) -> bool {
        self.entries.get(i as usize).is_some_and(|e| e.free_ns() > t)
    }

    /// Block `i` with its fields if it (allocated at or before `t`) is still live at `t`: one
    /// read of its entry.
    #[inline]
    pub fn live_block(&self, i: u32, t: u64) -> Option<LiveBlock> {
        let e = self.entries.get(i as usize)?;
        (e.free_ns() > t).then_some(LiveBlock {
            id: i,
            alloc_low: e.alloc_low,
            size32: e.size32,
            site: e.site,
        })
    }

    /// Block `i` with its fields, live or not: one read of its entry.
    #[inline]
    pub fn any_block(&self, i: u32) -> Option<LiveBlock> {
        let e = self.entries.get(i as usize)?;
        Some(LiveBlock { id: i, alloc_low: e.alloc_low, size32: e.size32, site: e.site })
    }

    /// Size of block `i` given its 32-bit size.
    #[inline]
    pub fn full_size(&self, i: u32, size32: u32) -> u64 {
        if is_big(size32) {
            self.big_sizes.get(&i).copied().unwrap_or(u64::from(BIG_SIZE))
        } else {
            u64::from(size32)
        }
    }

    /// The address of block `i` (0 for an id out of range).
    #[inline]
    pub fn address(&self, i: u32) -> u64 {
        self.addr.get(i as usize).copied().unwrap_or(0)
    }

    /// (address, size) of block `i` ((0, 0) for an id out of range).
    #[inline]
    pub fn extent(&self, i: u32) -> (u64, u64) {
        match self.entries.get(i as usize) {
            Some(e) => (self.address(i), self.full_size(i, e.size32)),
            None => (0, 0),
        }
    }

    /// (alloc time, size, site) of block `i`, read together.
    #[inline]
    pub fn fields(&self, i: u32) -> (u64, u64, Site) {
        match self.entries.get(i as usize) {
            Some(e) => (
                self.alloc_high(i as usize) | u64::from(e.alloc_low),
                self.full_size(i, e.size32),
                self.site_by_id(e.site),
            ),
            None => (0, 0, Site { stack: 0, thread: 0 }),
        }
    }

    /// Calls `visit(id, alloc time, free time ([`OPEN`] if never freed), size)` for each block of
    /// `ids` in id order, reading the high bits of the alloc times run by run rather than block
    /// by block.
    pub fn for_each_in(&self, ids: std::ops::Range<u32>, mut visit: impl FnMut(u32, u64, u64, u64)) {
        let end = (ids.end as usize).min(self.entries.len());
        let mut i = ids.start as usize;
        let mut run = self.alloc_highs.partition_point(|&(first, _)| first as usize <= i);
        while i < end {
            let high = run.checked_sub(1).map_or(0, |r| u64::from(self.alloc_highs[r].1) << 32);
            // The next run starts after `i` (the search above and each step keep it so).
            let run_end = self.alloc_highs.get(run).map_or(end, |&(first, _)| (first as usize).min(end));
            for (k, e) in self.entries[i..run_end].iter().enumerate() {
                let id = (i + k) as u32;
                visit(id, high | u64::from(e.alloc_low), e.free_ns(), self.full_size(id, e.size32));
            }
            i = run_end;
            run += 1;
        }
    }

    /// (alloc time, free time ([`OPEN`] if never freed), site id) of block `i`, read together.
    #[inline]
    pub fn times_and_site(&self, i: u32) -> (u64, u64, u32) {
        match self.entries.get(i as usize) {
            Some(e) => (self.alloc_high(i as usize) | u64::from(e.alloc_low), e.free_ns(), e.site),
            None => (0, OPEN, u32::MAX),
        }
    }

    #[inline]
    pub fn site_by_id(&self, site: u32) -> Site {
        self.sites.get(site as usize).copied().unwrap_or(Site { stack: 0, thread: 0 })
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
        let (alloc_ns, size, site) = self.fields(index);
        let free = self.free_ns(index);
        Some(Block {
            id: BlockId(index),
            address: self.addr[index as usize],
            size,
            alloc_ns,
            free_ns: (free != OPEN).then_some(free),
            thread: ThreadIndex(site.thread),
            stack: StackId(site.stack),
        })
    }

    /// Number of blocks allocated at or before `t` (they are the ids `0..n`).
    pub fn allocated_by(&self, t: u64) -> usize {
        let high = (t >> 32) as u32;
        // Runs wholly below `t`'s high bits count whole; only the run with the same high bits is
        // searched.
        let run = self.alloc_highs.partition_point(|&(_, h)| h < high);
        let Some(&(start, h)) = self.alloc_highs.get(run) else { return self.len() };
        if h > high {
            return start as usize;
        }
        let end = self.alloc_highs.get(run + 1).map_or(self.entries.len(), |&(first, _)| first as usize);
        let start = start as usize;
        start + self.entries[start..end].partition_point(|e| e.alloc_low <= t as u32)
    }

    /// Bytes held by the store's tables.
    pub fn heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Entry>()
            + self.alloc_highs.capacity() * 8
            + self.addr.capacity() * 8
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
    fn alloc_times_cross_the_32_bit_boundary() {
        let times = [0u64, 5, (1 << 32) - 1, 1 << 32, (1 << 32) + 7, (1 << 32) + 7, 3 << 32, (3 << 32) + 1];
        let mut s = LifetimeStore::default();
        for (k, &t) in times.iter().enumerate() {
            s.push(t, 0x10 * k as u64, 8, 0);
        }
        for (i, &t) in times.iter().enumerate() {
            assert_eq!(s.block(i as u32).map(|b| b.alloc_ns), Some(t));
        }
        for probe in [0u64, 4, 5, (1 << 32) - 1, 1 << 32, (1 << 32) + 7, 2 << 32, 3 << 32, u64::MAX] {
            let want = times.iter().filter(|&&t| t <= probe).count();
            assert_eq!(s.allocated_by(probe), want, "{probe:#x}");
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
        assert_eq!(store.free_ns(1), OPEN);
        assert!(store.is_live_at(1, u64::MAX - 1) && !store.is_live_at(0, 30) && store.is_live_at(0, 29));
        let runs = vec![0..3, 3..3];
        store.order_ties(&runs);
        let got: Vec<_> = (0..3).filter_map(|i| store.block(i)).map(|b| (b.size, b.free_ns)).collect();
        assert_eq!(got, vec![(3, Some(20)), (1, Some(30)), (2, None)]);
    }
}
