//! The recorder's own memory, listed so that the heap scan at exit can leave it out: its
//! anonymous regions (tables, rings, stack copies: copies of the program's stack words, which
//! would read as references) and each recording thread's TLS block (its stream's last
//! addresses). Lock-free and allocation-free: fixed tables of atomic slots.
//!
//! Also listed, while a heap scan is wanted ([`track_dead_stacks`]): the stacks of threads that
//! ended, by their TLS block (glibc keeps such stacks for new threads; what they hold is stale,
//! and memcheck does not read them either). A new thread that gets the same TLS block (so the
//! same stack) takes its stack off the list when it first records.
//!
//! A region is listed while it is mapped. A TLS block stays listed after its thread ended (the
//! block's memory lives on in glibc's cache of thread stacks, still holding the thread's last
//! addresses) and is listed once however often a new thread gets the same block. When a table
//! is full the list is incomplete; the scan then does not run ([`complete`]).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Slots for regions (a recording thread maps three or four).
const REGION_SLOTS: usize = 8192;
/// Slots for TLS blocks.
const BLOCK_SLOTS: usize = 8192;

/// A slot: the start (0: free) and the length of one range.
struct Slot {
    start: AtomicU64,
    len: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Slot = Slot { start: AtomicU64::new(0), len: AtomicU64::new(0) };

static REGIONS: [Slot; REGION_SLOTS] = [EMPTY; REGION_SLOTS];
static BLOCKS: [Slot; BLOCK_SLOTS] = [EMPTY; BLOCK_SLOTS];
/// Where the next region search starts (slots are mostly taken and given back in turn).
static NEXT_REGION: AtomicU64 = AtomicU64::new(0);
static OVERFLOW: AtomicBool = AtomicBool::new(false);

/// Slots for the stacks of ended threads.
const DEAD_SLOTS: usize = 1024;
/// A dead stack: the thread's TLS block (0: free) and its stack's bounds.
struct DeadStack {
    tls: AtomicU64,
    low: AtomicU64,
    high: AtomicU64,
}
#[allow(clippy::declare_interior_mutable_const)]
const NO_STACK: DeadStack =
    DeadStack { tls: AtomicU64::new(0), low: AtomicU64::new(0), high: AtomicU64::new(0) };
static DEAD: [DeadStack; DEAD_SLOTS] = [NO_STACK; DEAD_SLOTS];
static TRACK_DEAD: AtomicBool = AtomicBool::new(false);

/// Starts keeping the list of ended threads' stacks (a session that scans at exit).
pub fn track_dead_stacks() {
    TRACK_DEAD.store(true, Ordering::Relaxed);
}

/// The thread with TLS block `tls` and stack `[low, high)` ended.
pub fn stack_died(tls: u64, low: u64, high: u64) {
    if !TRACK_DEAD.load(Ordering::Relaxed) || high <= low {
        return;
    }
    for slot in &DEAD {
        if slot.tls.compare_exchange(0, tls, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
            slot.low.store(low, Ordering::Release);
            slot.high.store(high, Ordering::Release);
            return;
        }
    }
    // Full: this stack is read like a live one (conservative: blocks may look reachable).
}

/// A thread with TLS block `tls` began: its stack is live again.
pub fn stack_lives(tls: u64) {
    if !TRACK_DEAD.load(Ordering::Relaxed) {
        return;
    }
    for slot in &DEAD {
        if slot.tls.load(Ordering::Acquire) == tls {
            slot.high.store(0, Ordering::Release);
            slot.low.store(0, Ordering::Release);
            slot.tls.store(0, Ordering::Release);
        }
    }
}

/// Lists the region `[start, start + len)`; the slot to give back with [`remove_region`], or
/// `None` when the table is full.
pub fn add_region(start: u64, len: u64) -> Option<u32> {
    let first = NEXT_REGION.fetch_add(1, Ordering::Relaxed) as usize;
    for i in 0..REGION_SLOTS {
        let index = (first + i) % REGION_SLOTS;
        let slot = &REGIONS[index];
        if slot.start.load(Ordering::Relaxed) == 0
            && slot.start.compare_exchange(0, start, Ordering::AcqRel, Ordering::Relaxed).is_ok()
        {
            slot.len.store(len, Ordering::Release);
            return Some(index as u32);
        }
    }
    OVERFLOW.store(true, Ordering::Relaxed);
    None
}

/// Takes the region of `slot` off the list (before it is unmapped).
pub fn remove_region(slot: u32) {
    if let Some(slot) = REGIONS.get(slot as usize) {
        slot.len.store(0, Ordering::Release);
        slot.start.store(0, Ordering::Release);
    }
}

/// Lists a thread's TLS block `[start, start + len)` (once, however many threads get it). The
/// table is open-addressed by the block's address and never gives a slot back, so a block is
/// found again at or after its home slot.
pub fn add_tls_block(start: u64, len: u64) {
    let home = (start.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as usize;
    for i in 0..BLOCK_SLOTS {
        let slot = &BLOCKS[(home + i) % BLOCK_SLOTS];
        match slot.start.compare_exchange(0, start, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => {
                slot.len.store(len, Ordering::Release);
                return;
            }
            Err(s) if s == start => return,
            Err(_) => {}
        }
    }
    OVERFLOW.store(true, Ordering::Relaxed);
}

/// Whether every region and TLS block was listed.
pub fn complete() -> bool {
    !OVERFLOW.load(Ordering::Relaxed)
}

/// Calls `each(start, end)` for every listed range (dead stacks included).
pub fn for_each(mut each: impl FnMut(u64, u64)) {
    for slot in REGIONS.iter().chain(BLOCKS.iter()) {
        let start = slot.start.load(Ordering::Acquire);
        let len = slot.len.load(Ordering::Acquire);
        if start != 0 && len != 0 {
            each(start, start.saturating_add(len));
        }
    }
    for slot in &DEAD {
        let (low, high) = (slot.low.load(Ordering::Acquire), slot.high.load(Ordering::Acquire));
        if slot.tls.load(Ordering::Acquire) != 0 && low < high {
            each(low, high);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(start: u64) -> Option<u64> {
        let mut found = None;
        for_each(|s, e| {
            if s == start {
                found = Some(e);
            }
        });
        found
    }

    #[test]
    fn a_region_is_listed_until_it_is_given_back() {
        let start = 0x7e00_0000_0000;
        let slot = add_region(start, 8192).expect("a free slot");
        assert_eq!(listed(start), Some(start + 8192));
        remove_region(slot);
        assert_eq!(listed(start), None);
    }

    #[test]
    fn a_dead_stack_is_listed_until_a_thread_with_its_tls_block_begins() {
        track_dead_stacks();
        let (tls, low, high) = (0x7e20_0000_f000, 0x7e20_0000_0000, 0x7e20_0000_e000);
        stack_died(tls, low, high);
        assert_eq!(listed(low), Some(high));
        stack_lives(tls);
        assert_eq!(listed(low), None);
    }

    #[test]
    fn a_tls_block_is_listed_once() {
        let start = 0x7e10_0000_0000;
        add_tls_block(start, 4096);
        add_tls_block(start, 4096);
        let mut times = 0;
        for_each(|s, _| times += usize::from(s == start));
        assert_eq!(times, 1);
        assert!(complete());
    }
}
