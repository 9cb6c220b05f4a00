//! Scopes: per-thread, isolated registries. While a thread is inside a scope, every block it
//! allocates belongs to the innermost scope (whatever the process-wide switch says), and the
//! tracker's queries on that thread (`leaks`, `verify_no_leaks`, `emit`, `reset`) see only that
//! scope. A scope's blocks leave it when freed on any thread; the blocks still outstanding when
//! the scope ends are forgotten with it.
//!
//! The innermost scope of each thread is a pointer in a const-initialised thread-local to a
//! frame on the stack of `run_scoped_with` (or in a `LeakGuard`); frames link to the scope they
//! were entered in.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU32, Ordering};

use super::filter::{Allocation, AllocationFilter};
use super::platform;
use super::registry::{GLOBAL_OWNER, REGISTRY, Record};
use super::state;

/// One entered scope.
pub(crate) struct ScopeFrame<'a> {
    id: u32,
    filter: Option<&'a dyn AllocationFilter>,
}

impl<'a> ScopeFrame<'a> {
    pub(crate) fn new(filter: Option<&'a dyn AllocationFilter>) -> ScopeFrame<'a> {
        ScopeFrame { id: NEXT_ID.fetch_add(1, Ordering::Relaxed), filter }
    }
}

static NEXT_ID: AtomicU32 = AtomicU32::new(GLOBAL_OWNER + 1);

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
    state::enabled().then_some(Owner { id: GLOBAL_OWNER, frame })
}

/// The registry the calling thread's queries act on.
pub(crate) fn current_registry() -> u32 {
    let frame = current_frame();
    // SAFETY: see `Owner::keeps`.
    if frame.is_null() { GLOBAL_OWNER } else { unsafe { (*frame).id } }
}

/// The calling thread is inside `frame` until this is dropped (on the same thread).
pub(crate) struct Entered {
    id: u32,
    parent: *const ScopeFrame<'static>,
}

impl Entered {
    /// Enters `frame`, which must outlive the returned value and stay where it is.
    pub(crate) fn enter(frame: &ScopeFrame<'_>) -> Entered {
        let parent = current_frame();
        let ptr = (frame as *const ScopeFrame<'_>).cast::<ScopeFrame<'static>>();
        let _ = CURRENT.try_with(|c| c.set(ptr));
        state::scope_started();
        Entered { id: frame.id, parent }
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        let _ = CURRENT.try_with(|c| c.set(self.parent));
        state::scope_ended();
        let _guard = platform::enter();
        let id = self.id;
        REGISTRY.remove_where(|r| r.owner == id);
    }
}
