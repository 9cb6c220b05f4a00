//! Copies of stacks that are neither the thread's nor its alternate signal stack: coroutine and
//! fiber stacks (`swapcontext`, boost.context, green threads), whose bounds the recorder does not
//! know. Reading such a stack in place could run past its end into unmapped memory and crash the
//! program, so a walk there reads a copy taken with `process_vm_readv` on the process itself,
//! which stops at the first unreadable page instead of faulting.
//!
//! A copy starts at the hook's sp and spans a window that grows (doubling, up to
//! [`MAX_WINDOW`]) while a walk wants words beyond it; each thread remembers the window its
//! last such walk needed.

use crate::engine::sys::{self, Region};
use std::sync::atomic::{AtomicBool, Ordering};

/// Most bytes of a foreign stack copied for one walk (a walk wanting words past it ends there).
pub const MAX_WINDOW: usize = 256 * 1024;
/// The window of a thread's first copy.
const FIRST_WINDOW: usize = 4 * 1024;
const PAGE: u64 = 4096;
/// Remote pieces of one copy: one per page, so the copy ends exactly at the first unreadable page.
const MAX_PIECES: usize = MAX_WINDOW / PAGE as usize + 1;

/// `process_vm_readv` was refused (a seccomp filter, an old kernel): no more copies are tried.
static REFUSED: AtomicBool = AtomicBool::new(false);

/// A thread's buffer for stack copies, in a mapping of its own (its pages are touched only as
/// far as copies reach).
pub struct StackCopy {
    region: Region,
    /// The window to copy first.
    window: usize,
    /// The original stack's address of the copy's first byte, and how many bytes were copied.
    sp: u64,
    copied: usize,
}

impl StackCopy {
    pub fn new() -> Option<StackCopy> {
        Region::new(MAX_WINDOW).map(|region| StackCopy { region, window: FIRST_WINDOW, sp: 0, copied: 0 })
    }

    /// The window the next walk starts with.
    pub fn window(&self) -> usize {
        self.window
    }

    /// Remembers the window a walk needed (the next walks start with it).
    pub fn settle(&mut self, window: usize) {
        self.window = window.clamp(FIRST_WINDOW, MAX_WINDOW);
    }

    /// Copies the stack from `sp` for `window` bytes at most (fewer where readable memory ends);
    /// returns how many bytes it holds now (a multiple of 8; 0 if nothing could be read).
    pub fn take(&mut self, sp: u64, window: usize) -> usize {
        self.sp = sp;
        self.copied = 0;
        if REFUSED.load(Ordering::Relaxed) || sp & 7 != 0 {
            return 0;
        }
        let window = window.min(self.region.len());
        let mut remote = [libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 }; MAX_PIECES];
        let mut pieces = 0;
        let mut from = sp;
        let end = sp.saturating_add(window as u64);
        while from < end && pieces < MAX_PIECES {
            let to = ((from / PAGE) + 1).saturating_mul(PAGE).min(end);
            remote[pieces] =
                libc::iovec { iov_base: from as *mut libc::c_void, iov_len: (to - from) as usize };
            pieces += 1;
            from = to;
        }
        let local = libc::iovec { iov_base: self.region.as_ptr().cast(), iov_len: window };
        // SAFETY: the local piece is this copy's own mapping, at least `window` bytes long; the
        // remote pieces are only read by the kernel, which reports unreadable ones instead of
        // faulting. errno is restored by the hook's guard.
        let got = unsafe {
            libc::process_vm_readv(
                sys::getpid() as libc::pid_t,
                &local,
                1,
                remote.as_ptr(),
                pieces as libc::c_ulong,
                0,
            )
        };
        if got < 0 {
            if matches!(sys::errno(), libc::EPERM | libc::ENOSYS | libc::EACCES) {
                REFUSED.store(true, Ordering::Relaxed);
            }
            return 0;
        }
        self.copied = (got as usize).min(window) & !7;
        self.copied
    }

    /// The word the copied stack held at `address` (an address of the original stack), if the
    /// copy holds all of it and it is 8-aligned.
    #[inline]
    pub fn read(&self, address: u64) -> Option<u64> {
        let offset = address.wrapping_sub(self.sp);
        if offset >= self.copied as u64 || offset & 7 != 0 {
            return None;
        }
        // SAFETY: `copied` is a multiple of 8 no larger than the mapping, so an 8-aligned offset
        // below it starts an aligned word inside the (page-aligned) mapping.
        Some(unsafe { self.region.as_ptr().add(offset as usize).cast::<u64>().read() })
    }

    /// Whether a word at `address` lies past the copy's end (a bigger window might hold it).
    pub fn beyond(&self, address: u64) -> bool {
        address.wrapping_sub(self.sp) >= self.copied as u64 && address > self.sp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_holds_the_words_and_stops_at_unreadable_memory() {
        // Two readable pages followed by one that is not.
        let region = Region::new(3 * PAGE as usize).expect("mapping");
        let base = region.as_ptr() as u64;
        for i in 0..(2 * PAGE / 8) {
            // SAFETY: inside the first two pages of the mapping made above.
            unsafe { (base as *mut u64).add(i as usize).write(i * 3) };
        }
        // SAFETY: the third page of the mapping made above.
        let protected =
            unsafe { libc::mprotect((base + 2 * PAGE) as *mut libc::c_void, PAGE as usize, libc::PROT_NONE) };
        assert_eq!(protected, 0);
        let mut copy = StackCopy::new().expect("copy");
        let start = base + 1000;
        let got = copy.take(start, 64 * 1024);
        assert_eq!(got as u64, 2 * PAGE - 1000);
        assert_eq!(copy.read(start), Some(1000 / 8 * 3));
        assert_eq!(copy.read(start + 8), Some((1000 / 8 + 1) * 3));
        let last = base + 2 * PAGE - 8;
        assert_eq!(copy.read(last), Some((2 * PAGE / 8 - 1) * 3));
        assert_eq!(copy.read(last + 8), None);
        assert_eq!(copy.read(start - 8), None);
        assert_eq!(copy.read(start + 4), None);
        assert!(copy.beyond(last + 8) && !copy.beyond(last) && !copy.beyond(start - 8));
        // A window smaller than what is readable copies just the window.
        assert_eq!(copy.take(start, 512), 512);
        assert_eq!(copy.read(start + 504), Some((1000 / 8 + 63) * 3));
        assert_eq!(copy.read(start + 512), None);
        assert!(copy.beyond(start + 512));
        // Nothing readable at all.
        assert_eq!(copy.take(base + 2 * PAGE, 4096), 0);
        assert_eq!(copy.read(base + 2 * PAGE), None);
    }

    #[test]
    fn the_window_is_kept_within_its_bounds() {
        let mut copy = StackCopy::new().expect("copy");
        assert_eq!(copy.window(), FIRST_WINDOW);
        copy.settle(4 * MAX_WINDOW);
        assert_eq!(copy.window(), MAX_WINDOW);
        copy.settle(1);
        assert_eq!(copy.window(), FIRST_WINDOW);
    }
}
