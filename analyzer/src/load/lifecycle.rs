//! Each address's state machine, driven by the replay in time order: an allocation opens a block
//! (appended to the lifetime store, so block ids follow allocation time) and makes it the
//! address's live block; a free closes the address's live block, or is counted as unmatched
//! when the address has none (memory allocated before recording began, or a double free). Only
//! live blocks are held in the address table, so it stays small and cache-resident.
//!
//! Events of one moment (a clock tie) are applied per address in the only order the address's
//! state allows: a release first if the address holds a live block, an allocation first
//! otherwise, alternating. This is what FORMAT.md's ordering rules promise: a block must be
//! released before its address comes into being again.
//!
//! An allocation at a live address, or a free with no live block, may be an event the
//! recorder's clock put a moment out of order with one on another thread: [`Reorder`] keeps
//! them in view long enough to put them back.
//!
//! Known limit: two blocks of one address that came into being in the same clock tick cannot be
//! told apart by time; the frees of that tick and later go to them in an arbitrary order. Real
//! clocks make this vanishingly rare. Such blocks are ordered by free time in the store.

use std::ops::Range;

use super::decode::Record;
use super::reorder::{Reorder, SiteThreads};
use crate::hashing::AddrMap;
use crate::index::IndexBuilder;
use crate::lifetimes::{LifetimeStore, size32};

/// Address tables at least this large are prefetched from.
const LARGE_TABLE_BYTES: usize = 1 << 20;

/// An event of a clock tie.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TieEvent {
    addr: u64,
    /// Size and site of an allocation; `None` for a free.
    alloc: Option<(u64, u32)>,
    /// The thread of a free.
    thread: u32,
}

impl TieEvent {
    /// The event of `record`, whose full size (for an allocation) is `size`.
    pub fn of(record: &Record, size: u64) -> Self {
        let free = record.is_free();
        TieEvent {
            addr: record.addr,
            alloc: (!free).then_some((size, record.site())),
            thread: if free { record.thread() } else { 0 },
        }
    }
}

/// A live block in the address table: its id (low half) and 32-bit size (high half).
fn live_value(id: u32, size32: u32) -> u64 {
    u64::from(id) | (u64::from(size32) << 32)
}

/// The replay's state: the store being filled, the live blocks, running totals and the index
/// being built.
pub(crate) struct Lifecycle {
    origin: u64,
    pub store: LifetimeStore,
    live: AddrMap,
    pub index: IndexBuilder,
    pub matched: u64,
    pub unmatched: u64,
    /// Pairs of events of two threads put back in their order (see [`Reorder`]).
    pub reordered: u64,
    pub bytes_allocated: u64,
    /// More blocks than ids can number: the rest were not stored.
    pub too_many: bool,
    /// Blocks in the store.
    stored: u32,
    bytes: u64,
    blocks: u64,
    /// Id ranges of blocks with equal allocation time and address.
    pub tie_runs: Vec<Range<u32>>,
    /// Scratch for ties: one address's allocations opened, allocations that came and went (size,
    /// site), and the threads of its frees.
    tie_allocs: Vec<(u64, u64, u32)>,
    tie_came_and_went: Vec<(u64, u32)>,
    tie_free_threads: Vec<u32>,
    /// Events possibly swapped by the clock, awaiting their partner.
    reorder: Reorder,
}

impl Lifecycle {
    /// `skew_window`: how far apart events of different threads may have been swapped by the
    /// recorder's clock (0: never; see [`Reorder`]).
    pub fn new(
        origin: u64,
        store: LifetimeStore,
        mut index: IndexBuilder,
        live_hint: usize,
        skew_window: u64,
    ) -> Self {
        let stored = store.len() as u32;
        index.count_from(u64::from(stored));
        Lifecycle {
            origin,
            store,
            live: AddrMap::with_capacity(live_hint),
            index,
            matched: 0,
            unmatched: 0,
            reordered: 0,
            bytes_allocated: 0,
            too_many: false,
            stored,
            bytes: 0,
            blocks: 0,
            tie_runs: Vec::new(),
            tie_allocs: Vec::new(),
            tie_came_and_went: Vec::new(),
            tie_free_threads: Vec::new(),
            reorder: Reorder::new(skew_window),
        }
    }

    fn rel(&self, ts: u64) -> u64 {
        ts.saturating_sub(self.origin)
    }

    /// Appends a block and counts it as live.
    #[inline]
    fn open(&mut self, ts: u64, addr: u64, size: u64, site: u32) -> u32 {
        if u64::from(self.stored) >= super::MAX_BLOCKS {
            self.too_many = true;
            return u32::MAX;
        }
        let id = self.store.push(self.rel(ts), addr, size, site);
        self.stored += 1;
        self.bytes += size;
        self.blocks += 1;
        self.bytes_allocated += size;
        id
    }

    /// Closes the live block `value` (from the address table) at `ts`.
    #[inline]
    fn close(&mut self, value: u64, ts: u64) {
        let id = value as u32;
        let size = self.store.full_size(id, (value >> 32) as u32);
        self.store.set_free(id, self.rel(ts));
        self.bytes = self.bytes.saturating_sub(size);
        self.blocks = self.blocks.saturating_sub(1);
        self.matched += 1;
    }

    /// An allocation at `ts` that no other event shares its moment with.
    #[inline]
    pub fn alloc(&mut self, ts: u64, addr: u64, size: u64, site: u32, sites: &dyn SiteThreads) {
        if self.reorder.has_orphans() && self.reorder.take_orphan(addr, ts, || sites.thread_of(site)) {
            self.came_and_went(ts, addr, size, site);
            return;
        }
        let id = self.open(ts, addr, size, site);
        if let Some(displaced) = self.live.insert(addr, live_value(id, size32(size))) {
            // Its free comes a moment later from another thread, or was lost (then it stays open).
            self.reorder.note_displaced(addr, displaced, ts, site);
        }
    }

    /// A block whose free on another thread was read early (and counted unmatched): it came and
    /// went at `ts`.
    fn came_and_went(&mut self, ts: u64, addr: u64, size: u64, site: u32) {
        self.reordered += 1;
        let id = self.open(ts, addr, size, site);
        if id != u32::MAX {
            self.close(live_value(id, size32(size)), ts);
            self.unmatched = self.unmatched.saturating_sub(1);
        }
    }

    /// A free at `ts` on `thread` that no other event shares its moment with.
    #[inline]
    pub fn free(&mut self, ts: u64, addr: u64, thread: u32, sites: &dyn SiteThreads) {
        if self.reorder.has_displaced()
            && let Some(displaced) = self.reorder.take_displaced(addr, ts, thread, sites)
        {
            self.reordered += 1;
            self.close(displaced, ts);
            return;
        }
        match self.live.remove(addr) {
            Some(value) => self.close(value, ts),
            None => {
                self.unmatched += 1;
                self.reorder.note_orphan(addr, ts, thread);
            }
        }
    }

    /// The events of one moment `ts`, in any order.
    pub fn tie(&mut self, ts: u64, events: &mut [TieEvent], sites: &dyn SiteThreads) {
        // Blocks of one moment take ids in order of address (the store's order).
        events.sort_by_key(|e| (e.addr, e.alloc.is_none()));
        let mut tie_allocs = std::mem::take(&mut self.tie_allocs);
        let mut came_and_went = std::mem::take(&mut self.tie_came_and_went);
        let mut free_threads = std::mem::take(&mut self.tie_free_threads);
        let mut i = 0;
        while i < events.len() {
            let addr = events[i].addr;
            let mut j = i;
            tie_allocs.clear();
            came_and_went.clear();
            free_threads.clear();
            while let Some(&event) = events.get(j).filter(|e| e.addr == addr) {
                match event.alloc {
                    Some((size, site)) => {
                        if self.reorder.has_orphans()
                            && self.reorder.take_orphan(addr, ts, || sites.thread_of(site))
                        {
                            came_and_went.push((size, site));
                        } else {
                            let id = self.open(ts, addr, size, site);
                            tie_allocs.push((u64::from(id), size, site));
                        }
                    }
                    None => {
                        if self.reorder.has_displaced()
                            && let Some(displaced) =
                                self.reorder.take_displaced(addr, ts, event.thread, sites)
                        {
                            self.reordered += 1;
                            self.close(displaced, ts);
                        } else {
                            free_threads.push(event.thread);
                        }
                    }
                }
                j += 1;
            }
            if tie_allocs.len() > 1 {
                let first = tie_allocs[0].0 as u32;
                self.tie_runs.push(first..first + tie_allocs.len() as u32);
            }
            let mut current = self.live.remove(addr);
            let (mut next_alloc, mut next_free) = (0, 0);
            loop {
                if next_free < free_threads.len() && current.is_some() {
                    if let Some(value) = current.take() {
                        self.close(value, ts);
                    }
                    next_free += 1;
                } else if let Some(&(id, size, site)) = tie_allocs.get(next_alloc) {
                    if let Some(displaced) = current.replace(live_value(id as u32, size32(size))) {
                        self.reorder.note_displaced(addr, displaced, ts, site);
                    }
                    next_alloc += 1;
                } else if let Some(&thread) = free_threads.get(next_free) {
                    self.unmatched += 1;
                    self.reorder.note_orphan(addr, ts, thread);
                    next_free += 1;
                } else {
                    break;
                }
            }
            if let Some(value) = current {
                self.live.insert(addr, value);
            }
            for &(size, site) in &came_and_went {
                self.came_and_went(ts, addr, size, site);
            }
            i = j;
        }
        self.tie_allocs = tie_allocs;
        self.tie_came_and_went = came_and_went;
        self.tie_free_threads = free_threads;
    }

    /// Every event at `ts` has been applied.
    #[inline]
    pub fn end_moment(&mut self, ts: u64) {
        let t = self.rel(ts);
        // Allocations and matched frees applied so far: every open stores a block, every close
        // matches a free.
        let applied = u64::from(self.stored) + self.matched;
        self.index.step(t, self.bytes, self.blocks, self.stored, applied);
    }

    /// [`Lifecycle::end_moment`] of a moment `ts` whose only event was a free (which never adds
    /// live bytes).
    #[inline]
    pub fn end_moment_of_free(&mut self, ts: u64) {
        let t = self.rel(ts);
        let applied = u64::from(self.stored) + self.matched;
        self.index.step_down(t, self.bytes, self.blocks, self.stored, applied);
    }

    /// Brings what the events of `records` will touch into the cache ahead of them: the address
    /// table's slots, then the free-time entries of the blocks the frees will close. Each pass's
    /// reads are independent of each other, so their misses overlap.
    #[inline]
    pub fn prefetch(&self, records: &[Record]) {
        let mut acc = 0u64;
        for r in records {
            acc ^= self.live.touch(r.addr);
        }
        for r in records.iter().filter(|r| r.is_free()) {
            if let Some(value) = self.live.get(r.addr) {
                acc ^= self.store.free_ns(value as u32);
            }
        }
        std::hint::black_box(acc);
    }

    /// Whether the address table has outgrown the caches (so that prefetching pays).
    #[inline]
    pub fn table_is_large(&self) -> bool {
        self.live.bytes() >= LARGE_TABLE_BYTES
    }

    /// Blocks and bytes live at the end.
    pub fn live_totals(&self) -> (u64, u64) {
        (self.blocks, self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifetimes::OPEN;
    use crate::load::reorder::SKEW_WINDOW_NS;

    const NO_SITES: &[u32; 0] = &[];

    fn life() -> Lifecycle {
        life_with_window(0)
    }

    /// A lifecycle that puts events swapped between threads back (a preload trace's).
    fn reordering_life() -> Lifecycle {
        life_with_window(SKEW_WINDOW_NS)
    }

    fn life_with_window(skew_window: u64) -> Lifecycle {
        Lifecycle::new(0, LifetimeStore::with_capacity(16), IndexBuilder::new(1000), 4, skew_window)
    }

    fn alloc(addr: u64) -> TieEvent {
        TieEvent { addr, alloc: Some((8, 0)), thread: 0 }
    }

    fn alloc_on(addr: u64, site: u32) -> TieEvent {
        TieEvent { addr, alloc: Some((8, site)), thread: 0 }
    }

    fn free(addr: u64) -> TieEvent {
        free_on(addr, 0)
    }

    fn free_on(addr: u64, thread: u32) -> TieEvent {
        TieEvent { addr, alloc: None, thread }
    }

    fn frees(l: &Lifecycle) -> Vec<u64> {
        (0..l.store.len() as u32).map(|i| l.store.free_ns(i)).collect()
    }

    #[test]
    fn a_free_closes_the_live_block_of_its_address() {
        let mut l = life();
        l.alloc(5, 0x10, 8, 0, NO_SITES);
        l.alloc(7, 0x20, 8, 0, NO_SITES);
        l.free(10, 0x10, 0, NO_SITES);
        l.free(11, 0x10, 0, NO_SITES);
        l.alloc(20, 0x10, 8, 0, NO_SITES);
        l.free(25, 0x10, 0, NO_SITES);
        assert_eq!(frees(&l), vec![10, OPEN, 25]);
        assert_eq!((l.matched, l.unmatched), (2, 1));
    }

    /// Two swaps by the clock: thread 1 allocates 0x10 at 100 though thread 0's free of it is
    /// read at 105; thread 0 frees 0x20 at 290, read before thread 1's allocation of it at 300.
    fn swapped(l: &mut Lifecycle, free_thread: u32) {
        // Sites 0 and 1 belong to threads 0 and 1.
        let sites = [0u32, 1];
        l.alloc(10, 0x10, 8, 0, &sites);
        l.alloc(100, 0x10, 8, 1, &sites);
        l.free(105, 0x10, free_thread, &sites);
        l.free(290, 0x20, free_thread, &sites);
        l.alloc(300, 0x20, 8, 1, &sites);
    }

    #[test]
    fn events_the_clock_swapped_between_threads_are_put_back() {
        let mut l = reordering_life();
        swapped(&mut l, 0);
        assert_eq!(frees(&l), vec![105, OPEN, 300]);
        assert_eq!((l.matched, l.unmatched, l.reordered), (2, 0, 2));
        assert_eq!(l.live_totals(), (1, 8));
    }

    #[test]
    fn swapped_events_in_clock_ties_are_put_back_too() {
        let sites = [0u32, 1];
        let mut l = reordering_life();
        // As in `swapped`, but the late and early events share their moment with another event.
        l.alloc(10, 0x10, 8, 0, &sites);
        l.tie(100, &mut [alloc_on(0x10, 1), alloc_on(0x40, 1)], &sites);
        l.tie(105, &mut [free_on(0x10, 0), free_on(0x40, 1)], &sites);
        l.tie(290, &mut [free_on(0x20, 0), alloc_on(0x60, 0)], &sites);
        l.tie(300, &mut [alloc_on(0x20, 1), alloc_on(0x50, 1)], &sites);
        // Blocks: 0x10 (thread 0), 0x10 (thread 1), 0x40, 0x60, 0x20 (came and went), 0x50.
        assert_eq!(frees(&l), vec![105, OPEN, 105, OPEN, 300, OPEN]);
        assert_eq!((l.matched, l.unmatched, l.reordered), (3, 0, 2));
        assert_eq!(l.live_totals(), (3, 24));
    }

    #[test]
    fn one_threads_events_and_clocks_that_keep_order_are_not_reordered() {
        // The same events on one thread are in program order: a lost free, then a free of
        // memory from before the recording.
        let mut one_thread = reordering_life();
        swapped(&mut one_thread, 1);
        let mut ordered_clock = life();
        swapped(&mut ordered_clock, 0);
        for l in [one_thread, ordered_clock] {
            assert_eq!(frees(&l), vec![OPEN, 105, OPEN]);
            assert_eq!((l.matched, l.unmatched, l.reordered), (1, 1, 0));
            assert_eq!(l.live_totals(), (2, 16));
        }
    }

    #[test]
    fn a_tie_releases_first_when_the_address_is_live() {
        // 0x10 allocated at 5; at 10 it is freed and allocated again (order unknown).
        let mut l = life();
        l.alloc(5, 0x10, 8, 0, NO_SITES);
        l.tie(10, &mut [alloc(0x10), free(0x10)], NO_SITES);
        assert_eq!(frees(&l), vec![10, OPEN]);
        // At 20: allocated and freed in one tick while not live.
        l.free(15, 0x10, 0, NO_SITES);
        l.tie(20, &mut [free(0x10), alloc(0x10)], NO_SITES);
        assert_eq!(frees(&l), vec![10, 15, 20]);
        assert_eq!((l.matched, l.unmatched), (3, 0));
    }

    #[test]
    fn surplus_frees_of_a_tie_are_unmatched_and_blocks_of_one_tick_are_noted() {
        let mut l = life();
        l.tie(10, &mut [free(0x10), alloc(0x10), free(0x10), alloc(0x10), free(0x10), free(0x30)], NO_SITES);
        assert_eq!(frees(&l), vec![10, 10]);
        assert_eq!((l.matched, l.unmatched), (2, 2));
        assert_eq!(l.tie_runs.len(), 1);
        assert_eq!(l.tie_runs[0], 0..2);
    }
}
