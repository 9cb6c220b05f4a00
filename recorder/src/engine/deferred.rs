//! Events of signal handlers that interrupted the thread while it was recording: the thread's
//! stream and capture state are in use then, so the handler's allocation or free is kept here
//! (without a stack) and appended once the interrupted recording is done, in the order the
//! handlers made them. A handler that interrupts the program anywhere else records as usual.
//!
//! Only this thread and its signal handlers touch the queue, and a handler runs to its end
//! before the code it interrupted goes on. So a slot is reserved (the count raised by one atomic
//! step, which no handler can split) before it is written, and the queue is emptied only by the
//! thread's outermost recording, which no pushing handler can be in the middle of.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, compiler_fence};

/// Events kept per thread; a handler that makes more while one recording is under way loses
/// the rest (counted).
pub const DEFERRED_SLOTS: usize = 64;

/// What a handler did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeferredKind {
    #[default]
    Empty,
    Alloc {
        addr: u64,
        size: u64,
        align: u64,
    },
    Free {
        addr: u64,
    },
    Realloc {
        ts_free: u64,
        old_addr: u64,
        new_addr: u64,
        size: u64,
    },
}

/// One handler event and when it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeferredEvent {
    pub ts: u64,
    pub kind: DeferredKind,
}

/// Events lost for want of a slot, in every thread.
static LOST: AtomicU64 = AtomicU64::new(0);

/// Handler events lost for want of a slot so far, in every thread of the process.
pub fn lost() -> u64 {
    LOST.load(Ordering::Relaxed)
}

/// A thread's deferred events (all-zero: empty).
#[repr(C)]
pub struct Deferred {
    count: AtomicU32,
    slots: [DeferredEvent; DEFERRED_SLOTS],
}

impl Deferred {
    /// Keeps `event` (from a signal handler).
    pub fn push(&mut self, event: DeferredEvent) {
        // Reserve the slot first: a handler interrupting this one takes the next.
        let reserved = self.count.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
            ((n as usize) < DEFERRED_SLOTS).then_some(n + 1)
        });
        match reserved {
            Ok(index) => {
                self.slots[index as usize] = event;
                compiler_fence(Ordering::SeqCst);
            }
            Err(_) => {
                LOST.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.count.load(Ordering::Relaxed) == 0
    }

    /// Hands every kept event to `emit`, oldest first, and empties the queue. Events pushed by
    /// handlers while it runs are handed over too.
    pub fn drain(&mut self, mut emit: impl FnMut(DeferredEvent)) {
        let mut next = 0u32;
        loop {
            let count = self.count.load(Ordering::SeqCst);
            if next >= count {
                // Empty it, unless a handler pushed since the look.
                if self.count.compare_exchange(count, 0, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
                    return;
                }
                continue;
            }
            let event = self.slots[next as usize];
            next += 1;
            emit(event);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn free(ts: u64) -> DeferredEvent {
        DeferredEvent { ts, kind: DeferredKind::Free { addr: ts * 16 } }
    }

    fn empty() -> Box<Deferred> {
        Box::new(Deferred { count: AtomicU32::new(0), slots: [DeferredEvent::default(); DEFERRED_SLOTS] })
    }

    #[test]
    fn events_come_out_in_order_and_the_queue_empties() {
        let mut d = empty();
        for ts in 1..=3 {
            d.push(free(ts));
        }
        let mut seen = Vec::new();
        d.drain(|e| seen.push(e.ts));
        assert_eq!(seen, vec![1, 2, 3]);
        assert!(d.is_empty());
        d.drain(|_| panic!("nothing left"));
    }

    #[test]
    fn a_full_queue_counts_what_it_loses() {
        let mut d = empty();
        let before = lost();
        for ts in 0..(DEFERRED_SLOTS as u64 + 5) {
            d.push(free(ts));
        }
        assert_eq!(lost() - before, 5);
        let mut n = 0;
        d.drain(|_| n += 1);
        assert_eq!(n, DEFERRED_SLOTS);
    }
}
