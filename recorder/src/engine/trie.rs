//! Stack interning: a trie of (parent node, return address) → dense `u32` node id, shared by all
//! threads of a session and lock-free.
//!
//! Nodes live in an append-only array in mmap'd memory, indexed by id (ids start at 1; 0 is the
//! empty stack). An open-addressed hash table of ids finds a node by key. Inserting reserves an
//! id, fills the node, lets the caller write the node's definition into its own stream, and only
//! then publishes the id with a CAS — so no event can use an id whose definition is not already in
//! the trace. If two threads race on the same key, the loser's id stays unpublished (its
//! definition is harmless). The table doubles when half full; inserts racing with a resize may
//! create a second id for the same key, which is equally harmless.

use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering};

use crate::engine::sys::Region;

/// One trie node: the return address and the node of the caller (0 = outermost frame).
#[repr(C)]
struct Node {
    /// 0 while the node is being filled in.
    ip: AtomicU64,
    parent: AtomicU32,
    _pad: u32,
}

struct Table {
    slots: Region,
    mask: usize,
}

impl Table {
    fn new(capacity: usize) -> Option<Table> {
        let slots = Region::new(capacity * 4)?;
        Some(Table { slots, mask: capacity - 1 })
    }

    fn slot(&self, index: usize) -> &AtomicU32 {
        // SAFETY: `index & mask` is below the capacity the region was sized for; u32 slots are
        // 4-aligned in a page-aligned region and only accessed atomically.
        unsafe { &*self.slots.as_ptr().cast::<AtomicU32>().add(index & self.mask) }
    }
}

/// The interned stacks of one trace.
pub struct StackTable {
    nodes: Region,
    node_capacity: u32,
    next_id: AtomicU32,
    inserted: AtomicU32,
    table: AtomicPtr<Table>,
    resizing: AtomicBool,
    /// Tables replaced by a resize; readers may still probe them, so they live until drop.
    retired: AtomicPtr<Retired>,
}

struct Retired {
    table: Box<Table>,
    next: *mut Retired,
}

const INITIAL_SLOTS: usize = 1 << 14;
const MAX_SLOTS: usize = 1 << 28;

#[inline]
fn hash(parent: u32, ip: u64) -> usize {
    let mut h = ip ^ (u64::from(parent) << 40) ^ u64::from(parent);
    h = h.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    h ^= h >> 29;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    (h ^ (h >> 32)) as usize
}

/// What [`StackTable::intern`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interned {
    /// The node already existed.
    Found(u32),
    /// A new node was created and defined through the callback.
    Created(u32),
    /// The table is full or the definition could not be written.
    Failed,
}

impl Interned {
    pub fn id(self) -> Option<u32> {
        match self {
            Interned::Found(id) | Interned::Created(id) => Some(id),
            Interned::Failed => None,
        }
    }
}

impl StackTable {
    /// The most nodes whose memory fits in `bytes`.
    pub fn capacity_within(bytes: u64) -> u32 {
        u32::try_from(bytes / std::mem::size_of::<Node>() as u64).unwrap_or(u32::MAX)
    }

    /// A table for up to `node_capacity` nodes (address space is reserved, memory is used as
    /// nodes are created).
    pub fn new(node_capacity: u32) -> Option<StackTable> {
        let node_capacity = node_capacity.max(2);
        let nodes = Region::new(node_capacity as usize * std::mem::size_of::<Node>())?;
        let table = Box::new(Table::new(INITIAL_SLOTS)?);
        Some(StackTable {
            nodes,
            node_capacity,
            next_id: AtomicU32::new(1),
            inserted: AtomicU32::new(0),
            table: AtomicPtr::new(Box::into_raw(table)),
            resizing: AtomicBool::new(false),
            retired: AtomicPtr::new(std::ptr::null_mut()),
        })
    }

    fn node(&self, id: u32) -> &Node {
        debug_assert!(id < self.node_capacity);
        // SAFETY: ids handed out are below `node_capacity`, which the region was sized for;
        // nodes are 16-byte aligned in a page-aligned region and only accessed atomically.
        unsafe { &*self.nodes.as_ptr().cast::<Node>().add(id as usize) }
    }

    /// The (parent, ip) of node `id`, if it exists.
    pub fn get(&self, id: u32) -> Option<(u32, u64)> {
        if id == 0 || id >= self.next_id.load(Ordering::Acquire).min(self.node_capacity) {
            return None;
        }
        let node = self.node(id);
        let ip = node.ip.load(Ordering::Acquire);
        (ip != 0).then(|| (node.parent.load(Ordering::Relaxed), ip))
    }

    /// Whether node `id` is exactly the stack `ips` (innermost first): its ip is `ips[0]`, its
    /// parent's `ips[1]`, and so on, and the last one is outermost. (For tests: captures find
    /// their stacks by the stack cache's own copies of the frames.)
    #[cfg(test)]
    pub fn spells(&self, mut id: u32, ips: &[u64]) -> bool {
        // A node's parent was created before it, so only the first id needs comparing with
        // the ids handed out (node 0, never created, has ip 0, which no stack holds). The
        // capacity check keeps every read inside the nodes' memory.
        if id >= self.next_id.load(Ordering::Acquire) {
            return false;
        }
        let (nodes, capacity) = (self.nodes.as_ptr().cast::<Node>(), self.node_capacity);
        for &ip in ips {
            if id >= capacity {
                return false;
            }
            // SAFETY: as in `node`: `id` is below the capacity the region was sized for.
            let node = unsafe { &*nodes.add(id as usize) };
            if node.ip.load(Ordering::Acquire) != ip {
                return false;
            }
            id = node.parent.load(Ordering::Relaxed);
        }
        id == 0
    }

    fn matches(&self, id: u32, parent: u32, ip: u64) -> bool {
        let node = self.node(id);
        node.ip.load(Ordering::Acquire) == ip && node.parent.load(Ordering::Relaxed) == parent
    }

    /// Finds the node (parent, ip) or creates it. On creation `define(id, parent, ip)` runs
    /// before the id is published; if it returns false the node is not published.
    pub fn intern(&self, parent: u32, ip: u64, define: impl FnOnce(u32) -> bool) -> Interned {
        if ip == 0 {
            return Interned::Failed;
        }
        let (table, mut index, mut probes) = loop {
            // SAFETY: the table pointer always points at a live table (old ones are retired,
            // not freed).
            let table = unsafe { &*self.table.load(Ordering::Acquire) };
            let mut index = hash(parent, ip);
            let mut probes = 0usize;
            let full = loop {
                let id = table.slot(index).load(Ordering::Acquire);
                if id == 0 {
                    break false;
                }
                if self.matches(id, parent, ip) {
                    return Interned::Found(id);
                }
                index = index.wrapping_add(1);
                probes += 1;
                if probes > table.mask {
                    break true;
                }
            };
            if !full {
                break (table, index, probes);
            }
            // Other threads filled the table while one was making a bigger one.
            if !self.replace_full(table) {
                return Interned::Failed;
            }
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if id >= self.node_capacity {
            self.next_id.store(self.node_capacity, Ordering::Relaxed);
            return Interned::Failed;
        }
        let node = self.node(id);
        node.parent.store(parent, Ordering::Relaxed);
        node.ip.store(ip, Ordering::Release);
        if !define(id) {
            return Interned::Failed;
        }
        loop {
            match table.slot(index).compare_exchange(0, id, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break,
                Err(other) => {
                    if self.matches(other, parent, ip) {
                        // Another thread published the same key first; ours stays unused.
                        return Interned::Found(other);
                    }
                    index = index.wrapping_add(1);
                    probes += 1;
                    if probes > table.mask {
                        // Defined but unpublished: still a valid id for this stack.
                        return Interned::Created(id);
                    }
                }
            }
        }
        let inserted = self.inserted.fetch_add(1, Ordering::Relaxed) + 1;
        if inserted as usize > table.mask / 2 {
            self.grow(table);
        }
        Interned::Created(id)
    }

    /// Waits until the full table `full` is replaced by a bigger one, making it unless another
    /// thread is. Returns false if no bigger table can be made.
    #[cold]
    fn replace_full(&self, full: &Table) -> bool {
        let mut spins = 0u32;
        loop {
            if !std::ptr::eq(self.table.load(Ordering::Acquire), full) {
                return true;
            }
            if !self.resizing.load(Ordering::Acquire) {
                self.grow(full);
                if std::ptr::eq(self.table.load(Ordering::Acquire), full)
                    && !self.resizing.load(Ordering::Acquire)
                {
                    return false;
                }
            }
            spins += 1;
            if spins.is_multiple_of(64) {
                // The resizing thread may not be running: let it.
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
    }

    fn grow(&self, current: &Table) {
        let capacity = (current.mask + 1) * 2;
        if capacity > MAX_SLOTS
            || self.resizing.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_err()
        {
            return;
        }
        let still_current = std::ptr::eq(self.table.load(Ordering::Acquire), current);
        if still_current && let Some(bigger) = Table::new(capacity) {
            let last = self.next_id.load(Ordering::Acquire).min(self.node_capacity);
            let mut count = 0u32;
            for id in 1..last {
                let node = self.node(id);
                let ip = node.ip.load(Ordering::Acquire);
                if ip == 0 {
                    continue;
                }
                let parent = node.parent.load(Ordering::Relaxed);
                let mut index = hash(parent, ip);
                loop {
                    let slot = bigger.slot(index);
                    let existing = slot.load(Ordering::Relaxed);
                    if existing == 0 {
                        slot.store(id, Ordering::Relaxed);
                        count += 1;
                        break;
                    }
                    if self.matches(existing, parent, ip) {
                        break;
                    }
                    index = index.wrapping_add(1);
                }
            }
            self.inserted.store(count, Ordering::Relaxed);
            let old = self.table.swap(Box::into_raw(Box::new(bigger)), Ordering::AcqRel);
            // SAFETY: `old` came from Box::into_raw and is no longer reachable for new probes;
            // it is kept (not freed) until drop because probes in flight may still read it.
            let old = unsafe { Box::from_raw(old) };
            let retired = Box::new(Retired { table: old, next: self.retired.load(Ordering::Relaxed) });
            self.retired.store(Box::into_raw(retired), Ordering::Release);
        }
        self.resizing.store(false, Ordering::Release);
    }

    /// Number of ids handed out so far (including unpublished ones).
    pub fn ids_used(&self) -> u32 {
        self.next_id.load(Ordering::Relaxed).min(self.node_capacity) - 1
    }
}

impl Drop for StackTable {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: no probe is in flight; every pointer came from Box::into_raw.
        unsafe {
            drop(Box::from_raw(self.table.load(Ordering::Relaxed)));
            let mut retired = self.retired.load(Ordering::Relaxed);
            while !retired.is_null() {
                let boxed = Box::from_raw(retired);
                retired = boxed.next;
                drop(boxed.table);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_is_stable_and_dense() {
        let table = StackTable::new(1 << 16).expect("table");
        let mut defined = Vec::new();
        let a = table.intern(0, 0x1000, |id| {
            defined.push(id);
            true
        });
        assert_eq!(a, Interned::Created(1));
        let b = table.intern(1, 0x2000, |id| {
            defined.push(id);
            true
        });
        assert_eq!(b, Interned::Created(2));
        assert_eq!(table.intern(0, 0x1000, |_| panic!("already defined")), Interned::Found(1));
        assert_eq!(table.intern(1, 0x2000, |_| panic!("already defined")), Interned::Found(2));
        assert_eq!(defined, vec![1, 2]);
        assert_eq!(table.get(2), Some((1, 0x2000)));
        assert_eq!(table.get(3), None);
    }

    #[test]
    fn survives_growth_and_keeps_every_key() {
        let table = StackTable::new(1 << 20).expect("table");
        let mut ids = Vec::new();
        for i in 0..100_000u64 {
            let id = table.intern((i % 7) as u32, 0x4000 + i * 16, |_| true).id().expect("id");
            ids.push(id);
        }
        for i in 0..100_000u64 {
            let again = table.intern((i % 7) as u32, 0x4000 + i * 16, |_| panic!("lost key {i}"));
            assert_eq!(again.id(), Some(ids[i as usize]));
        }
        assert_eq!(table.ids_used(), 100_000);
    }

    #[test]
    fn spells_compares_a_whole_stack() {
        let table = StackTable::new(1 << 10).expect("table");
        let outer = table.intern(0, 0x10, |_| true).id().expect("id");
        let inner = table.intern(outer, 0x20, |_| true).id().expect("id");
        assert!(table.spells(inner, &[0x20, 0x10]));
        assert!(table.spells(outer, &[0x10]));
        assert!(!table.spells(inner, &[0x20]), "not the whole stack");
        assert!(!table.spells(inner, &[0x20, 0x10, 0x8]), "longer than the stack");
        assert!(!table.spells(inner, &[0x21, 0x10]));
        assert!(!table.spells(999, &[0x20, 0x10]), "no such node");
        assert!(table.spells(0, &[]));
    }

    #[test]
    fn refused_definition_is_not_published() {
        let table = StackTable::new(16).expect("table");
        assert_eq!(table.intern(0, 0x10, |_| false), Interned::Failed);
        let id = table.intern(0, 0x10, |_| true);
        assert!(matches!(id, Interned::Created(_)));
    }

    #[test]
    fn concurrent_interning_agrees_on_ids() {
        let table = std::sync::Arc::new(StackTable::new(1 << 20).expect("table"));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let table = table.clone();
                std::thread::spawn(move || {
                    (0..20_000u64)
                        .map(|i| table.intern(0, 0x100 + i, |_| true).id().expect("id"))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let results: Vec<Vec<u32>> = handles.into_iter().map(|h| h.join().expect("thread")).collect();
        // Every id a thread got must resolve to the key it asked for.
        for result in &results {
            for (i, &id) in result.iter().enumerate() {
                assert_eq!(table.get(id), Some((0, 0x100 + i as u64)));
            }
        }
    }
}
