//! Third pass: frees matched to blocks by address, in parallel. Lifetimes are sorted by
//! (address, alloc time), which shards them by address with each address's blocks in time
//! order; each free then finds the block of its address that was live at its time.
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

use crate::lifetimes::Lifetime;
use crate::progress::Progress;

enum Candidates {
    None,
    One(usize),
    Many(Range<usize>),
}

/// The blocks a free of `addr` at `ts` may belong to, in `by_addr` (sorted by address, then
/// alloc time).
fn candidates(by_addr: &[Lifetime], addr: u64, ts: u64) -> Candidates {
    let end = by_addr.partition_point(|l| (l.addr, l.alloc_ns) <= (addr, ts));
    let tied = by_addr[..end].partition_point(|l| (l.addr, l.alloc_ns) < (addr, ts));
    let start = if tied > 0 && by_addr[tied - 1].addr == addr { tied - 1 } else { tied };
    match end - start {
        0 => Candidates::None,
        1 => Candidates::One(start),
        _ => Candidates::Many(start..end),
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

fn match_one(by_addr: &[Lifetime], addr: u64, ts: u64, counts: &mut MatchCounts, tied: &mut Vec<(u64, u64)>) {
    match candidates(by_addr, addr, ts) {
        Candidates::None => counts.unmatched += 1,
        Candidates::One(i) => {
            if by_addr[i].claim_free(ts) {
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
    by_addr: &[Lifetime],
) -> (MatchCounts, Vec<(u64, u64)>) {
    let mut counts = MatchCounts::default();
    let mut tied = Vec::new();
    for event in reader.events(chunk) {
        match event {
            Ok(Event::Free { ts, addr }) if addr != 0 => {
                match_one(by_addr, addr, ts.saturating_sub(origin), &mut counts, &mut tied);
            }
            Ok(Event::Realloc { ts_free, old_addr, .. }) if old_addr != 0 => {
                match_one(by_addr, old_addr, ts_free.saturating_sub(origin), &mut counts, &mut tied);
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    (counts, tied)
}

/// Replays tied frees of one address in time order.
fn match_tied(by_addr: &[Lifetime], frees: &[(u64, u64)]) -> MatchCounts {
    let mut counts = MatchCounts::default();
    for &(addr, ts) in frees {
        let range = match candidates(by_addr, addr, ts) {
            Candidates::None => 0..0,
            Candidates::One(i) => i..i + 1,
            Candidates::Many(r) => r,
        };
        if by_addr[range].iter().any(|l| l.claim_free(ts)) {
            counts.matched += 1;
        } else {
            counts.unmatched += 1;
        }
    }
    counts
}

/// Matches every free of the trace to its block; `by_addr` must be sorted by (address, alloc
/// time). Returns `None` if cancelled.
pub(crate) fn match_all(
    reader: &TraceReader,
    origin: u64,
    by_addr: &[Lifetime],
    progress: &dyn Progress,
) -> Option<MatchCounts> {
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

    fn sorted(blocks: &[(u64, u64)]) -> Vec<Lifetime> {
        let mut v: Vec<Lifetime> = blocks.iter().map(|&(t, a)| Lifetime::new(t, a, 8, 0)).collect();
        v.sort_by_key(|l| (l.addr, l.alloc_ns));
        v
    }

    #[test]
    fn a_free_takes_the_block_live_at_its_time() {
        let v = sorted(&[(5, 0x10), (20, 0x10), (7, 0x20)]);
        let mut c = MatchCounts::default();
        let mut tied = Vec::new();
        match_one(&v, 0x10, 10, &mut c, &mut tied);
        match_one(&v, 0x10, 25, &mut c, &mut tied);
        match_one(&v, 0x30, 25, &mut c, &mut tied);
        match_one(&v, 0x20, 6, &mut c, &mut tied);
        assert_eq!((c.matched, c.unmatched), (2, 2));
        assert!(tied.is_empty());
        assert_eq!(v[0].free_ns(), 10);
        assert_eq!(v[1].free_ns(), 25);
        assert!(v[2].is_open());
    }

    #[test]
    fn tied_frees_follow_the_address_state_machine() {
        // 0x10 allocated at 5, freed at 10 and reallocated at 10 (same clock tick), freed at 10.
        let v = sorted(&[(5, 0x10), (10, 0x10)]);
        let mut c = MatchCounts::default();
        let mut tied = Vec::new();
        match_one(&v, 0x10, 10, &mut c, &mut tied);
        match_one(&v, 0x10, 10, &mut c, &mut tied);
        assert_eq!(tied.len(), 2);
        let c = match_tied(&v, &tied);
        assert_eq!((c.matched, c.unmatched), (2, 0));
        assert_eq!(v[0].free_ns(), 10);
        assert_eq!(v[1].free_ns(), 10);
    }

    #[test]
    fn an_early_free_is_not_stolen_by_a_tied_one() {
        // 0x10: block A at 5 freed at 7; block B at 10 freed at 10.
        let v = sorted(&[(5, 0x10), (10, 0x10)]);
        let mut c = MatchCounts::default();
        let mut tied = Vec::new();
        match_one(&v, 0x10, 10, &mut c, &mut tied);
        match_one(&v, 0x10, 7, &mut c, &mut tied);
        let t = match_tied(&v, &tied);
        assert_eq!((c.matched + t.matched, c.unmatched + t.unmatched), (2, 0));
        assert_eq!(v[0].free_ns(), 7);
        assert_eq!(v[1].free_ns(), 10);
    }
}
