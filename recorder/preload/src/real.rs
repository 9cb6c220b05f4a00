//! The real allocator: the next definitions of the malloc family in symbol lookup order
//! (`dlsym(RTLD_NEXT, ...)`), so a program that links jemalloc or tcmalloc keeps it; and the
//! other functions the library interposes (`dlclose`, `pthread_getattr_np`, `sigaction`,
//! `siginterrupt`).
//!
//! They are resolved once, by the first call. `dlsym` itself may call `calloc`/`malloc`, which
//! land in our hooks before anything is resolved: those (and any other call that arrives
//! during resolution) are served from a static bump buffer. `free` ignores such blocks and
//! `realloc` moves them into real memory.

use std::ffi::c_void;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

type MallocFn = unsafe extern "C" fn(usize) -> *mut c_void;
type FreeFn = unsafe extern "C" fn(*mut c_void);
type CallocFn = unsafe extern "C" fn(usize, usize) -> *mut c_void;
type ReallocFn = unsafe extern "C" fn(*mut c_void, usize) -> *mut c_void;
type PosixMemalignFn = unsafe extern "C" fn(*mut *mut c_void, usize, usize) -> i32;
type AlignedFn = unsafe extern "C" fn(usize, usize) -> *mut c_void;
type FreeSizedFn = unsafe extern "C" fn(*mut c_void, usize);
type FreeAlignedSizedFn = unsafe extern "C" fn(*mut c_void, usize, usize);
type DlcloseFn = unsafe extern "C" fn(*mut c_void) -> i32;
type GetattrFn = unsafe extern "C" fn(libc::pthread_t, *mut libc::pthread_attr_t) -> i32;
type SigactionFn = unsafe extern "C" fn(i32, *const libc::sigaction, *mut libc::sigaction) -> i32;
type SiginterruptFn = unsafe extern "C" fn(i32, i32) -> i32;

unsafe extern "C" {
    fn __libc_malloc(size: usize) -> *mut c_void;
    fn __libc_free(ptr: *mut c_void);
    fn __libc_calloc(n: usize, size: usize) -> *mut c_void;
    fn __libc_realloc(ptr: *mut c_void, size: usize) -> *mut c_void;
    fn __libc_memalign(align: usize, size: usize) -> *mut c_void;
}

struct Table {
    malloc: AtomicUsize,
    free: AtomicUsize,
    calloc: AtomicUsize,
    realloc: AtomicUsize,
    posix_memalign: AtomicUsize,
    aligned_alloc: AtomicUsize,
    memalign: AtomicUsize,
    valloc: AtomicUsize,
    pvalloc: AtomicUsize,
    free_sized: AtomicUsize,
    free_aligned_sized: AtomicUsize,
    dlclose: AtomicUsize,
    pthread_getattr_np: AtomicUsize,
    sigaction: AtomicUsize,
    siginterrupt: AtomicUsize,
}

static TABLE: Table = Table {
    malloc: AtomicUsize::new(0),
    free: AtomicUsize::new(0),
    calloc: AtomicUsize::new(0),
    realloc: AtomicUsize::new(0),
    posix_memalign: AtomicUsize::new(0),
    aligned_alloc: AtomicUsize::new(0),
    memalign: AtomicUsize::new(0),
    valloc: AtomicUsize::new(0),
    pvalloc: AtomicUsize::new(0),
    free_sized: AtomicUsize::new(0),
    free_aligned_sized: AtomicUsize::new(0),
    dlclose: AtomicUsize::new(0),
    pthread_getattr_np: AtomicUsize::new(0),
    sigaction: AtomicUsize::new(0),
    siginterrupt: AtomicUsize::new(0),
};

const UNRESOLVED: u8 = 0;
const RESOLVING: u8 = 1;
const RESOLVED: u8 = 2;
static STATE: AtomicU8 = AtomicU8::new(UNRESOLVED);

fn lookup(name: &std::ffi::CStr) -> usize {
    // SAFETY: dlsym with RTLD_NEXT and a NUL-terminated name; it may allocate, which our hooks
    // serve from the bootstrap buffer while resolution is under way.
    unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) as usize }
}

#[cold]
fn resolve() {
    if STATE.compare_exchange(UNRESOLVED, RESOLVING, Ordering::AcqRel, Ordering::Acquire).is_err() {
        return;
    }
    let t = &TABLE;
    let or = |found: usize, fallback: usize| if found != 0 { found } else { fallback };
    // Store the optional ones first: the hot-path check looks at `malloc` last.
    t.free_sized.store(lookup(c"free_sized"), Ordering::Release);
    t.free_aligned_sized.store(lookup(c"free_aligned_sized"), Ordering::Release);
    t.posix_memalign.store(lookup(c"posix_memalign"), Ordering::Release);
    t.aligned_alloc
        .store(or(lookup(c"aligned_alloc"), __libc_memalign as AlignedFn as usize), Ordering::Release);
    t.memalign.store(or(lookup(c"memalign"), __libc_memalign as AlignedFn as usize), Ordering::Release);
    t.valloc.store(lookup(c"valloc"), Ordering::Release);
    t.pvalloc.store(lookup(c"pvalloc"), Ordering::Release);
    t.dlclose.store(lookup(c"dlclose"), Ordering::Release);
    t.pthread_getattr_np.store(lookup(c"pthread_getattr_np"), Ordering::Release);
    t.sigaction.store(lookup(c"sigaction"), Ordering::Release);
    t.siginterrupt.store(lookup(c"siginterrupt"), Ordering::Release);
    t.calloc.store(or(lookup(c"calloc"), __libc_calloc as CallocFn as usize), Ordering::Release);
    t.realloc.store(or(lookup(c"realloc"), __libc_realloc as ReallocFn as usize), Ordering::Release);
    t.free.store(or(lookup(c"free"), __libc_free as FreeFn as usize), Ordering::Release);
    t.malloc.store(or(lookup(c"malloc"), __libc_malloc as MallocFn as usize), Ordering::Release);
    STATE.store(RESOLVED, Ordering::Release);
}

/// Resolves the real functions now (library constructor), if no hook has yet.
pub fn ensure_resolved() {
    if STATE.load(Ordering::Acquire) != RESOLVED {
        resolve();
    }
}

#[inline]
fn get(slot: &AtomicUsize) -> usize {
    let f = slot.load(Ordering::Acquire);
    if f != 0 {
        return f;
    }
    resolve();
    slot.load(Ordering::Acquire)
}

// ---------------------------------------------------------------------------------------------
// Bootstrap buffer.

const BOOTSTRAP_LEN: usize = 256 * 1024;
const HEADER: usize = 16;

#[repr(C, align(4096))]
struct Bootstrap([u8; BOOTSTRAP_LEN]);

static mut BOOTSTRAP: Bootstrap = Bootstrap([0; BOOTSTRAP_LEN]);
static BOOTSTRAP_USED: AtomicUsize = AtomicUsize::new(0);

fn bootstrap_base() -> usize {
    (&raw const BOOTSTRAP) as usize
}

/// Whether `ptr` was handed out by the bootstrap buffer.
#[inline]
pub fn is_bootstrap(ptr: *mut c_void) -> bool {
    let p = ptr as usize;
    let base = bootstrap_base();
    p >= base && p < base + BOOTSTRAP_LEN
}

/// Serves an allocation while the real allocator is not known yet. Blocks are zeroed (the
/// buffer starts zeroed and is never reused), carry their size in a 16-byte header, and are
/// never freed.
fn bootstrap_alloc(size: usize, align: usize) -> *mut c_void {
    let align = align.max(HEADER).next_power_of_two();
    let Some(need) = size.checked_add(HEADER + align) else { return std::ptr::null_mut() };
    let start = BOOTSTRAP_USED.fetch_add(need, Ordering::Relaxed);
    if start.saturating_add(need) > BOOTSTRAP_LEN {
        return std::ptr::null_mut();
    }
    let base = bootstrap_base();
    let user = (base + start + HEADER).next_multiple_of(align);
    // SAFETY: `user - HEADER .. user + size` lies inside the range reserved by the fetch_add.
    unsafe { ((user - 8) as *mut usize).write(size) };
    user as *mut c_void
}

/// Size of a bootstrap block.
///
/// # Safety
/// `ptr` must satisfy [`is_bootstrap`] and come from [`bootstrap_alloc`].
unsafe fn bootstrap_size(ptr: *mut c_void) -> usize {
    // SAFETY: every bootstrap block has its size in the 8 bytes before it.
    unsafe { ((ptr as usize - 8) as *const usize).read() }
}

// ---------------------------------------------------------------------------------------------
// The real functions.

/// # Safety
/// As `malloc(3)`.
#[inline]
pub unsafe fn malloc(size: usize) -> *mut c_void {
    match get(&TABLE.malloc) {
        0 => bootstrap_alloc(size, 16),
        // SAFETY: the slot holds the address of the next `malloc`.
        f => unsafe { std::mem::transmute::<usize, MallocFn>(f)(size) },
    }
}

/// # Safety
/// As `free(3)`; bootstrap blocks are ignored.
#[inline]
pub unsafe fn free(ptr: *mut c_void) {
    if ptr.is_null() || is_bootstrap(ptr) {
        return;
    }
    // SAFETY: the slot holds the address of the next `free` (resolved, since `ptr` came from
    // the real allocator).
    unsafe { std::mem::transmute::<usize, FreeFn>(get(&TABLE.free))(ptr) }
}

/// # Safety
/// As `calloc(3)`.
#[inline]
pub unsafe fn calloc(n: usize, size: usize) -> *mut c_void {
    match get(&TABLE.calloc) {
        0 => n.checked_mul(size).map_or(std::ptr::null_mut(), |total| bootstrap_alloc(total, 16)),
        // SAFETY: the slot holds the address of the next `calloc`.
        f => unsafe { std::mem::transmute::<usize, CallocFn>(f)(n, size) },
    }
}

/// # Safety
/// As `realloc(3)`; a bootstrap block is moved into real memory.
#[inline]
pub unsafe fn realloc(ptr: *mut c_void, size: usize) -> *mut c_void {
    if is_bootstrap(ptr) {
        // SAFETY: a bootstrap block and a fresh block of at least the copied length.
        unsafe {
            let new = malloc(size.max(1));
            if !new.is_null() {
                let old = bootstrap_size(ptr);
                std::ptr::copy_nonoverlapping(ptr.cast::<u8>(), new.cast::<u8>(), old.min(size));
            }
            return new;
        }
    }
    match get(&TABLE.realloc) {
        0 => bootstrap_alloc(size, 16),
        // SAFETY: the slot holds the address of the next `realloc`.
        f => unsafe { std::mem::transmute::<usize, ReallocFn>(f)(ptr, size) },
    }
}

/// # Safety
/// As `posix_memalign(3)`.
pub unsafe fn posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> i32 {
    match get(&TABLE.posix_memalign) {
        0 => {
            if !align.is_power_of_two() || align < std::mem::size_of::<usize>() {
                return libc::EINVAL;
            }
            let p = bootstrap_alloc(size, align);
            if p.is_null() {
                return libc::ENOMEM;
            }
            // SAFETY: the caller passes a writable pointer, as posix_memalign requires.
            unsafe { *out = p };
            0
        }
        // SAFETY: the slot holds the address of the next `posix_memalign`.
        f => unsafe { std::mem::transmute::<usize, PosixMemalignFn>(f)(out, align, size) },
    }
}

fn aligned_call(slot: &AtomicUsize, align: usize, size: usize) -> *mut c_void {
    match get(slot) {
        0 => bootstrap_alloc(size, align),
        // SAFETY: the slot holds the address of a next `(align, size)` allocation function.
        f => unsafe { std::mem::transmute::<usize, AlignedFn>(f)(align, size) },
    }
}

/// # Safety
/// As `aligned_alloc(3)`.
pub unsafe fn aligned_alloc(align: usize, size: usize) -> *mut c_void {
    aligned_call(&TABLE.aligned_alloc, align, size)
}

/// # Safety
/// As `memalign(3)`.
pub unsafe fn memalign(align: usize, size: usize) -> *mut c_void {
    aligned_call(&TABLE.memalign, align, size)
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if page > 0 { page as usize } else { 4096 }
}

/// # Safety
/// As `valloc(3)`.
pub unsafe fn valloc(size: usize) -> *mut c_void {
    match get(&TABLE.valloc) {
        0 => aligned_call(&TABLE.memalign, page_size(), size),
        // SAFETY: the slot holds the address of the next `valloc`.
        f => unsafe { std::mem::transmute::<usize, MallocFn>(f)(size) },
    }
}

/// # Safety
/// As `pvalloc(3)`.
pub unsafe fn pvalloc(size: usize) -> *mut c_void {
    match get(&TABLE.pvalloc) {
        0 => {
            let page = page_size();
            match size.max(1).checked_next_multiple_of(page) {
                Some(rounded) => aligned_call(&TABLE.memalign, page, rounded),
                None => std::ptr::null_mut(),
            }
        }
        // SAFETY: the slot holds the address of the next `pvalloc`.
        f => unsafe { std::mem::transmute::<usize, MallocFn>(f)(size) },
    }
}

/// The system page size (the alignment of valloc/pvalloc blocks).
pub fn page() -> usize {
    page_size()
}

/// # Safety
/// As C23 `free_sized`; falls back to `free`.
pub unsafe fn free_sized(ptr: *mut c_void, size: usize) {
    if ptr.is_null() || is_bootstrap(ptr) {
        return;
    }
    match get(&TABLE.free_sized) {
        // SAFETY: as `free`.
        0 => unsafe { free(ptr) },
        // SAFETY: the slot holds the address of the next `free_sized`.
        f => unsafe { std::mem::transmute::<usize, FreeSizedFn>(f)(ptr, size) },
    }
}

/// # Safety
/// As C23 `free_aligned_sized`; falls back to `free`.
pub unsafe fn free_aligned_sized(ptr: *mut c_void, align: usize, size: usize) {
    if ptr.is_null() || is_bootstrap(ptr) {
        return;
    }
    match get(&TABLE.free_aligned_sized) {
        // SAFETY: as `free`.
        0 => unsafe { free(ptr) },
        // SAFETY: the slot holds the address of the next `free_aligned_sized`.
        f => unsafe { std::mem::transmute::<usize, FreeAlignedSizedFn>(f)(ptr, align, size) },
    }
}

/// # Safety
/// As `dlclose(3)`.
pub unsafe fn dlclose(handle: *mut c_void) -> i32 {
    match get(&TABLE.dlclose) {
        0 => -1,
        // SAFETY: the slot holds the address of the next `dlclose`.
        f => unsafe { std::mem::transmute::<usize, DlcloseFn>(f)(handle) },
    }
}

/// # Safety
/// As `pthread_getattr_np(3)`.
pub unsafe fn pthread_getattr_np(thread: libc::pthread_t, attr: *mut libc::pthread_attr_t) -> i32 {
    match get(&TABLE.pthread_getattr_np) {
        0 => libc::ENOSYS,
        // SAFETY: the slot holds the address of the next `pthread_getattr_np`.
        f => unsafe { std::mem::transmute::<usize, GetattrFn>(f)(thread, attr) },
    }
}

/// # Safety
/// As `sigaction(2)`. Without a next `sigaction` (never seen: libc has one) the call fails
/// with ENOSYS rather than reach this library's own `sigaction` again.
pub unsafe fn sigaction(sig: i32, act: *const libc::sigaction, old: *mut libc::sigaction) -> i32 {
    match get(&TABLE.sigaction) {
        0 => {
            leakview::engine::sys::set_errno(libc::ENOSYS);
            -1
        }
        // SAFETY: the slot holds the address of the next `sigaction`.
        f => unsafe { std::mem::transmute::<usize, SigactionFn>(f)(sig, act, old) },
    }
}

/// # Safety
/// As `siginterrupt(3)`.
pub unsafe fn siginterrupt(sig: i32, flag: i32) -> i32 {
    match get(&TABLE.siginterrupt) {
        0 => {
            leakview::engine::sys::set_errno(libc::ENOSYS);
            -1
        }
        // SAFETY: the slot holds the address of the next `siginterrupt`.
        f => unsafe { std::mem::transmute::<usize, SiginterruptFn>(f)(sig, flag) },
    }
}
