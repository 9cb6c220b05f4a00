//! One-line leak checks in tests: `LeakGuard` and `assert_no_leaks`, with `Adaptive` as the
//! global allocator (so in release builds they always pass). Tests run in parallel, each with
//! its own guard: they never see each other's allocations.

use std::alloc::System;
use std::panic::catch_unwind;

use leakview::{Adaptive, Leak, LeakGuard, LeakTracker, LeaksEmitter, assert_no_leaks};

#[global_allocator]
static ALLOCATOR: Adaptive = Adaptive::new(System);

#[inline(never)]
fn leak_a_string(text: &str) -> usize {
    let leaked: &'static mut str = text.to_string().leak();
    leaked.as_ptr() as usize
}

#[test]
fn a_clean_test_passes() {
    let _guard = LeakGuard::new();
    let mut map = std::collections::HashMap::new();
    for i in 0..500 {
        map.insert(i, format!("value {i}"));
    }
    assert_eq!(map.len(), 500);
}

#[test]
fn a_leaking_test_fails_with_the_report() {
    let outcome = catch_unwind(|| {
        let _guard = LeakGuard::new();
        leak_a_string("this string is never freed");
    });
    if cfg!(debug_assertions) {
        let payload = outcome.expect_err("the guard panics on a leak");
        let message = payload.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(message.starts_with("leakview: 1 leaked allocation, 26 bytes in total"), "{message}");
        assert!(message.contains("leak_a_string"), "{message}");
    } else {
        assert!(outcome.is_ok());
    }
}

#[test]
fn printing_in_a_test_is_not_a_leak() {
    // Under the test harness, `println!` grows the harness's buffer of captured output (freed by
    // the harness after the test); the first print to a real stdout makes its buffer (kept for
    // the life of the process). Neither is the test's leak; a block it leaks still is.
    let _guard = LeakGuard::new();
    println!("printed inside a guarded test: {}", "x".repeat(300));
    eprintln!("and to stderr: {}", 42);
    let mut out = std::io::stdout().lock();
    std::io::Write::write_all(&mut out, b"through a lock\n").expect("stdout");
    drop(out);
    let outcome = LeakTracker::run_scoped(|| {
        println!("printed, then a leak");
        leak_a_string("leaked after printing");
        LeakTracker::verify_no_leaks()
    });
    if cfg!(debug_assertions) {
        let error = outcome.expect_err("the leak is found");
        assert_eq!((error.count(), error.leaks[0].size), (1, 21), "{error}");
    } else {
        assert!(outcome.is_ok());
    }
}

#[test]
fn a_panic_caught_inside_a_guard_is_not_a_leak() {
    // The panic's message, and its backtrace when RUST_BACKTRACE asks for one (the standard
    // library then keeps what it resolved the backtrace with), are the library's.
    let _guard = LeakGuard::new();
    let caught = catch_unwind(|| panic!("expected by the test: {}", 7));
    assert!(caught.is_err());
}

#[test]
fn guards_in_parallel_threads_are_independent() {
    let handles: Vec<_> = (0..4)
        .map(|i| {
            std::thread::spawn(move || {
                catch_unwind(move || {
                    let _guard = LeakGuard::new();
                    let temporary = vec![i; 1000];
                    if i == 2 {
                        std::mem::forget(temporary);
                    }
                })
                .is_err()
            })
        })
        .collect();
    let failed: Vec<bool> = handles.into_iter().map(|h| h.join().expect("thread")).collect();
    let expected: Vec<bool> = (0..4).map(|i| i == 2 && cfg!(debug_assertions)).collect();
    assert_eq!(failed, expected);
}

#[test]
fn guards_nest() {
    let _outer = LeakGuard::new();
    let kept = vec![1u8; 10];
    {
        let _inner = LeakGuard::new();
        let temporary = vec![2u8; 10];
        drop(temporary);
    }
    drop(kept);
}

#[test]
fn assert_no_leaks_returns_the_result_or_panics() {
    let total = assert_no_leaks(|| (1..=100).map(|i| i.to_string().len()).sum::<usize>());
    assert_eq!(total, 192);
    let outcome = catch_unwind(|| assert_no_leaks(|| leak_a_string("kept")));
    assert_eq!(outcome.is_err(), cfg!(debug_assertions));
}

#[test]
fn a_guard_does_not_disturb_the_process_registry() {
    let before = LeakTracker::leaks().len();
    {
        let _guard = LeakGuard::new();
        let temporary = Box::new(5);
        drop(temporary);
    }
    assert_eq!(LeakTracker::leaks().len(), before);
}

#[test]
fn threads_started_by_a_test_join_its_guard_with_a_handle() {
    let outcome = catch_unwind(|| {
        let _guard = LeakGuard::new();
        let scope = LeakTracker::current_scope().expect("inside the guard's scope");
        std::thread::spawn(move || scope.run(|| leak_a_string("leaked by a worker thread")))
            .join()
            .expect("worker")
    });
    if cfg!(debug_assertions) {
        let payload = outcome.expect_err("the worker's leak fails the test");
        let message = payload.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(message.starts_with("leakview: 1 leaked allocation, 25 bytes"), "{message}");
        assert!(message.contains("leak_a_string"), "{message}");
    } else {
        assert!(outcome.is_ok());
    }
    // A worker that frees what it allocated passes.
    let _guard = LeakGuard::new();
    let scope = LeakTracker::current_scope().expect("inside the guard's scope");
    let length = std::thread::spawn(move || scope.run(|| "x".repeat(100).len())).join().expect("worker");
    assert_eq!(length, 100);
}

#[test]
fn a_handle_outliving_its_scope_adds_nothing() {
    let scope = LeakTracker::run_scoped(|| LeakTracker::current_scope().expect("in a scope"));
    assert!(!scope.is_active());
    let inside = scope.run(|| {
        leak_a_string("after the scope ended");
        LeakTracker::current_scope().is_some()
    });
    assert!(!inside);
    assert!(LeakTracker::current_scope().is_none());
}

/// Collects what `emit` sends.
struct Collect(std::sync::Mutex<Vec<usize>>);

impl LeaksEmitter for Collect {
    fn emit(&self, leaks: &[Leak]) -> std::io::Result<()> {
        self.0.lock().expect("collector").extend(leaks.iter().map(|l| l.size));
        Ok(())
    }
}

#[test]
fn emit_leaves_out_the_standard_librarys_own_blocks() {
    let collected = LeakTracker::run_scoped(|| {
        // The first print of this test grows the harness's buffer of captured output.
        println!("printed before emitting: {}", "y".repeat(200));
        leak_a_string("emitted");
        let collect = Collect(std::sync::Mutex::new(Vec::new()));
        LeakTracker::emit(&collect).expect("emit");
        let all = LeakTracker::leaks().len();
        (collect.0.into_inner().expect("collector"), all)
    });
    if cfg!(debug_assertions) {
        assert_eq!(collected.0, vec![7]);
        assert!(collected.1 > 1, "`leaks` lists the printed output's buffer too");
    } else {
        assert_eq!(collected, (Vec::new(), 0));
    }
}
