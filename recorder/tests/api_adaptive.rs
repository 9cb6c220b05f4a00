//! `Adaptive` as the global allocator: tracks in debug builds, a pure pass-through in release
//! builds (run both: `cargo test -p leakview` and `cargo test -p leakview --release`). Checks
//! use scopes (parallel tests and the test harness allocate concurrently); the process-wide
//! pattern is checked in `api_process_wide.rs`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::{Mutex, MutexGuard};

use leakview::{Adaptive, LeakTracker};

#[global_allocator]
static ALLOCATOR: Adaptive = Adaptive::new(System);

/// Tests that flip the process-wide switch take turns.
static PROCESS_WIDE: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    PROCESS_WIDE.lock().unwrap_or_else(|p| p.into_inner())
}

#[inline(never)]
fn leak_a_buffer(size: usize) -> usize {
    Vec::leak(vec![0xabu8; size]).as_ptr() as usize
}

#[test]
fn a_leak_is_reported_in_debug_builds_only() {
    let (address, leaks, verified) = LeakTracker::run_scoped(|| {
        let address = leak_a_buffer(2048);
        (address, LeakTracker::leaks(), LeakTracker::verify_no_leaks_in_debug())
    });
    let found = leaks.iter().find(|l| l.address == address);
    if cfg!(debug_assertions) {
        let leak = found.expect("tracked in debug builds");
        assert_eq!((leak.size, leak.align, leaks.len()), (2048, 1, 1));
        let names: Vec<_> =
            leak.backtrace.user_frames().iter().filter_map(|f| f.function.as_deref()).collect();
        assert!(names.iter().any(|n| n.ends_with("leak_a_buffer")), "{names:?}");
        let err = verified.expect_err("one leak");
        assert_eq!(err.count(), 1);
        assert!(err.to_string().contains("2.0 KiB (2048 bytes)"), "{err}");
    } else {
        assert!(leaks.is_empty());
        assert!(verified.is_ok());
    }
}

#[test]
fn code_that_frees_everything_verifies_clean() {
    LeakTracker::run_scoped(|| {
        let words: Vec<String> = (0..200).map(|i| format!("word {i}")).collect();
        let joined = words.join(",");
        assert!(joined.len() > 1000);
        drop(words);
        drop(joined);
        LeakTracker::verify_no_leaks().expect("everything was freed");
    });
}

#[test]
fn enable_in_debug_follows_the_build() {
    let _serial = serial();
    LeakTracker::disable();
    LeakTracker::enable_in_debug();
    assert_eq!(LeakTracker::enabled(), cfg!(debug_assertions));
    LeakTracker::disable();
    assert!(!LeakTracker::enabled());
    LeakTracker::enable();
    assert!(LeakTracker::enabled());
    LeakTracker::disable();
}

#[test]
fn scopes_track_in_debug_builds_only() {
    let tracked = LeakTracker::run_scoped(|| {
        let address = leak_a_buffer(64);
        LeakTracker::leaks().iter().any(|l| l.address == address)
    });
    assert_eq!(tracked, cfg!(debug_assertions));
}

#[test]
fn adaptive_is_exactly_as_large_as_its_inner_allocator() {
    struct Counted {
        _count: std::sync::atomic::AtomicU64,
        _name: &'static str,
    }
    assert_eq!(std::mem::size_of::<Adaptive>(), 0);
    assert_eq!(std::mem::size_of::<Adaptive<Counted>>(), std::mem::size_of::<Counted>());
    assert_eq!(std::mem::align_of::<Adaptive<Counted>>(), std::mem::align_of::<Counted>());
}

#[cfg(not(debug_assertions))]
#[test]
fn release_builds_pass_everything_through_untracked() {
    // Even with tracking enabled process-wide and a scope open, nothing is recorded.
    let _serial = serial();
    LeakTracker::enable();
    let direct = Adaptive::new(System);
    let layout = Layout::from_size_align(96, 16).expect("layout");
    let seen = LeakTracker::run_scoped(|| {
        // SAFETY: a valid layout; released below.
        let block = unsafe { direct.alloc(layout) };
        let global = leak_a_buffer(96);
        let leaks = LeakTracker::leaks();
        // SAFETY: `block` came from `direct` with `layout`.
        unsafe { direct.dealloc(block, layout) };
        leaks.iter().any(|l| l.address == block as usize || l.address == global)
    });
    assert!(!seen);
    assert!(LeakTracker::leaks().is_empty());
    assert!(LeakTracker::verify_no_leaks().is_ok());
    LeakTracker::disable();
}

#[cfg(debug_assertions)]
#[test]
fn debug_builds_track_direct_calls_too() {
    let direct = Adaptive::new(System);
    let layout = Layout::from_size_align(96, 16).expect("layout");
    LeakTracker::run_scoped(|| {
        // SAFETY: a valid layout; released below.
        let block = unsafe { direct.alloc(layout) };
        assert!(LeakTracker::leaks().iter().any(|l| l.address == block as usize && l.align == 16));
        // SAFETY: `block` came from `direct` with `layout`.
        unsafe { direct.dealloc(block, layout) };
        assert!(LeakTracker::leaks().is_empty());
    });
}

#[test]
fn recording_needs_a_debug_build() {
    // Debug builds record (checked in `api_record.rs`); in a release build nothing would be
    // tracked, so `record_to` says so instead of writing an empty trace.
    if cfg!(debug_assertions) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let err = LeakTracker::record_to(dir.path().join("t.bin")).expect_err("nothing to record");
    assert_eq!(err.kind(), std::io::ErrorKind::Unsupported);
    assert!(err.to_string().contains("Adaptive tracks in debug builds only"), "{err}");
    assert!(std::fs::read_dir(dir.path()).expect("dir").next().is_none(), "no file left behind");
}
