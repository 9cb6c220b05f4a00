//! Leak kinds, valgrind memcheck's way: which of the blocks outstanding at the end of the trace
//! are definitely lost, indirectly lost, possibly lost or still reachable, judged from the heap
//! scan the recorder took at exit ([`crate::heap_scan`]). This module owns that judgement:
//! which scanned words are roots (`graph`), the search from them and the cliques of the rest
//! (`walk`), and the totals per kind ([`LeakKinds`]).
//!
//! The blocks searched are those live when the scan began (outstanding at the end, in the
//! usual case where the scan is the program's last act, and blocks freed after it). A word is
//! a root when it lies in no such block and its region is a module's data, a thread's stack,
//! or private anonymous memory where no block of the trace (of any lifetime) ever lay; words
//! elsewhere outside blocks (the program break's heap, allocator arenas: freed memory and the
//! allocator's own bookkeeping) are ignored. A word lying in a block is a pointer from it.
//!
//! Deciding by region gives memcheck's answer on every program of the valgrind agreement test.
//! (Tried: deciding by word, whether a block ever lay at its address — perl and sort then came
//! out wrong: allocators hand out more than was asked for, and programs use it.)
//! Blocks outstanding at the end that were allocated after the scan began are "not scanned".

mod graph;
mod intervals;
mod kinds;
mod walk;

#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicBool, Ordering};

use leakview_format::region_kind;
use rayon::prelude::*;

use crate::heap_scan::{HeapScan, ScanRegion};
use crate::lifetimes::{LifetimeStore, LiveBlock};
use crate::model::{BlockId, LiveTotals};
use graph::Graph;
use intervals::Intervals;
pub use kinds::{LeakKind, LeakKindError, LeakKindSet};
use walk::{Reach, walk};

/// Blocks of the trace looked at per parallel task, at least.
const MIN_TASK: usize = 16 * 1024;

/// A block's memory: its address and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Extent {
    pub addr: u64,
    pub size: u64,
}

impl Extent {
    /// The addresses that point into it (a block of size 0: its address only).
    fn range(self) -> (u64, u64) {
        (self.addr, self.addr.saturating_add(self.size.max(1)))
    }
}

/// Which of `regions` a block ever lay in, given the `blocks` blocks of the whole trace
/// (`extent(i)` of each, looked at in parallel). Only anonymous regions are looked at (the
/// answer matters for no other kind): false for the others.
pub(crate) fn regions_ever_holding(
    regions: &[ScanRegion],
    blocks: usize,
    extent: impl Fn(usize) -> Extent + Sync,
) -> Vec<bool> {
    let anonymous: Vec<(u64, u64, u32)> = regions
        .iter()
        .enumerate()
        .filter(|(_, r)| r.kind == region_kind::ANONYMOUS)
        .map(|(i, r)| (r.start, r.start.saturating_add(r.len), i as u32))
        .collect();
    if anonymous.is_empty() {
        return vec![false; regions.len()];
    }
    let anonymous = Intervals::new(anonymous);
    let held: Vec<AtomicBool> = regions.iter().map(|_| AtomicBool::new(false)).collect();
    (0..blocks).into_par_iter().with_min_len(MIN_TASK).for_each(|i| {
        let (lo, hi) = extent(i).range();
        anonymous.each_overlapping(lo, hi, |p| {
            let flag = &held[anonymous.id(p) as usize];
            // Most blocks lie in a few regions: read before writing the shared flag.
            if !flag.load(Ordering::Relaxed) {
                flag.store(true, Ordering::Relaxed);
            }
            true
        });
    });
    held.into_iter().map(AtomicBool::into_inner).collect()
}

/// Whether the words of each region of `regions` (lying in no block) are roots, `held[i]`
/// saying whether a block ever lay in region `i`.
fn root_regions(regions: &[ScanRegion], held: &[bool]) -> Vec<bool> {
    regions
        .iter()
        .enumerate()
        .map(|(i, r)| match r.kind {
            region_kind::MODULE_DATA | region_kind::STACK => true,
            region_kind::ANONYMOUS => !held.get(i).copied().unwrap_or(false),
            _ => false,
        })
        .collect()
}

/// The kind of each of `live` (the blocks live when the scan began, in any order; never
/// [`LeakKind::NotScanned`]), `held` as [`regions_ever_holding`] gives it for `scan`'s regions.
pub(crate) fn classify(live: &[Extent], scan: &HeapScan, held: &[bool]) -> Vec<LeakKind> {
    let blocks = Intervals::new(
        live.iter()
            .enumerate()
            .map(|(i, e)| {
                let (lo, hi) = e.range();
                (lo, hi, i as u32)
            })
            .collect(),
    );
    let regions = Intervals::new(
        scan.regions()
            .iter()
            .enumerate()
            .map(|(i, r)| (r.start, r.start.saturating_add(r.len), i as u32))
            .collect(),
    );
    let roots = root_regions(scan.regions(), held);
    let is_root = |_: usize, location: u64| {
        let mut root = false;
        regions.each_holding(location, |p| {
            root = roots.get(regions.id(p) as usize).copied().unwrap_or(false);
            !root
        });
        root
    };
    let graph = Graph::build(&blocks, is_root, scan.references());
    let reach = walk(&graph, blocks.len());
    let mut kinds = vec![LeakKind::DefinitelyLost; live.len()];
    for (position, r) in reach.into_iter().enumerate() {
        kinds[blocks.id(position) as usize] = match r {
            Reach::Reachable => LeakKind::StillReachable,
            Reach::Possible => LeakKind::PossiblyLost,
            Reach::Indirect => LeakKind::IndirectlyLost,
            Reach::Definite => LeakKind::DefinitelyLost,
        };
    }
    kinds
}

/// The leak kind of every block outstanding at the end of the trace, and their totals.
#[derive(Debug, Clone, Default)]
pub struct LeakKinds {
    scan_ns: u64,
    /// The blocks outstanding at the end, in id order, and the kind of each.
    ids: Vec<u32>,
    kinds: Vec<LeakKind>,
    totals: [LiveTotals; 5],
}

impl LeakKinds {
    /// Classifies `at_end` (the blocks outstanding at the end, in id order) from `scan`, begun
    /// at `scan_ns` when `at_scan` (in id order) were live.
    pub(crate) fn find(
        store: &LifetimeStore,
        scan: &HeapScan,
        scan_ns: u64,
        at_scan: &[LiveBlock],
        at_end: &[LiveBlock],
    ) -> LeakKinds {
        let extent_of =
            |id: u32, size32: u32| Extent { addr: store.address(id), size: store.full_size(id, size32) };
        let live: Vec<Extent> = at_scan.par_iter().map(|b| extent_of(b.id, b.size32)).collect();
        let held = regions_ever_holding(scan.regions(), store.len(), |i| {
            let (addr, size) = store.extent(i as u32);
            Extent { addr, size }
        });
        let scanned = classify(&live, scan, &held);
        let mut found = LeakKinds {
            scan_ns,
            ids: Vec::with_capacity(at_end.len()),
            kinds: Vec::with_capacity(at_end.len()),
            ..LeakKinds::default()
        };
        for b in at_end {
            let kind = at_scan
                .binary_search_by_key(&b.id, |s| s.id)
                .ok()
                .and_then(|i| scanned.get(i).copied())
                .unwrap_or(LeakKind::NotScanned);
            let totals = &mut found.totals[kind as usize];
            totals.blocks += 1;
            totals.bytes += store.full_size(b.id, b.size32);
            found.ids.push(b.id);
            found.kinds.push(kind);
        }
        found
    }

    /// When the scan began (ns since the start of the trace).
    pub fn scan_ns(&self) -> u64 {
        self.scan_ns
    }

    /// The kind of block `id`, if it was outstanding at the end.
    pub fn kind_of(&self, id: BlockId) -> Option<LeakKind> {
        self.ids.binary_search(&id.0).ok().map(|i| self.kinds[i])
    }

    /// Blocks and bytes of `kind` outstanding at the end.
    pub fn totals(&self, kind: LeakKind) -> LiveTotals {
        self.totals[kind as usize]
    }

    /// Blocks and bytes outstanding at the end of the kinds in `set`.
    pub fn totals_of(&self, set: LeakKindSet) -> LiveTotals {
        set.kinds().fold(LiveTotals::default(), |sum, k| {
            let t = self.totals(k);
            LiveTotals { blocks: sum.blocks + t.blocks, bytes: sum.bytes + t.bytes }
        })
    }

    /// Those of `blocks` (in id order) outstanding at the end whose kind is in `set`.
    pub(crate) fn select(&self, blocks: &[LiveBlock], set: LeakKindSet) -> Vec<LiveBlock> {
        blocks
            .iter()
            .filter(|b| self.kind_of(BlockId(b.id)).is_some_and(|k| set.contains(k)))
            .copied()
            .collect()
    }
}
