//! Tells a process forked without the fork handlers (a raw `syscall(SYS_fork)`, or `clone`
//! without `CLONE_VM`) from the process that started the trace: one page marked
//! `MADV_WIPEONFORK` holds a nonzero word, and every child gets that page zeroed. glibc's `fork`
//! runs the handlers, which re-arm the page in the child; a child that skipped them still finds
//! it zero, and must neither write into its parent's trace nor finish it.
//!
//! Where the kernel lacks `MADV_WIPEONFORK` (before Linux 4.14) the page is not used and such a
//! child is not detected.

use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

use crate::engine::sys::Region;

const PAGE_SIZE: usize = 4096;

/// The armed word, or null when no page could be set up.
static WORD: AtomicPtr<AtomicU64> = AtomicPtr::new(std::ptr::null_mut());

fn word() -> Option<&'static AtomicU64> {
    let ptr = WORD.load(Ordering::Acquire);
    // SAFETY: a published page is never unmapped, and AtomicU64 may be read from any thread.
    (!ptr.is_null()).then(|| unsafe { &*ptr })
}

/// Sets the word in this process, mapping its page on first use. Allocates nothing from the
/// program's allocator; may make two system calls the first time.
pub fn arm() {
    if let Some(word) = word() {
        word.store(1, Ordering::Release);
        return;
    }
    let Some(page) = Region::new(PAGE_SIZE) else { return };
    // SAFETY: `page` is our own mapping; MADV_WIPEONFORK changes only what a child sees.
    if unsafe { libc::madvise(page.as_ptr().cast(), page.len(), libc::MADV_WIPEONFORK) } != 0 {
        return;
    }
    let word = page.as_ptr().cast::<AtomicU64>();
    // SAFETY: the page is mapped, writable, page-aligned and not yet shared with anyone.
    unsafe { (*word).store(1, Ordering::Release) };
    if WORD.compare_exchange(std::ptr::null_mut(), word, Ordering::AcqRel, Ordering::Acquire).is_ok() {
        // Published: the page must outlive every reader.
        std::mem::forget(page);
    } else if let Some(word) = self::word() {
        // Another thread armed first: its page serves, ours is unmapped on drop.
        word.store(1, Ordering::Release);
    }
}

/// This process was forked from the one that armed the word, and no fork handler has run in it
/// since. Two dependent loads of cached words (the page's address, then the word).
#[inline]
pub fn tripped() -> bool {
    word().is_some_and(|word| word.load(Ordering::Acquire) == 0)
}

/// The word is set: this process armed it (or re-armed it after a fork). False where no page
/// could be set up.
pub fn is_set() -> bool {
    word().is_some_and(|word| word.load(Ordering::Acquire) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raw_forked_child_finds_the_word_zero() {
        arm();
        if word().is_none() {
            return; // The kernel has no MADV_WIPEONFORK: nothing to detect with.
        }
        assert!(!tripped());
        // SAFETY: a raw fork; the child only reads memory and calls _exit.
        let pid = unsafe { libc::syscall(libc::SYS_fork) };
        if pid == 0 {
            let code = if tripped() { 0 } else { 1 };
            // SAFETY: ends the child at once, running nothing of the parent's.
            unsafe { libc::_exit(code) };
        }
        assert!(pid > 0, "fork failed");
        let mut status = 0;
        // SAFETY: waiting for our own child.
        let waited = unsafe { libc::waitpid(pid as libc::pid_t, &mut status, 0) };
        assert_eq!(waited, pid as libc::pid_t);
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "child saw the word set");
        assert!(!tripped(), "the parent's word stays set");
    }
}
