//! Allocations and frees that the recorder's clock put slightly out of order between threads,
//! put back in order.
//!
//! The preload recorder reads the TSC without waiting for earlier instructions to finish (an
//! ordered read cost a fifth of its time on allocation-heavy programs), so a time can be read
//! a little before the work it follows has completed: an allocation's time before the load that
//! found its address free, a free's time before the load that brought the thread its pointer.
//! How early is bounded by how long one instruction can keep the CPU from retiring the read —
//! a memory access, a few hundred nanoseconds at worst; an interrupt or fault in between makes
//! the read happen again. Between threads, two events of one address can then come out swapped:
//! - an allocation at an address whose live block another thread frees a moment later (the
//!   free came first): without reordering, the free would close the new block and leave the
//!   old one open for ever;
//! - a free of an address with no live block, and an allocation of that address on another
//!   thread a moment later (the allocation came first): the free would count as unmatched and
//!   the block stay open for ever.
//!
//! Neither order can be the true one — an allocator does not hand out a live address, and a
//! thread cannot free a pointer before it exists — so when the second event follows within
//! [`SKEW_WINDOW_NS`] on another thread, the replay applies it as it happened: the free closes
//! the displaced block; the early free closes the block allocated after it (at that block's
//! allocation time). Within one thread events are in program order and are never reordered.

use std::collections::VecDeque;

/// How far apart two swapped events of different threads may be: far beyond how early an
/// unordered TSC read can be taken (see the module docs).
pub(crate) const SKEW_WINDOW_NS: u64 = 10_000;

/// At most this many displacements, and as many unmatched frees, are kept in view (the oldest
/// go first). Both are rare in a real trace (a swap, a lost free, a free of memory from before
/// the recording), let alone hundreds within the window; the bound keeps a damaged or crafted
/// trace whose events crowd into a few microseconds from costing a long search per event.
const MAX_IN_VIEW: usize = 256;

/// The thread of an allocation site.
pub(crate) trait SiteThreads {
    fn thread_of(&self, site: u32) -> Option<u32>;
}

/// Site `i`'s thread at index `i`.
impl<const N: usize> SiteThreads for [u32; N] {
    fn thread_of(&self, site: u32) -> Option<u32> {
        self.get(site as usize).copied()
    }
}

/// A live block that an allocation at its address displaced.
#[derive(Debug, Clone, Copy)]
struct Displaced {
    addr: u64,
    /// The displaced block's value in the address table.
    block: u64,
    ts: u64,
    /// The displacing allocation's site.
    site: u32,
}

/// A free that found no live block.
#[derive(Debug, Clone, Copy)]
struct Orphan {
    addr: u64,
    ts: u64,
    thread: u32,
}

/// The recent displacements and unmatched frees, each in time order, none older than the window.
#[derive(Debug, Default)]
pub(crate) struct Reorder {
    /// 0: events are never reordered (a clock that keeps the order between threads).
    window: u64,
    displaced: VecDeque<Displaced>,
    orphans: VecDeque<Orphan>,
}

impl Reorder {
    pub fn new(window: u64) -> Self {
        Reorder { window, ..Reorder::default() }
    }

    /// Whether a free may close a displaced block (a cheap test for the common case: no).
    #[inline(always)]
    pub fn has_displaced(&self) -> bool {
        !self.displaced.is_empty()
    }

    /// Whether an allocation may be the block of an early free.
    #[inline(always)]
    pub fn has_orphans(&self) -> bool {
        !self.orphans.is_empty()
    }

    /// An allocation of `site` at `ts` displaced the live block `block` of `addr`.
    pub fn note_displaced(&mut self, addr: u64, block: u64, ts: u64, site: u32) {
        if self.window > 0 {
            self.forget_before(ts);
            if self.displaced.len() == MAX_IN_VIEW {
                self.displaced.pop_front();
            }
            self.displaced.push_back(Displaced { addr, block, ts, site });
        }
    }

    /// A free at `ts` on `thread` found no live block at `addr`.
    pub fn note_orphan(&mut self, addr: u64, ts: u64, thread: u32) {
        if self.window > 0 {
            self.forget_before(ts);
            if self.orphans.len() == MAX_IN_VIEW {
                self.orphans.pop_front();
            }
            self.orphans.push_back(Orphan { addr, ts, thread });
        }
    }

    /// The block a free of `addr` at `ts` on `thread` closes instead of the address's live one:
    /// a block displaced from `addr` within the window by an allocation on another thread.
    pub fn take_displaced(
        &mut self,
        addr: u64,
        ts: u64,
        thread: u32,
        sites: &dyn SiteThreads,
    ) -> Option<u64> {
        self.forget_before(ts);
        let at = self.displaced.iter().position(|d| d.addr == addr)?;
        let d = self.displaced[at];
        if sites.thread_of(d.site) == Some(thread) {
            // The same thread allocated and then freed: program order, nothing swapped.
            return None;
        }
        self.displaced.remove(at);
        Some(d.block)
    }

    /// Whether an allocation of `addr` at `ts` (on the thread `alloc_thread` gives) is the block
    /// of a free of `addr` on another thread within the window before it; that free is taken.
    pub fn take_orphan(&mut self, addr: u64, ts: u64, alloc_thread: impl FnOnce() -> Option<u32>) -> bool {
        self.forget_before(ts);
        let Some(at) = self.orphans.iter().position(|o| o.addr == addr) else { return false };
        if alloc_thread() == Some(self.orphans[at].thread) {
            // A free of memory from before the recording, and its address allocated again.
            self.orphans.remove(at);
            return false;
        }
        self.orphans.remove(at);
        true
    }

    /// Drops what lies more than the window before `ts`.
    fn forget_before(&mut self, ts: u64) {
        let oldest = ts.saturating_sub(self.window);
        while self.displaced.front().is_some_and(|d| d.ts < oldest) {
            self.displaced.pop_front();
        }
        while self.orphans.front().is_some_and(|o| o.ts < oldest) {
            self.orphans.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sites 0 and 1 belong to threads 0 and 1.
    const SITES: [u32; 2] = [0, 1];

    #[test]
    fn a_displaced_block_is_closed_by_another_threads_free_within_the_window() {
        let mut r = Reorder::new(SKEW_WINDOW_NS);
        r.note_displaced(0x10, 7, 1_000, 1);
        assert!(r.has_displaced());
        // A free of another address is none of its business.
        assert_eq!(r.take_displaced(0x20, 1_100, 0, &SITES), None);
        // The allocating thread's own free frees its new block.
        assert_eq!(r.take_displaced(0x10, 1_200, 1, &SITES), None);
        assert_eq!(r.take_displaced(0x10, 1_300, 0, &SITES), Some(7));
        assert!(!r.has_displaced());
    }

    #[test]
    fn nothing_is_reordered_past_the_window_or_with_a_window_of_zero() {
        let mut r = Reorder::new(SKEW_WINDOW_NS);
        r.note_displaced(0x10, 7, 1_000, 1);
        r.note_orphan(0x20, 1_000, 0);
        assert_eq!(r.take_displaced(0x10, 1_001 + SKEW_WINDOW_NS, 0, &SITES), None);
        assert!(!r.take_orphan(0x20, 1_001 + SKEW_WINDOW_NS, || Some(1)));
        assert!(!r.has_displaced() && !r.has_orphans());

        let mut off = Reorder::new(0);
        off.note_displaced(0x10, 7, 1_000, 1);
        off.note_orphan(0x20, 1_000, 0);
        assert!(!off.has_displaced() && !off.has_orphans());
    }

    #[test]
    fn what_is_kept_in_view_is_bounded() {
        let mut r = Reorder::new(SKEW_WINDOW_NS);
        for i in 0..2 * MAX_IN_VIEW as u64 {
            r.note_orphan(0x10 + 16 * i, 1_000, 0);
            r.note_displaced(0x10 + 16 * i, i, 1_000, 1);
        }
        assert_eq!((r.orphans.len(), r.displaced.len()), (MAX_IN_VIEW, MAX_IN_VIEW));
        // The oldest went first.
        assert!(!r.take_orphan(0x10, 1_000, || Some(1)));
        assert!(r.take_orphan(0x10 + 16 * (2 * MAX_IN_VIEW as u64 - 1), 1_000, || Some(1)));
    }

    #[test]
    fn an_early_free_on_another_thread_takes_the_next_allocation_of_its_address() {
        let mut r = Reorder::new(SKEW_WINDOW_NS);
        r.note_orphan(0x10, 1_000, 0);
        r.note_orphan(0x30, 1_000, 0);
        assert!(!r.take_orphan(0x20, 1_100, || Some(1)));
        assert!(r.take_orphan(0x10, 1_200, || Some(1)));
        // Freed and allocated again by one thread: a free of memory from before the recording.
        assert!(!r.take_orphan(0x30, 1_300, || Some(0)));
        assert!(!r.has_orphans());
    }
}
