//! The two global allocators: [`Adaptive`] (tracks in debug builds, a pure pass-through in
//! release builds) and [`Diagnostic`] (tracks in every build). Both wrap an inner allocator,
//! [`System`] by default, and record nothing until tracking is enabled
//! ([`LeakTracker::enable`](super::LeakTracker::enable)) or a scope is entered.

use std::alloc::{GlobalAlloc, Layout, System};

#[cfg(debug_assertions)]
use super::hooks;

/// A global allocator that tracks allocations in debug builds and vanishes in release builds.
///
/// "Debug build" means `debug_assertions` as this crate was compiled: Cargo compiles
/// dependencies with the same setting as your crate unless a profile override says otherwise.
/// In release builds every method is the inner allocator's, inlined, with no tracking code at
/// all: `Adaptive<A>` is exactly as large as `A`, and costs exactly what `A` costs.
///
/// ```rust,standalone_crate
/// use std::alloc::System;
/// use leakview::{Adaptive, LeakTracker};
///
/// #[global_allocator]
/// static ALLOCATOR: Adaptive = Adaptive::new(System);
///
/// fn main() {
///     LeakTracker::enable_in_debug();
///     let kept = vec![1u8; 100];
///     drop(kept);
///     LeakTracker::verify_no_leaks_in_debug().expect("no leaks");
/// }
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct Adaptive<A = System> {
    inner: A,
}

impl<A> Adaptive<A> {
    /// Wraps `inner` (usable in a `static`).
    pub const fn new(inner: A) -> Adaptive<A> {
        Adaptive { inner }
    }

    /// The wrapped allocator.
    pub const fn inner(&self) -> &A {
        &self.inner
    }
}

// SAFETY: every method forwards to the inner allocator with the caller's arguments; the debug
// tracking path records the result of the same call and never changes what is returned.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Adaptive<A> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        #[cfg(debug_assertions)]
        // SAFETY: the caller's contract, forwarded.
        return unsafe { hooks::alloc(&self.inner, layout) };
        #[cfg(not(debug_assertions))]
        // SAFETY: the caller's contract, forwarded.
        return unsafe { self.inner.alloc(layout) };
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        #[cfg(debug_assertions)]
        // SAFETY: the caller's contract, forwarded.
        return unsafe { hooks::alloc_zeroed(&self.inner, layout) };
        #[cfg(not(debug_assertions))]
        // SAFETY: the caller's contract, forwarded.
        return unsafe { self.inner.alloc_zeroed(layout) };
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        #[cfg(debug_assertions)]
        // SAFETY: the caller's contract, forwarded.
        return unsafe { hooks::dealloc(&self.inner, ptr, layout) };
        #[cfg(not(debug_assertions))]
        // SAFETY: the caller's contract, forwarded.
        return unsafe { self.inner.dealloc(ptr, layout) };
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        #[cfg(debug_assertions)]
        // SAFETY: the caller's contract, forwarded.
        return unsafe { hooks::realloc(&self.inner, ptr, layout, new_size) };
        #[cfg(not(debug_assertions))]
        // SAFETY: the caller's contract, forwarded.
        return unsafe { self.inner.realloc(ptr, layout, new_size) };
    }
}

/// A global allocator that tracks allocations in every build, for leaks that only show up in
/// release builds. Like [`Adaptive`], it records nothing until tracking is enabled.
///
/// ```rust,standalone_crate
/// use std::alloc::System;
/// use leakview::{Diagnostic, LeakTracker};
///
/// #[global_allocator]
/// static ALLOCATOR: Diagnostic = Diagnostic::new(System);
///
/// fn main() {
///     LeakTracker::enable();
///     let leaked: &'static mut [u8] = Vec::leak(vec![7u8; 4096]);
///     let leaks = LeakTracker::leaks();
///     assert!(leaks.iter().any(|l| l.address == leaked.as_ptr() as usize && l.size == 4096));
/// }
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct Diagnostic<A = System> {
    inner: A,
}

impl<A> Diagnostic<A> {
    /// Wraps `inner` (usable in a `static`).
    pub const fn new(inner: A) -> Diagnostic<A> {
        Diagnostic { inner }
    }

    /// The wrapped allocator.
    pub const fn inner(&self) -> &A {
        &self.inner
    }
}

// SAFETY: as for `Adaptive`: forwarding, with tracking that only observes.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Diagnostic<A> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, forwarded.
        unsafe { super::hooks::alloc(&self.inner, layout) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, forwarded.
        unsafe { super::hooks::alloc_zeroed(&self.inner, layout) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, forwarded.
        unsafe { super::hooks::dealloc(&self.inner, ptr, layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract, forwarded.
        unsafe { super::hooks::realloc(&self.inner, ptr, layout, new_size) }
    }
}
