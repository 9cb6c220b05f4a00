//! The API without a tracking global allocator: nothing is tracked, queries are empty, and a
//! `LeakGuard` refuses (in debug builds) to give a check that could never fail, as does
//! `record_to` (it would write an empty trace).

use std::panic::catch_unwind;

use leakview::{LeakGuard, LeakTracker};

#[test]
fn nothing_is_tracked() {
    LeakTracker::enable();
    let leaked = Vec::leak(vec![1u8; 100]);
    assert!(LeakTracker::leaks().iter().all(|l| l.address != leaked.as_ptr() as usize));
    assert!(LeakTracker::verify_no_leaks().is_ok());
    let in_scope = LeakTracker::run_scoped(|| {
        let _kept = Box::leak(Box::new(7u32));
        LeakTracker::leaks().len()
    });
    assert_eq!(in_scope, 0);
    LeakTracker::disable();
}

#[test]
fn a_guard_without_a_tracking_allocator_explains_itself() {
    let outcome = catch_unwind(|| {
        let _guard = LeakGuard::new();
    });
    if cfg!(debug_assertions) {
        let payload = outcome.expect_err("refused");
        let message = payload.downcast_ref::<&str>().map(|s| s.to_string()).unwrap_or_default();
        assert!(message.contains("#[global_allocator]"), "{message}");
        // The refused guard left no scope behind.
        let outside = LeakTracker::run_scoped(|| 1);
        assert_eq!(outside, 1);
    } else {
        assert!(outcome.is_ok());
    }
}

#[test]
fn record_to_refuses_to_write_an_empty_trace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = LeakTracker::record_to(dir.path().join("t.bin")).expect_err("nothing to record");
    assert_eq!(err.kind(), std::io::ErrorKind::Unsupported);
    assert!(err.to_string().contains("#[global_allocator]"), "{err}");
    assert!(!LeakTracker::recording());
    assert!(std::fs::read_dir(dir.path()).expect("dir").next().is_none(), "no file left behind");
}
