//! [`LeakTracker`]: the switch, the queries and the reports of the in-process tracker.

use std::io;
use std::path::{Path, PathBuf};

use super::emit::LeaksEmitter;
use super::filter::AllocationFilter;
use super::leak::{Backtrace, Leak, LeakError};
use super::platform;
use super::registry::REGISTRY;
use super::scope::{self, ScopeFrame, ScopeHandle};
use super::state;
use super::symbolize;

/// The in-process leak tracker. Needs [`Adaptive`](super::Adaptive) (debug builds) or
/// [`Diagnostic`](super::Diagnostic) as the `#[global_allocator]`; records nothing until
/// [`enable`](LeakTracker::enable) (or inside [`run_scoped`](LeakTracker::run_scoped)).
///
/// Queries ([`leaks`](LeakTracker::leaks), [`verify_no_leaks`](LeakTracker::verify_no_leaks),
/// [`emit`](LeakTracker::emit), [`reset`](LeakTracker::reset)) act on the process-wide registry,
/// or, on a thread inside a scope, on that scope's registry only.
#[derive(Debug, Clone, Copy)]
pub struct LeakTracker;

/// Why `record_to` refuses when allocations are not tracked.
const UNTRACKED: &str = "leakview: allocations are not tracked, so the trace would stay empty: install \
leakview::Diagnostic as the #[global_allocator] (leakview::Adaptive tracks in debug builds only)";

impl LeakTracker {
    /// Starts tracking allocations process-wide (blocks allocated before stay untracked).
    pub fn enable() {
        state::set_enabled(true);
    }

    /// [`enable`](LeakTracker::enable) in debug builds (`debug_assertions`); nothing in release
    /// builds.
    pub fn enable_in_debug() {
        #[cfg(debug_assertions)]
        Self::enable();
    }

    /// Stops tracking new allocations process-wide. Blocks already tracked stay in the registry
    /// (frees of them are still seen) until [`reset`](LeakTracker::reset).
    pub fn disable() {
        state::set_enabled(false);
    }

    /// Whether tracking is enabled process-wide.
    pub fn enabled() -> bool {
        state::enabled()
    }

    /// The outstanding tracked blocks of the current registry, oldest first. (The returned
    /// memory is the tracker's own: it is never reported as a leak itself.)
    pub fn leaks() -> Vec<Leak> {
        let Some(_entered) = platform::enter() else { return Vec::new() };
        let registry = scope::current_registry();
        let mut records = Vec::new();
        REGISTRY.for_each(|r| {
            if r.owner == registry {
                records.push(*r);
            }
        });
        records.sort_by_key(|r| (r.timestamp, r.address));
        records
            .into_iter()
            .map(|r| {
                let mut addresses = Vec::new();
                platform::addresses(r.stack, &mut addresses);
                Leak {
                    address: r.address,
                    size: r.size,
                    align: r.align,
                    thread: r.thread,
                    timestamp: r.timestamp,
                    backtrace: Backtrace::from_addresses(addresses),
                }
            })
            .collect()
    }

    /// Forgets every block of the current registry (they will not be reported; their frees are
    /// ignored). After `disable()` then `reset()`, the process-wide registry stays empty even
    /// while other threads allocate: a block whose allocation was under way on another thread
    /// when tracking was disabled is forgotten with the rest.
    pub fn reset() {
        let _entered = platform::enter();
        if scope::in_process_registry() {
            scope::reset_process_registry();
        } else {
            let registry = scope::current_registry();
            REGISTRY.remove_where(|r| r.owner == registry);
        }
    }

    /// `Ok` if the current registry has no outstanding blocks; otherwise a [`LeakError`] whose
    /// `Display` lists them (count, total bytes, each block's size and top frames).
    ///
    /// What the standard library keeps for itself is not counted: stdout's and stdin's buffers
    /// (made on first use and kept for the life of the process), the test harness's captured
    /// output (grown by `println!` inside a test and freed by the harness after it), and the
    /// symbolization cache a caught panic's backtrace leaves. [`leaks`] lists them with the rest.
    ///
    /// [`leaks`]: LeakTracker::leaks
    ///
    /// Outside a scope this is the process-wide registry, which holds the blocks of every
    /// thread: in a test suite whose tests run in parallel (the default of `cargo test`), a
    /// test checking it sees the other tests' blocks too. Check each test with [`LeakGuard`],
    /// [`assert_no_leaks`] or [`run_scoped`], which see the calling thread's allocations only
    /// (or run the tests one at a time: `cargo test -- --test-threads=1`). When blocks of other
    /// threads are reported, the error says so.
    ///
    /// [`LeakGuard`]: super::LeakGuard
    /// [`assert_no_leaks`]: super::assert_no_leaks
    /// [`run_scoped`]: LeakTracker::run_scoped
    pub fn verify_no_leaks() -> Result<(), LeakError> {
        let leaks = Self::outstanding();
        if leaks.is_empty() {
            return Ok(());
        }
        let entered = platform::enter();
        Err(match entered {
            Some(mut entered) if scope::in_process_registry() => {
                LeakError::process_wide(leaks, entered.thread_id())
            }
            _ => LeakError::new(leaks),
        })
    }

    /// The outstanding blocks of the current registry, without those the standard library
    /// keeps for itself (see [`verify_no_leaks`](LeakTracker::verify_no_leaks)).
    fn outstanding() -> Vec<Leak> {
        let mut leaks = Self::leaks();
        if leaks.is_empty() {
            return leaks;
        }
        let _entered = platform::enter();
        // Symbolize now, with the guard held, so the frames are the tracker's memory.
        leaks.retain(|leak| !symbolize::is_std_own_block(leak.backtrace.frames()));
        leaks
    }

    /// [`verify_no_leaks`](LeakTracker::verify_no_leaks) in debug builds; always `Ok` in release
    /// builds.
    pub fn verify_no_leaks_in_debug() -> Result<(), LeakError> {
        #[cfg(debug_assertions)]
        return Self::verify_no_leaks();
        #[cfg(not(debug_assertions))]
        return Ok(());
    }

    /// Sends the outstanding blocks of the current registry to `emitter`, without those the
    /// standard library keeps for itself (as [`verify_no_leaks`](LeakTracker::verify_no_leaks)
    /// leaves them out; [`leaks`](LeakTracker::leaks) has them).
    ///
    /// ```
    /// use leakview::{ConsoleEmitter, JsonEmitter, LeakTracker};
    ///
    /// LeakTracker::emit(&ConsoleEmitter::new())?;
    /// let dir = std::env::temp_dir().join(format!("leakview-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// LeakTracker::emit(&JsonEmitter::new(dir.join("leaks.json")))?;
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn emit<E: LeaksEmitter + ?Sized>(emitter: &E) -> io::Result<()> {
        let leaks = Self::outstanding();
        let result = emitter.emit(&leaks);
        let _entered = platform::enter();
        drop(leaks);
        result
    }

    /// Runs `f` with tracking on for the calling thread, in a registry of its own: inside `f`,
    /// [`leaks`](LeakTracker::leaks), [`verify_no_leaks`](LeakTracker::verify_no_leaks),
    /// [`emit`](LeakTracker::emit) and [`reset`](LeakTracker::reset) act on this scope only, and
    /// the outer registry is untouched. Only the calling thread's allocations enter the scope
    /// (threads that `f` starts are not in it); a block of the scope freed on any thread leaves
    /// it. Blocks still outstanding when `f` returns are forgotten with the scope. A thread
    /// started in `f` joins the scope with the handle [`current_scope`] gives:
    /// see [`ScopeHandle`].
    ///
    /// [`current_scope`]: LeakTracker::current_scope
    ///
    /// ```
    /// use leakview::LeakTracker;
    ///
    /// let leaked = LeakTracker::run_scoped(|| {
    ///     let _temporary = vec![0u8; 32];
    ///     LeakTracker::leaks().len()
    /// });
    /// // With a tracking global allocator installed, `_temporary` is still alive when `leaks`
    /// // is called; without one, nothing is tracked.
    /// assert!(leaked <= 1);
    /// ```
    pub fn run_scoped<R>(f: impl FnOnce() -> R) -> R {
        let frame = ScopeFrame::new(None);
        let _inside = scope::Entered::enter(&frame);
        f()
    }

    /// A handle to the calling thread's innermost scope ([`run_scoped`](LeakTracker::run_scoped),
    /// [`run_scoped_with`](LeakTracker::run_scoped_with) or a [`LeakGuard`](super::LeakGuard)),
    /// for the threads the scope starts to join it with [`ScopeHandle::run`]; `None` outside
    /// scopes.
    pub fn current_scope() -> Option<ScopeHandle> {
        scope::current_handle()
    }

    /// [`run_scoped`](LeakTracker::run_scoped) with a filter deciding which allocations the
    /// scope keeps (see [`AllocationFilter`]).
    pub fn run_scoped_with<R>(filter: impl AllocationFilter, f: impl FnOnce() -> R) -> R {
        let frame = ScopeFrame::new(Some(&filter));
        let _inside = scope::Entered::enter(&frame);
        f()
    }

    /// Enables tracking and writes every tracked allocation, reallocation and free from now on
    /// into a leakview trace at `path`, with its call stack, so that `leakview report TRACE` and
    /// `leakview TRACE` can analyse an in-process recording. An existing file is never
    /// replaced: the trace then goes beside it (`<stem>.<pid>.bin`); the path written is
    /// returned. The trace is marked complete at process exit or by
    /// [`stop_recording`](LeakTracker::stop_recording). One trace per process; Linux only
    /// (elsewhere this returns an `Unsupported` error).
    ///
    /// # Errors
    /// Besides the trace file's own errors, an `Unsupported` error, and no file, when no
    /// allocation would be tracked: no tracking global allocator is installed, or it is
    /// [`Adaptive`](super::Adaptive) in a release build (use [`Diagnostic`](super::Diagnostic)
    /// to record release builds).
    pub fn record_to(path: impl AsRef<Path>) -> io::Result<PathBuf> {
        if !scope::allocations_tracked() {
            return Err(io::Error::new(io::ErrorKind::Unsupported, UNTRACKED));
        }
        let written = platform::start_recording(path.as_ref())?;
        Self::enable();
        Ok(written)
    }

    /// Marks the trace started by [`record_to`](LeakTracker::record_to) complete and stops
    /// writing to it (tracking itself goes on). Returns whether a trace was being written.
    pub fn stop_recording() -> bool {
        platform::stop_recording()
    }

    /// Whether a trace is being written.
    pub fn recording() -> bool {
        platform::recording()
    }
}
