//! The recording entry points the hooks call: one per kind of event. Each expects the calling
//! thread's reentrancy guard to be held (see [`Guard`]) and never allocates on its common path.

use leakview_format::Event;

use crate::engine::clock;
use crate::engine::deferred::{self, DeferredEvent, DeferredKind};
use crate::engine::heap_scan;
use crate::engine::modules;
use crate::engine::modules::Snapshot;
use crate::engine::resident;
use crate::engine::session::{self, ALLOCATIONS_ENABLED, Profile, Session};
use crate::engine::stack::{self, CaptureState, HookRegisters, Walk};
use crate::engine::sys;
use crate::engine::thread::{self, ThreadState};
use crate::engine::trie::StackTable;
use std::sync::atomic::{AtomicBool, Ordering, compiler_fence};

/// The calling thread's reentrancy guard, held for the life of the value. `enter` returns
/// `None` when the thread is already inside the recorder: the caller must then pass the call
/// straight through without recording — unless a signal handler made it. A handler that
/// interrupted the guard holder inside the real allocator ([`Guard::real_call`]) gets a guard of
/// its own and records as usual; one that interrupted a recording defers its event
/// ([`Guard::interrupted_recording`], [`defer`]), appended when that recording is done.
pub struct Guard {
    state: *mut ThreadState,
    /// errno to restore on drop, if saved: this thread's errno slot and the value.
    errno: Option<(*mut i32, i32)>,
    /// `guard_signal_depth` before this guard, restored on drop: a handler may take and drop a
    /// guard of its own between an outer hook's setting of the depth and its taking the guard.
    saved_depth: u32,
    /// A signal handler's guard: the interrupted holder's `in_real_call`, restored on drop (the
    /// holder keeps the guard itself); [`NOT_INTERRUPTED`] for an outermost guard.
    interrupted: u32,
}

/// The calling thread's state while its [`Guard`] is held ([`Guard::held`]): what [`alloc`],
/// [`free`], [`free_at`] and [`realloc`] take.
pub struct Held<'g> {
    state: &'g mut ThreadState,
}

/// [`Guard::interrupted`] of an outermost guard.
const NOT_INTERRUPTED: u32 = u32::MAX;

impl Guard {
    #[inline]
    pub fn enter() -> Option<Guard> {
        let state = thread::current();
        // SAFETY: the calling thread's own state; only this thread (and its signal handlers,
        // which run to their end before it goes on) touches it.
        unsafe {
            let (saved_depth, interrupted) = if (*state).guard != 0 {
                Guard::enter_in_handler(state)?
            } else {
                let saved_depth = (*state).guard_signal_depth;
                (*state).guard_signal_depth = (*state).signal_depth;
                compiler_fence(Ordering::SeqCst);
                (*state).guard = 1;
                (saved_depth, NOT_INTERRUPTED)
            };
            Some(Guard { state, errno: None, saved_depth, interrupted })
        }
    }

    /// The guard is held: a signal handler's call, made while the holder is inside the real
    /// allocator, gets a guard of its own (returned: the depth and `in_real_call` to restore);
    /// any other nested call gets none.
    #[cold]
    #[inline(never)]
    fn enter_in_handler(state: *mut ThreadState) -> Option<(u32, u32)> {
        // SAFETY: as in `enter`.
        unsafe {
            let s = &mut *state;
            if s.signal_depth <= s.guard_signal_depth || s.in_real_call == 0 {
                return None;
            }
            let saved = (s.guard_signal_depth, s.in_real_call);
            s.guard_signal_depth = s.signal_depth;
            s.in_real_call = 0;
            compiler_fence(Ordering::SeqCst);
            Some(saved)
        }
    }

    /// For a call that got no guard: whether a signal handler made it while the holder was
    /// recording (its event is then to be [`defer`]red, not dropped).
    #[inline]
    pub fn interrupted_recording() -> bool {
        let state = thread::current();
        // SAFETY: as in `enter`.
        unsafe { (*state).signal_depth > (*state).guard_signal_depth && (*state).in_real_call == 0 }
    }

    /// Runs `call` (the real allocator) with the guard held, marked as such: a signal handler
    /// that interrupts it records its own calls.
    #[inline(always)]
    pub fn real_call<R>(&mut self, call: impl FnOnce() -> R) -> R {
        // SAFETY: the guard makes this the only live reference to the thread's state.
        unsafe { (*self.state).in_real_call = 1 };
        compiler_fence(Ordering::SeqCst);
        let result = call();
        compiler_fence(Ordering::SeqCst);
        // SAFETY: as above.
        unsafe { (*self.state).in_real_call = 0 };
        result
    }

    /// The thread's state as the recording entry points take it: borrowed from the held guard,
    /// passed in a register (the guard itself would have to be laid out in memory for them).
    #[inline(always)]
    pub fn held(&mut self) -> Held<'_> {
        Held { state: self.state() }
    }

    /// The thread's state (valid while the guard is held).
    #[inline]
    pub fn state(&mut self) -> &mut ThreadState {
        // SAFETY: the guard makes this the only live reference to the thread's state.
        unsafe { &mut *self.state }
    }

    /// Remembers errno now (as the real allocator left it, or as the caller had it before a
    /// free), to restore when the guard is dropped.
    #[inline]
    pub fn save_errno(&mut self) {
        let slot = self.state().errno_slot();
        // SAFETY: the calling thread's errno slot, valid for the thread's life.
        self.errno = Some((slot, unsafe { *slot }));
    }
}

impl Drop for Guard {
    #[inline]
    fn drop(&mut self) {
        if let Some((slot, value)) = self.errno {
            // SAFETY: the slot `save_errno` found, on this thread (a guard never leaves it).
            unsafe { *slot = value };
        }
        // SAFETY: as in `state`.
        let state = unsafe { &mut *self.state };
        if self.interrupted == NOT_INTERRUPTED {
            state.guard = 0;
            compiler_fence(Ordering::SeqCst);
            state.guard_signal_depth = self.saved_depth;
        } else {
            state.guard_signal_depth = self.saved_depth;
            state.in_real_call = self.interrupted;
        }
    }
}

/// Keeps a signal handler's event made while the thread was recording (see [`Guard`]), to be
/// appended without a stack once that recording is done. Never allocates.
#[inline(never)]
pub fn defer(kind: DeferredKind) {
    let ts = clock::monotonic_ns();
    let state = thread::current();
    // SAFETY: the calling thread's own state; the deferred queue is made for its handlers.
    unsafe { (*state).deferred.push(DeferredEvent { ts, kind }) };
    compiler_fence(Ordering::SeqCst);
    // The thread's next recording must append it first (see `mark_ready`).
    // SAFETY: as above.
    unsafe { (*state).unready() };
}

/// The session the calling thread may record into with nothing more asked (`state` is its
/// state): it marked itself ready for it ([`mark_ready`]: bound to it, nothing deferred) and the
/// session is still live (running, its writer not stopped, not a forked child's parent's).
#[inline(always)]
fn ready_session(state: &ThreadState) -> Option<&'static Session> {
    let ready = state.ready();
    if ready.is_null() || ready != session::live().cast() {
        return None;
    }
    // SAFETY: a live session is published and stays alive while it is live (only a forked
    // child, which clears the live word and this thread's readiness first, drops one).
    Some(unsafe { &*ready.cast::<Session>() })
}

/// After a recording by the full path: marks the thread ready for `session` if it is bound to
/// it with nothing deferred, so that its next recordings go the short way. A signal handler
/// that defers an event clears the mark (after pushing it), hence the second look.
#[inline]
fn mark_ready(session: &'static Session, state: &mut ThreadState) {
    if state.session_id() != session.id || !state.deferred.is_empty() {
        return;
    }
    let Some(stream) = state.stream() else { return };
    if !session.writer.is_own_stream(stream) {
        return;
    }
    state.set_ready((session as *const Session).cast());
    compiler_fence(Ordering::SeqCst);
    if !state.deferred.is_empty() {
        state.unready();
    }
}

/// Appends the thread's deferred events, if any (with the guard held, not while recording).
/// Every recording does so before its own event, so that they come in the order they happened;
/// the thread's and the process's end do so last.
#[inline]
pub(crate) fn flush_deferred(session: &Session, state: &mut ThreadState) {
    if !state.deferred.is_empty() {
        flush_deferred_now(session, state);
    }
}

#[cold]
#[inline(never)]
fn flush_deferred_now(session: &Session, state: &mut ThreadState) {
    let enabled = ALLOCATIONS_ENABLED.load(Ordering::Relaxed);
    let state_ptr: *mut ThreadState = state;
    // SAFETY: the queue and the stream are separate fields of the thread's state; handlers only
    // push to the queue, whose drain allows for that.
    let deferred = unsafe { &mut (*state_ptr).deferred };
    let stream = state.bind(session.id);
    deferred.drain(|e| {
        let event = match e.kind {
            DeferredKind::Empty => return,
            DeferredKind::Alloc { addr, size, align } if enabled => {
                Event::Alloc { ts: e.ts, addr, size, align, stack: 0 }
            }
            DeferredKind::Alloc { .. } => return,
            DeferredKind::Free { addr } => Event::Free { ts: e.ts, addr },
            DeferredKind::Realloc { ts_free, old_addr, new_addr, size } if enabled => {
                Event::Realloc { ts_free, ts: e.ts, old_addr, new_addr, size, stack: 0 }
            }
            DeferredKind::Realloc { ts_free, old_addr, .. } => Event::Free { ts: ts_free, addr: old_addr },
        };
        session.append(stream, &event);
    });
}

/// Captures the calling thread's stack (the frames above the hook's) and returns its node id.
/// A kept stack found is taken here; everything else a walk may need, in `capture_walked`.
/// (Called with the thread's stream bound.)
#[inline(never)]
fn capture(session: &Session, state: &mut ThreadState, hook: HookRegisters, ts: u64) -> u32 {
    // The usual case: the thread has its capture state (so its exit destructor has not run),
    // the caches are on and their stacks are not checked.
    if session.kept_stacks_as_found
        && let Some(snapshot) = session.modules.snapshot()
        && let Some(capture) = state.existing_capture()
    {
        let capture: *mut CaptureState = capture;
        // SAFETY: the capture state is owned by this thread and separate from its stream.
        let capture = unsafe { &mut *capture };
        let walk = capture.walk(snapshot, hook, session.max_depth);
        if let Some(node) = capture.found() {
            // (A walk that found a kept stack met no unknown address.)
            return node;
        }
        return capture_walked(session, state, capture, snapshot, hook, ts, walk);
    }
    capture_first(session, state, hook, ts)
}

/// [`capture`] of a thread without its capture state yet (or after its exit destructor), or
/// with the caches off or checked.
#[cold]
#[inline(never)]
fn capture_first(session: &Session, state: &mut ThreadState, hook: HookRegisters, ts: u64) -> u32 {
    if state.has_exited() {
        return 0;
    }
    let Some(snapshot) = session.modules.snapshot() else { return 0 };
    let capture: *mut _ = match state.capture_mut(hook.sp) {
        Some(capture) => capture,
        None => return 0,
    };
    // SAFETY: the capture state is owned by this thread and separate from its stream.
    let capture = unsafe { &mut *capture };
    if !session.stack_reuse {
        // A capture state starts with its caches on.
        capture.set_caching(false);
    }
    let walk = capture.walk(snapshot, hook, session.max_depth);
    if let Some(node) = capture.found()
        && !session.verify_stacks
        && state.stream().is_some()
    {
        // (A walk that found a kept stack met no unknown address.)
        return node;
    }
    capture_walked(session, state, capture, snapshot, hook, ts, walk)
}

/// [`capture`] after a walk that found no kept stack (or whose stack is to be checked).
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn capture_walked(
    session: &Session,
    state: &mut ThreadState,
    capture: &mut CaptureState,
    mut snapshot: &'static Snapshot,
    hook: HookRegisters,
    ts: u64,
    walk: Walk,
) -> u32 {
    // A frame outside every known module, and the loader has changed: scan again (emitting
    // the new modules) and walk again with their unwind tables.
    if walk.unknown_address && modules::loader_generation() != snapshot.loader_generation {
        let Some(stream) = state.stream() else { return 0 };
        session.modules.rescan(ts, &mut |event| {
            session.append(stream, event);
        });
        if let Some(fresh) = session.modules.snapshot() {
            snapshot = fresh;
        }
        // The walk keeps or drops what it learned by the new snapshot; stacks already interned
        // keep their trie nodes.
        capture.walk(snapshot, hook, session.max_depth);
    }
    let Some(stream) = state.stream() else { return 0 };
    let mut intern = |parent, ip| {
        session
            .stacks
            .intern(parent, ip, |id| session.append(stream, &Event::StackNode { id, parent, ip }))
            .id()
    };
    let node = capture.commit(&mut intern);
    if session.verify_stacks && session.stack_reuse {
        capture.count_check();
        capture.set_caching(false);
        capture.walk(snapshot, hook, session.max_depth);
        let full = capture.commit(&mut intern);
        capture.set_caching(true);
        if !same_stack(&session.stacks, node, full) {
            stack_check_failed();
        }
    }
    node
}

/// Whether nodes `a` and `b` of `table` are the same stack (the same return addresses). Usually
/// that means the same node, but an insert racing with the trie's resize may give a key a
/// second id (trie.rs), so differing ids are compared frame by frame.
fn same_stack(table: &StackTable, mut a: u32, mut b: u32) -> bool {
    for _ in 0..=stack::MAX_DEPTH_LIMIT {
        if a == b {
            return true;
        }
        match (table.get(a), table.get(b)) {
            (Some((pa, ia)), Some((pb, ib))) if ia == ib => (a, b) = (pa, pb),
            _ => return false,
        }
    }
    false
}

/// A stack captured with the caches differed from the full unwind (`LEAKVIEW_STACK_VERIFY=1`):
/// says so once.
#[cold]
fn stack_check_failed() {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !WARNED.swap(true, Ordering::Relaxed) {
        sys::warn(
            b"leakview: stack check failed: a stack captured with the caches differs from the full unwind\n",
        );
    }
}

#[inline]
fn running(profile: &Profile, state: &mut ThreadState) -> Option<&'static Session> {
    let session = match session::current() {
        Some(session) => session,
        None => session::current_or_start(profile, state)?,
    };
    if session.stopped() {
        session.count_unrecorded();
        return None;
    }
    if state.session_id() != session.id {
        first_event(session, state);
    }
    Some(session)
}

/// The thread's first event of this trace: binds its stream, and records its name now too, so
/// that a trace cut short (a killed program) still names its threads (the name at the thread's
/// end follows if it changed).
#[cold]
#[inline(never)]
fn first_event(session: &Session, state: &mut ThreadState) {
    state.bind(session.id);
    session::record_thread_name(state);
}

/// A block of `size` bytes (alignment `align`, 0 = default) came into being at `addr`.
pub fn alloc(held: Held<'_>, profile: &Profile, addr: u64, size: u64, align: u64, hook: HookRegisters) {
    let ts = clock::monotonic_ns();
    if !ALLOCATIONS_ENABLED.load(Ordering::Relaxed) {
        return;
    }
    let state = held.state;
    let Some(session) = ready_session(state) else {
        return alloc_by_full_path(state, profile, ts, addr, size, align, hook);
    };
    let stack = capture(session, state, hook, ts);
    // SAFETY: the thread is ready for the session, so its stream is bound to it (the capture
    // keeps it so: it appends to it only through the session).
    unsafe { session.append_ready(state.ready_stream(), &Event::Alloc { ts, addr, size, align, stack }) };
    if resident::due(ts) {
        record_resident(session, state, ts);
    }
}

/// Appends a sample of the resident set size if this thread claims the one due at `ts`.
#[cold]
#[inline(never)]
fn record_resident(session: &Session, state: &mut ThreadState, ts: u64) {
    if let Some(bytes) = resident::claim(ts) {
        // The allocation's time: read a few microseconds later, the size is the size then.
        // SAFETY: called right after this thread appended as a ready thread: still bound.
        unsafe { session.append_ready(state.ready_stream(), &Event::ResidentMemory { ts, bytes }) };
    }
}

/// [`alloc`] of a thread not ready for the live session (see [`ready_session`]).
#[cold]
#[inline(never)]
fn alloc_by_full_path(
    state: &mut ThreadState,
    profile: &Profile,
    ts: u64,
    addr: u64,
    size: u64,
    align: u64,
    hook: HookRegisters,
) {
    let Some(session) = running(profile, state) else { return };
    flush_deferred(session, state);
    let stack = capture(session, state, hook, ts);
    if let Some(stream) = state.stream() {
        session.append(stream, &Event::Alloc { ts, addr, size, align, stack });
    }
    mark_ready(session, state);
}

/// The block at `addr` is about to be released (call before the real free).
pub fn free(held: Held<'_>, addr: u64) {
    free_at(held, clock::monotonic_ns(), addr);
}

/// The block at `addr` was released at `ts` (taken before the real call released it).
#[inline]
pub fn free_at(held: Held<'_>, ts: u64, addr: u64) {
    let state = held.state;
    let Some(session) = ready_session(state) else {
        return free_by_full_path(state, ts, addr);
    };
    // SAFETY: the thread is ready for the session, so its stream is bound to it.
    unsafe { session.append_ready(state.ready_stream(), &Event::Free { ts, addr }) };
}

/// [`free_at`] of a thread not ready for the live session (see [`ready_session`]).
#[cold]
#[inline(never)]
fn free_by_full_path(state: &mut ThreadState, ts: u64, addr: u64) {
    let Some(session) = session::current() else { return };
    if session.stopped() {
        session.count_unrecorded();
        return;
    }
    if state.session_id() != session.id {
        first_event(session, state);
    }
    flush_deferred(session, state);
    let Some(stream) = state.stream() else { return };
    session.append(stream, &Event::Free { ts, addr });
    mark_ready(session, state);
}

/// `old_addr` was released at `ts_free` and `new_addr` holds `size` bytes now.
pub fn realloc(
    held: Held<'_>,
    profile: &Profile,
    ts_free: u64,
    old_addr: u64,
    new_addr: u64,
    size: u64,
    hook: HookRegisters,
) {
    let ts = clock::monotonic_ns();
    let state = held.state;
    if ALLOCATIONS_ENABLED.load(Ordering::Relaxed)
        && let Some(session) = ready_session(state)
    {
        let stack = capture(session, state, hook, ts);
        let event = Event::Realloc { ts_free, ts, old_addr, new_addr, size, stack };
        // SAFETY: the thread is ready for the session, so its stream is bound to it (the
        // capture keeps it so).
        unsafe { session.append_ready(state.ready_stream(), &event) };
        if resident::due(ts) {
            record_resident(session, state, ts);
        }
        return;
    }
    realloc_by_full_path(state, profile, (ts_free, ts), old_addr, new_addr, size, hook);
}

/// [`realloc`] of a thread not ready for the live session (see [`ready_session`]), or while
/// allocations are not recorded.
#[cold]
#[inline(never)]
fn realloc_by_full_path(
    state: &mut ThreadState,
    profile: &Profile,
    (ts_free, ts): (u64, u64),
    old_addr: u64,
    new_addr: u64,
    size: u64,
    hook: HookRegisters,
) {
    if !ALLOCATIONS_ENABLED.load(Ordering::Relaxed) {
        // The old block is gone either way; the new one is not recorded.
        if let Some(session) = session::current()
            && !session.stopped()
        {
            let stream = state.bind(session.id);
            session.append(stream, &Event::Free { ts: ts_free, addr: old_addr });
        }
        return;
    }
    let Some(session) = running(profile, state) else { return };
    flush_deferred(session, state);
    let stack = capture(session, state, hook, ts);
    if let Some(stream) = state.stream() {
        session.append(stream, &Event::Realloc { ts_free, ts, old_addr, new_addr, size, stack });
    }
    mark_ready(session, state);
}

/// A user-placed label.
pub fn mark(guard: &mut Guard, profile: &Profile, label: &[u8]) {
    let ts = clock::monotonic_ns();
    let state = guard.state();
    let Some(session) = running(profile, state) else { return };
    if let Some(stream) = state.stream() {
        session.append(stream, &Event::Mark { ts, label });
    }
}

/// Objects may have been unloaded (after the real dlclose): rescan and record what vanished.
pub fn modules_changed(guard: &mut Guard) {
    let ts = clock::monotonic_ns();
    let Some(session) = session::current() else { return };
    if session.stopped() {
        return;
    }
    let state = guard.state();
    let stream = state.bind(session.id);
    session.modules.rescan(ts, &mut |event| {
        session.append(stream, event);
    });
}

/// Process exit: record the exiting thread's name and mark the trace complete.
pub fn process_exit() {
    let Some(mut guard) = Guard::enter() else {
        session::finish();
        return;
    };
    session::settle_thread(guard.state());
    record_final_resident(guard.state());
    scan_heap(guard.state());
    let lost = deferred::lost();
    if lost > 0 {
        let mut line = sys::Line::new();
        line.push(b"leakview: ");
        line.push_decimal(lost);
        line.push(b" allocations or frees of signal handlers could not be recorded (too many at once)\n");
        sys::warn(line.as_bytes());
    }
    session::finish();
}

/// The heap scan at exit, when asked for (see heap_scan.rs); a scan that cannot run or finish
/// says why in one warning and leaves the trace without a scan end.
fn scan_heap(state: &mut ThreadState) {
    let Some(session) = session::current() else { return };
    if !session.heap_scan || session.stopped() || session.pid != sys::getpid() {
        return;
    }
    let here = 0u64;
    let sp = &raw const here as u64;
    let ts = clock::monotonic_ns();
    let stream = state.bind(session.id);
    if let Err(failure) = heap_scan::scan(session, stream, ts, std::hint::black_box(sp)) {
        let mut line = sys::Line::new();
        line.push(b"leakview: no leak kinds for this run: ");
        line.push(failure.message());
        line.push(b"\n");
        sys::warn(line.as_bytes());
    }
}

/// The resident set size at the end, as the last sample.
fn record_final_resident(state: &mut ThreadState) {
    let Some(session) = session::current() else { return };
    if session.stopped() {
        return;
    }
    if let Some(bytes) = resident::now() {
        let ts = clock::monotonic_ns();
        let stream = state.bind(session.id);
        session.append(stream, &Event::ResidentMemory { ts, bytes });
    }
}

/// `_exit`/`_Exit`: the process ends without running atexit handlers, so mark its trace
/// complete here. A vfork child (same memory, different pid) leaves its parent's trace alone.
pub fn process_exit_now() {
    if session::current().is_some_and(|s| s.pid == sys::getpid()) {
        process_exit();
    }
}

/// fork handlers (register with `pthread_atfork`).
pub fn fork_prepare() {
    session::before_fork();
}

pub fn fork_parent() {
    session::after_fork_in_parent();
}

pub fn fork_child() {
    // SAFETY: the forking thread's own state; it is the only thread in the child.
    let state = unsafe { &mut *thread::current() };
    state.guard += 1;
    session::after_fork_in_child(state);
    state.guard -= 1;
}

/// Starts the session now if nobody has (library constructor).
pub fn start(guard: &mut Guard, profile: &Profile) {
    let state = guard.state();
    if let Some(session) = session::current_or_start(profile, state) {
        state.bind(session.id);
    }
}
