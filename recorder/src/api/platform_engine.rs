//! The API's platform layer on Linux, built on the recording engine: the per-thread reentrancy
//! guard and thread id live in the engine's initial-exec TLS block, stacks are captured by the
//! engine's framehop unwinder (x86_64; the `backtrace` crate elsewhere) and interned in the
//! engine's stack trie, and [`start_recording`] writes a trace through the engine's session.
//!
//! Stacks are interned in one of two tries: the API's own (until a recording starts) or the
//! recording session's (from then on, so the trace's `StackNode` events and the in-memory
//! registry share ids). A [`StackRef`] says which.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, AtomicU32, Ordering};

use leakview_format::{Event, RecorderKind, ThreadStream, WriteError};

use crate::engine::config::Config;
use crate::engine::modules::ModuleRegistry;
use crate::engine::recorder::Guard;
use crate::engine::resident;
use crate::engine::session::{self, Profile, Session};
use crate::engine::stack::HookRegisters;
use crate::engine::thread::ThreadState;
use crate::engine::trie::StackTable;

/// Written into the metadata of traces the API records.
static PROFILE: Profile = Profile {
    recorder: concat!("leakview ", env!("CARGO_PKG_VERSION"), " (in-process)"),
    kind: RecorderKind::RustApi,
};

/// Most stack nodes of the API's own trie (address space is reserved, memory used as needed).
const OWN_NODE_CAPACITY: u32 = 1 << 24;
/// The engine's per-thread state is bound to this id while stacks go to the API's own trie
/// (sessions are numbered from 1).
const OWN_CONTEXT: u64 = u64::MAX;
const TABLE_OWN: u32 = 0;
const TABLE_SESSION: u32 = 1;

/// Where the registers of the tracking function's own frame are read (the walk starts there).
pub(crate) type Hook = HookRegisters;

/// Reads the calling function's registers: call it first thing in the tracking function.
#[inline(always)]
pub(crate) fn hook_here() -> Hook {
    HookRegisters::here()
}

/// A tracked block's call stack: a node of one of the tries (node 0: no stack).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct StackRef {
    node: u32,
    table: u32,
}

/// The API's own stack trie and module map, created by the first capture.
struct OwnStacks {
    stacks: StackTable,
    modules: ModuleRegistry,
    config: Config,
}

const IDLE: u8 = 0;
const STARTING: u8 = 1;
const READY: u8 = 2;
const FAILED: u8 = 3;

static OWN: AtomicPtr<OwnStacks> = AtomicPtr::new(std::ptr::null_mut());
static OWN_STATE: AtomicU8 = AtomicU8::new(IDLE);

/// Set while the session's trace is being written (cleared by `stop_recording` and, by the
/// fork handler, in a forked child, which must never write into its parent's trace).
static WRITING: AtomicBool = AtomicBool::new(false);
/// The process that is writing the trace (a forked child must not write into it).
static WRITING_PID: AtomicU32 = AtomicU32::new(0);
static HANDLERS_REGISTERED: AtomicBool = AtomicBool::new(false);

/// Longest a thread waits for another one creating the tries.
const CREATION_WAIT_NS: u64 = 200_000_000;

fn published() -> Option<&'static OwnStacks> {
    let ptr = OWN.load(Ordering::Acquire);
    // SAFETY: published once, leaked, never freed.
    (!ptr.is_null()).then(|| unsafe { &*ptr })
}

/// The API's own tries, created on first use. A thread that finds another one creating them
/// waits a little, but not without bound (it may hold a loader lock the creating thread
/// needs): captures that give up go without a stack.
fn own_stacks() -> Option<&'static OwnStacks> {
    if let Some(own) = published() {
        return Some(own);
    }
    if OWN_STATE.compare_exchange(IDLE, STARTING, Ordering::AcqRel, Ordering::Acquire).is_err() {
        let start = crate::engine::clock::monotonic_ns();
        while OWN_STATE.load(Ordering::Acquire) == STARTING
            && crate::engine::clock::monotonic_ns().saturating_sub(start) < CREATION_WAIT_NS
        {
            // SAFETY: sched_yield has no preconditions.
            unsafe { libc::sched_yield() };
        }
        return published();
    }
    let Some(stacks) = StackTable::new(OWN_NODE_CAPACITY) else {
        OWN_STATE.store(FAILED, Ordering::Release);
        return None;
    };
    let own = OwnStacks { stacks, modules: ModuleRegistry::new(), config: Config::from_env() };
    own.modules.rescan(crate::engine::clock::monotonic_ns(), &mut |_| {});
    let own: &'static OwnStacks = Box::leak(Box::new(own));
    OWN.store((own as *const OwnStacks).cast_mut(), Ordering::Release);
    OWN_STATE.store(READY, Ordering::Release);
    Some(own)
}

/// The tries stacks go to now, and the session to write events into (if writing).
struct Context {
    id: u64,
    table: u32,
    stacks: &'static StackTable,
    modules: &'static ModuleRegistry,
    max_depth: usize,
    stack_reuse: bool,
    writer: Option<&'static Session>,
}

fn writing_session() -> Option<&'static Session> {
    if !WRITING.load(Ordering::Acquire) {
        return None;
    }
    session::current().filter(|s| !s.stopped())
}

fn context() -> Option<Context> {
    if let Some(session) = session::current() {
        return Some(Context {
            id: session.id,
            table: TABLE_SESSION,
            stacks: &session.stacks,
            modules: &session.modules,
            max_depth: session.max_depth,
            stack_reuse: session.stack_reuse,
            writer: writing_session(),
        });
    }
    own_stacks().map(|own| Context {
        id: OWN_CONTEXT,
        table: TABLE_OWN,
        stacks: &own.stacks,
        modules: &own.modules,
        max_depth: own.config.max_depth,
        stack_reuse: own.config.stack_reuse,
        writer: None,
    })
}

fn table(table: u32) -> Option<&'static StackTable> {
    match table {
        TABLE_SESSION => session::current().map(|s| &s.stacks),
        _ => {
            let ptr = OWN.load(Ordering::Acquire);
            // SAFETY: published once, leaked, never freed.
            (!ptr.is_null()).then(|| unsafe { &(*ptr).stacks })
        }
    }
}

/// Appends the return addresses of `stack` (innermost first) to `out`.
pub(crate) fn addresses(stack: StackRef, out: &mut Vec<usize>) {
    let Some(stacks) = table(stack.table) else { return };
    let mut node = stack.node;
    let mut guard = 0usize;
    while node != 0 && guard < crate::engine::stack::MAX_DEPTH_LIMIT {
        let Some((parent, ip)) = stacks.get(node) else { break };
        out.push(ip as usize);
        node = parent;
        guard += 1;
    }
}

/// The calling thread's reentrancy guard, held while the value lives: allocations the thread
/// makes meanwhile (the tracker's own) pass straight through untracked.
pub(crate) struct Entered {
    guard: Guard,
}

/// Enters the calling thread's guard; `None` if the thread is already inside the tracker.
#[inline]
pub(crate) fn enter() -> Option<Entered> {
    Guard::enter().map(|guard| Entered { guard })
}

impl Entered {
    /// Captures the stack above the frame whose registers are `hook` and returns it with the
    /// calling thread's id.
    pub(crate) fn capture(&mut self, hook: Hook) -> (StackRef, u64) {
        let state = self.guard.state();
        let Some(ctx) = context() else {
            return (StackRef::default(), u64::from(state.bind(OWN_CONTEXT).tid()));
        };
        state.bind(ctx.id);
        let tid = u64::from(state.tid());
        let node = capture_into(state, &ctx, hook);
        (StackRef { node, table: ctx.table }, tid)
    }

    /// The calling thread's id, as [`Entered::capture`] gives it.
    pub(crate) fn thread_id(&mut self) -> u64 {
        u64::from(crate::engine::sys::gettid())
    }

    /// Writes an `Alloc` event if a trace is being written and `stack` belongs to it.
    pub(crate) fn write_alloc(
        &mut self,
        ts: u64,
        address: usize,
        size: usize,
        align: usize,
        stack: StackRef,
    ) -> bool {
        let stack = trace_stack(stack);
        let written = self.append(&Event::Alloc {
            ts,
            addr: address as u64,
            size: size as u64,
            align: align as u64,
            stack,
        });
        if written && resident::due(ts) {
            self.write_resident(ts);
        }
        written
    }

    /// Writes a sample of the resident set size if this thread claims the one due at `ts`.
    #[cold]
    #[inline(never)]
    fn write_resident(&mut self, ts: u64) {
        if let Some(bytes) = resident::claim(ts) {
            self.append(&Event::ResidentMemory { ts, bytes });
        }
    }

    /// Writes a `Realloc` event (the old block was in the trace).
    pub(crate) fn write_realloc(
        &mut self,
        ts_free: u64,
        ts: u64,
        old_address: usize,
        new_address: usize,
        size: usize,
        stack: StackRef,
    ) -> bool {
        let stack = trace_stack(stack);
        self.append(&Event::Realloc {
            ts_free,
            ts,
            old_addr: old_address as u64,
            new_addr: new_address as u64,
            size: size as u64,
            stack,
        })
    }

    /// Writes a `Free` event (the block was in the trace).
    pub(crate) fn write_free(&mut self, ts: u64, address: usize) -> bool {
        self.append(&Event::Free { ts, addr: address as u64 })
    }

    fn append(&mut self, event: &Event<'_>) -> bool {
        let Some(session) = writing_session() else { return false };
        let stream = self.guard.state().bind(session.id);
        append(session, stream, event)
    }
}

/// Appends `event` to the thread's stream of the trace.
fn append(session: &Session, stream: &mut ThreadStream, event: &Event<'_>) -> bool {
    match session.writer.append(stream, event) {
        Ok(()) => true,
        // `stop_recording` ran meanwhile: nothing to say.
        Err(WriteError::Stopped) if !WRITING.load(Ordering::Acquire) => false,
        // Anything else (the disk is full...): the session's one warning.
        Err(_) => session.append(stream, event),
    }
}

/// The trace's id for `stack`: only stacks of the session's trie are defined in the trace.
fn trace_stack(stack: StackRef) -> u32 {
    if stack.table == TABLE_SESSION { stack.node } else { 0 }
}

/// Captures the stack into `ctx`'s trie (defining new nodes in the trace when writing).
#[cfg(all(target_arch = "x86_64", not(leakview_backtrace_capture)))]
fn capture_into(state: &mut ThreadState, ctx: &Context, hook: Hook) -> u32 {
    use crate::engine::modules;
    if state.has_exited() {
        return 0;
    }
    let Some(mut snapshot) = ctx.modules.snapshot() else { return 0 };
    let capture: *mut _ = match state.capture_mut(hook.sp) {
        Some(capture) => capture,
        None => return 0,
    };
    // SAFETY: the capture state is owned by this thread and separate from its stream.
    let capture = unsafe { &mut *capture };
    capture.set_caching(ctx.stack_reuse);
    let walk = capture.walk(snapshot, hook, ctx.max_depth);
    if walk.unknown_address && modules::loader_generation() != snapshot.loader_generation {
        let ts = crate::engine::clock::monotonic_ns();
        let stream = state.stream();
        match (ctx.writer, stream) {
            (Some(session), Some(stream)) => {
                ctx.modules.rescan(ts, &mut |event| {
                    append(session, stream, event);
                });
            }
            _ => {
                ctx.modules.rescan(ts, &mut |_| {});
            }
        }
        if let Some(fresh) = ctx.modules.snapshot() {
            snapshot = fresh;
        }
        // The walk keeps or drops what it learned by the new snapshot; stacks already interned
        // keep their trie nodes.
        let _ = capture.walk(snapshot, hook, ctx.max_depth);
    }
    let Some(stream) = state.stream() else { return 0 };
    capture.commit(|parent, ip| intern(ctx, stream, parent, ip))
}

/// Captures the stack with the platform unwinder and interns it into `ctx`'s trie.
#[cfg(any(not(target_arch = "x86_64"), leakview_backtrace_capture))]
fn capture_into(state: &mut ThreadState, ctx: &Context, hook: Hook) -> u32 {
    use crate::engine::stack::MAX_DEPTH_LIMIT;
    let mut ips = [0usize; MAX_DEPTH_LIMIT];
    let depth = ctx.max_depth.clamp(1, MAX_DEPTH_LIMIT);
    let len = super::capture_backtrace::trace_into(&mut ips[..depth], hook.sp as usize);
    let Some(stream) = state.stream() else { return 0 };
    let mut node = 0;
    for &ip in ips[..len].iter().rev() {
        match intern(ctx, stream, node, ip as u64) {
            Some(id) => node = id,
            None => break,
        }
    }
    node
}

fn intern(ctx: &Context, stream: &mut ThreadStream, parent: u32, ip: u64) -> Option<u32> {
    ctx.stacks
        .intern(parent, ip, |id| match ctx.writer {
            Some(session) => append(session, stream, &Event::StackNode { id, parent, ip }),
            None => true,
        })
        .id()
}

extern "C" fn finish_at_exit() {
    if WRITING.load(Ordering::Acquire)
        && WRITING_PID.load(Ordering::Relaxed) == crate::engine::sys::getpid()
        && let Some(session) = session::current()
    {
        record_own_thread_name();
        session.writer.finish(crate::engine::clock::monotonic_ns());
    }
}

/// Writes the calling thread's name into the trace (other threads' names are written by the
/// engine as they end).
fn record_own_thread_name() {
    if let Some(mut entered) = enter() {
        session::record_thread_name(entered.guard.state());
    }
}

/// Before `fork`: hold the module maps' locks (a rescan may be running on another thread).
pub(crate) fn before_fork() {
    if let Some(own) = published() {
        own.modules.lock_for_fork();
    }
    if let Some(session) = session::current() {
        session.modules.lock_for_fork();
    }
}

/// After `fork`: release them; a child never writes into its parent's trace.
pub(crate) fn after_fork(in_child: bool) {
    if in_child {
        WRITING.store(false, Ordering::Release);
    }
    if let Some(session) = session::current() {
        session.modules.unlock_after_fork();
    }
    if let Some(own) = published() {
        own.modules.unlock_after_fork();
    }
}

/// Starts writing every tracked allocation, reallocation and free to a new trace at `path`
/// (or beside it, if a file is there: the path written is returned).
pub(crate) fn start_recording(path: &Path) -> io::Result<PathBuf> {
    let Some(mut entered) = enter() else {
        return Err(io::Error::other("leakview: record_to called from inside the tracker"));
    };
    let state = entered.guard.state();
    let session = session::start_at(&PROFILE, state, path).map_err(io::Error::other)?;
    if !HANDLERS_REGISTERED.swap(true, Ordering::AcqRel) {
        // SAFETY: registering a handler with the required signature; what registration
        // allocates is the tracker's own (the guard is held).
        unsafe { libc::atexit(finish_at_exit) };
    }
    WRITING_PID.store(crate::engine::sys::getpid(), Ordering::Relaxed);
    WRITING.store(true, Ordering::Release);
    Ok(session.path.clone())
}

/// Marks the trace complete and stops writing to it. Returns whether a trace was being written.
pub(crate) fn stop_recording() -> bool {
    if !WRITING.swap(false, Ordering::AcqRel) {
        return false;
    }
    // The writer itself is not stopped: the engine still records the names of threads as they
    // end (readers take events after the end mark as they come).
    if let Some(session) = session::current() {
        record_own_thread_name();
        session.writer.finish(crate::engine::clock::monotonic_ns());
    }
    true
}

/// Whether a trace is being written.
pub(crate) fn recording() -> bool {
    writing_session().is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_share_one_stack_table() {
        let (stack, _) = crate::api::platform_contract::capture_from_here();
        let (again, _) = crate::api::platform_contract::capture_from_here();
        assert_eq!(again.table, stack.table);
        let (mut ips, mut ips_again) = (Vec::new(), Vec::new());
        addresses(stack, &mut ips);
        addresses(again, &mut ips_again);
        // Called from two lines of this test: only the innermost frame, in this test, differs.
        assert_eq!(ips_again.len(), ips.len());
        assert_eq!(ips_again[1..], ips[1..]);
    }
}
