//! Compact storage of allocation lifetimes: 32 bytes per block (alloc time, free time, address,
//! size, site), with sizes of 4 GiB and more kept in a side table, and the thread and stack of a
//! block interned together as a "site".

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::model::{Block, BlockId, StackId, ThreadIndex};

/// `free_ns` of a block that was never freed.
pub(crate) const OPEN: u64 = u64::MAX;
/// `size32` of a block whose size is in [`LifetimeStore::big_sizes`].
const BIG_SIZE: u32 = u32::MAX;

/// One allocation lifetime. `free_ns` is atomic so frees can be matched from many threads at
/// once without locks.
#[derive(Debug)]
pub(crate) struct Lifetime {
    pub alloc_ns: u64,
    free_ns: AtomicU64,
    pub addr: u64,
    size32: u32,
    pub site: u32,
}

const _: () = assert!(std::mem::size_of::<Lifetime>() == 32);

impl Lifetime {
    pub fn empty() -> Self {
        Lifetime { alloc_ns: 0, free_ns: AtomicU64::new(OPEN), addr: 0, size32: 0, site: 0 }
    }

    /// A new, still open lifetime. Sizes that do not fit 32 bits must be registered with
    /// [`LifetimeStore::record_big_size`] (see [`Lifetime::needs_big_size`]).
    pub fn new(alloc_ns: u64, addr: u64, size: u64, site: u32) -> Self {
        let size32 = u32::try_from(size).ok().filter(|&s| s != BIG_SIZE).unwrap_or(BIG_SIZE);
        Lifetime { alloc_ns, free_ns: AtomicU64::new(OPEN), addr, size32, site }
    }

    pub fn needs_big_size(size: u64) -> bool {
        size >= u64::from(BIG_SIZE)
    }

    pub fn free_ns(&self) -> u64 {
        self.free_ns.load(Ordering::Relaxed)
    }

    /// Sets the free time if the block is still open; false if it was already freed.
    pub fn claim_free(&self, ts: u64) -> bool {
        self.free_ns.compare_exchange(OPEN, ts, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    }

    pub fn is_open(&self) -> bool {
        self.free_ns() == OPEN
    }

    /// Live at `t`: allocated at or before `t` and not freed by `t`.
    #[cfg(test)]
    pub fn is_live_at(&self, t: u64) -> bool {
        self.alloc_ns <= t && self.free_ns() > t
    }
}

/// Where a block was allocated: its stack and thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Site {
    pub stack: u32,
    pub thread: u32,
}

/// All lifetimes of a trace, sorted by allocation time (ties by address), plus the tables their
/// compact fields refer to.
#[derive(Debug, Default)]
pub(crate) struct LifetimeStore {
    pub lifetimes: Vec<Lifetime>,
    pub sites: Vec<Site>,
    /// Sizes of 4 GiB and more, keyed by (alloc time, address), which no sort changes.
    pub big_sizes: HashMap<(u64, u64), u64>,
}

impl LifetimeStore {
    pub fn len(&self) -> usize {
        self.lifetimes.len()
    }

    pub fn size_of(&self, l: &Lifetime) -> u64 {
        if l.size32 == BIG_SIZE {
            self.big_sizes.get(&(l.alloc_ns, l.addr)).copied().unwrap_or(u64::from(BIG_SIZE))
        } else {
            u64::from(l.size32)
        }
    }

    pub fn record_big_size(map: &mut HashMap<(u64, u64), u64>, alloc_ns: u64, addr: u64, size: u64) {
        map.insert((alloc_ns, addr), size);
    }

    pub fn site_of(&self, l: &Lifetime) -> Site {
        self.sites.get(l.site as usize).copied().unwrap_or(Site { stack: 0, thread: 0 })
    }

    pub fn stack_of_index(&self, index: u32) -> u32 {
        self.lifetimes.get(index as usize).map(|l| self.site_of(l).stack).unwrap_or(0)
    }

    pub fn size_of_index(&self, index: u32) -> u64 {
        self.lifetimes.get(index as usize).map(|l| self.size_of(l)).unwrap_or(0)
    }

    /// The public view of block `index`; `None` if out of range.
    pub fn block(&self, index: u32) -> Option<Block> {
        let l = self.lifetimes.get(index as usize)?;
        let site = self.site_of(l);
        let free = l.free_ns();
        Some(Block {
            id: BlockId(index),
            address: l.addr,
            size: self.size_of(l),
            alloc_ns: l.alloc_ns,
            free_ns: (free != OPEN).then_some(free),
            thread: ThreadIndex(site.thread),
            stack: StackId(site.stack),
        })
    }

    /// Number of blocks allocated at or before `t` (they are the ids `0..n`).
    pub fn allocated_by(&self, t: u64) -> usize {
        self.lifetimes.partition_point(|l| l.alloc_ns <= t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_sizes_live_in_the_side_table() {
        let mut store = LifetimeStore::default();
        let big = 5u64 << 32;
        store.lifetimes.push(Lifetime::new(10, 0x1000, big, 0));
        store.lifetimes.push(Lifetime::new(11, 0x2000, 48, 0));
        assert!(Lifetime::needs_big_size(big));
        LifetimeStore::record_big_size(&mut store.big_sizes, 10, 0x1000, big);
        store.sites.push(Site { stack: 3, thread: 1 });
        assert_eq!(store.block(0).map(|b| b.size), Some(big));
        assert_eq!(store.block(1).map(|b| b.size), Some(48));
        assert_eq!(store.block(1).map(|b| b.stack), Some(StackId(3)));
    }

    #[test]
    fn a_block_is_freed_once() {
        let l = Lifetime::new(1, 0x10, 8, 0);
        assert!(l.is_live_at(1));
        assert!(!l.is_live_at(0));
        assert!(l.claim_free(5));
        assert!(!l.claim_free(6));
        assert_eq!(l.free_ns(), 5);
        assert!(l.is_live_at(4));
        assert!(!l.is_live_at(5));
    }
}
