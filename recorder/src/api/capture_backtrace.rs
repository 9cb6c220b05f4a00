//! Stack capture through the `backtrace` crate (the platform unwinder): used where the
//! engine's framehop unwinder is not available (targets other than Linux x86_64), and as an
//! alternative there for tests (`--cfg leakview_backtrace_capture`).

// On x86_64 Linux only the tests and the alternative use it.
#![cfg_attr(
    all(
        target_os = "linux",
        target_arch = "x86_64",
        not(leakview_portable),
        not(leakview_backtrace_capture)
    ),
    allow(dead_code)
)]

/// A value on the calling frame's stack: frames at or below it belong to the tracker.
#[inline(always)]
pub(crate) fn stack_marker() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

/// Writes the return addresses of the frames above `marker` (innermost first) into `out`;
/// returns how many were written.
pub(crate) fn trace_into(out: &mut [usize], marker: usize) -> usize {
    let mut len = 0;
    // SAFETY: unsynchronised tracing is only unsafe with Windows' dbghelp; on Unix the
    // platform unwinder is thread-safe. Nested allocations it may make pass straight through
    // (the caller holds the thread's reentrancy guard).
    unsafe {
        backtrace::trace_unsynchronized(|frame| {
            let sp = frame.sp() as usize;
            if sp != 0 && sp <= marker {
                return true;
            }
            let ip = frame.ip() as usize;
            if ip == 0 || len == out.len() {
                return false;
            }
            out[len] = ip;
            len += 1;
            true
        });
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn capture_here(out: &mut [usize]) -> usize {
        trace_into(out, stack_marker())
    }

    #[test]
    fn captures_some_frames_and_respects_the_buffer() {
        let mut big = [0usize; 64];
        let n = capture_here(&mut big);
        assert!(n >= 2, "only {n} frames");
        assert!(big[..n].iter().all(|&ip| ip != 0));
        let mut small = [0usize; 2];
        assert_eq!(capture_here(&mut small), 2);
    }
}
