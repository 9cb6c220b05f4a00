//! The process-wide pattern for a test suite, as the README gives it: enable tracking once,
//! reset before each test, verify after. The process registry sees every thread, so this file
//! runs its tests one after another on one thread, without the test harness (whose own threads
//! would allocate meanwhile); suites that run tests in parallel use `LeakGuard` instead.

use std::alloc::System;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::ExitCode;

use leakview::{Diagnostic, LeakTracker};

#[global_allocator]
static ALLOCATOR: Diagnostic = Diagnostic::new(System);

#[inline(never)]
fn cache_forever(value: u64) -> &'static u64 {
    Box::leak(Box::new(value))
}

fn clean_code_verifies() {
    let text: String = (0..100).map(|i| i.to_string()).collect();
    assert!(text.len() > 100);
}

fn leaking_code_is_caught() {
    let kept = cache_forever(7);
    let err = LeakTracker::verify_no_leaks().expect_err("one leak");
    assert_eq!((err.count(), err.total_bytes), (1, 8));
    assert_eq!(err.leaks[0].address, kept as *const u64 as usize);
    assert!(err.to_string().contains("cache_forever"), "{err}");
    LeakTracker::reset();
}

fn frees_on_other_threads_count() {
    let block = vec![3u8; 512];
    std::thread::spawn(move || drop(block)).join().expect("thread");
}

fn blocks_of_other_threads_are_pointed_out() {
    let kept = std::thread::spawn(|| cache_forever(11) as *const u64 as usize).join().expect("thread");
    let own = cache_forever(12);
    let err = LeakTracker::verify_no_leaks().expect_err("two leaks");
    assert_eq!(err.count(), 2);
    assert!(err.leaks.iter().any(|l| l.address == kept), "{err}");
    let text = err.to_string();
    assert!(text.contains("note: 1 of them was allocated on other threads"), "{text}");
    assert!(text.contains("LeakGuard"), "{text}");
    // Only the checking thread's blocks: no note.
    LeakTracker::reset();
    let _own_again = cache_forever(13);
    let text = LeakTracker::verify_no_leaks().expect_err("one leak").to_string();
    assert!(!text.contains("note:"), "{text}");
    assert!(*own == 12);
    LeakTracker::reset();
}

fn disabling_stops_tracking_but_not_frees() {
    let tracked = vec![1u8; 64];
    LeakTracker::disable();
    let untracked = cache_forever(9);
    drop(tracked);
    LeakTracker::enable();
    assert!(LeakTracker::leaks().iter().all(|l| l.address != untracked as *const u64 as usize));
}

fn main() -> ExitCode {
    let tests: [(&str, fn()); 5] = [
        ("clean_code_verifies", clean_code_verifies),
        ("leaking_code_is_caught", leaking_code_is_caught),
        ("frees_on_other_threads_count", frees_on_other_threads_count),
        ("blocks_of_other_threads_are_pointed_out", blocks_of_other_threads_are_pointed_out),
        ("disabling_stops_tracking_but_not_frees", disabling_stops_tracking_but_not_frees),
    ];
    // Enable once...
    LeakTracker::enable();
    let mut failed = 0;
    for (name, test) in tests {
        // ...reset before each test...
        LeakTracker::reset();
        let outcome = catch_unwind(AssertUnwindSafe(test));
        // ...verify after.
        let verified = LeakTracker::verify_no_leaks();
        match (outcome, verified) {
            (Ok(()), Ok(())) => println!("test {name} ... ok"),
            (Err(_), _) => {
                println!("test {name} ... FAILED (panicked)");
                failed += 1;
            }
            (Ok(()), Err(leaks)) => {
                println!("test {name} ... FAILED\n{leaks}");
                failed += 1;
            }
        }
    }
    LeakTracker::disable();
    println!("{} passed, {failed} failed", tests.len() - failed);
    if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
