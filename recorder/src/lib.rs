//! leakview's recording engine (`engine`), used by the LD_PRELOAD library
//! `libleakview_preload.so`, and the in-process Rust API ([`api`]).
//!
//! The engine records every allocation and free of a process into a leakview trace (see the
//! `leakview-format` crate): per-thread lock-free streams, DWARF-unwound call stacks interned as
//! a trie, and the module map needed to symbolize them offline. It is Linux-only.
//!
//! # Tracking leaks in a Rust program
//!
//! Install [`Adaptive`] (tracks in debug builds, vanishes in release builds) or [`Diagnostic`]
//! (tracks in every build) as the global allocator, enable tracking, and ask:
//!
//! ```rust,standalone_crate
//! use std::alloc::System;
//! use leakview::{Adaptive, LeakTracker};
//!
//! #[global_allocator]
//! static ALLOCATOR: Adaptive = Adaptive::new(System);
//!
//! fn main() {
//!     LeakTracker::enable_in_debug();
//!     let forgotten = Box::leak(Box::new([0u8; 256]));
//!     let leaks = LeakTracker::leaks();
//!     if LeakTracker::enabled() {
//!         // A debug build of leakview: tracked.
//!         let leak = leaks.iter().find(|l| l.address == forgotten.as_ptr() as usize).unwrap();
//!         assert_eq!(leak.size, 256);
//!         // Symbolized on demand: the frames say where the block was allocated.
//!         assert!(leak.backtrace.user_frames().iter().any(|f| {
//!             f.function.as_deref().is_some_and(|name| name.contains("main"))
//!         }));
//!     }
//!     LeakTracker::reset();
//!     LeakTracker::verify_no_leaks_in_debug().unwrap();
//! }
//! ```
//!
//! In tests, [`LeakGuard`] and [`assert_no_leaks`] make a test fail when it leaks;
//! [`LeakTracker::run_scoped`] isolates a piece of code; [`LeakTracker::emit`] writes a report
//! ([`ConsoleEmitter`], [`JsonEmitter`]); [`LeakTracker::record_to`] writes a leakview trace for
//! `leakview report` and the browser.

pub mod api;
#[cfg(target_os = "linux")]
pub mod engine;

pub use api::{
    Adaptive, Allocation, AllocationFilter, Backtrace, ConsoleEmitter, Diagnostic, Frame, JsonEmitter, Leak,
    LeakError, LeakGuard, LeakTracker, LeaksEmitter, ScopeHandle, assert_no_leaks,
};
