//! Records a leakview trace in-process and leaks a few blocks on purpose, for `leakview report`:
//!
//! ```text
//! cargo run -p leakview --example record_leaks -- /tmp/in-process.bin
//! cargo run -- report /tmp/in-process.bin
//! ```

use std::alloc::System;
use std::process::ExitCode;

use leakview::{Diagnostic, LeakTracker};

#[global_allocator]
static ALLOCATOR: Diagnostic = Diagnostic::new(System);

/// Leaks `count` blocks of 1 KiB: the report should name this function.
#[inline(never)]
fn leak_session_buffers(count: usize) {
    for i in 0..count {
        std::mem::forget(vec![i as u8; 1024]);
    }
}

/// Allocates and frees: nothing of this should be reported.
#[inline(never)]
fn churn() -> usize {
    (0..1000).map(|i| format!("item {i}").len()).sum()
}

fn main() -> ExitCode {
    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: record_leaks TRACE");
        return ExitCode::from(2);
    };
    match LeakTracker::record_to(&path) {
        Ok(written) => eprintln!("recording to {}", written.display()),
        Err(err) => {
            eprintln!("record_leaks: {err}");
            return ExitCode::from(2);
        }
    }
    std::hint::black_box(churn());
    leak_session_buffers(3);
    LeakTracker::stop_recording();
    ExitCode::SUCCESS
}
