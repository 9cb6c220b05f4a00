//! The registry of tracked blocks: every outstanding tracked allocation, keyed by address, with
//! the registry ("owner") it belongs to — the process-wide one or a scope's.
//!
//! Sharded open-addressing hash tables (linear probing, backward-shift deletion), each behind a
//! spin lock, in anonymous mappings: the registry's memory never comes from the program's
//! allocator, so tracking cannot recurse into itself, and no shard lock is ever held while
//! allocating. A free looks at the shard's length first without locking: a block tracked by
//! another thread reached this one through some synchronisation, which also published its
//! record.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::mem::{Region, SpinLock};
use super::platform::StackRef;

/// The process-wide registry's first owner id; scopes, and the process-wide registry after each
/// reset, get ids from 1 up.
pub(crate) const GLOBAL_OWNER: u32 = 0;

/// The block was written to the trace being recorded (its free must be written too).
pub(crate) const FLAG_IN_TRACE: u32 = 1;

/// One tracked block. `address == 0` marks an empty slot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Record {
    pub address: usize,
    pub size: usize,
    pub align: usize,
    pub thread: u64,
    pub timestamp: u64,
    pub owner: u32,
    pub flags: u32,
    pub stack: StackRef,
}

const SHARD_BITS: u32 = 6;
const SHARDS: usize = 1 << SHARD_BITS;
const INITIAL_SLOTS: usize = 256;

#[inline]
fn hash(address: usize) -> u64 {
    (address as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

#[inline]
fn shard_of(address: usize) -> usize {
    (hash(address) >> (64 - SHARD_BITS)) as usize
}

struct Table {
    region: Option<Region>,
    mask: usize,
}

impl Table {
    const EMPTY: Table = Table { region: None, mask: 0 };

    fn with_capacity(slots: usize) -> Option<Table> {
        let region = Region::new(slots.checked_mul(std::mem::size_of::<Record>())?)?;
        Some(Table { region: Some(region), mask: slots - 1 })
    }

    fn slots(&self) -> &[Record] {
        match &self.region {
            // SAFETY: the region holds `mask + 1` records (zeroed = empty), page-aligned.
            Some(region) => unsafe {
                std::slice::from_raw_parts(region.as_ptr().cast::<Record>(), self.mask + 1)
            },
            None => &[],
        }
    }

    fn slots_mut(&mut self) -> &mut [Record] {
        match &self.region {
            // SAFETY: as in `slots`; `&mut self` makes this the only reference.
            Some(region) => unsafe {
                std::slice::from_raw_parts_mut(region.as_ptr().cast::<Record>(), self.mask + 1)
            },
            None => &mut [],
        }
    }

    #[inline]
    fn home(&self, address: usize) -> usize {
        (hash(address) as usize) & self.mask
    }

    fn find(&self, address: usize) -> Option<usize> {
        let slots = self.slots();
        if slots.is_empty() {
            return None;
        }
        let mut i = self.home(address);
        loop {
            match slots[i].address {
                0 => return None,
                a if a == address => return Some(i),
                _ => i = (i + 1) & self.mask,
            }
        }
    }

    /// Puts `record` in (replacing one with the same address); the table must have a free slot.
    /// Returns whether it was new.
    fn put(&mut self, record: Record) -> bool {
        let mut i = self.home(record.address);
        let mask = self.mask;
        let slots = self.slots_mut();
        loop {
            match slots[i].address {
                0 => {
                    slots[i] = record;
                    return true;
                }
                a if a == record.address => {
                    slots[i] = record;
                    return false;
                }
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// Removes slot `i`, shifting later members of its probe run back.
    fn take(&mut self, mut i: usize) -> Record {
        let mask = self.mask;
        let removed = self.slots()[i];
        let mut j = i;
        loop {
            j = (j + 1) & mask;
            let candidate = self.slots()[j];
            if candidate.address == 0 {
                break;
            }
            let home = self.home(candidate.address);
            // Move the candidate back to `i` unless its home lies cyclically in (i, j].
            let stays = if i <= j { i < home && home <= j } else { i < home || home <= j };
            if !stays {
                self.slots_mut()[i] = candidate;
                i = j;
            }
        }
        self.slots_mut()[i] = Record::default();
        removed
    }
}

struct Shard {
    lock: SpinLock,
    /// Records in the table; read without the lock as a hint (see the module docs).
    len: AtomicUsize,
    table: UnsafeCell<Table>,
}

impl Shard {
    const fn new() -> Shard {
        Shard { lock: SpinLock::new(), len: AtomicUsize::new(0), table: UnsafeCell::new(Table::EMPTY) }
    }
}

/// The registry: all tracked blocks of the process.
pub(crate) struct Registry {
    shards: [Shard; SHARDS],
}

// SAFETY: every table is only touched with its shard's lock held.
unsafe impl Sync for Registry {}

pub(crate) static REGISTRY: Registry = Registry::new();

impl Registry {
    pub(crate) const fn new() -> Registry {
        Registry { shards: [const { Shard::new() }; SHARDS] }
    }

    /// Whether a block at `address` might be tracked (cheap, lock-free).
    #[inline]
    pub(crate) fn may_hold(&self, address: usize) -> bool {
        self.shards[shard_of(address)].len.load(Ordering::Relaxed) != 0
    }

    /// Adds or replaces the record for `record.address`. Returns false if the registry could
    /// not get memory for it (the block is then not tracked).
    pub(crate) fn insert(&self, record: Record) -> bool {
        debug_assert!(record.address != 0);
        let shard = &self.shards[shard_of(record.address)];
        let _held = shard.lock.lock();
        // SAFETY: the shard's lock is held.
        let table = unsafe { &mut *shard.table.get() };
        let len = shard.len.load(Ordering::Relaxed);
        let capacity = table.slots().len();
        if (len + 1) * 2 > capacity {
            let slots = if capacity == 0 { INITIAL_SLOTS } else { capacity * 2 };
            let Some(mut bigger) = Table::with_capacity(slots) else { return false };
            for record in table.slots().iter().filter(|r| r.address != 0) {
                bigger.put(*record);
            }
            *table = bigger;
        }
        if table.put(record) {
            shard.len.store(len + 1, Ordering::Relaxed);
        }
        true
    }

    /// Removes and returns the record of the block at `address`.
    pub(crate) fn remove(&self, address: usize) -> Option<Record> {
        let shard = &self.shards[shard_of(address)];
        if shard.len.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let _held = shard.lock.lock();
        // SAFETY: the shard's lock is held.
        let table = unsafe { &mut *shard.table.get() };
        let i = table.find(address)?;
        let record = table.take(i);
        shard.len.fetch_sub(1, Ordering::Relaxed);
        Some(record)
    }

    /// Calls `visit` with every record, shard by shard (each shard locked while it is visited:
    /// `visit` must not allocate through the tracked path, i.e. run with the thread's
    /// reentrancy guard held).
    pub(crate) fn for_each(&self, mut visit: impl FnMut(&Record)) {
        for shard in &self.shards {
            if shard.len.load(Ordering::Relaxed) == 0 {
                continue;
            }
            let _held = shard.lock.lock();
            // SAFETY: the shard's lock is held.
            let table = unsafe { &*shard.table.get() };
            table.slots().iter().filter(|r| r.address != 0).for_each(&mut visit);
        }
    }

    /// Takes every shard's lock (before `fork`, so the child never inherits one held by a
    /// thread that does not exist there).
    pub(crate) fn lock_all(&self) {
        for shard in &self.shards {
            shard.lock.raw_lock();
        }
    }

    /// Releases the locks taken by [`Registry::lock_all`].
    pub(crate) fn unlock_all(&self) {
        for shard in &self.shards {
            shard.lock.raw_unlock();
        }
    }

    /// Removes every record `drop_it` says to.
    pub(crate) fn remove_where(&self, mut drop_it: impl FnMut(&Record) -> bool) {
        for shard in &self.shards {
            if shard.len.load(Ordering::Relaxed) == 0 {
                continue;
            }
            let _held = shard.lock.lock();
            // SAFETY: the shard's lock is held.
            let table = unsafe { &mut *shard.table.get() };
            let mut i = 0;
            let mut len = shard.len.load(Ordering::Relaxed);
            while i < table.slots().len() {
                let record = table.slots()[i];
                if record.address != 0 && drop_it(&record) {
                    // A later record may shift into slot `i`: look at it again.
                    table.take(i);
                    len -= 1;
                } else {
                    i += 1;
                }
            }
            shard.len.store(len, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(address: usize, owner: u32) -> Record {
        Record { address, size: address / 16, align: 8, owner, ..Record::default() }
    }

    #[test]
    fn insert_find_remove_through_growth() {
        let registry = Registry::new();
        let addresses: Vec<usize> = (1..5000).map(|i| i * 48).collect();
        for &a in &addresses {
            assert!(registry.insert(record(a, 1)));
        }
        for &a in addresses.iter().step_by(2) {
            assert_eq!(registry.remove(a).map(|r| r.size), Some(a / 16));
            assert_eq!(registry.remove(a), None);
        }
        let mut left = Vec::new();
        registry.for_each(|r| left.push(r.address));
        left.sort_unstable();
        let expected: Vec<usize> = addresses.iter().copied().skip(1).step_by(2).collect();
        assert_eq!(left, expected);
    }

    #[test]
    fn replacing_keeps_one_record() {
        let registry = Registry::new();
        registry.insert(record(0x1000, 1));
        registry.insert(Record { size: 7, ..record(0x1000, 2) });
        let mut seen = Vec::new();
        registry.for_each(|r| seen.push((r.address, r.size, r.owner)));
        assert_eq!(seen, vec![(0x1000, 7, 2)]);
    }

    #[test]
    fn remove_where_drops_one_owner_only() {
        let registry = Registry::new();
        for i in 1..3000usize {
            registry.insert(record(i * 16, (i % 3) as u32));
        }
        registry.remove_where(|r| r.owner == 1);
        let mut owners = [0usize; 3];
        registry.for_each(|r| owners[r.owner as usize] += 1);
        assert_eq!(owners[1], 0);
        assert_eq!(owners[0] + owners[2], 2999 - 1000);
        // Everything left is still findable after the shifts.
        for i in (1..3000usize).filter(|i| i % 3 != 1) {
            assert!(registry.remove(i * 16).is_some(), "lost {i}");
        }
        assert!(!(1..3000usize).any(|i| registry.may_hold(i * 16)));
    }

    #[test]
    fn concurrent_inserts_and_removes() {
        let registry = std::sync::Arc::new(Registry::new());
        let handles: Vec<_> = (0..4usize)
            .map(|t| {
                let registry = registry.clone();
                std::thread::spawn(move || {
                    for i in 1..5000usize {
                        let a = (i * 4 + t) * 16;
                        registry.insert(record(a, t as u32));
                        if i % 2 == 0 {
                            assert!(registry.remove(a).is_some());
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().expect("thread");
        }
        let mut count = 0;
        registry.for_each(|_| count += 1);
        assert_eq!(count, 4 * 2500);
    }
}
