//! Scope filters: which allocations a scope keeps. A filter runs inside the allocation it
//! judges (with the tracker's reentrancy guard held, so what it allocates is never tracked and
//! tracker queries made from it see nothing) and sees the block's size and alignment at once;
//! its stack is symbolized only if the filter asks for it — cheap filters stay cheap. Since it
//! runs inside an allocation, a filter must not wait for a lock that the code in the scope may
//! hold while allocating. A filter that panics keeps the allocation.

use std::sync::OnceLock;

use super::leak::Backtrace;
use super::platform;
use super::registry::Record;

/// Decides whether a scope keeps an allocation. Any `Fn(&Allocation) -> bool` is one.
///
/// ```
/// use leakview::{Allocation, LeakTracker};
///
/// // Ignore small blocks and anything allocated under a function named like `cache_fill`.
/// let outstanding = LeakTracker::run_scoped_with(
///     |a: &Allocation<'_>| a.size() >= 64 && !a.backtrace().has_function("cache_fill"),
///     || LeakTracker::leaks().len(),
/// );
/// assert_eq!(outstanding, 0);
/// ```
pub trait AllocationFilter {
    /// `true` to keep (track) the allocation, `false` to drop it from the scope.
    fn keep(&self, allocation: &Allocation<'_>) -> bool;
}

impl<F: Fn(&Allocation<'_>) -> bool> AllocationFilter for F {
    fn keep(&self, allocation: &Allocation<'_>) -> bool {
        self(allocation)
    }
}

/// An allocation being judged by an [`AllocationFilter`].
pub struct Allocation<'a> {
    record: &'a Record,
    backtrace: OnceLock<Backtrace>,
}

impl<'a> Allocation<'a> {
    pub(crate) fn new(record: &'a Record) -> Allocation<'a> {
        Allocation { record, backtrace: OnceLock::new() }
    }

    /// Requested size in bytes.
    pub fn size(&self) -> usize {
        self.record.size
    }

    /// Requested alignment.
    pub fn align(&self) -> usize {
        self.record.align
    }

    /// Address of the new block.
    pub fn address(&self) -> usize {
        self.record.address
    }

    /// OS id of the allocating thread.
    pub fn thread(&self) -> u64 {
        self.record.thread
    }

    /// The allocation's call stack (its frames are symbolized when first asked for).
    pub fn backtrace(&self) -> &Backtrace {
        self.backtrace.get_or_init(|| {
            let mut addresses = Vec::new();
            platform::addresses(self.record.stack, &mut addresses);
            Backtrace::from_addresses(addresses)
        })
    }
}

/// Keeps blocks of at least `bytes` bytes.
pub fn min_size(bytes: usize) -> impl AllocationFilter {
    move |a: &Allocation<'_>| a.size() >= bytes
}

/// Drops blocks allocated with a function whose name contains `pattern` on the stack.
pub fn ignore_function(pattern: impl Into<String>) -> impl AllocationFilter {
    let pattern = pattern.into();
    move |a: &Allocation<'_>| !a.backtrace().has_function(&pattern)
}
