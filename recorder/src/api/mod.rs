//! The in-process Rust API: leak tracking without `LD_PRELOAD`, through a global allocator.
//!
//! - [`Adaptive`] / [`Diagnostic`] ([`alloc`]): the `#[global_allocator]` wrappers;
//!   the tracked path they share is in `hooks`.
//! - [`LeakTracker`] (`tracker`): enable/disable, `leaks`, `reset`, `verify_no_leaks`, `emit`,
//!   scopes, `record_to`.
//! - `scope` + [`filter`]: per-thread isolated registries ([`ScopeHandle`] lets other threads
//!   join one) and the filters that drop allocations from them; [`LeakGuard`] / [`assert_no_leaks`] (`guard`): one-line test checks.
//! - [`Leak`], [`Backtrace`], [`Frame`], [`LeakError`] (`leak`), symbolized at report time
//!   (`symbolize`); [`LeaksEmitter`], [`ConsoleEmitter`], [`JsonEmitter`] (`emit`).
//! - `registry`: the table of tracked blocks; `state`: the switches; `mem`: the tracker's own
//!   memory (mmap), lock and clock.
//! - `platform`: the per-thread guard, stack capture and trace writing. On Linux it is the
//!   recording engine (`platform_engine`: initial-exec TLS, framehop unwinding on x86_64, the
//!   engine's stack trie and trace session); elsewhere `platform_portable` (a thread-local
//!   guard, the `backtrace` crate's unwinder, stacks of at most 30 frames kept inline, no trace
//!   recording). Two test-only switches: `--cfg leakview_portable` uses the portable layer on
//!   Linux, `--cfg leakview_backtrace_capture` makes the engine layer capture with the
//!   `backtrace` crate (as on Linux targets other than x86_64).

pub mod alloc;
mod capture_backtrace;
mod emit;
pub mod filter;
mod guard;
mod hooks;
mod leak;
mod mem;
mod registry;
mod scope;
mod state;
mod symbolize;
mod tracker;

#[cfg(all(target_os = "linux", not(leakview_portable)))]
#[path = "platform_engine.rs"]
mod platform;
#[cfg(not(all(target_os = "linux", not(leakview_portable))))]
#[path = "platform_portable.rs"]
mod platform;
#[cfg(test)]
mod platform_contract;

pub use alloc::{Adaptive, Diagnostic};
pub use emit::{ConsoleEmitter, JSON_SCHEMA, JsonEmitter, LeaksEmitter};
pub use filter::{Allocation, AllocationFilter};
pub use guard::{LeakGuard, assert_no_leaks};
pub use leak::{Backtrace, Frame, Leak, LeakError};
pub use scope::ScopeHandle;
pub use tracker::LeakTracker;
