//! Third pass: frees matched to blocks by address, in parallel. Lifetimes are sorted by
//! (address, alloc time), which shards them by address with each address's blocks in time
//! order; each free then finds the block of its address that was live at its time.
//!
//! The sort key is a bijective mix of the address (then the alloc time), so the blocks spread
//! evenly over the key space and a directory of the key's top bits finds an address's blocks in
//! one step plus a search among a handful.
//!
//! An address's blocks never overlap in time (a block must be freed before its address is handed
//! out again), so a free at `ts` belongs to the last block allocated at or before `ts`, unless
//! another block of that address was allocated at exactly `ts` (a tie of the clock, or a realloc
//! in place with one timestamp for both halves). Unambiguous frees are matched first, all at
//! once; tied ones are then replayed per address in time order, each taking the earliest block
//! still open, which is the address's state machine.
//!
//! Known limit: two blocks of one address that came into being in the same clock tick (a block
//! allocated, freed and its address handed out again within one nanosecond, or a realloc in
//! place in the tick of the block's own allocation) cannot be ordered by time; their frees are
//! then matched in either order. Real clocks make this vanishingly rare.

use std::ops::Range;

use leakview_format::{ChunkInfo, Event, TraceReader};
use rayon::prelude::*;

use crate::hashing::{IntMap, mix};
use crate::lifetimes::Lifetime;
use crate::progress::Progress;

/// The order matching needs: by mixed address, then alloc time.
pub(crate) fn sort_key(l: &Lifetime) -> (u64, u64) {
    (mix(l.addr), l.alloc_ns)
}

/// Lifetimes sorted by [`sort_key`] with a directory over the key's top bits.
pub(crate) struct ByAddress<'a> {
    lifetimes: &'a [Lifetime],
    shift: u32,
    /// `directory[k]..directory[k + 1]` holds the blocks whose key's top bits are `k`.
    directory: Vec<u32>,
}

impl<'a> ByAddress<'a> {
    pub fn new(lifetimes: &'a [Lifetime]) -> Self {
        let bits = (usize::BITS - (lifetimes.len() / 2).max(1).leading_zeros()).clamp(1, 30);
        let shift = 64 - bits;
        let buckets = 1usize << bits;
        let mut directory = vec![0u32; buckets + 1];
        let mut k = 0usize;
        for (i, l) in lifetimes.iter().enumerate() {
            let bucket = (mix(l.addr) >> shift) as usize;
            while k <= bucket {
                directory[k] = i as u32;
                k += 1;
            }
        }
        for slot in directory.iter_mut().skip(k) {
            *slot = lifetimes.len() as u32;
        }
        ByAddress { lifetimes, shift, directory }
    }

    /// The bucket holding `addr`'s blocks and its offset in the whole array.
    fn bucket(&self, addr: u64) -> (usize, &'a [Lifetime]) {
        let k = (mix(addr) >> self.shift) as usize;
        let (from, to) = (self.directory[k] as usize, self.directory[k + 1] as usize);
        (from, &self.lifetimes[from..to])
    }
}

enum Candidates {
    None,
    One(usize),
    Many(Range<usize>),
}

/// First index of `slice` (sorted by [`sort_key`]) whose key is above `key`, searched by
/// galloping forward from `hint` when the hint is at or below it (frees of one address within a
/// chunk come in time order, so the answer is usually just past the previous one).
fn end_of(slice: &[Lifetime], key: (u64, u64), hint: usize) -> usize {
    if hint == 0 || hint > slice.len() || sort_key(&slice[hint - 1]) > key {
        return slice.partition_point(|l| sort_key(l) <= key);
    }
    let (mut lo, mut step) = (hint, 1usize);
    while lo + step <= slice.len() && sort_key(&slice[lo + step - 1]) <= key {
        lo += step;
        step *= 2;
    }
    let hi = (lo + step).min(slice.len());
    lo + slice[lo..hi].partition_point(|l| sort_key(l) <= key)
}

/// The blocks a free of `addr` at `ts` may belong to (indices into the whole array). `hints`
/// remembers where each address's last search ended.
fn candidates(by_addr: &ByAddress<'_>, addr: u64, ts: u64, hints: &mut IntMap<u64, usize>) -> Candidates {
    let (offset, bucket) = by_addr.bucket(addr);
    let key = (mix(addr), ts);
    let hint = hints.get(&addr).copied().unwrap_or(0);
    let end = end_of(bucket, key, hint);
    hints.insert(addr, end);
    // Usually no block of the address came into being exactly at `ts`: then `tied == end`.
    let tied = if end == 0 || sort_key(&bucket[end - 1]) < key {
        end
    } else {
        bucket[..end].partition_point(|l| sort_key(l) < key)
    };
    let start = if tied > 0 && bucket[tied - 1].addr == addr { tied - 1 } else { tied };
    match end - start {
        0 => Candidates::None,
        1 => Candidates::One(offset + start),
        _ => Candidates::Many(offset + start..offset + end),
    }
}

/// Counts of one matching run.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct MatchCounts {
    pub matched: u64,
    pub unmatched: u64,
}

impl MatchCounts {
    fn add(self, other: MatchCounts) -> MatchCounts {
        MatchCounts { matched: self.matched + other.matched, unmatched: self.unmatched + other.unmatched }
    }
}

fn match_one(
    by_addr: &ByAddress<'_>,
    addr: u64,
    ts: u64,
    counts: &mut MatchCounts,
    tied: &mut Vec<(u64, u64)>,
    hints: &mut IntMap<u64, usize>,
) {
    match candidates(by_addr, addr, ts, hints) {
        Candidates::None => counts.unmatched += 1,
        Candidates::One(i) => {
            if by_addr.lifetimes[i].claim_free(ts) {
                counts.matched += 1;
            } else {
                counts.unmatched += 1;
            }
        }
        Candidates::Many(_) => tied.push((addr, ts)),
    }
}

fn match_chunk(
    reader: &TraceReader,
    chunk: &ChunkInfo,
    origin: u64,
    by_addr: &ByAddress<'_>,
) -> (MatchCounts, Vec<(u64, u64)>) {
    let mut counts = MatchCounts::default();
    let mut tied = Vec::new();
    let mut hints = IntMap::default();
    for event in reader.events(chunk) {
        match event {
            Ok(Event::Free { ts, addr }) if addr != 0 => {
                match_one(by_addr, addr, ts.saturating_sub(origin), &mut counts, &mut tied, &mut hints);
            }
            Ok(Event::Realloc { ts_free, old_addr, .. }) if old_addr != 0 => {
                match_one(
                    by_addr,
                    old_addr,
                    ts_free.saturating_sub(origin),
                    &mut counts,
                    &mut tied,
                    &mut hints,
                );
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    (counts, tied)
}

/// Replays tied frees of one address in time order.
fn match_tied(by_addr: &ByAddress<'_>, frees: &[(u64, u64)]) -> MatchCounts {
    let mut counts = MatchCounts::default();
    let mut hints = IntMap::default();
    for &(addr, ts) in frees {
        let range = match candidates(by_addr, addr, ts, &mut hints) {
            Candidates::None => 0..0,
            Candidates::One(i) => i..i + 1,
            Candidates::Many(r) => r,
        };
        if by_addr.lifetimes[range].iter().any(|l| l.claim_free(ts)) {
            counts.matched += 1;
        } else {
            counts.unmatched += 1;
        }
    }
    counts
}

/// Matches every free of the trace to its block; `lifetimes` must be sorted by [`sort_key`].
/// Returns `None` if cancelled.
pub(crate) fn match_all(
    reader: &TraceReader,
    origin: u64,
    lifetimes: &[Lifetime],
    progress: &dyn Progress,
) -> Option<MatchCounts> {
    let by_addr = &ByAddress::new(lifetimes);
    type ChunkResult = Option<(MatchCounts, Vec<(u64, u64)>)>;
    let results: Vec<ChunkResult> = reader
        .chunks()
        .par_iter()
        .map(|chunk| {
            if progress.cancelled() {
                return None;
            }
            let r = match_chunk(reader, chunk, origin, by_addr);
            progress.advance(1);
            Some(r)
        })
        .collect();
    let mut counts = MatchCounts::default();
    let mut tied = Vec::new();
    for r in results {
        let (c, t) = r?;
        counts = counts.add(c);
        tied.extend(t);
    }
    tied.par_sort_unstable();
    let tied_counts = tied
        .par_chunk_by(|a, b| a.0 == b.0)
        .map(|frees| match_tied(by_addr, frees))
        .reduce(MatchCounts::default, MatchCounts::add);
    Some(counts.add(tied_counts))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blocks sorted for matching, and each block's index by (alloc time, address).
    fn sorted(blocks: &[(u64, u64)]) -> Vec<Lifetime> {
        let mut v: Vec<Lifetime> = blocks.iter().map(|&(t, a)| Lifetime::new(t, a, 8, 0)).collect();
        v.sort_by_key(sort_key);
        v
    }

    fn free_of(v: &[Lifetime], t: u64, a: u64) -> u64 {
        v.iter().find(|l| l.alloc_ns == t && l.addr == a).map_or(0, |l| l.free_ns())
    }

    #[test]
    fn a_free_takes_the_block_live_at_its_time() {
        let v = sorted(&[(5, 0x10), (20, 0x10), (7, 0x20)]);
        let by = ByAddress::new(&v);
        let mut c = MatchCounts::default();
        let mut tied = Vec::new();
        match_one(&by, 0x10, 10, &mut c, &mut tied, &mut IntMap::default());
        match_one(&by, 0x10, 25, &mut c, &mut tied, &mut IntMap::default());
        match_one(&by, 0x30, 25, &mut c, &mut tied, &mut IntMap::default());
        match_one(&by, 0x20, 6, &mut c, &mut tied, &mut IntMap::default());
        assert_eq!((c.matched, c.unmatched), (2, 2));
        assert!(tied.is_empty());
        assert_eq!(free_of(&v, 5, 0x10), 10);
        assert_eq!(free_of(&v, 20, 0x10), 25);
        assert_eq!(free_of(&v, 7, 0x20), u64::MAX);
    }

    #[test]
    fn tied_frees_follow_the_address_state_machine() {
        // 0x10 allocated at 5, freed at 10 and reallocated at 10 (same clock tick), freed at 10.
        let v = sorted(&[(5, 0x10), (10, 0x10)]);
        let by = ByAddress::new(&v);
        let mut c = MatchCounts::default();
        let mut tied = Vec::new();
        match_one(&by, 0x10, 10, &mut c, &mut tied, &mut IntMap::default());
        match_one(&by, 0x10, 10, &mut c, &mut tied, &mut IntMap::default());
        assert_eq!(tied.len(), 2);
        let c = match_tied(&by, &tied);
        assert_eq!((c.matched, c.unmatched), (2, 0));
        assert_eq!(free_of(&v, 5, 0x10), 10);
        assert_eq!(free_of(&v, 10, 0x10), 10);
    }

    #[test]
    fn an_early_free_is_not_stolen_by_a_tied_one() {
        // 0x10: block A at 5 freed at 7; block B at 10 freed at 10.
        let v = sorted(&[(5, 0x10), (10, 0x10)]);
        let by = ByAddress::new(&v);
        let mut c = MatchCounts::default();
        let mut tied = Vec::new();
        match_one(&by, 0x10, 10, &mut c, &mut tied, &mut IntMap::default());
        match_one(&by, 0x10, 7, &mut c, &mut tied, &mut IntMap::default());
        let t = match_tied(&by, &tied);
        assert_eq!((c.matched + t.matched, c.unmatched + t.unmatched), (2, 0));
        assert_eq!(free_of(&v, 5, 0x10), 7);
        assert_eq!(free_of(&v, 10, 0x10), 10);
    }
}
