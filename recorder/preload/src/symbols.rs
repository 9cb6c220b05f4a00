//! `dlsym`: a lookup of an allocation function through an explicit library handle
//! (`dlsym(dlopen("libc.so.6"), "malloc")`, as Python's ctypes, Dart's FFI and plugin hosts do)
//! finds the C library's own definition, not the interposed one, so the blocks it makes would be
//! invisible. Such a lookup that finds exactly the function a hook forwards to gets the hook
//! instead. Lookups with `RTLD_NEXT` or `RTLD_DEFAULT` jump straight to the real `dlsym` (they
//! depend on the caller's address, which a wrapper would change; they find the hooks anyway),
//! except those of a sized free (`free_sized`, `free_aligned_sized`) that nothing but this
//! library defines: a C library before glibc 2.43 has none, so without leakview the lookup
//! finds nothing, and a program probing for them must not find the hook (see
//! `sized_free_only_here`).
//!
//! x86_64 only: the entry point is a naked function, a few instructions that keep the caller's
//! return address for those lookups. Elsewhere `dlsym` is not interposed.

use std::ffi::{CStr, c_char, c_void};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::hooks;

/// The C library's `dlsym`, found with `dlvsym` (which is not interposed); 0 until the first call.
static REAL_DLSYM: AtomicUsize = AtomicUsize::new(0);

type DlsymFn = unsafe extern "C" fn(*mut c_void, *const c_char) -> *mut c_void;

/// # Safety
/// The C `dlsym` contract.
#[unsafe(naked)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dlsym(handle: *mut c_void, name: *const c_char) -> *mut c_void {
    std::arch::naked_asm!(
        "endbr64",
        // RTLD_NEXT ((void *)-1) and RTLD_DEFAULT (0): to the real dlsym with the caller's frame.
        "cmp rdi, -1",
        "je 1f",
        "test rdi, rdi",
        "jz 1f",
        "jmp {explicit}",
        // A sized free that only this library defines: not found (the stack stays aligned).
        "1:",
        "push rdi",
        "push rsi",
        "sub rsp, 8",
        "mov rdi, rsi",
        "call {only_here}",
        "add rsp, 8",
        "pop rsi",
        "pop rdi",
        "test al, al",
        "jnz 3f",
        "mov rax, qword ptr [rip + {real}]",
        "test rax, rax",
        "jz 2f",
        "jmp rax",
        // First call: find the real dlsym, keeping the arguments (the stack stays 16-byte aligned).
        "2:",
        "push rdi",
        "push rsi",
        "sub rsp, 8",
        "call {resolve}",
        "add rsp, 8",
        "pop rsi",
        "pop rdi",
        "jmp rax",
        "3:",
        "xor eax, eax",
        "ret",
        explicit = sym explicit_handle_lookup,
        only_here = sym sized_free_only_here,
        real = sym REAL_DLSYM,
        resolve = sym resolve_real_dlsym,
    )
}

/// A `dlsym` that finds nothing: what the interposed `dlsym` does if the C library has none.
unsafe extern "C" fn no_dlsym(_handle: *mut c_void, _name: *const c_char) -> *mut c_void {
    std::ptr::null_mut()
}

/// Finds (once) and returns the C library's `dlsym`.
extern "C" fn resolve_real_dlsym() -> usize {
    let known = REAL_DLSYM.load(Ordering::Acquire);
    if known != 0 {
        return known;
    }
    // glibc 2.34 moved dlsym into libc (GLIBC_2.34); before, libdl's GLIBC_2.2.5 one.
    let found = [c"GLIBC_2.34", c"GLIBC_2.2.5"]
        .iter()
        // SAFETY: dlvsym with RTLD_NEXT and NUL-terminated strings: the definition after this
        // library in lookup order.
        .map(|version| unsafe { libc::dlvsym(libc::RTLD_NEXT, c"dlsym".as_ptr(), version.as_ptr()) } as usize)
        .find(|&f| f != 0)
        .unwrap_or(no_dlsym as DlsymFn as usize);
    REAL_DLSYM.store(found, Ordering::Release);
    found
}

/// `dlsym` with a library handle: the real lookup, then the hook in place of the real
/// allocation function it forwards to. The function the hook forwards to is looked up first, so
/// the program's own lookup comes last and `dlerror` tells about it alone (a lookup that fails
/// sets the error a program may check after a successful `dlsym`).
///
/// # Safety
/// The C `dlsym` contract.
unsafe extern "C" fn explicit_handle_lookup(handle: *mut c_void, name: *const c_char) -> *mut c_void {
    // SAFETY: the slot holds the C library's dlsym (or `no_dlsym`).
    let real = unsafe { std::mem::transmute::<usize, DlsymFn>(resolve_real_dlsym()) };
    let hook = if name.is_null() {
        None
    } else {
        // SAFETY: `dlsym`'s contract: a non-null name is a NUL-terminated string.
        hook_named(unsafe { CStr::from_ptr(name) })
    };
    // SAFETY: the real dlsym, with RTLD_NEXT and the caller's name (only when it names a hook).
    let next = hook.map(|_| unsafe { real(libc::RTLD_NEXT, name) });
    // SAFETY: forwarding the caller's arguments.
    let found = unsafe { real(handle, name) };
    match (hook, next) {
        // Only the very function the hook forwards to: an explicit handle of another allocator
        // (a jemalloc the program loaded itself) keeps its own.
        (Some(hook), Some(next)) if !found.is_null() && next == found => hook,
        _ => found,
    }
}

/// Whether `name` is a sized free (`free_sized`, `free_aligned_sized`) that no object of the
/// process defines but this library: the global scope finds the hook and nothing after this
/// library has one. A lookup of it by `RTLD_DEFAULT` or `RTLD_NEXT` then finds nothing, as
/// without leakview (the hooks exist for programs built for a C library that has them). The
/// lookup that failed here leaves `dlerror` telling that the symbol is undefined, though naming
/// this library where a plain run names the caller's object. Called for every `RTLD_DEFAULT` and
/// `RTLD_NEXT` lookup: other names cost a `strlen` and a comparison.
extern "C" fn sized_free_only_here(name: *const c_char) -> bool {
    if name.is_null() {
        return false;
    }
    // SAFETY: `dlsym`'s contract: a non-null name is a NUL-terminated string.
    let name = unsafe { CStr::from_ptr(name) };
    if !matches!(name.to_bytes(), b"free_sized" | b"free_aligned_sized") {
        return false;
    }
    let Some(hook) = hook_named(name) else { return false };
    // SAFETY: the slot holds the C library's dlsym (or `no_dlsym`).
    let real = unsafe { std::mem::transmute::<usize, DlsymFn>(resolve_real_dlsym()) };
    // SAFETY: the real dlsym with a pseudo-handle and a NUL-terminated name; the lookup that
    // fails comes last, so `dlerror` tells about it.
    unsafe {
        real(libc::RTLD_DEFAULT, name.as_ptr()) == hook && real(libc::RTLD_NEXT, name.as_ptr()).is_null()
    }
}

/// The interposed function named `name`, if the library has one.
fn hook_named(name: &CStr) -> Option<*mut c_void> {
    let hook: usize = match name.to_bytes() {
        b"malloc" => hooks::malloc as unsafe extern "C" fn(usize) -> *mut c_void as usize,
        b"calloc" => hooks::calloc as unsafe extern "C" fn(usize, usize) -> *mut c_void as usize,
        b"realloc" => hooks::realloc as unsafe extern "C" fn(*mut c_void, usize) -> *mut c_void as usize,
        b"reallocarray" => {
            hooks::reallocarray as unsafe extern "C" fn(*mut c_void, usize, usize) -> *mut c_void as usize
        }
        b"free" => hooks::free as unsafe extern "C" fn(*mut c_void) as usize,
        b"free_sized" => hooks::free_sized as unsafe extern "C" fn(*mut c_void, usize) as usize,
        b"free_aligned_sized" => {
            hooks::free_aligned_sized as unsafe extern "C" fn(*mut c_void, usize, usize) as usize
        }
        b"posix_memalign" => {
            hooks::posix_memalign as unsafe extern "C" fn(*mut *mut c_void, usize, usize) -> i32 as usize
        }
        b"aligned_alloc" => {
            hooks::aligned_alloc as unsafe extern "C" fn(usize, usize) -> *mut c_void as usize
        }
        b"memalign" => hooks::memalign as unsafe extern "C" fn(usize, usize) -> *mut c_void as usize,
        b"valloc" => hooks::valloc as unsafe extern "C" fn(usize) -> *mut c_void as usize,
        b"pvalloc" => hooks::pvalloc as unsafe extern "C" fn(usize) -> *mut c_void as usize,
        _ => return None,
    };
    Some(hook as *mut c_void)
}
