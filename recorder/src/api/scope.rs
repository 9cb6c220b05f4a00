//! Scopes: per-thread, isolated registries. While a thread is inside a scope, every block it
//! allocates belongs to the innermost scope (whatever the process-wide switch says), and the
//! tracker's queries on that thread (`leaks`, `verify_no_leaks`, `emit`, `reset`) see only that
//! scope. A scope's blocks leave it when freed on any thread; the blocks still outstanding when
//! the scope ends are forgotten with it.
//!
//! Other threads do not enter a scope by themselves; a [`ScopeHandle`] lets one join it (its
//! allocations then belong to the scope too), for as long as the scope lasts.
//!
//! The innermost scope of each thread is a pointer in a const-initialised thread-local to a
//! frame on the stack of `run_scoped_with` (or in a `LeakGuard`, or of `ScopeHandle::run`);
//! frames link to the scope they were entered in.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use super::filter::{Allocation, AllocationFilter};
use super::platform;
use super::registry::{GLOBAL_OWNER, REGISTRY, Record};
use super::state;

/// One entered scope: the scope itself, or another thread's membership of it.
pub(crate) struct ScopeFrame<'a> {
    id: u32,
    filter: Option<&'a dyn AllocationFilter>,
    /// Cleared when the scope ends; shared with its [`ScopeHandle`]s.
    alive: Arc<AtomicBool>,
    /// A thread that joined the scope through a handle (the scope is not its to end).
    joined: bool,
}

impl<'a> ScopeFrame<'a> {
    pub(crate) fn new(filter: Option<&'a dyn AllocationFilter>) -> ScopeFrame<'a> {
        // The tracker's own memory: never in any registry.
        let alive = {
            let _entered = platform::enter();
            Arc::new(AtomicBool::new(true))
        };
        ScopeFrame { id: NEXT_ID.fetch_add(1, Ordering::Relaxed), filter, alive, joined: false }
    }
}

/// A scope, to be joined from another thread: while [`ScopeHandle::run`] runs a closure, the
/// calling thread's allocations belong to the scope (as if the scope's own thread had made
/// them) and the tracker's queries on that thread act on the scope.
///
/// Get one with [`LeakTracker::current_scope`](super::LeakTracker::current_scope) inside
/// [`run_scoped`](super::LeakTracker::run_scoped) or a [`LeakGuard`](super::LeakGuard), and
/// move it into the threads the scope starts, so that their leaks count too:
///
/// ```rust,standalone_crate
/// use std::alloc::System;
/// use leakview::{Diagnostic, LeakTracker};
///
/// #[global_allocator]
/// static ALLOCATOR: Diagnostic = Diagnostic::new(System);
///
/// fn main() {
///     let outstanding = LeakTracker::run_scoped(|| {
///         let scope = LeakTracker::current_scope().expect("inside a scope");
///         std::thread::spawn(move || scope.run(|| std::mem::forget(vec![0u8; 64])))
///             .join()
///             .expect("worker");
///         LeakTracker::leaks().len()
///     });
///     assert_eq!(outstanding, 1);
/// }
/// ```
///
/// The scope's [`AllocationFilter`] is not applied on joined threads. Join worker threads
/// before the scope ends: what they still hold then is reported by a `LeakGuard`, and once
/// the scope has ended, `run` no longer adds anything to it (the closure then runs as if no
/// handle were used).
#[derive(Clone, Debug)]
pub struct ScopeHandle {
    id: u32,
    alive: Arc<AtomicBool>,
}

impl ScopeHandle {
    /// Runs `f` on the calling thread as a member of the scope, and returns its result.
    pub fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        if !self.alive.load(Ordering::Acquire) {
            return f();
        }
        let frame = ScopeFrame { id: self.id, filter: None, alive: self.alive.clone(), joined: true };
        let _inside = Entered::enter(&frame);
        f()
    }

    /// Whether the scope is still going on.
    pub fn is_active(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }
}

/// A handle to the calling thread's innermost scope, if it is in one.
pub(crate) fn current_handle() -> Option<ScopeHandle> {
    let frame = current_frame();
    if frame.is_null() {
        return None;
    }
    // SAFETY: see `Owner::keeps`; cloning an `Arc` does not allocate.
    let frame = unsafe { &*frame };
    Some(ScopeHandle { id: frame.id, alive: frame.alive.clone() })
}

static NEXT_ID: AtomicU32 = AtomicU32::new(GLOBAL_OWNER + 1);

/// The id the process-wide registry's blocks carry now. [`reset_process_registry`] gives it a
/// new one, so a block whose allocation began before a reset and is recorded after it keeps
/// the old id and is not seen by queries (it stays invisible until freed).
static PROCESS_REGISTRY: AtomicU32 = AtomicU32::new(GLOBAL_OWNER);

/// Forgets the process-wide registry's blocks: a new id first, then the blocks of the old one.
pub(crate) fn reset_process_registry() {
    let old = PROCESS_REGISTRY.swap(NEXT_ID.fetch_add(1, Ordering::Relaxed), Ordering::SeqCst);
    REGISTRY.remove_where(|r| r.owner == old);
}

thread_local! {
    static CURRENT: Cell<*const ScopeFrame<'static>> = const { Cell::new(std::ptr::null()) };
}

fn current_frame() -> *const ScopeFrame<'static> {
    CURRENT.try_with(Cell::get).unwrap_or(std::ptr::null())
}

/// Who a new block on this thread belongs to.
pub(crate) struct Owner {
    pub(crate) id: u32,
    frame: *const ScopeFrame<'static>,
}

impl Owner {
    /// Whether the owner's filter keeps `record` (always, without a filter). A filter that
    /// panics keeps it. Call with the thread's guard held.
    pub(crate) fn keeps(&self, record: &Record) -> bool {
        if self.frame.is_null() {
            return true;
        }
        // SAFETY: the frame is the calling thread's current scope, alive while the thread is
        // inside it — which it is, since this runs during one of its allocations.
        let Some(filter) = (unsafe { (*self.frame).filter }) else { return true };
        let allocation = Allocation::new(record);
        catch_unwind(AssertUnwindSafe(|| filter.keep(&allocation))).unwrap_or(true)
    }
}

/// The owner of a block allocated now on this thread: its innermost scope, else the process
/// registry if tracking is enabled, else nobody.
#[inline]
pub(crate) fn current_owner() -> Option<Owner> {
    let frame = current_frame();
    if !frame.is_null() {
        // SAFETY: see `Owner::keeps`.
        return Some(Owner { id: unsafe { (*frame).id }, frame });
    }
    // The id is read before the switch: a thread that saw tracking on before `disable` then
    // holds the id from before any `reset` that follows it.
    let id = PROCESS_REGISTRY.load(Ordering::SeqCst);
    state::enabled().then_some(Owner { id, frame })
}

/// Whether an allocation made now on the calling thread would be tracked at all, i.e. whether
/// a tracking global allocator is installed: a probe allocated inside a scope of its own.
pub(crate) fn allocations_tracked() -> bool {
    let frame = ScopeFrame::new(None);
    let _inside = Entered::enter(&frame);
    probe_lands_in(frame.id)
}

/// Whether a block allocated now lands in registry `id`.
pub(crate) fn probe_lands_in(id: u32) -> bool {
    let probe = std::hint::black_box(Box::new(0x6c65_616b_u64));
    let address = &*probe as *const u64 as usize;
    let mut seen = false;
    {
        let _entered = platform::enter();
        REGISTRY.for_each(|r| seen |= r.owner == id && r.address == address);
    }
    drop(probe);
    seen
}

/// The registry the calling thread's queries act on.
pub(crate) fn current_registry() -> u32 {
    let frame = current_frame();
    // SAFETY: see `Owner::keeps`.
    if frame.is_null() { PROCESS_REGISTRY.load(Ordering::SeqCst) } else { unsafe { (*frame).id } }
}

/// Whether the calling thread's queries act on the process-wide registry (it is in no scope).
pub(crate) fn in_process_registry() -> bool {
    current_frame().is_null()
}

/// The calling thread is inside `frame` until this is dropped (on the same thread).
pub(crate) struct Entered {
    id: u32,
    parent: *const ScopeFrame<'static>,
    alive: Arc<AtomicBool>,
    joined: bool,
}

impl Entered {
    /// Enters `frame`, which must outlive the returned value and stay where it is.
    pub(crate) fn enter(frame: &ScopeFrame<'_>) -> Entered {
        let parent = current_frame();
        let ptr = (frame as *const ScopeFrame<'_>).cast::<ScopeFrame<'static>>();
        let _ = CURRENT.try_with(|c| c.set(ptr));
        state::scope_started();
        Entered { id: frame.id, parent, alive: frame.alive.clone(), joined: frame.joined }
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        let _ = CURRENT.try_with(|c| c.set(self.parent));
        state::scope_ended();
        if self.joined {
            // The scope forgets its blocks when it ends; a joined thread that was still adding
            // to it then forgets what it added since.
            if self.alive.load(Ordering::Acquire) {
                return;
            }
        } else {
            self.alive.store(false, Ordering::Release);
        }
        let _guard = platform::enter();
        let id = self.id;
        REGISTRY.remove_where(|r| r.owner == id);
    }
}

#[cfg(test)]
mod tests {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::Barrier;

    use super::*;
    use crate::api::{Diagnostic, LeakTracker};

    fn blocks_of(id: u32) -> usize {
        let _entered = platform::enter();
        let mut count = 0;
        REGISTRY.for_each(|r| count += usize::from(r.owner == id));
        count
    }

    #[test]
    fn a_thread_still_in_a_scope_when_it_ends_leaves_nothing_behind() {
        let allocator = Diagnostic::new(System);
        let layout = Layout::from_size_align(48, 8).expect("layout");
        let (joined, ended) = (Barrier::new(2), Barrier::new(2));
        let mut id = 0;
        std::thread::scope(|threads| {
            let worker = LeakTracker::run_scoped(|| {
                let handle = current_handle().expect("in a scope");
                id = handle.id;
                let (joined, ended) = (&joined, &ended);
                let allocator = &allocator;
                let worker = threads.spawn(move || {
                    handle.run(|| {
                        // SAFETY: a valid layout; the block is never freed (a leak).
                        let before = unsafe { allocator.alloc(layout) } as usize;
                        joined.wait();
                        ended.wait();
                        // SAFETY: as above.
                        let after = unsafe { allocator.alloc(layout) } as usize;
                        (before, after)
                    })
                });
                joined.wait();
                assert_eq!(blocks_of(id), 1, "the worker's block is the scope's");
                worker
            });
            ended.wait();
            let (before, after) = worker.join().expect("worker");
            assert!(before != 0 && after != 0);
        });
        assert_eq!(blocks_of(id), 0);
    }
}
