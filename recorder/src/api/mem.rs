//! The API's own memory and locking, independent of the program's allocator: anonymous
//! mappings for the registry's tables and a small spin lock. (The engine has equivalents, but
//! the engine is Linux-only and the API also runs on other Unix systems.)

use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};

/// Page size assumed for rounding; the kernel rounds up further if its pages are larger.
const PAGE: usize = 4096;

/// An anonymous private mapping of zeroed memory. Never goes through any allocator.
pub(crate) struct Region {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: a region is plain memory; the types built on it synchronise their own accesses.
unsafe impl Send for Region {}
// SAFETY: as above.
unsafe impl Sync for Region {}

impl Region {
    /// Maps `len` bytes (rounded up to whole pages) of zeroed memory, or `None`.
    pub(crate) fn new(len: usize) -> Option<Region> {
        let len = len.max(1).checked_next_multiple_of(PAGE)?;
        // SAFETY: a fresh anonymous mapping; no existing memory is affected.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANON,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return None;
        }
        NonNull::new(ptr.cast::<u8>()).map(|ptr| Region { ptr, len })
    }

    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: unmapping the mapping this region created; nothing refers to it any more
        // (`&mut self`).
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// A spin lock for the registry's shards: held only for a few table operations, never while
/// calling the program's allocator or user code. Waiting threads yield to the scheduler
/// (`sched_yield`, which never allocates).
pub(crate) struct SpinLock {
    locked: AtomicBool,
}

impl SpinLock {
    pub(crate) const fn new() -> SpinLock {
        SpinLock { locked: AtomicBool::new(false) }
    }

    pub(crate) fn lock(&self) -> SpinGuard<'_> {
        let mut spins = 0u32;
        while self.locked.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                // SAFETY: sched_yield has no preconditions.
                unsafe { libc::sched_yield() };
            }
        }
        SpinGuard { lock: self }
    }
}

impl SpinLock {
    /// Takes the lock without a guard (fork handlers lock in one call and unlock in another).
    pub(crate) fn raw_lock(&self) {
        std::mem::forget(self.lock());
    }

    /// Releases a lock taken with [`SpinLock::raw_lock`].
    pub(crate) fn raw_unlock(&self) {
        self.locked.store(false, Ordering::Release);
    }
}

pub(crate) struct SpinGuard<'a> {
    lock: &'a SpinLock,
}

impl Drop for SpinGuard<'_> {
    fn drop(&mut self) {
        self.lock.locked.store(false, Ordering::Release);
    }
}

/// CLOCK_MONOTONIC in nanoseconds: the clock of every timestamp the API reports and of the
/// leakview trace format.
#[inline]
pub(crate) fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec we own; it neither allocates nor blocks.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64).wrapping_mul(1_000_000_000).wrapping_add(ts.tv_nsec as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_are_zeroed_and_page_rounded() {
        let region = Region::new(10).expect("mmap");
        assert_eq!(region.len(), PAGE);
        // SAFETY: the region is `len` readable bytes.
        let bytes = unsafe { std::slice::from_raw_parts(region.as_ptr(), region.len()) };
        assert!(bytes.iter().all(|&b| b == 0));
    }

    #[test]
    fn spin_lock_excludes_across_threads() {
        let lock = std::sync::Arc::new(SpinLock::new());
        let counter = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let (lock, counter) = (lock.clone(), counter.clone());
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        let _held = lock.lock();
                        // A non-atomic read-modify-write: only exclusion keeps the count right.
                        let v = counter.load(Ordering::Relaxed);
                        counter.store(v + 1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().expect("thread");
        }
        assert_eq!(counter.load(Ordering::Relaxed), 4000);
    }

    #[test]
    fn monotonic_clock_advances() {
        let a = monotonic_ns();
        let b = monotonic_ns();
        assert!(a > 0 && b >= a);
    }
}
