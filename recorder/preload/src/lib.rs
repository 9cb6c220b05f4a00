//! `libleakview_preload.so`: load it with `LD_PRELOAD` and every malloc-family call of the
//! process is recorded into a leakview trace (settings in the environment: see the engine's
//! `config` module). This crate is thin: the exported hooks ([`hooks`]), the wrapper around
//! the program's signal handlers ([`signals`]), the C API ([`capi`], header
//! `include/leakview.h`), `dlsym` handing out the hooks for lookups through a library handle
//! (`symbols`, x86_64), and the link to the real allocator ([`real`]). The recording
//! itself is the `leakview` crate's engine.
//!
//! The library's own Rust allocations go straight to the real allocator (never through the
//! hooks), and the library constructor registers the fork and exit handlers.

use std::alloc::{GlobalAlloc, Layout};

use leakview::engine::recorder::{self, Guard};
use leakview::engine::session::Profile;
use leakview_format::RecorderKind;

pub mod capi;
pub mod hooks;
pub mod real;
pub mod signals;
#[cfg(all(target_arch = "x86_64", not(test)))]
pub mod symbols;

/// Who records: written into every trace's metadata.
pub static PROFILE: Profile = Profile {
    recorder: concat!("leakview-preload ", env!("CARGO_PKG_VERSION")),
    kind: RecorderKind::Preload,
};

/// The library's own allocations: straight to the real allocator, never recorded.
struct NextAllocator;

/// Alignment malloc guarantees on every supported target.
const MALLOC_ALIGN: usize = 16;

// SAFETY: every method forwards to the real allocator with a layout-compatible call.
unsafe impl GlobalAlloc for NextAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarding; aligned requests use memalign, which accepts any power of two.
        unsafe {
            if layout.align() <= MALLOC_ALIGN {
                real::malloc(layout.size()).cast()
            } else {
                real::memalign(layout.align(), layout.size()).cast()
            }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarding; the aligned path zeroes the fresh block itself.
        unsafe {
            if layout.align() <= MALLOC_ALIGN {
                real::calloc(1, layout.size()).cast()
            } else {
                let p = self.alloc(layout);
                if !p.is_null() {
                    std::ptr::write_bytes(p, 0, layout.size());
                }
                p
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from this allocator, i.e. from the real allocator.
        unsafe { real::free(ptr.cast()) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarding; over-aligned blocks are moved by hand to keep their alignment.
        unsafe {
            if layout.align() <= MALLOC_ALIGN {
                return real::realloc(ptr.cast(), new_size).cast();
            }
            let new = self.alloc(Layout::from_size_align_unchecked(new_size, layout.align()));
            if !new.is_null() {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            new
        }
    }
}

#[global_allocator]
static ALLOCATOR: NextAllocator = NextAllocator;

extern "C" fn at_exit() {
    recorder::process_exit();
}

extern "C" fn fork_prepare() {
    recorder::fork_prepare();
}

extern "C" fn fork_parent() {
    recorder::fork_parent();
}

extern "C" fn fork_child() {
    recorder::fork_child();
}

/// Library constructor: resolve the real allocator, register fork and exit handlers, and start
/// recording (if no allocation has started it already).
extern "C" fn constructor() {
    let Some(mut guard) = Guard::enter() else { return };
    // With the guard held, what dlsym allocates while resolving is not the program's.
    real::ensure_resolved();
    // SAFETY: registering handlers with the required signatures; what they allocate is the
    // recorder's own (the guard is held), not the program's.
    unsafe {
        libc::pthread_atfork(Some(fork_prepare), Some(fork_parent), Some(fork_child));
        libc::atexit(at_exit);
    }
    recorder::start(&mut guard, &PROFILE);
}

#[used]
#[unsafe(link_section = ".init_array")]
static CONSTRUCTOR: extern "C" fn() = constructor;
