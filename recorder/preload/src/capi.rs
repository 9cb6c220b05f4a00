//! The C API exported for programs (`include/leakview.h`): marks, switching recording of
//! allocations on and off, and reporting blocks of a program's own pool allocator.

use std::ffi::{c_char, c_void};
use std::sync::atomic::Ordering;

use leakview::engine::recorder::{self, Guard};
use leakview::engine::session::ALLOCATIONS_ENABLED;
use leakview::engine::stack::HookRegisters;

use crate::PROFILE;

/// Longest label kept by `leakview_mark`.
const MAX_LABEL: usize = 1024;

/// Places a labelled mark in the trace at this moment.
///
/// # Safety
/// `label` is null or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn leakview_mark(label: *const c_char) {
    let Some(mut guard) = Guard::enter() else { return };
    guard.save_errno();
    // SAFETY: the caller passes a NUL-terminated string or null.
    let bytes = unsafe { leakview::engine::sys::c_bytes(label) };
    recorder::mark(&mut guard, &PROFILE, &bytes[..bytes.len().min(MAX_LABEL)]);
}

/// Resumes recording allocations (the default).
#[unsafe(no_mangle)]
pub extern "C" fn leakview_enable() {
    ALLOCATIONS_ENABLED.store(true, Ordering::Relaxed);
}

/// Stops recording allocations until `leakview_enable`. Frees are still recorded, so blocks
/// allocated while enabled never look outstanding by mistake.
#[unsafe(no_mangle)]
pub extern "C" fn leakview_disable() {
    ALLOCATIONS_ENABLED.store(false, Ordering::Relaxed);
}

/// Reports that the program's own allocator handed out `size` bytes at `ptr`.
///
/// # Safety
/// No requirement on `ptr`: it is only recorded.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn leakview_alloc(ptr: *mut c_void, size: usize) {
    let hook = HookRegisters::here();
    if ptr.is_null() {
        return;
    }
    let Some(mut guard) = Guard::enter() else { return };
    guard.save_errno();
    recorder::alloc(guard.held(), &PROFILE, ptr as u64, size as u64, 0, hook);
}

/// Reports that the block at `ptr` reported with `leakview_alloc` was released.
///
/// # Safety
/// No requirement on `ptr`: it is only recorded.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn leakview_free(ptr: *mut c_void) {
    if ptr.is_null() {
        return;
    }
    let Some(mut guard) = Guard::enter() else { return };
    guard.save_errno();
    recorder::free(guard.held(), ptr as u64);
}
