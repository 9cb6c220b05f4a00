//! `dlsym`: a lookup of an allocation function through an explicit library handle
//! (`dlsym(dlopen("libc.so.6"), "malloc")`, as Python's ctypes, Dart's FFI and plugin hosts do)
//! finds the C library's own definition, not the interposed one, so the blocks it makes would be
//! invisible. Such a lookup that finds exactly the function a hook forwards to gets the hook
//! instead. Lookups with `RTLD_NEXT` or `RTLD_DEFAULT` jump straight to the real `dlsym` (they
//! depend on the caller's address, which a wrapper would change; they find the hooks anyway).
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
        "1:",
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
        explicit = sym explicit_handle_lookup,
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
