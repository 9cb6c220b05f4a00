//! Tells a process forked without the fork handlers (a raw `syscall(SYS_fork)`, or `clone`
//! without `CLONE_VM`) from the process that started the trace: one page marked
//! `MADV_WIPEONFORK` holds a nonzero word, and every child gets that page zeroed. glibc's `fork`
//! runs the handlers, which re-arm the page in the child; a child that skipped them still finds
//! it zero, and must neither write into its parent's trace nor finish it.
//!
//! Where the kernel lacks `MADV_WIPEONFORK` (before Linux 4.14) the page is not used and such a
//! child is not detected.
//!
//! The same page holds the live word ([`live`]): the session the hooks may record into without
//! asking anything else (see `session::live`), so that a child, forked with or without the
//! handlers, finds it cleared without a check of its own.

use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

use crate::engine::sys::Region;

const PAGE_SIZE: usize = 4096;
const _: () = assert!(std::mem::size_of::<Page>() <= PAGE_SIZE);

/// The armed word, or null when no page could be set up.
static WORD: AtomicPtr<AtomicU64> = AtomicPtr::new(std::ptr::null_mut());

/// The page's layout: the armed word, then the live word.
#[repr(C)]
struct Page {
    armed: AtomicU64,
    live: AtomicPtr<()>,
}

/// The live word where no page could be set up (yet): an ordinary static, which a child
/// forked without the handlers inherits (such a child is not detected there anyway).
static FALLBACK_LIVE: AtomicPtr<()> = AtomicPtr::new(std::ptr::null_mut());
/// Where the live word is: the page's, once armed, else [`FALLBACK_LIVE`].
static LIVE: AtomicPtr<AtomicPtr<()>> = AtomicPtr::new((&raw const FALLBACK_LIVE).cast_mut());

/// The live word: in the page when there is one (so a forked child finds it null), else a
/// static. Two dependent loads of cached words, no branch.
#[inline(always)]
pub fn live() -> &'static AtomicPtr<()> {
    // SAFETY: LIVE always points at a live word that is never unmapped (the static, or a
    // published page).
    unsafe { &*LIVE.load(Ordering::Relaxed) }
}

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
    let layout = page.as_ptr().cast::<Page>();
    // SAFETY: the page is mapped, writable, page-aligned (aligned for `Page`, which fits in it),
    // zero-filled (a null live word) and not yet shared with anyone.
    let word = unsafe { &raw mut (*layout).armed };
    // SAFETY: as above.
    unsafe { (*word).store(1, Ordering::Release) };
    if WORD.compare_exchange(std::ptr::null_mut(), word, Ordering::AcqRel, Ordering::Acquire).is_ok() {
        // Published: the page must outlive every reader. The live word moves into it (it is
        // armed before the first session is published, so the static's word is still null
        // then, or the session was dropped by a fork since).
        // SAFETY: as above.
        let live_word = unsafe { &raw mut (*layout).live };
        // SAFETY: as above; nobody else writes the page's live word before LIVE points at it.
        unsafe { (*live_word).store(FALLBACK_LIVE.load(Ordering::Acquire), Ordering::Release) };
        LIVE.store(live_word, Ordering::Release);
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
