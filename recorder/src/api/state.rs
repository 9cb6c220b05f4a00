//! Whether anything should be tracked right now: the process-wide switch
//! (`LeakTracker::enable` / `disable`) and the number of live scopes, in one atomic word so the
//! allocation path pays one relaxed load when nothing is tracked. Starting to track also
//! registers the fork handlers (once).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use super::mem::monotonic_ns;
use super::platform;
use super::registry::REGISTRY;

/// Bit 0: tracking enabled process-wide; the rest: live scopes × 2.
static WANTED: AtomicUsize = AtomicUsize::new(0);
const ENABLED_BIT: usize = 1;
const SCOPE_UNIT: usize = 2;

/// When tracking first started (enable or first scope), for reports' relative times.
static EPOCH_NS: AtomicU64 = AtomicU64::new(0);

/// Whether any allocation could be tracked now (enabled, or some thread is in a scope).
#[inline]
pub(crate) fn wanted() -> bool {
    WANTED.load(Ordering::Relaxed) != 0
}

/// Whether tracking is enabled process-wide. Sequentially consistent with `set_enabled` and
/// the process registry's id (see `scope::current_owner`): a plain load on x86.
pub(crate) fn enabled() -> bool {
    WANTED.load(Ordering::SeqCst) & ENABLED_BIT != 0
}

pub(crate) fn set_enabled(on: bool) {
    if on {
        mark_epoch();
        WANTED.fetch_or(ENABLED_BIT, Ordering::SeqCst);
    } else {
        WANTED.fetch_and(!ENABLED_BIT, Ordering::SeqCst);
    }
}

pub(crate) fn scope_started() {
    mark_epoch();
    WANTED.fetch_add(SCOPE_UNIT, Ordering::Relaxed);
}

pub(crate) fn scope_ended() {
    WANTED.fetch_sub(SCOPE_UNIT, Ordering::Relaxed);
}

fn mark_epoch() {
    let _ = EPOCH_NS.compare_exchange(0, monotonic_ns(), Ordering::Relaxed, Ordering::Relaxed);
    register_fork_handlers();
}

static FORK_HANDLERS: AtomicBool = AtomicBool::new(false);

/// A child must not inherit a lock held by a thread that does not exist in it: the tracker's
/// locks are all taken before `fork` and released after it, in parent and child.
fn register_fork_handlers() {
    if FORK_HANDLERS.swap(true, Ordering::AcqRel) {
        return;
    }
    // SAFETY: registering handlers with the required signatures; registration may allocate
    // with the C allocator, never through this one.
    unsafe { libc::pthread_atfork(Some(before_fork), Some(after_fork_in_parent), Some(after_fork_in_child)) };
}

extern "C" fn before_fork() {
    platform::before_fork();
    REGISTRY.lock_all();
}

extern "C" fn after_fork_in_parent() {
    REGISTRY.unlock_all();
    platform::after_fork(false);
}

extern "C" fn after_fork_in_child() {
    REGISTRY.unlock_all();
    platform::after_fork(true);
}

/// When tracking first started (CLOCK_MONOTONIC ns), or 0 if it never did.
pub(crate) fn epoch_ns() -> u64 {
    EPOCH_NS.load(Ordering::Relaxed)
}
