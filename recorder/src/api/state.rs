//! Whether anything should be tracked right now: the process-wide switch
//! (`LeakTracker::enable` / `disable`) and the number of live scopes, in one atomic word so the
//! allocation path pays one relaxed load when nothing is tracked.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use super::mem::monotonic_ns;

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

/// Whether tracking is enabled process-wide.
pub(crate) fn enabled() -> bool {
    WANTED.load(Ordering::Relaxed) & ENABLED_BIT != 0
}

pub(crate) fn set_enabled(on: bool) {
    if on {
        mark_epoch();
        WANTED.fetch_or(ENABLED_BIT, Ordering::Relaxed);
    } else {
        WANTED.fetch_and(!ENABLED_BIT, Ordering::Relaxed);
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
}

/// When tracking first started (CLOCK_MONOTONIC ns), or 0 if it never did.
pub(crate) fn epoch_ns() -> u64 {
    EPOCH_NS.load(Ordering::Relaxed)
}
