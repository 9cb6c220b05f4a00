//! The API's platform layer where the recording engine is not available (every Unix target but
//! Linux; on Linux with `--cfg leakview_portable`, for tests): a thread-local reentrancy flag,
//! stacks captured by the platform unwinder through the `backtrace` crate and kept inline in
//! each record (at most [`INLINE_FRAMES`] frames), and no trace recording.
//!
//! A const-initialised `thread_local!` without a destructor is safe here: the tracked path only
//! sees the Rust allocations of the program, and whatever the platform's TLS machinery
//! allocates goes to the C allocator, not through this one.

use std::cell::Cell;
use std::io;
use std::path::{Path, PathBuf};

use super::capture_backtrace;

/// Most frames kept per stack on this platform.
pub(crate) const INLINE_FRAMES: usize = 30;

/// Where the tracking function's own frame is (frames at or below it are the tracker's).
#[derive(Clone, Copy)]
pub(crate) struct Hook {
    marker: usize,
}

/// Marks the calling function's frame: call it first thing in the tracking function.
#[inline(always)]
pub(crate) fn hook_here() -> Hook {
    Hook { marker: capture_backtrace::stack_marker() }
}

/// A tracked block's call stack, kept inline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct StackRef {
    len: u32,
    ips: [usize; INLINE_FRAMES],
}

/// Appends the return addresses of `stack` (innermost first) to `out`.
pub(crate) fn addresses(stack: StackRef, out: &mut Vec<usize>) {
    out.extend_from_slice(&stack.ips[..stack.len as usize]);
}

thread_local! {
    static INSIDE: Cell<bool> = const { Cell::new(false) };
    static THREAD_ID: Cell<u64> = const { Cell::new(0) };
}

/// The calling thread's reentrancy guard, held while the value lives.
pub(crate) struct Entered {
    _private: (),
}

/// Enters the calling thread's guard; `None` if the thread is already inside the tracker (or
/// its thread-locals are gone).
#[inline]
pub(crate) fn enter() -> Option<Entered> {
    INSIDE
        .try_with(|inside| {
            if inside.get() {
                None
            } else {
                inside.set(true);
                Some(Entered { _private: () })
            }
        })
        .ok()
        .flatten()
}

impl Drop for Entered {
    fn drop(&mut self) {
        let _ = INSIDE.try_with(|inside| inside.set(false));
    }
}

#[cfg(target_os = "linux")]
fn os_thread_id() -> u64 {
    // SAFETY: gettid has no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as u64 }
}

#[cfg(target_vendor = "apple")]
fn os_thread_id() -> u64 {
    let mut id = 0u64;
    // SAFETY: asks for the calling thread's id (null = current thread) into a u64 we own.
    unsafe { libc::pthread_threadid_np(0, &mut id) };
    id
}

#[cfg(not(any(target_os = "linux", target_vendor = "apple")))]
fn os_thread_id() -> u64 {
    // SAFETY: pthread_self has no preconditions.
    unsafe { libc::pthread_self() as usize as u64 }
}

impl Entered {
    /// Captures the stack above the frame marked by `hook` and returns it with the calling
    /// thread's id.
    pub(crate) fn capture(&mut self, hook: Hook) -> (StackRef, u64) {
        let mut stack = StackRef::default();
        stack.len = capture_backtrace::trace_into(&mut stack.ips, hook.marker) as u32;
        (stack, self.thread_id())
    }

    /// The calling thread's id, as [`Entered::capture`] gives it.
    pub(crate) fn thread_id(&mut self) -> u64 {
        THREAD_ID
            .try_with(|id| {
                if id.get() == 0 {
                    id.set(os_thread_id());
                }
                id.get()
            })
            .unwrap_or_else(|_| os_thread_id())
    }

    /// No trace is ever written on this platform.
    pub(crate) fn write_alloc(
        &mut self,
        _ts: u64,
        _address: usize,
        _size: usize,
        _align: usize,
        _stack: StackRef,
    ) -> bool {
        false
    }

    pub(crate) fn write_realloc(
        &mut self,
        _ts_free: u64,
        _ts: u64,
        _old_address: usize,
        _new_address: usize,
        _size: usize,
        _stack: StackRef,
    ) -> bool {
        false
    }

    pub(crate) fn write_free(&mut self, _ts: u64, _address: usize) -> bool {
        false
    }
}

/// Fork handlers: nothing of this layer is locked.
pub(crate) fn before_fork() {}

pub(crate) fn after_fork(_in_child: bool) {}

/// Recording a trace needs the engine, which is Linux-only.
pub(crate) fn start_recording(_path: &Path) -> io::Result<PathBuf> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "leakview: recording a trace in-process needs Linux (the report, leaks and verify APIs work here)",
    ))
}

pub(crate) fn stop_recording() -> bool {
    false
}

pub(crate) fn recording() -> bool {
    false
}
