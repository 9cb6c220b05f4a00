//! One-line leak checks for tests: [`LeakGuard`] (a scope that fails the test when dropped with
//! blocks outstanding) and [`assert_no_leaks`] (the same around a closure).

use super::leak::LeakError;
use super::platform;
use super::scope::{self, ScopeFrame};
use super::tracker::LeakTracker;

/// Makes the current test fail if it leaks: from `LeakGuard::new()` until the guard is dropped,
/// the calling thread's allocations go to a registry of the guard's own (as in
/// [`LeakTracker::run_scoped`]), and dropping the guard panics with the [`LeakError`] report if
/// any is still outstanding. Parallel tests do not see each other's allocations.
///
/// ```rust,standalone_crate
/// use std::alloc::System;
/// use leakview::{Adaptive, LeakGuard};
///
/// #[global_allocator]
/// static ALLOCATOR: Adaptive = Adaptive::new(System);
///
/// fn main() {
///     let _guard = LeakGuard::new();
///     let text = format!("{}-{}", "no", "leak");
///     assert_eq!(text.len(), 7);
/// } // `text` is freed before `_guard` is dropped: the check passes.
/// ```
///
/// Guards must be dropped on the thread that made them, innermost first (as `let` bindings
/// are). In release builds with [`Adaptive`](super::Adaptive) nothing is tracked and the guard
/// always passes.
#[must_use = "the check runs when the guard is dropped"]
pub struct LeakGuard {
    /// The scope's frame, in the tracker's own memory so that its address is stable.
    frame: Option<Box<ScopeFrame<'static>>>,
    inside: Option<scope::Entered>,
}

impl LeakGuard {
    /// Starts checking.
    ///
    /// # Panics
    /// In debug builds, if no allocation is tracked at all (neither `Adaptive` nor `Diagnostic`
    /// is the global allocator): the check could then never fail.
    #[track_caller]
    #[allow(clippy::new_without_default, reason = "making a guard starts a check; `Default` would hide that")]
    pub fn new() -> LeakGuard {
        let frame = {
            let _entered = platform::enter();
            Box::new(ScopeFrame::new(None))
        };
        let inside = scope::Entered::enter(&frame);
        let guard = LeakGuard { frame: Some(frame), inside: Some(inside) };
        if cfg!(debug_assertions) && !guard.tracks_allocations() {
            drop(guard.finish());
            panic!(
                "leakview::LeakGuard: allocations are not tracked; install a tracking global allocator, \
e.g. `#[global_allocator] static A: leakview::Adaptive = leakview::Adaptive::new(std::alloc::System);`"
            );
        }
        guard
    }

    /// Whether an allocation made now lands in this guard's registry.
    fn tracks_allocations(&self) -> bool {
        scope::probe_lands_in(scope::current_registry())
    }

    /// Ends the scope and returns what was still outstanding.
    fn finish(mut self) -> Result<(), LeakError> {
        self.end()
    }

    fn end(&mut self) -> Result<(), LeakError> {
        if self.inside.is_none() {
            return Ok(());
        }
        let result = LeakTracker::verify_no_leaks();
        self.inside = None;
        let _entered = platform::enter();
        self.frame = None;
        result
    }
}

impl Drop for LeakGuard {
    fn drop(&mut self) {
        let result = self.end();
        if let Err(error) = result
            && !std::thread::panicking()
        {
            panic!("{error}");
        }
    }
}

/// Runs `f` in its own scope and panics with the [`LeakError`] report if anything it allocated
/// is still outstanding when it returns; returns `f`'s result otherwise.
///
/// ```rust,standalone_crate
/// use std::alloc::System;
/// use leakview::{Diagnostic, assert_no_leaks};
///
/// #[global_allocator]
/// static ALLOCATOR: Diagnostic = Diagnostic::new(System);
///
/// fn main() {
///     let sum = assert_no_leaks(|| (0..100).map(|i| vec![i; 3].iter().sum::<u32>()).sum::<u32>());
///     assert_eq!(sum, 14850);
/// }
/// ```
#[track_caller]
pub fn assert_no_leaks<R>(f: impl FnOnce() -> R) -> R {
    let guard = LeakGuard::new();
    let result = f();
    if let Err(error) = guard.finish() {
        panic!("{error}");
    }
    result
}
