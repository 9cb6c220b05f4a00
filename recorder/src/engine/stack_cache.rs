//! A per-thread cache from a whole stack to its trie node, so that a stack the thread has
//! recorded before costs a hash, one lookup and a comparison, not one trie lookup per frame.
//!
//! This module owns the stack hash (also used by the unwind-rule cache) and the cache's
//! policy: sets of two entries, the most recently used first. Entries are found by a hash of
//! the stack's return addresses and its length, and are only believed after the stack's return
//! addresses, appended to the cache's [`WordRing`] when the entry was made, compared equal with
//! the walked ones: a hash collision costs a miss, never a wrong stack. (Comparing two arrays
//! is a few instructions per frame; following the trie's parent links frame by frame, as the
//! cache once did, cost a dependent load and a dozen instructions per frame.) An entry whose
//! words the ring has since overwritten is stale. Entries belong to one trie:
//! [`StackCache::forget`] (when the thread moves to another trace) makes them all stale at once.

use crate::engine::word_ring::{self, Appended, WordRing};

/// Sets of two entries (16 bytes each): 64 KiB per thread. (The ring's 32 K return addresses,
/// 256 KiB, are room for about 2,000 stacks of 16 frames.)
const SETS_LOG2: u32 = 11;
const SETS: usize = 1 << SETS_LOG2;

/// One cached stack. All-zero is an empty slot (epochs start at 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
struct Entry {
    /// The low half of the stack's hash (the set gives some of the high bits).
    hash: u32,
    node: u32,
    /// Where in the ring's history the stack's return addresses were written.
    start: u32,
    len: u16,
    epoch: u16,
}

/// The per-thread stack cache (lives in the thread's capture state; all-zero is empty).
pub struct StackCache {
    /// Per set, the most recently used entry first.
    sets: [[Entry; 2]; SETS],
    /// The stacks' return addresses; entries of its past epochs are stale.
    ring: WordRing<u16>,
}

/// Multiplier of each return address in the stack hash (the unwind-rule cache's slot hash uses
/// the same product).
pub const ADDRESS_MULTIPLIER: u64 = word_ring::GOLDEN;

/// Starts a stack hash; [`hash_frame`] adds each return address, [`hash_finish`] the length.
pub const HASH_START: u64 = 0x243f_6a88_85a3_08d3;

#[inline(always)]
pub fn hash_frame(hash: u64, ip: u64) -> u64 {
    hash_product(hash, word_ring::golden(ip))
}

/// [`hash_frame`] for a frame whose `ip * ADDRESS_MULTIPLIER` is already known (the unwind-rule
/// cache computes it for its slot).
#[inline(always)]
pub fn hash_product(hash: u64, product: u64) -> u64 {
    hash.rotate_left(23) ^ product
}

/// The hash before the last frame was added, if that frame's return address was 0.
#[inline(always)]
pub fn hash_without_last_zero(hash: u64) -> u64 {
    // `hash_product(h, 0 * ADDRESS_MULTIPLIER)` only rotated `h`.
    hash.rotate_right(23)
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
    word_ring::fold(word_ring::spread(hash ^ len as u64))
}

#[inline(always)]
fn set_of(hash: u64) -> usize {
    word_ring::top_bits(hash, SETS_LOG2)
}

const EMPTY: Entry = Entry { hash: 0, node: 0, start: 0, len: 0, epoch: 0 };

impl StackCache {
    /// The node of the stack `ips` (innermost first, hashed to `hash`), if cached.
    #[inline(always)]
    pub fn find(&mut self, hash: u64, ips: &[u64]) -> Option<u32> {
        let set = set_of(hash);
        let ring = &self.ring;
        let hit = |entry: &Entry| {
            entry.hash == hash as u32
                && usize::from(entry.len) == ips.len()
                && ring.words(entry.epoch, entry.start, ips.len()) == Some(ips)
        };
        let entries = &mut self.sets[set];
        if hit(&entries[0]) {
            return Some(entries[0].node);
        }
        if hit(&entries[1]) {
            entries.swap(0, 1);
            return Some(entries[0].node);
        }
        None
    }

    /// Remembers that the stack `ips` (innermost first, hashed to `hash`) is `node`, in place
    /// of the less recently used entry of its set.
    #[inline]
    pub fn insert(&mut self, hash: u64, ips: &[u64], node: u32) {
        let Ok(len) = u16::try_from(ips.len()) else { return };
        let Some(Appended { start, forgot }) = self.ring.append_words(ips) else { return };
        if let Some(epochs_wrapped) = forgot {
            // Positions ran out (after 4 G words): every other entry went.
            self.forgot(epochs_wrapped);
        }
        let entries = &mut self.sets[set_of(hash)];
        entries[1] = entries[0];
        entries[0] = Entry { hash: hash as u32, node, start, len, epoch: self.ring.epoch() };
    }

    /// Makes every entry stale (the thread now records into another trie).
    pub fn forget(&mut self) {
        let epochs_wrapped = self.ring.forget();
        self.forgot(epochs_wrapped);
    }

    fn forgot(&mut self, epochs_wrapped: bool) {
        if epochs_wrapped {
            // Entries of the old epoch 1, 2... must not come back to life.
            self.sets.fill([EMPTY; 2]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> Box<StackCache> {
        // SAFETY: all-zero is a valid, empty `StackCache` (plain integers).
        unsafe { Box::<StackCache>::new_zeroed().assume_init() }
    }

    fn hash_of(ips: &[u64]) -> u64 {
        hash_finish(ips.iter().fold(HASH_START, |h, &ip| hash_frame(h, ip)), ips.len())
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
    fn a_last_zero_frame_can_be_taken_back() {
        let h = hash_frame(hash_frame(HASH_START, 0x1234), 0x5678);
        assert_eq!(hash_without_last_zero(hash_frame(h, 0)), h);
    }

    #[test]
    fn finds_only_the_exact_stack() {
        let mut cache = cache();
        let stack = [0x30, 0x20, 0x10];
        assert_eq!(cache.find(hash_of(&stack), &stack), None);
        cache.insert(hash_of(&stack), &stack, 7);
        assert_eq!(cache.find(hash_of(&stack), &stack), Some(7));
        // A colliding hash for another stack is refused by the comparison of the frames.
        let other = [0x31, 0x20, 0x10];
        assert_eq!(cache.find(hash_of(&stack), &other), None);
        // So is a stack that is a prefix or an extension of the cached one.
        assert_eq!(cache.find(hash_of(&stack), &stack[..2]), None);
        assert_eq!(cache.find(hash_of(&stack), &[0x30, 0x20, 0x10, 0x5]), None);
    }

    #[test]
    fn two_stacks_of_one_set_are_both_kept_and_a_third_replaces_the_least_recent() {
        let mut cache = cache();
        let stacks = [[0x30, 0x10], [0x31, 0x10], [0x32, 0x10]];
        // Hashes chosen to fall into one set.
        let hashes = [5u64, 6, 7];
        cache.insert(hashes[0], &stacks[0], 1);
        cache.insert(hashes[1], &stacks[1], 2);
        assert_eq!(cache.find(hashes[0], &stacks[0]), Some(1));
        assert_eq!(cache.find(hashes[1], &stacks[1]), Some(2));
        // Stack 1 was used last: stack 0 makes room for stack 2.
        cache.insert(hashes[2], &stacks[2], 3);
        assert_eq!(cache.find(hashes[0], &stacks[0]), None);
        assert_eq!(cache.find(hashes[1], &stacks[1]), Some(2));
        assert_eq!(cache.find(hashes[2], &stacks[2]), Some(3));
    }

    #[test]
    fn stacks_whose_frames_the_ring_overwrote_are_not_found() {
        let mut cache = cache();
        // The first stack alone in set 0; the others spread over the other sets.
        let first: Vec<u64> = (1..=20).collect();
        cache.insert(5, &first, 1);
        let other_hash = |i: u64| ((i % (SETS as u64 - 1)) + 1) << (64 - SETS_LOG2);
        // Other stacks fill the ring, the last of them wrapping past its end.
        let mut filled = first.len();
        let mut i = 0u64;
        while filled + 30 <= word_ring::RING {
            let other: Vec<u64> = (0..30).map(|f| 0x1000 + i * 64 + f).collect();
            cache.insert(other_hash(i), &other, 2);
            filled += other.len();
            i += 1;
            assert_eq!(cache.find(5, &first), Some(1), "still in the ring");
        }
        let last: Vec<u64> = (0..30).map(|f| 0x9000_0000 + f).collect();
        cache.insert(other_hash(i), &last, 3);
        assert_eq!(cache.find(other_hash(i), &last), Some(3), "written at the ring's start");
        assert_eq!(cache.find(5, &first), None, "its frames were overwritten");
    }

    #[test]
    fn forgetting_makes_entries_stale_even_after_epochs_wrap() {
        let mut cache = cache();
        let stack = [0x30, 0x20];
        cache.insert(hash_of(&stack), &stack, 9);
        cache.forget();
        assert_eq!(cache.find(hash_of(&stack), &stack), None);
        cache.insert(hash_of(&stack), &stack, 9);
        // Exactly one full cycle of epochs: without clearing, the entry's epoch would be current again.
        for _ in 0..u16::MAX {
            cache.forget();
        }
        assert_eq!(cache.find(hash_of(&stack), &stack), None);
    }

    #[test]
    fn positions_running_out_make_every_entry_stale() {
        let mut cache = cache();
        let stack = [0x30, 0x20];
        cache.insert(hash_of(&stack), &stack, 9);
        cache.ring.move_head_to(u32::MAX - 1);
        let other = [0x40, 0x20];
        cache.insert(hash_of(&other), &other, 10);
        assert_eq!(cache.find(hash_of(&other), &other), Some(10));
        assert_eq!(cache.find(hash_of(&stack), &stack), None);
    }
}
