//! A per-thread cache from a whole stack to its trie node, so that a stack the thread has
//! recorded before costs a hash, one lookup and a comparison, not one trie lookup per frame.
//!
//! Entries are found by a hash of the stack's return addresses and its length, and are only
//! believed after [`StackTable::spells`] confirmed, frame by frame, that the cached node is
//! exactly this stack in the trie: a hash collision costs a miss, never a wrong stack. Entries
//! belong to one trie: [`StackCache::forget`] (when the thread moves to another trace) makes
//! them all stale at once.

use crate::engine::trie::StackTable;

/// Sets of two entries (16 bytes each): 64 KiB per thread.
const SETS_LOG2: u32 = 11;
const SETS: usize = 1 << SETS_LOG2;

/// One cached stack. All-zero is an empty slot (epochs start at 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
struct Entry {
    hash: u64,
    node: u32,
    len: u16,
    epoch: u16,
}

/// The per-thread stack cache (lives in the thread's capture state; all-zero is empty).
pub struct StackCache {
    /// Entries of other epochs are stale. 0 until first use.
    epoch: u16,
    /// Per set, the most recently used entry first.
    sets: [[Entry; 2]; SETS],
}

/// Multiplier of each return address in the stack hash (the unwind-rule cache's slot hash uses
/// the same product).
pub const ADDRESS_MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;

/// Starts a stack hash; [`hash_frame`] adds each return address, [`hash_finish`] the length.
pub const HASH_START: u64 = 0x243f_6a88_85a3_08d3;

#[inline(always)]
pub fn hash_frame(hash: u64, ip: u64) -> u64 {
    hash_product(hash, ip.wrapping_mul(ADDRESS_MULTIPLIER))
}

/// [`hash_frame`] for a frame whose `ip * ADDRESS_MULTIPLIER` is already known (the unwind-rule
/// cache computes it for its slot).
#[inline(always)]
pub fn hash_product(hash: u64, product: u64) -> u64 {
    hash.rotate_left(23) ^ product
}

/// The hash of frames hashed to `first` followed by `count` more frames hashed (from
/// [`HASH_START`]) to `rest`: the same as hashing all of them in one go.
pub fn hash_continue(first: u64, rest: u64, count: usize) -> u64 {
    // Each frame rotates what came before by 23 bits: undo the start value's rotations in
    // `rest`, and rotate `first` past the `count` frames.
    let rotation = (23 * count as u64 % 64) as u32;
    rest ^ HASH_START.rotate_left(rotation) ^ first.rotate_left(rotation)
}

#[inline(always)]
pub fn hash_finish(hash: u64, len: usize) -> u64 {
    let h = (hash ^ len as u64).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^ (h >> 31)
}

#[inline(always)]
fn set_of(hash: u64) -> usize {
    (hash >> (64 - SETS_LOG2)) as usize
}

const EMPTY: Entry = Entry { hash: 0, node: 0, len: 0, epoch: 0 };

impl StackCache {
    /// The node of the stack `ips` (innermost first, hashed to `hash`) in `table`, if cached.
    #[inline]
    pub fn find(&mut self, table: &StackTable, hash: u64, ips: &[u64]) -> Option<u32> {
        let set = &mut self.sets[set_of(hash)];
        let epoch = self.epoch;
        let hit = |entry: &Entry| {
            entry.hash == hash
                && entry.epoch == epoch
                && epoch != 0
                && usize::from(entry.len) == ips.len()
                && table.spells(entry.node, ips)
        };
        if hit(&set[0]) {
            return Some(set[0].node);
        }
        if hit(&set[1]) {
            set.swap(0, 1);
            return Some(set[0].node);
        }
        None
    }

    /// Remembers that the stack hashed to `hash`, `len` frames deep, is `node` (in place of
    /// the less recently used entry of its set).
    #[inline]
    pub fn insert(&mut self, hash: u64, len: usize, node: u32) {
        if self.epoch == 0 {
            self.epoch = 1;
        }
        let Ok(len) = u16::try_from(len) else { return };
        let set = &mut self.sets[set_of(hash)];
        set[1] = set[0];
        set[0] = Entry { hash, node, len, epoch: self.epoch };
    }

    /// Makes every entry stale (the thread now records into another trie).
    pub fn forget(&mut self) {
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            // Epochs wrapped: entries of the old epoch 1, 2... must not come back to life.
            self.sets.fill([EMPTY; 2]);
            self.epoch = 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> Box<StackCache> {
        Box::new(StackCache { epoch: 0, sets: [[EMPTY; 2]; SETS] })
    }

    fn hash_of(ips: &[u64]) -> u64 {
        hash_finish(ips.iter().fold(HASH_START, |h, &ip| hash_frame(h, ip)), ips.len())
    }

    /// Interns `ips` (innermost first) root first and returns the innermost node.
    fn intern(table: &StackTable, ips: &[u64]) -> u32 {
        ips.iter().rev().fold(0, |parent, &ip| table.intern(parent, ip, |_| true).id().expect("id"))
    }

    #[test]
    fn a_hash_can_be_continued() {
        let ips: Vec<u64> = (1..40u64).map(|i| i * 0x1000 + 7).collect();
        let whole = ips.iter().fold(HASH_START, |h, &ip| hash_frame(h, ip));
        for split in 0..ips.len() {
            let first = ips[..split].iter().fold(HASH_START, |h, &ip| hash_frame(h, ip));
            let rest = ips[split..].iter().fold(HASH_START, |h, &ip| hash_frame(h, ip));
            assert_eq!(hash_continue(first, rest, ips.len() - split), whole, "split at {split}");
        }
    }

    #[test]
    fn finds_only_the_exact_stack() {
        let table = StackTable::new(1 << 10).expect("table");
        let mut cache = cache();
        let stack = [0x30, 0x20, 0x10];
        assert_eq!(cache.find(&table, hash_of(&stack), &stack), None);
        let node = intern(&table, &stack);
        cache.insert(hash_of(&stack), stack.len(), node);
        assert_eq!(cache.find(&table, hash_of(&stack), &stack), Some(node));
        // A colliding hash for another stack is refused by the comparison with the trie.
        let other = [0x31, 0x20, 0x10];
        assert_eq!(cache.find(&table, hash_of(&stack), &other), None);
        // So is a stack that is a suffix or an extension of the cached one.
        assert_eq!(cache.find(&table, hash_of(&stack), &stack[..2]), None);
        assert_eq!(cache.find(&table, hash_of(&stack), &[0x30, 0x20, 0x10, 0x5]), None);
    }

    #[test]
    fn two_stacks_of_one_set_are_both_kept_and_a_third_replaces_the_least_recent() {
        let table = StackTable::new(1 << 10).expect("table");
        let mut cache = cache();
        let stacks = [[0x30, 0x10], [0x31, 0x10], [0x32, 0x10]];
        let nodes: Vec<u32> = stacks.iter().map(|s| intern(&table, s)).collect();
        // Hashes chosen to fall into one set.
        let hashes = [5u64, 6, 7];
        cache.insert(hashes[0], 2, nodes[0]);
        cache.insert(hashes[1], 2, nodes[1]);
        assert_eq!(cache.find(&table, hashes[0], &stacks[0]), Some(nodes[0]));
        assert_eq!(cache.find(&table, hashes[1], &stacks[1]), Some(nodes[1]));
        // Stack 1 was used last: stack 0 makes room for stack 2.
        cache.insert(hashes[2], 2, nodes[2]);
        assert_eq!(cache.find(&table, hashes[0], &stacks[0]), None);
        assert_eq!(cache.find(&table, hashes[1], &stacks[1]), Some(nodes[1]));
        assert_eq!(cache.find(&table, hashes[2], &stacks[2]), Some(nodes[2]));
    }

    #[test]
    fn forgetting_makes_entries_stale_even_after_epochs_wrap() {
        let table = StackTable::new(1 << 10).expect("table");
        let mut cache = cache();
        let stack = [0x30, 0x20];
        let node = intern(&table, &stack);
        cache.insert(hash_of(&stack), stack.len(), node);
        cache.forget();
        assert_eq!(cache.find(&table, hash_of(&stack), &stack), None);
        cache.insert(hash_of(&stack), stack.len(), node);
        // Exactly one full cycle of epochs: without clearing, the entry's epoch would be current again.
        for _ in 0..u16::MAX {
            cache.forget();
        }
        assert_eq!(cache.find(&table, hash_of(&stack), &stack), None);
    }
}
