//! Per-thread recorder state, kept in the initial-exec TLS block of the C shim (`csrc/tls.c`):
//! the reentrancy guard, the thread's stream into the trace and its capture state.
//!
//! The block starts all-zero in every new thread, which reads as status `FRESH`. A pthread
//! key destructor releases the thread's chunk and capture state when the thread exits; events
//! that still arrive on the thread after that (other libraries' destructors freeing memory) are
//! recorded without a stack.

use std::ffi::c_void;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU32, Ordering};

use leakview_format::ThreadStream;

use crate::engine::capture_pool;
use crate::engine::deferred::Deferred;
use crate::engine::own_memory;
use crate::engine::side_stack::SideStack;
use crate::engine::stack::{self, CaptureState};
use crate::engine::sys;

/// Size of the C shim's TLS block; must match `build.rs`.
pub const TLS_BLOCK_SIZE: usize = 4096;

unsafe extern "C" {
    // (On x86_64 the block is reached inline, see `current`; the tests compare the two.)
    #[cfg(any(test, not(target_arch = "x86_64")))]
    fn leakview_engine_tls_block() -> *mut c_void;
    fn leakview_engine_tls_block_size() -> usize;
}

const FRESH: u32 = 0;
const ACTIVE: u32 = 1;
const EXITED: u32 = 2;

/// One thread's recorder state. All-zero is a valid fresh state.
#[repr(C)]
pub struct ThreadState {
    /// Non-zero while the thread is inside the recorder: nested allocations pass straight through
    /// (unless a signal handler made them, see [`crate::engine::recorder::Guard`]).
    pub guard: u32,
    /// Signal handlers of the program running on this thread now (counted by the preload
    /// library's handler wrapper; never lowered by a handler that jumps out with longjmp).
    pub signal_depth: u32,
    /// `signal_depth` when the guard was taken: a hook entered deeper is a handler's.
    pub guard_signal_depth: u32,
    /// Non-zero while the guard holder is inside the real allocator (not recording).
    pub in_real_call: u32,
    status: u32,
    tid: u32,
    /// The session whose recordings may skip every check but the live word's (see
    /// `recorder::ready_session`), or null. Non-null only while the thread is bound to that
    /// session (its stream used with that session's writer only) and has no deferred events;
    /// cleared by whatever ends either.
    ready: *const (),
    /// Set once the thread's stack bounds were looked up (they may be unknown: 0, 0).
    stack_known: u32,
    /// Non-zero while the thread is inside `pthread_getattr_np` (see [`InsideStackQuery`]).
    stack_queries: u32,
    stack_low: u64,
    stack_high: u64,
    /// The session `stream` and `capture` belong to (0: none yet).
    session_id: u64,
    capture: *mut CaptureState,
    /// The thread's errno slot, once asked for (null before).
    errno_slot: *mut i32,
    stream: MaybeUninit<ThreadStream>,
    /// The name last recorded for the thread (its length first), to record a name only when it
    /// changed.
    recorded_name: [u8; 17],
    /// Events of signal handlers that interrupted a recording.
    pub deferred: Deferred,
}

const _: () = assert!(std::mem::size_of::<ThreadState>() <= TLS_BLOCK_SIZE);
const _: () = assert!(std::mem::align_of::<ThreadState>() <= 64);

/// The calling thread's state. Never allocates (initial-exec TLS).
#[cfg(not(target_arch = "x86_64"))]
#[inline]
pub fn current() -> *mut ThreadState {
    // SAFETY: the shim returns this thread's TLS block, 64-aligned and TLS_BLOCK_SIZE bytes,
    // which the assertions above show is enough for a ThreadState.
    unsafe { leakview_engine_tls_block().cast::<ThreadState>() }
}

#[cfg(target_arch = "x86_64")]
unsafe extern "C" {
    /// The shim's initial-exec TLS block (`csrc/tls.c`); only its address is taken.
    static leakview_engine_tls_storage: u8;
}

/// The calling thread's state. Never allocates (initial-exec TLS): the block's offset from the
/// thread pointer, from its GOT slot, plus the thread pointer (what the shim's
/// `leakview_engine_tls_block` computes, here without a call).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub fn current() -> *mut ThreadState {
    let block: *mut ThreadState;
    // SAFETY: the initial-exec TLS access sequence for the shim's block (64-aligned and
    // TLS_BLOCK_SIZE bytes, which the assertions above show is enough for a ThreadState): it
    // reads the GOT slot the dynamic linker filled with the block's offset and the thread
    // pointer at %fs:0, and nothing else.
    unsafe {
        std::arch::asm!(
            "mov {block}, qword ptr [rip + {storage}@GOTTPOFF]",
            "add {block}, qword ptr fs:[0]",
            storage = sym leakview_engine_tls_storage,
            block = out(reg) block,
            options(pure, readonly, nostack),
        );
    }
    block
}

/// Marks the calling thread as inside `pthread_getattr_np` while it lives. glibc holds the
/// queried thread's lock while it allocates in there (the affinity mask; for the main thread,
/// reading /proc/self/maps), and the recorder asks the same function for a thread's stack at the
/// thread's first recorded allocation: a thread whose first allocation came from inside its own
/// query would wait for itself (every Rust program's main thread does this at start). While
/// marked, a thread whose stack is not known yet records its allocations without a stack.
pub struct InsideStackQuery {
    _raised: Counted,
}

impl InsideStackQuery {
    pub fn enter() -> InsideStackQuery {
        // SAFETY: a field of the calling thread's own state.
        InsideStackQuery { _raised: Counted::raise(unsafe { &raw mut (*current()).stack_queries }) }
    }
}

/// Counts one of the program's signal handlers as running on the calling thread while it lives
/// (the preload library's handler wrapper holds one around the program's handler). Touches
/// only the thread's TLS block: safe in a signal handler.
pub struct InSignalHandler {
    _raised: Counted,
}

impl InSignalHandler {
    #[inline]
    pub fn enter() -> InSignalHandler {
        // SAFETY: a field of the calling thread's own state.
        InSignalHandler { _raised: Counted::raise(unsafe { &raw mut (*current()).signal_depth }) }
    }
}

/// One of the calling thread's counters, raised while the value lives. A signal handler that
/// interrupts the step undoes its own count before this one goes on.
struct Counted(*mut u32);

impl Counted {
    #[inline]
    fn raise(counter: *mut u32) -> Counted {
        // SAFETY: a counter in the calling thread's TLS block, valid for the thread's life.
        unsafe { *counter = (*counter).wrapping_add(1) };
        std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
        Counted(counter)
    }
}

impl Drop for Counted {
    #[inline]
    fn drop(&mut self) {
        std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
        // SAFETY: as in `raise`, on the same thread (the value never leaves it).
        unsafe { *self.0 = (*self.0).wrapping_sub(1) };
    }
}

/// Checks once that the C shim and this crate agree on the block size.
pub fn block_size_matches() -> bool {
    // SAFETY: a pure function of the shim.
    unsafe { leakview_engine_tls_block_size() == TLS_BLOCK_SIZE }
}

/// Key whose destructor runs at thread exit; stores key + 1 (0: not created yet).
static EXIT_KEY: AtomicU32 = AtomicU32::new(0);
const KEY_CREATING: u32 = u32::MAX;

fn exit_key() -> Option<libc::pthread_key_t> {
    loop {
        match EXIT_KEY.load(Ordering::Acquire) {
            0 => {
                if EXIT_KEY.compare_exchange(0, KEY_CREATING, Ordering::AcqRel, Ordering::Acquire).is_err() {
                    continue;
                }
                let mut key: libc::pthread_key_t = 0;
                // SAFETY: creating a key with a destructor that has the required signature.
                let rc = unsafe { libc::pthread_key_create(&mut key, Some(on_thread_exit)) };
                let stored = if rc == 0 { key + 1 } else { KEY_CREATING - 1 };
                EXIT_KEY.store(stored, Ordering::Release);
            }
            KEY_CREATING => std::hint::spin_loop(),
            v if v == KEY_CREATING - 1 => return None,
            v => return Some(v - 1),
        }
    }
}

/// Called by the session when the thread exits; set by [`set_exit_hook`].
static EXIT_HOOK: std::sync::atomic::AtomicPtr<()> = std::sync::atomic::AtomicPtr::new(std::ptr::null_mut());

/// Registers what runs (with the guard held) when a recording thread exits.
pub fn set_exit_hook(hook: fn(&mut ThreadState)) {
    EXIT_HOOK.store(hook as *mut (), Ordering::Release);
}

unsafe extern "C" fn on_thread_exit(ptr: *mut c_void) {
    let state = ptr.cast::<ThreadState>();
    if state.is_null() {
        return;
    }
    // SAFETY: the key's value is this thread's own TLS block (set in `activate`).
    let state = unsafe { &mut *state };
    let saved = sys::errno();
    state.guard += 1;
    // The hook lets go of the thread's chunk.
    state.unready();
    let hook = EXIT_HOOK.load(Ordering::Acquire);
    if !hook.is_null() {
        // SAFETY: only `set_exit_hook` stores here, always a `fn(&mut ThreadState)`.
        let hook: fn(&mut ThreadState) =
            unsafe { std::mem::transmute::<*mut (), fn(&mut ThreadState)>(hook) };
        hook(state);
    }
    state.drop_capture();
    if state.stack_known != 0 {
        // What lies below this frame is dead from now on; the frames above (the thread's exit
        // path) and its descriptor at the top of the stack stay readable, as memcheck has them.
        let here = 0u64;
        let sp = (&raw const here as u64).clamp(state.stack_low, state.stack_high);
        own_memory::stack_died(ptr as u64, state.stack_low, std::hint::black_box(sp));
    }
    state.status = EXITED;
    state.guard -= 1;
    sys::set_errno(saved);
}

impl ThreadState {
    /// The thread's errno slot, asked of libc once per thread (a call for every hook otherwise;
    /// the slot never moves, and a forked child's thread keeps its parent thread's address).
    #[inline]
    pub fn errno_slot(&mut self) -> *mut i32 {
        if self.errno_slot.is_null() {
            self.errno_slot = sys::errno_slot();
        }
        self.errno_slot
    }

    pub fn tid(&self) -> u32 {
        self.tid
    }

    pub fn session_id(&self) -> u64 {
        self.session_id
    }

    /// Notes `name` as the thread's recorded name; false if it was already (nothing to record).
    pub fn note_name(&mut self, name: &[u8]) -> bool {
        let len = name.len().min(16);
        if usize::from(self.recorded_name[0]) == len && self.recorded_name[1..=len] == name[..len] {
            return false;
        }
        self.recorded_name[0] = len as u8;
        self.recorded_name[1..=len].copy_from_slice(&name[..len]);
        true
    }

    /// The session the thread is ready to record into at once (see the field), or null.
    #[inline(always)]
    pub fn ready(&self) -> *const () {
        self.ready
    }

    /// Marks the thread ready to record into `session` at once: the caller has checked that it
    /// is bound to it with no deferred events (see the field).
    #[inline]
    pub fn set_ready(&mut self, session: *const ()) {
        self.ready = session;
    }

    /// Ends the thread's readiness (see the field).
    #[inline(always)]
    pub fn unready(&mut self) {
        self.ready = std::ptr::null();
    }

    /// The bound stream of a thread that was ready (see [`ThreadState::ready`]) when its
    /// recording began. (A signal handler may have ended the readiness since, by deferring an
    /// event: the stream stays bound.)
    ///
    /// # Safety
    /// The thread must have been ready since its last binding: its stream is initialised.
    #[inline(always)]
    pub unsafe fn ready_stream(&mut self) -> &mut ThreadStream {
        debug_assert!(self.status != FRESH);
        // SAFETY: the caller's promise; a bound state's stream was written by `bind_first`.
        unsafe { self.stream.assume_init_mut() }
    }

    /// Whether the thread's exit destructor already ran.
    pub fn has_exited(&self) -> bool {
        self.status == EXITED
    }

    /// Makes the state ready to record into session `session_id`, starting a fresh stream when
    /// the session changed (first use, or a forked child's new trace). Call with the guard held.
    #[inline]
    pub fn bind(&mut self, session_id: u64) -> &mut ThreadStream {
        if self.status == FRESH || self.session_id != session_id {
            self.bind_first(session_id);
        }
        // SAFETY: written by `bind_first` now or earlier (status is not FRESH).
        unsafe { self.stream.assume_init_mut() }
    }

    /// [`ThreadState::bind`] for a thread's first event, or its first in session `session_id`.
    #[cold]
    #[inline(never)]
    fn bind_first(&mut self, session_id: u64) {
        self.unready();
        if self.status == FRESH {
            self.tid = sys::gettid();
            self.status = ACTIVE;
            let block = (self as *mut ThreadState) as u64;
            own_memory::add_tls_block(block, TLS_BLOCK_SIZE as u64);
            own_memory::stack_lives(block);
            if let Some(key) = exit_key() {
                // SAFETY: storing our own TLS block pointer under our key; glibc may allocate
                // for keys ≥ 32, which the held guard passes straight through.
                unsafe { libc::pthread_setspecific(key, (self as *mut ThreadState).cast()) };
            }
            self.stream.write(ThreadStream::new(self.tid));
            self.session_id = session_id;
            self.recorded_name[0] = 0;
        } else if self.session_id != session_id {
            self.stream.write(ThreadStream::new(self.tid));
            self.session_id = session_id;
            // A new trace (a forked child's): the name goes into it again.
            self.recorded_name[0] = 0;
            if let Some(capture) = self.existing_capture() {
                capture.forget();
            }
        }
    }

    /// The bound stream; only valid after [`ThreadState::bind`].
    pub fn stream(&mut self) -> Option<&mut ThreadStream> {
        if self.status == FRESH {
            return None;
        }
        // SAFETY: initialised by `bind` whenever status is not FRESH.
        Some(unsafe { self.stream.assume_init_mut() })
    }

    /// The capture state, created on first use (not after the thread's exit destructor). On a
    /// small stack, or off it, it is created on a side stack (framehop's cache is built in
    /// fixed-size storage on the stack).
    pub fn capture_mut(&mut self, sp: u64) -> Option<&mut CaptureState> {
        if self.capture.is_null() {
            if self.status != ACTIVE {
                return None;
            }
            if self.stack_known == 0 {
                if self.stack_queries != 0 {
                    // Asking now would wait on the lock this thread holds (InsideStackQuery).
                    return None;
                }
                let (low, high) = stack::thread_stack_bounds().unwrap_or((0, 0));
                self.stack_low = low;
                self.stack_high = high;
                self.stack_known = 1;
            }
            let (low, high) = (self.stack_low, self.stack_high);
            self.capture = if let Some(pooled) = capture_pool::take(low, high, self.session_id) {
                pooled
            } else if high != 0 && sp >= low && sp < high && sp - low >= stack::CREATE_STACK_ROOM {
                CaptureState::create(low, high)?
            } else {
                // A small stack, or a hook outside it (on the alternate signal stack): framehop
                // builds its cache on a side stack instead.
                SideStack::new()?.run(|| CaptureState::create(low, high))?
            };
        }
        // SAFETY: created by CaptureState::create and owned by this thread.
        Some(unsafe { &mut *self.capture })
    }

    /// The capture state, if it exists.
    pub fn existing_capture(&mut self) -> Option<&mut CaptureState> {
        // SAFETY: created by CaptureState::create and owned by this thread.
        (!self.capture.is_null()).then(|| unsafe { &mut *self.capture })
    }

    /// Lets go of the capture state at the thread's end: to the pool for the next thread, or
    /// unmapped.
    fn drop_capture(&mut self) {
        if !self.capture.is_null() {
            if let Some(state) = capture_pool::put(self.capture, self.session_id) {
                // SAFETY: we own it and clear the pointer right after.
                unsafe { CaptureState::destroy(state) };
            }
            self.capture = std::ptr::null_mut();
        }
    }

    /// In a forked child: this thread has a new id, and nothing it held belongs to the child's
    /// trace.
    pub fn after_fork_in_child(&mut self) {
        self.unready();
        if self.status != FRESH {
            self.tid = sys::gettid();
            self.stream.write(ThreadStream::new(self.tid));
        }
        self.session_id = 0;
        self.recorded_name[0] = 0;
        if let Some(capture) = self.existing_capture() {
            capture.forget();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shim_block_is_per_thread_and_sized() {
        assert!(block_size_matches());
        let here = current() as usize;
        let there = std::thread::spawn(|| current() as usize).join().expect("thread");
        assert_ne!(here, there);
        assert_eq!(here % 64, 0);
    }

    #[test]
    fn the_inline_access_finds_the_shims_block() {
        let pair = || {
            // SAFETY: a pure function of the shim.
            let shim = unsafe { leakview_engine_tls_block() } as usize;
            (current() as usize, shim)
        };
        let (here, shim_here) = pair();
        assert_eq!(here, shim_here);
        let (there, shim_there) = std::thread::spawn(pair).join().expect("thread");
        assert_eq!(there, shim_there);
        assert_ne!(here, there);
    }

    #[test]
    fn fresh_threads_start_unguarded() {
        let guard = std::thread::spawn(|| {
            // SAFETY: reading this thread's own state.
            unsafe { (*current()).guard }
        })
        .join()
        .expect("thread");
        assert_eq!(guard, 0);
    }
}
