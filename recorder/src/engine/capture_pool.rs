//! Capture states of threads that ended, kept for the threads that start next. A capture state
//! is a mapping of its own whose caches fill as the thread records; creating one (a mapping,
//! framehop's cache, and the pages the caches touch) and unmapping it again cost a program that
//! starts a thread per task about as much as the rest of recording the thread. A new thread
//! takes a pooled state instead, caches and learned rules included.
//!
//! Why a pooled state's caches are still exact for another thread: the unwind rules belong to
//! code addresses and the module snapshot (checked on every walk), the stack cache compares the
//! whole walked stack, and a kept stack compares the very stack words its walk read, each read
//! within the new thread's own bounds. Only node ids belong to a trace: a state whose session
//! is not the taker's forgets its stacks (a forked child's trace is a new session).
//!
//! The pool is a small array behind a try-lock: a thread that finds it busy, or the pool full
//! or empty, makes or unmaps its own state as before (so a fork while another thread held the
//! lock leaves the child no lock to wait on).

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::engine::stack::CaptureState;

/// States kept at most: bounds the memory ended threads leave behind.
const POOL_SIZE: usize = 8;

struct Pool {
    busy: AtomicBool,
    /// Pooled states and the session each was last used in (0: an empty slot).
    states: UnsafeCell<[(usize, u64); POOL_SIZE]>,
}

// SAFETY: `states` is only touched by the thread that won `busy`.
unsafe impl Sync for Pool {}

static POOL: Pool = Pool::new();

/// Hands the state of a thread that is ending (last used in session `session_id`) to the pool;
/// gives it back if the pool is full or busy.
pub fn put(state: *mut CaptureState, session_id: u64) -> Option<*mut CaptureState> {
    POOL.put(state, session_id)
}

/// A pooled state for a thread whose stack is `[low, high)`, recording into session
/// `session_id`, if there is one.
pub fn take(low: u64, high: u64, session_id: u64) -> Option<*mut CaptureState> {
    POOL.take(low, high, session_id)
}

impl Pool {
    const fn new() -> Pool {
        Pool { busy: AtomicBool::new(false), states: UnsafeCell::new([(0, 0); POOL_SIZE]) }
    }

    /// Runs `f` on the slots if no other thread is using them.
    fn with_slots<R>(&self, f: impl FnOnce(&mut [(usize, u64); POOL_SIZE]) -> R) -> Option<R> {
        if self.busy.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
            return None;
        }
        // SAFETY: this thread won `busy`, so it alone touches the slots until the release below.
        let result = f(unsafe { &mut *self.states.get() });
        self.busy.store(false, Ordering::Release);
        Some(result)
    }

    fn put(&self, state: *mut CaptureState, session_id: u64) -> Option<*mut CaptureState> {
        let kept = self.with_slots(|slots| match slots.iter_mut().find(|(s, _)| *s == 0) {
            Some(slot) => {
                *slot = (state as usize, session_id);
                true
            }
            None => false,
        });
        if kept == Some(true) { None } else { Some(state) }
    }

    fn take(&self, low: u64, high: u64, session_id: u64) -> Option<*mut CaptureState> {
        let (state, from_session) = self.with_slots(|slots| {
            let slot = slots.iter_mut().find(|(s, _)| *s != 0)?;
            Some(std::mem::take(slot))
        })??;
        let state = state as *mut CaptureState;
        // SAFETY: pooled states come from `CaptureState::create` and belong to no thread while
        // pooled; the caller now owns it.
        let capture = unsafe { &mut *state };
        capture.reuse_for(low, high);
        if from_session != session_id {
            capture.forget();
        }
        Some(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_go_round_and_a_full_pool_gives_them_back() {
        // A pool of the test's own: threads of other tests use the process's.
        let pool = Pool::new();
        let mut made = Vec::new();
        for _ in 0..POOL_SIZE + 2 {
            made.push(CaptureState::create(0x1000, 0x2000).expect("state"));
        }
        let mut returned = Vec::new();
        for &state in &made {
            if let Some(back) = pool.put(state, 7) {
                returned.push(back);
            }
        }
        assert_eq!(returned, made[POOL_SIZE..].to_vec());
        let mut taken = Vec::new();
        while let Some(state) = pool.take(0x3000, 0x9000, 7) {
            taken.push(state);
        }
        taken.sort();
        let mut pooled = made[..POOL_SIZE].to_vec();
        pooled.sort();
        assert_eq!(taken, pooled);
        for state in taken.into_iter().chain(returned) {
            // SAFETY: each came from `create` and is not used afterwards.
            unsafe { CaptureState::destroy(state) };
        }
    }
}
