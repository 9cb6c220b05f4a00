//! The tracked allocation path behind [`Adaptive`](super::Adaptive) (debug builds) and
//! [`Diagnostic`](super::Diagnostic): call the inner allocator, then (only if something is
//! tracked) record. Timestamps: after the inner allocation, before the inner free; a realloc
//! takes one before (the implicit free) and one after. A record is added before the new block
//! is handed out and removed before the old one is released, so a reused address is never
//! confused with the block that had it before.
//!
//! When nothing is tracked the cost is one relaxed atomic load per allocation, and per free one
//! relaxed load of the length of the registry shard the address falls in.

use std::alloc::{GlobalAlloc, Layout};

use super::mem::monotonic_ns;
use super::platform::{self, Entered};
use super::registry::{FLAG_IN_TRACE, REGISTRY, Record};
use super::scope;
use super::state;

/// `GlobalAlloc::alloc`, tracked.
///
/// # Safety
/// The `GlobalAlloc::alloc` contract.
#[inline]
pub(crate) unsafe fn alloc<A: GlobalAlloc>(inner: &A, layout: Layout) -> *mut u8 {
    // SAFETY: the caller's contract, forwarded.
    let ptr = unsafe { inner.alloc(layout) };
    if !ptr.is_null() && state::wanted() {
        track_alloc(ptr as usize, layout.size(), layout.align());
    }
    ptr
}

/// `GlobalAlloc::alloc_zeroed`, tracked.
///
/// # Safety
/// The `GlobalAlloc::alloc_zeroed` contract.
#[inline]
pub(crate) unsafe fn alloc_zeroed<A: GlobalAlloc>(inner: &A, layout: Layout) -> *mut u8 {
    // SAFETY: the caller's contract, forwarded.
    let ptr = unsafe { inner.alloc_zeroed(layout) };
    if !ptr.is_null() && state::wanted() {
        track_alloc(ptr as usize, layout.size(), layout.align());
    }
    ptr
}

/// `GlobalAlloc::dealloc`, tracked.
///
/// # Safety
/// The `GlobalAlloc::dealloc` contract.
#[inline]
pub(crate) unsafe fn dealloc<A: GlobalAlloc>(inner: &A, ptr: *mut u8, layout: Layout) {
    if REGISTRY.may_hold(ptr as usize) {
        untrack_free(ptr as usize);
    }
    // SAFETY: the caller's contract, forwarded.
    unsafe { inner.dealloc(ptr, layout) }
}

/// `GlobalAlloc::realloc`, tracked.
///
/// # Safety
/// The `GlobalAlloc::realloc` contract.
#[inline]
pub(crate) unsafe fn realloc<A: GlobalAlloc>(
    inner: &A,
    ptr: *mut u8,
    layout: Layout,
    new_size: usize,
) -> *mut u8 {
    if !REGISTRY.may_hold(ptr as usize) {
        // SAFETY: the caller's contract, forwarded.
        return unsafe { inner.realloc(ptr, layout, new_size) };
    }
    // SAFETY: the caller's contract, forwarded.
    unsafe { track_realloc(inner, ptr, layout, new_size) }
}

/// Records a new block (its stack is captured from the frame above this one).
#[inline(never)]
fn track_alloc(address: usize, size: usize, align: usize) {
    let hook = platform::hook_here();
    let Some(mut entered) = platform::enter() else { return };
    let Some(owner) = scope::current_owner() else { return };
    let timestamp = monotonic_ns();
    let (stack, thread) = entered.capture(hook);
    let record = Record { address, size, align, thread, timestamp, owner: owner.id, flags: 0, stack };
    if owner.keeps(&record) {
        insert(&mut entered, record, None);
    }
}

/// Forgets a block about to be freed.
#[inline(never)]
fn untrack_free(address: usize) {
    let Some(mut entered) = platform::enter() else { return };
    let ts = monotonic_ns();
    if let Some(record) = REGISTRY.remove(address)
        && record.flags & FLAG_IN_TRACE != 0
    {
        entered.write_free(ts, address);
    }
}

/// A realloc of a block that may be tracked: its record moves to the new block, keeping its
/// owner. A block that was not tracked stays untracked (it was allocated before tracking
/// started, or outside the scope).
///
/// # Safety
/// The `GlobalAlloc::realloc` contract.
#[inline(never)]
unsafe fn track_realloc<A: GlobalAlloc>(inner: &A, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
    let hook = platform::hook_here();
    let Some(mut entered) = platform::enter() else {
        // SAFETY: the caller's contract, forwarded.
        return unsafe { inner.realloc(ptr, layout, new_size) };
    };
    let old = REGISTRY.remove(ptr as usize);
    let ts_free = monotonic_ns();
    // SAFETY: the caller's contract, forwarded.
    let new = unsafe { inner.realloc(ptr, layout, new_size) };
    if new.is_null() {
        // The old block is still live.
        if let Some(record) = old {
            REGISTRY.insert(record);
        }
        return new;
    }
    let Some(old) = old else { return new };
    let timestamp = monotonic_ns();
    let (stack, thread) = entered.capture(hook);
    let record = Record {
        address: new as usize,
        size: new_size,
        align: layout.align(),
        thread,
        timestamp,
        owner: old.owner,
        flags: 0,
        stack,
    };
    insert(&mut entered, record, Some((ts_free, old.address, old.flags & FLAG_IN_TRACE != 0)));
    new
}

/// Adds `record` to the registry, writing it to the trace if one is being recorded.
/// `replaced`: (free time, address, was in the trace) of the block it was reallocated from.
fn insert(entered: &mut Entered, mut record: Record, replaced: Option<(u64, usize, bool)>) {
    let written = match replaced {
        Some((ts_free, old_address, true)) => entered.write_realloc(
            ts_free,
            record.timestamp,
            old_address,
            record.address,
            record.size,
            record.stack,
        ),
        _ => entered.write_alloc(record.timestamp, record.address, record.size, record.align, record.stack),
    };
    if written {
        record.flags |= FLAG_IN_TRACE;
    }
    REGISTRY.insert(record);
}

#[cfg(test)]
mod tests {
    use std::alloc::{GlobalAlloc, Layout, System};

    use crate::api::{Adaptive, Diagnostic, LeakTracker};

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).expect("layout")
    }

    #[test]
    fn diagnostic_tracks_alloc_realloc_and_free_in_a_scope() {
        let allocator = Diagnostic::new(System);
        LeakTracker::run_scoped(|| {
            let small = layout(40, 8);
            // SAFETY: a valid non-zero layout; the block is released below with the same layout.
            let p = unsafe { allocator.alloc(small) };
            assert!(!p.is_null());
            let leaks = LeakTracker::leaks();
            assert_eq!(leaks.len(), 1);
            assert_eq!((leaks[0].address, leaks[0].size, leaks[0].align), (p as usize, 40, 8));
            assert!(!leaks[0].backtrace.addresses().is_empty());
            // SAFETY: `p` came from this allocator with `small`.
            let q = unsafe { allocator.realloc(p, small, 4000) };
            assert!(!q.is_null());
            let leaks = LeakTracker::leaks();
            assert_eq!(leaks.len(), 1);
            assert_eq!((leaks[0].address, leaks[0].size), (q as usize, 4000));
            // SAFETY: `q` came from this allocator with the new size.
            unsafe { allocator.dealloc(q, layout(4000, 8)) };
            assert!(LeakTracker::leaks().is_empty());
            assert!(LeakTracker::verify_no_leaks().is_ok());
        });
    }

    #[test]
    fn zeroed_and_overaligned_blocks_are_tracked() {
        let allocator = Diagnostic::new(System);
        LeakTracker::run_scoped(|| {
            let big = layout(100, 4096);
            // SAFETY: a valid layout; released below.
            let p = unsafe { allocator.alloc_zeroed(big) };
            assert_eq!(p as usize % 4096, 0);
            // SAFETY: `p` points to 100 zeroed bytes.
            assert!(unsafe { std::slice::from_raw_parts(p, 100) }.iter().all(|&b| b == 0));
            let leaks = LeakTracker::leaks();
            assert_eq!(leaks.len(), 1);
            assert_eq!(leaks[0].align, 4096);
            let err = LeakTracker::verify_no_leaks().expect_err("one outstanding block");
            assert_eq!((err.count(), err.total_bytes), (1, 100));
            // SAFETY: `p` came from this allocator with `big`.
            unsafe { allocator.dealloc(p, big) };
        });
    }

    #[test]
    fn nothing_is_tracked_outside_scopes_while_disabled() {
        // Other tests may enable tracking process-wide; this thread checks its own scope only.
        let allocator = Diagnostic::new(System);
        let small = layout(16, 8);
        // SAFETY: a valid layout; released below.
        let p = unsafe { allocator.alloc(small) };
        let outer = LeakTracker::run_scoped(LeakTracker::leaks);
        assert!(outer.iter().all(|l| l.address != p as usize));
        // SAFETY: `p` came from this allocator with `small`.
        unsafe { allocator.dealloc(p, small) };
    }

    #[test]
    fn adaptive_tracks_only_in_debug_builds() {
        let allocator = Adaptive::new(System);
        LeakTracker::run_scoped(|| {
            let small = layout(24, 8);
            // SAFETY: a valid layout; released below.
            let p = unsafe { allocator.alloc(small) };
            let tracked = LeakTracker::leaks().iter().any(|l| l.address == p as usize);
            assert_eq!(tracked, cfg!(debug_assertions));
            // SAFETY: `p` came from this allocator with `small`.
            unsafe { allocator.dealloc(p, small) };
        });
    }

    #[test]
    fn wrappers_are_as_large_as_their_inner_allocator() {
        struct Counting {
            _count: std::sync::atomic::AtomicUsize,
            _limit: usize,
        }
        assert_eq!(std::mem::size_of::<Adaptive>(), std::mem::size_of::<System>());
        assert_eq!(std::mem::size_of::<Adaptive<Counting>>(), std::mem::size_of::<Counting>());
        assert_eq!(std::mem::size_of::<Diagnostic<Counting>>(), std::mem::size_of::<Counting>());
    }
}
