//! A private stack to run the unwinder on when the thread's own has too little room left below
//! the hook: framehop builds its cache (creating a capture state) and evaluates unwind rules
//! (walking) in fixed-size storage on the stack, which a thread with a small stack (64 KiB, or a
//! stack the program gave it) cannot spare. The walk still reads the program's stack; only the
//! unwinder's own frames live here.

use std::ffi::c_void;

use crate::engine::sys::Region;

/// Bytes of a side stack: room for creating a capture state (`stack::CREATE_STACK_ROOM`) with a
/// margin. Mapped without reserving memory; only the pages used are touched.
pub const SIDE_STACK_LEN: usize = 320 * 1024;

/// A stack of [`SIDE_STACK_LEN`] bytes in a mapping of its own.
pub struct SideStack {
    region: Region,
}

/// What [`SideStack::run`] hands to the function it calls there.
struct Call<F, R> {
    work: Option<F>,
    result: Option<R>,
}

impl SideStack {
    pub fn new() -> Option<SideStack> {
        Region::new(SIDE_STACK_LEN).map(|region| SideStack { region })
    }

    /// Runs `work` with the stack pointer at the top of this stack, and returns what it returns.
    /// `work` must not unwind (the recorder never does: a panic aborts).
    #[cfg(target_arch = "x86_64")]
    pub fn run<F: FnOnce() -> R, R>(&mut self, work: F) -> R {
        extern "C" fn enter<F: FnOnce() -> R, R>(call: *mut c_void) {
            // SAFETY: `run` passes a pointer to its own live `Call<F, R>`.
            let call = unsafe { &mut *call.cast::<Call<F, R>>() };
            if let Some(work) = call.work.take() {
                call.result = Some(work());
            }
        }
        let mut call: Call<F, R> = Call { work: Some(work), result: None };
        // 16-byte aligned (the mapping is page-aligned): `call` leaves the callee's stack as
        // the ABI wants it.
        let top = self.region.as_ptr().wrapping_add(self.region.len());
        // SAFETY: the stack pointer moves to the top of a mapping this value owns, not in use by
        // anything else (one thread, and `&mut self`), and is restored from a callee-saved
        // register right after the call; `enter` follows the C ABI and does not unwind.
        unsafe {
            std::arch::asm!(
                "mov r12, rsp",
                "mov rsp, {top}",
                "call {entry}",
                "mov rsp, r12",
                top = in(reg) top,
                entry = in(reg) enter::<F, R> as extern "C" fn(*mut c_void),
                in("rdi") (&raw mut call).cast::<c_void>(),
                out("r12") _,
                clobber_abi("C"),
            );
        }
        match call.result {
            Some(result) => result,
            // `enter` always runs `work` (the asm above calls it unconditionally).
            None => unreachable!("the side stack ran its work"),
        }
    }

    /// Elsewhere there is no walk to run; `work` runs on the thread's stack.
    #[cfg(not(target_arch = "x86_64"))]
    pub fn run<R>(&mut self, work: impl FnOnce() -> R) -> R {
        work()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn stack_address() -> usize {
        let here = 0u8;
        std::hint::black_box(&here as *const u8 as usize)
    }

    #[test]
    fn work_runs_on_the_side_stack_and_returns_its_result() {
        let mut side = SideStack::new().expect("mapping");
        let base = side.region.as_ptr() as usize;
        let (inside, sum) = side.run(|| {
            // Deep enough to need real stack: a recursion that would overflow a tiny one.
            fn depth(n: u64) -> u64 {
                let pad = [n; 64];
                if n == 0 {
                    std::hint::black_box(pad)[0]
                } else {
                    depth(n - 1) + std::hint::black_box(pad)[1]
                }
            }
            (stack_address(), depth(50))
        });
        assert!(inside >= base && inside < base + SIDE_STACK_LEN, "{inside:#x} not in {base:#x}");
        assert_eq!(sum, (0..=50).sum::<u64>());
        let outside = stack_address();
        assert!(!(outside >= base && outside < base + SIDE_STACK_LEN));
        // Again, on the same stack.
        assert_eq!(side.run(|| 7), 7);
    }
}
