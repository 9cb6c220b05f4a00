//! The interposed malloc family, `dlclose`, `pthread_getattr_np` (marked while inside, see
//! there), and `_exit`/`_Exit` (which end the trace). Each allocation hook enters the thread's
//! reentrancy guard, calls the real function with the guard held (marked as a real call), and
//! records from the result. A nested call passes straight through, unless a signal handler made
//! it: see `Guard` (a handler interrupting a recording has its event deferred). Timestamps:
//! after the real allocation, before the real free; realloc takes one before (the implicit
//! free) and one after. errno is preserved. `malloc_usable_size` is not interposed: block
//! layouts are never changed.

use std::ffi::c_void;

use leakview::engine::clock;
use leakview::engine::deferred::DeferredKind;
use leakview::engine::recorder::{self, Guard};
use leakview::engine::stack::HookRegisters;
use leakview::engine::thread::InsideStackQuery;

use crate::PROFILE;
use crate::real;

#[inline(always)]
fn record_alloc(guard: &mut Guard, ptr: *mut c_void, size: usize, align: usize, hook: HookRegisters) {
    guard.save_errno();
    recorder::alloc(guard.held(), &PROFILE, ptr as u64, size as u64, align as u64, hook);
}

/// A nested allocation that got no guard: kept for later if a signal handler made it while the
/// thread was recording, otherwise (the allocator's or the recorder's own) not recorded.
#[inline(always)]
fn nested_alloc(ptr: *mut c_void, size: usize, align: usize) -> *mut c_void {
    if !ptr.is_null() && Guard::interrupted_recording() {
        recorder::defer(DeferredKind::Alloc { addr: ptr as u64, size: size as u64, align: align as u64 });
    }
    ptr
}

/// # Safety
/// The C `malloc` contract.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn malloc(size: usize) -> *mut c_void {
    let hook = HookRegisters::here();
    let Some(mut guard) = Guard::enter() else {
        // SAFETY: forwarding the caller's arguments.
        return nested_alloc(unsafe { real::malloc(size) }, size, 0);
    };
    // SAFETY: forwarding the caller's arguments.
    let ptr = guard.real_call(|| unsafe { real::malloc(size) });
    if !ptr.is_null() {
        record_alloc(&mut guard, ptr, size, 0, hook);
    }
    ptr
}

/// # Safety
/// The C `calloc` contract.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn calloc(n: usize, size: usize) -> *mut c_void {
    let hook = HookRegisters::here();
    let Some(mut guard) = Guard::enter() else {
        // SAFETY: forwarding the caller's arguments.
        return nested_alloc(unsafe { real::calloc(n, size) }, n.wrapping_mul(size), 0);
    };
    // SAFETY: forwarding the caller's arguments.
    let ptr = guard.real_call(|| unsafe { real::calloc(n, size) });
    if !ptr.is_null() {
        record_alloc(&mut guard, ptr, n.wrapping_mul(size), 0, hook);
    }
    ptr
}

#[inline(always)]
unsafe fn free_with(ptr: *mut c_void, release: impl FnOnce(*mut c_void)) {
    if ptr.is_null() || real::is_bootstrap(ptr) {
        return;
    }
    let Some(mut guard) = Guard::enter() else {
        if Guard::interrupted_recording() {
            recorder::defer(DeferredKind::Free { addr: ptr as u64 });
        }
        release(ptr);
        return;
    };
    guard.save_errno();
    recorder::free(guard.held(), ptr as u64);
    guard.real_call(|| release(ptr));
}

/// # Safety
/// The C `free` contract.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn free(ptr: *mut c_void) {
    // SAFETY: forwarding the caller's pointer to the real free.
    unsafe { free_with(ptr, |p| real::free(p)) }
}

/// # Safety
/// The C23 `free_sized` contract.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn free_sized(ptr: *mut c_void, size: usize) {
    // SAFETY: forwarding the caller's arguments.
    unsafe { free_with(ptr, |p| real::free_sized(p, size)) }
}

/// # Safety
/// The C23 `free_aligned_sized` contract.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn free_aligned_sized(ptr: *mut c_void, align: usize, size: usize) {
    // SAFETY: forwarding the caller's arguments.
    unsafe { free_with(ptr, |p| real::free_aligned_sized(p, align, size)) }
}

#[inline(always)]
unsafe fn realloc_impl(ptr: *mut c_void, size: usize, hook: HookRegisters) -> *mut c_void {
    let Some(mut guard) = Guard::enter() else {
        // SAFETY: forwarding the caller's arguments.
        return unsafe { nested_realloc(ptr, size) };
    };
    if ptr.is_null() || real::is_bootstrap(ptr) {
        // SAFETY: forwarding the caller's arguments.
        let new = guard.real_call(|| unsafe { real::realloc(ptr, size) });
        if !new.is_null() {
            record_alloc(&mut guard, new, size, 0, hook);
        }
        return new;
    }
    let ts_free = clock::monotonic_ns();
    // SAFETY: forwarding the caller's arguments.
    let new = guard.real_call(|| unsafe { real::realloc(ptr, size) });
    guard.save_errno();
    if new.is_null() {
        if size == 0 {
            // realloc(p, 0) freed the block (glibc) and returned nothing.
            recorder::free_at(guard.held(), ts_free, ptr as u64);
        }
        // Otherwise it failed and the old block is still live: nothing happened.
        return new;
    }
    recorder::realloc(guard.held(), &PROFILE, ts_free, ptr as u64, new as u64, size as u64, hook);
    new
}

/// A nested realloc (see [`nested_alloc`]).
///
/// # Safety
/// The C `realloc` contract.
#[inline(always)]
unsafe fn nested_realloc(ptr: *mut c_void, size: usize) -> *mut c_void {
    let ts_free = clock::monotonic_ns();
    // SAFETY: forwarding the caller's arguments.
    let new = unsafe { real::realloc(ptr, size) };
    if !Guard::interrupted_recording() {
        return new;
    }
    let errno = leakview::engine::sys::errno();
    let old_addr = ptr as u64;
    match (ptr.is_null() || real::is_bootstrap(ptr), new.is_null()) {
        (true, false) => {
            recorder::defer(DeferredKind::Alloc { addr: new as u64, size: size as u64, align: 0 })
        }
        (false, false) => recorder::defer(DeferredKind::Realloc {
            ts_free,
            old_addr,
            new_addr: new as u64,
            size: size as u64,
        }),
        (false, true) if size == 0 => recorder::defer(DeferredKind::Free { addr: old_addr }),
        _ => {}
    }
    leakview::engine::sys::set_errno(errno);
    new
}

/// # Safety
/// The C `realloc` contract.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn realloc(ptr: *mut c_void, size: usize) -> *mut c_void {
    let hook = HookRegisters::here();
    // SAFETY: forwarding the caller's arguments.
    unsafe { realloc_impl(ptr, size, hook) }
}

/// # Safety
/// The `reallocarray` contract.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn reallocarray(ptr: *mut c_void, n: usize, size: usize) -> *mut c_void {
    let hook = HookRegisters::here();
    let Some(total) = n.checked_mul(size) else {
        leakview::engine::sys::set_errno(libc::ENOMEM);
        return std::ptr::null_mut();
    };
    // SAFETY: forwarding the caller's arguments.
    unsafe { realloc_impl(ptr, total, hook) }
}

/// # Safety
/// The `posix_memalign` contract.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> i32 {
    let hook = HookRegisters::here();
    let Some(mut guard) = Guard::enter() else {
        // SAFETY: forwarding the caller's arguments.
        let rc = unsafe { real::posix_memalign(out, align, size) };
        if rc == 0 {
            // SAFETY: on success the real function stored the block through `out`.
            nested_alloc(unsafe { *out }, size, align);
        }
        return rc;
    };
    // SAFETY: forwarding the caller's arguments.
    let rc = guard.real_call(|| unsafe { real::posix_memalign(out, align, size) });
    if rc == 0 {
        // SAFETY: on success the real function stored the block through `out`.
        let ptr = unsafe { *out };
        record_alloc(&mut guard, ptr, size, align, hook);
    }
    rc
}

macro_rules! aligned_hook {
    ($(#[$doc:meta])* $name:ident, $real:path) => {
        $(#[$doc])*
        /// # Safety
        /// The C contract of the function of the same name.
        #[cfg_attr(not(test), unsafe(no_mangle))]
        pub unsafe extern "C" fn $name(align: usize, size: usize) -> *mut c_void {
            let hook = HookRegisters::here();
            let Some(mut guard) = Guard::enter() else {
                // SAFETY: forwarding the caller's arguments.
                return nested_alloc(unsafe { $real(align, size) }, size, align);
            };
            // SAFETY: forwarding the caller's arguments.
            let ptr = guard.real_call(|| unsafe { $real(align, size) });
            if !ptr.is_null() {
                record_alloc(&mut guard, ptr, size, align, hook);
            }
            ptr
        }
    };
}

aligned_hook!(aligned_alloc, real::aligned_alloc);
aligned_hook!(memalign, real::memalign);

macro_rules! page_hook {
    ($name:ident, $real:path) => {
        /// # Safety
        /// The C contract of the function of the same name.
        #[cfg_attr(not(test), unsafe(no_mangle))]
        pub unsafe extern "C" fn $name(size: usize) -> *mut c_void {
            let hook = HookRegisters::here();
            let Some(mut guard) = Guard::enter() else {
                // SAFETY: forwarding the caller's arguments.
                return nested_alloc(unsafe { $real(size) }, size, real::page());
            };
            // SAFETY: forwarding the caller's arguments.
            let ptr = guard.real_call(|| unsafe { $real(size) });
            if !ptr.is_null() {
                record_alloc(&mut guard, ptr, size, real::page(), hook);
            }
            ptr
        }
    };
}

page_hook!(valloc, real::valloc);
page_hook!(pvalloc, real::pvalloc);

/// `dlclose`: the real call runs unguarded (the frees it makes are the program's), then the
/// module map is rescanned so that unloaded objects get a `ModuleUnload`.
///
/// # Safety
/// The C `dlclose` contract.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn dlclose(handle: *mut c_void) -> i32 {
    // SAFETY: forwarding the caller's handle.
    let rc = unsafe { real::dlclose(handle) };
    if let Some(mut guard) = Guard::enter() {
        guard.save_errno();
        recorder::modules_changed(&mut guard);
    }
    rc
}

/// `pthread_getattr_np`: the real call, with the thread marked as inside it. glibc holds the
/// queried thread's lock while it allocates in there, and the recorder asks the same function for
/// a thread's stack at the thread's first recorded allocation: without the mark, a thread whose
/// first allocation came from inside its own query (every Rust program's main thread, at start)
/// would wait for itself. See `InsideStackQuery`.
///
/// # Safety
/// The C `pthread_getattr_np` contract.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn pthread_getattr_np(thread: libc::pthread_t, attr: *mut libc::pthread_attr_t) -> i32 {
    let _inside = InsideStackQuery::enter();
    // SAFETY: forwarding the caller's arguments.
    unsafe { real::pthread_getattr_np(thread, attr) }
}

/// `_exit(2)`: ends the process without atexit handlers; the trace is marked complete first.
///
/// # Safety
/// The C `_exit` contract.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn _exit(status: i32) -> ! {
    recorder::process_exit_now();
    loop {
        // SAFETY: exit_group ends every thread of the process, as glibc's _exit does.
        unsafe { libc::syscall(libc::SYS_exit_group, status) };
    }
}

/// `_Exit(3)`: as [`_exit`].
///
/// # Safety
/// The C `_Exit` contract.
#[cfg_attr(not(test), unsafe(no_mangle))]
#[allow(non_snake_case)] // the C name
pub unsafe extern "C" fn _Exit(status: i32) -> ! {
    // SAFETY: the same contract.
    unsafe { _exit(status) }
}
