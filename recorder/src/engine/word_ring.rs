//! The ring of words behind the per-thread stack caches ([`KeptStacks`] and [`StackCache`]),
//! and the mixing their hashes use.
//!
//! A cache appends a run of words (each with an optional tag) to the ring and remembers where
//! in the ring's history the run starts. The run can be read back while it is intact: until
//! the ring comes round to it (RING words later), and only in the epoch it was written in.
//! [`WordRing::forget`] moves to the next epoch, which forgets every run at once; when epochs
//! (or positions, after 4 G words) run out, the cache clears the epochs its entries hold, so
//! that runs of an old epoch never come back to life. A cache's entries are small (a start and
//! an epoch) and its sets stay small, whatever the length of the runs.
//!
//! [`KeptStacks`]: crate::engine::kept_stacks::KeptStacks
//! [`StackCache`]: crate::engine::stack_cache::StackCache

/// Words a ring holds: 256 KiB of words per thread (memory is used as it is written).
pub const RING_LOG2: u32 = 15;
pub const RING: usize = 1 << RING_LOG2;

/// An epoch as a cache's entries store it: 0 is no epoch (an all-zero entry is stale).
pub trait Epoch: Copy + Eq {
    const NONE: Self;
    const FIRST: Self;
    /// The next epoch (wrapping around to [`Epoch::NONE`]).
    fn next(self) -> Self;
}

impl Epoch for u16 {
    const NONE: u16 = 0;
    const FIRST: u16 = 1;
    #[inline(always)]
    fn next(self) -> u16 {
        self.wrapping_add(1)
    }
}

impl Epoch for u32 {
    const NONE: u32 = 0;
    const FIRST: u32 = 1;
    #[inline(always)]
    fn next(self) -> u32 {
        self.wrapping_add(1)
    }
}

/// A ring of words, each with a tag (`()` for none), and its epoch. All-zero is empty, with no
/// epoch yet (it lives in a cache's zeroed memory).
pub struct WordRing<E, Tag = ()> {
    epoch: E,
    /// Words written so far (positions in the ring's history: the word at position `p` is at
    /// `p % RING` until it is overwritten, RING words later).
    written: u32,
    words: [u64; RING],
    tags: [Tag; RING],
}

/// Where [`WordRing::append`] wrote a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub struct Appended {
    /// The run's position.
    pub start: u32,
    /// `Some(epochs_wrapped)` when positions had run out (after 4 G words): the ring first forgot
    /// every run as [`WordRing::forget`] does (`epochs_wrapped` as it returns: the owner must
    /// forget its entries as after `forget`) and wrote this one at position 0.
    pub forgot: Option<bool>,
}

impl<E: Epoch, Tag: Copy> WordRing<E, Tag> {
    /// The epoch runs are written in now ([`Epoch::NONE`] before [`WordRing::begin`]).
    #[inline(always)]
    pub fn epoch(&self) -> E {
        self.epoch
    }

    /// Starts the first epoch, if not yet started (appending starts it too).
    #[inline(always)]
    pub fn begin(&mut self) {
        if self.epoch == E::NONE {
            self.epoch = E::FIRST;
        }
    }

    /// Words appended since position `start` (a run that starts there is overwritten once
    /// this passes RING).
    #[inline(always)]
    pub fn age(&self, start: u32) -> usize {
        self.written.wrapping_sub(start) as usize
    }

    /// Whether the run written at `start` in `epoch` is intact (its words, and as many after
    /// it as it had, are still the ones written).
    #[inline(always)]
    pub fn holds(&self, epoch: E, start: u32) -> bool {
        // Not overwritten since: a run never wraps around the ring's end.
        epoch == self.epoch && epoch != E::NONE && self.age(start) <= RING
    }

    /// The words and tags of the run of `len` written at `start` in `epoch`, if it is intact.
    #[inline(always)]
    pub fn run(&self, epoch: E, start: u32, len: usize) -> Option<(&[u64], &[Tag])> {
        let words = self.words(epoch, start, len)?;
        let at = start as usize % RING;
        Some((words, self.tags.get(at..at + len)?))
    }

    /// The words of the run of `len` written at `start` in `epoch`, if it is intact.
    #[inline(always)]
    pub fn words(&self, epoch: E, start: u32, len: usize) -> Option<&[u64]> {
        if !self.holds(epoch, start) {
            return None;
        }
        let at = start as usize % RING;
        self.words.get(at..at + len)
    }

    /// Appends the run `words`, with `tags` (as many as the shorter of the two has), at the
    /// ring's head, in the current epoch (starting the first if needed). `None` (nothing
    /// written) if the run is longer than the ring.
    #[inline]
    pub fn append(&mut self, words: &[u64], tags: &[Tag]) -> Option<Appended> {
        let len = words.len().min(tags.len());
        let (appended, at) = self.advance_head(len)?;
        self.words[at..at + len].copy_from_slice(&words[..len]);
        self.tags[at..at + len].copy_from_slice(&tags[..len]);
        Some(appended)
    }

    /// Moves the ring's head past a run of `len` words about to be written (in the current
    /// epoch, starting the first if needed): where it goes, and its index in the ring.
    #[inline(always)]
    fn advance_head(&mut self, len: usize) -> Option<(Appended, usize)> {
        if len > RING {
            return None;
        }
        self.begin();
        let head = self.written as usize % RING;
        // Not across the ring's end: then start again at its beginning.
        let skip = if head + len > RING { RING - head } else { 0 };
        let (end, forgot) = match self.written.checked_add((skip + len) as u32) {
            Some(end) => (end, None),
            // Positions would wrap around, skipped ones included: runs written 4 G words ago
            // could look intact again, so all go, and the run starts the positions again.
            None => (len as u32, Some(self.forget())),
        };
        let start = end - len as u32;
        self.written = end;
        Some((Appended { start, forgot }, start as usize % RING))
    }

    /// Forgets every run: moves to the next epoch. Returns whether epochs wrapped around: then
    /// the caller must set the epoch its entries hold to [`Epoch::NONE`] (each epoch is current
    /// again once per cycle).
    #[must_use = "when epochs wrap, entries must have their epochs cleared"]
    pub fn forget(&mut self) -> bool {
        self.epoch = self.epoch.next();
        if self.epoch == E::NONE {
            self.epoch = E::FIRST;
            return true;
        }
        false
    }

    /// Moves the ring's head to `position` in its history (for tests of positions running out).
    #[cfg(test)]
    pub fn move_head_to(&mut self, position: u32) {
        self.written = position;
    }
}

impl<E: Epoch> WordRing<E> {
    /// Appends the run `words` (see [`WordRing::append`]).
    #[inline]
    pub fn append_words(&mut self, words: &[u64]) -> Option<Appended> {
        const NO_TAGS: [(); RING] = [(); RING];
        self.append(words, NO_TAGS.get(..words.len())?)
    }
}

/// An odd multiplier whose products carry a word's low bits into all the higher ones (the
/// second multiplier of splitmix64).
pub const SPREAD: u64 = 0xbf58_476d_1ce4_e5b9;
/// 2^64 divided by the golden ratio, made odd: the top bits of `x * GOLDEN` spread consecutive
/// values of `x` evenly (Fibonacci hashing).
pub const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// `x * SPREAD`.
#[inline(always)]
pub fn spread(x: u64) -> u64 {
    x.wrapping_mul(SPREAD)
}

/// `x * GOLDEN`.
#[inline(always)]
pub fn golden(x: u64) -> u64 {
    x.wrapping_mul(GOLDEN)
}

/// `x` with its high half folded onto its low bits (after a multiplication, so that the low
/// bits depend on the high ones too).
#[inline(always)]
pub fn fold(x: u64) -> u64 {
    x ^ (x >> 31)
}

/// The top `bits` bits of `x` (a slot among `2^bits`, for a hash mixed into its top bits).
#[inline(always)]
pub fn top_bits(x: u64, bits: u32) -> usize {
    (x >> (64 - bits)) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn ring<E: Epoch, Tag: Copy>() -> Box<WordRing<E, Tag>> {
        // SAFETY: all-zero is a valid, empty `WordRing` for the epochs (integers) and tags
        // (`()` or integers) used here.
        unsafe { Box::<WordRing<E, Tag>>::new_zeroed().assume_init() }
    }

    fn appended_at(appended: Option<Appended>) -> u32 {
        match appended {
            Some(Appended { start, forgot: None }) => start,
            other => panic!("not appended as usual: {other:?}"),
        }
    }

    #[test]
    fn a_run_reads_back_with_its_tags_until_the_ring_comes_round() {
        let mut ring = ring::<u32, i16>();
        assert_eq!(ring.epoch(), 0);
        let first = appended_at(ring.append(&[1, 2, 3], &[-1, -2, -3, -4]));
        let epoch = ring.epoch();
        assert_ne!(epoch, 0, "appending starts an epoch");
        let expected: (&[u64], &[i16]) = (&[1, 2, 3], &[-1, -2, -3]);
        assert_eq!(ring.run(epoch, first, 3), Some(expected));
        assert_eq!(ring.run(epoch, first, 2), Some((&[1u64, 2][..], &[-1i16, -2][..])));
        assert_eq!(ring.run(0, first, 3), None, "no epoch");
        // Runs of 100 words fill the ring: the first run lasts until its words are written over.
        let filler: Vec<u64> = (0..100).map(|i| 1000 + i).collect();
        let tags = vec![7i16; 100];
        let mut written = 3;
        let mut last = first;
        while written + 100 <= RING {
            last = appended_at(ring.append(&filler, &tags));
            written += 100;
            assert_eq!(ring.run(epoch, first, 3), Some(expected), "after {written} words");
        }
        assert_eq!(ring.run(epoch, last, 100).map(|(w, _)| w), Some(&filler[..]));
        let wrapped = appended_at(ring.append(&filler, &tags));
        assert_eq!(wrapped as usize % RING, 0, "a run does not cross the ring's end");
        assert!(!ring.holds(epoch, first));
        assert_eq!(ring.run(epoch, first, 3), None, "overwritten");
        assert_eq!(ring.run(epoch, wrapped, 100).map(|(w, _)| w), Some(&filler[..]));
    }

    #[test]
    fn forgetting_drops_every_run_and_reports_when_epochs_wrap() {
        let mut ring = ring::<u16, ()>();
        let start = appended_at(ring.append_words(&[5, 6]));
        let old = ring.epoch();
        assert!(!ring.forget());
        assert_eq!(ring.words(old, start, 2), None);
        let again = appended_at(ring.append_words(&[5, 6]));
        assert_eq!(ring.words(ring.epoch(), again, 2), Some(&[5u64, 6][..]));
        // A full cycle of epochs comes back to `old`: the ring says so when it wraps.
        let mut wraps = 0;
        for _ in 0..u16::MAX {
            wraps += usize::from(ring.forget());
        }
        assert_eq!(wraps, 1);
        assert_eq!(ring.epoch(), old.wrapping_add(1), "epoch 0 is skipped");
    }

    #[test]
    fn positions_running_out_forget_every_run() {
        let mut ring = ring::<u32, ()>();
        let start = appended_at(ring.append_words(&[1, 2]));
        let epoch = ring.epoch();
        // Two words would end at the ring's end, and at the last position.
        ring.move_head_to(u32::MAX - 1);
        assert_eq!(ring.append_words(&[3, 4]), Some(Appended { start: 0, forgot: Some(false) }));
        assert_eq!(ring.words(epoch, start, 2), None);
        assert_eq!(ring.words(ring.epoch(), 0, 2), Some(&[3u64, 4][..]));
        let next = appended_at(ring.append_words(&[5]));
        assert_eq!(next, 2);
        // Three words would cross the ring's end, and start again at its beginning, the
        // position after the last: as much a wrap-around.
        let start = appended_at(ring.append_words(&[1, 2]));
        let epoch = ring.epoch();
        ring.move_head_to(u32::MAX - 1);
        assert_eq!(ring.append_words(&[3, 4, 5]), Some(Appended { start: 0, forgot: Some(false) }));
        assert_eq!(ring.words(epoch, start, 2), None, "not the words at its place now");
    }

    #[test]
    fn runs_longer_than_the_ring_are_refused() {
        let mut ring = ring::<u32, ()>();
        let long = vec![1u64; RING + 1];
        assert_eq!(ring.append_words(&long), None);
        let whole = appended_at(ring.append_words(&long[..RING]));
        assert_eq!(ring.words(ring.epoch(), whole, RING).map(<[u64]>::len), Some(RING));
    }

    #[test]
    fn mixing_spreads_nearby_values_over_the_top_bits() {
        const BITS: u32 = 11;
        // As the caches mix: values that differ in a few low bits (stack hashes of nearby
        // stacks, sp of nearby frames), and consecutive values. 256 random slots of 2,048
        // would be about 241 distinct ones.
        let folded: HashSet<usize> =
            (0..256u64).map(|i| top_bits(fold(spread(0x7ffc_0000 + i * 8)), BITS)).collect();
        let frames: HashSet<usize> = (0..256u64)
            .map(|i| top_bits(golden(fold(0x55a9_760f_f262 ^ spread(0x7ffc_a0b9_98c0 - i * 0x30))), BITS))
            .collect();
        let consecutive: HashSet<usize> = (0..256u64).map(|i| top_bits(golden(i), BITS)).collect();
        for (name, slots) in [("folded", folded), ("frames", frames), ("consecutive", consecutive)] {
            assert!(slots.len() >= 200, "{name}: {} slots for 256 values", slots.len());
        }
    }
}
