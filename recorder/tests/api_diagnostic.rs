//! The in-process API with `Diagnostic` as the global allocator (tracks in every build):
//! scopes, filters, threads, reallocations, emitters and reentrancy.

use std::alloc::System;
use std::sync::{Arc, Barrier, Mutex};

use leakview::{Allocation, ConsoleEmitter, Diagnostic, JsonEmitter, Leak, LeakTracker, LeaksEmitter};

#[global_allocator]
static ALLOCATOR: Diagnostic = Diagnostic::new(System);

/// Tests that touch the process-wide registry take turns; scoped tests need not.
static PROCESS_WIDE: Mutex<()> = Mutex::new(());

#[inline(never)]
fn leak_bytes(size: usize) -> usize {
    let block: &'static mut [u8] = Vec::leak(vec![1u8; size]);
    block.as_ptr() as usize
}

#[inline(never)]
fn leak_in_named_function_cache_fill(size: usize) -> usize {
    // Not a tail call: this frame stays on the stack in optimised builds too.
    let address = leak_bytes(size);
    std::hint::black_box(address)
}

fn find(leaks: &[Leak], address: usize) -> Option<&Leak> {
    leaks.iter().find(|l| l.address == address)
}

#[test]
fn a_scope_sees_its_own_blocks_with_their_details() {
    let (address, leaks) = LeakTracker::run_scoped(|| {
        let address = leak_bytes(300);
        (address, LeakTracker::leaks())
    });
    let leak = find(&leaks, address).expect("the leaked block");
    assert_eq!((leak.size, leak.align), (300, 1));
    assert_ne!(leak.thread, 0);
    assert!(leak.timestamp > 0);
    let names: Vec<String> = leak.backtrace.user_frames().iter().filter_map(|f| f.function.clone()).collect();
    assert!(names.iter().any(|n| n.ends_with("leak_bytes")), "{names:?}");
    assert!(names.iter().any(|n| n.contains("a_scope_sees_its_own_blocks_with_their_details")), "{names:?}");
    let top = &leak.backtrace.user_frames()[0];
    assert!(top.module.as_deref().is_some_and(|m| m.contains("api_diagnostic")), "{top:?}");
    // The scope is gone: its blocks went with it.
    assert!(LeakTracker::run_scoped(LeakTracker::leaks).is_empty());
}

#[test]
fn scopes_are_isolated_from_the_outer_registry_and_each_other() {
    let _serial = PROCESS_WIDE.lock().unwrap_or_else(|p| p.into_inner());
    LeakTracker::enable();
    LeakTracker::reset();
    let outer = leak_bytes(11);
    let inner = LeakTracker::run_scoped(|| {
        let inner = leak_bytes(22);
        let nested = LeakTracker::run_scoped(|| {
            let nested = leak_bytes(33);
            let seen: Vec<usize> = LeakTracker::leaks().iter().map(|l| l.address).collect();
            assert_eq!(seen, vec![nested]);
            LeakTracker::reset();
            assert!(LeakTracker::leaks().is_empty());
            nested
        });
        let seen: Vec<usize> = LeakTracker::leaks().iter().map(|l| l.address).collect();
        assert_eq!(seen, vec![inner]);
        assert!(!seen.contains(&nested));
        assert!(LeakTracker::verify_no_leaks().is_err());
        inner
    });
    let outer_leaks = LeakTracker::leaks();
    assert!(find(&outer_leaks, outer).is_some());
    assert!(find(&outer_leaks, inner).is_none());
    LeakTracker::disable();
    LeakTracker::reset();
    assert!(LeakTracker::leaks().is_empty());
}

#[test]
fn disable_then_reset_leaves_nothing_while_other_threads_allocate() {
    let _serial = PROCESS_WIDE.lock().unwrap_or_else(|p| p.into_inner());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut kept: Vec<Vec<u8>> = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    kept.push(vec![7u8; 64]);
                    if kept.len() > 100 {
                        // Freed and grown blocks too, not only new ones.
                        kept.drain(..50);
                        kept.iter_mut().take(5).for_each(|v| v.resize(v.len() + 64, 1));
                    }
                }
            })
        })
        .collect();
    let mut left_behind = 0;
    for _ in 0..200 {
        LeakTracker::enable();
        std::thread::yield_now();
        LeakTracker::disable();
        LeakTracker::reset();
        left_behind += LeakTracker::leaks().len();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.join().expect("worker");
    }
    assert_eq!(left_behind, 0);
    LeakTracker::reset();
}

#[test]
fn parallel_scopes_do_not_see_each_other() {
    let barrier = Arc::new(Barrier::new(4));
    let handles: Vec<_> = (0..4usize)
        .map(|t| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut mine: Vec<usize> = Vec::with_capacity(50);
                LeakTracker::run_scoped(|| {
                    mine.extend((0..50).map(|i| leak_bytes(100 + t * 1000 + i)));
                    barrier.wait();
                    let seen = LeakTracker::leaks();
                    assert_eq!(seen.len(), mine.len());
                    assert!(seen.iter().all(|l| mine.contains(&l.address)));
                    barrier.wait();
                })
            })
        })
        .collect();
    for h in handles {
        h.join().expect("thread");
    }
}

#[test]
fn a_block_freed_on_another_thread_leaves_the_scope() {
    LeakTracker::run_scoped(|| {
        let kept = Box::new([5u64; 16]);
        let sent = vec![9u8; 4096];
        let address = sent.as_ptr() as usize;
        assert!(find(&LeakTracker::leaks(), address).is_some());
        std::thread::spawn(move || drop(sent)).join().expect("thread");
        let leaks = LeakTracker::leaks();
        assert!(find(&leaks, address).is_none());
        assert!(find(&leaks, &*kept as *const _ as usize).is_some());
    });
}

#[test]
fn threads_allocating_and_freeing_across_each_other() {
    // Block sizes nothing else here uses, so they identify the blocks whatever addresses the
    // allocator reuses.
    const BASE: usize = 10_000;
    LeakTracker::run_scoped(|| {
        let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
        let consumer = std::thread::spawn(move || {
            let mut count = 0usize;
            for block in rx {
                count += block.len();
                drop(block);
            }
            count
        });
        let mut kept = Vec::new();
        // The scope's own allocations, freed on the consumer thread (all but every tenth).
        for i in 0..2000usize {
            let block = vec![(i % 251) as u8; BASE + i % 300];
            if i % 10 == 0 { kept.push(block) } else { tx.send(block).expect("send") }
        }
        drop(tx);
        let total = consumer.join().expect("consumer");
        assert!(total > 0);
        let ours = |l: &&Leak| (BASE..BASE + 300).contains(&l.size);
        assert_eq!(LeakTracker::leaks().iter().filter(ours).count(), kept.len());
        drop(kept);
        assert_eq!(LeakTracker::leaks().iter().filter(ours).count(), 0);
    });
}

#[test]
fn many_threads_tracking_process_wide_stay_consistent() {
    let _serial = PROCESS_WIDE.lock().unwrap_or_else(|p| p.into_inner());
    LeakTracker::reset();
    LeakTracker::enable();
    // Sizes no other code here uses: whatever else allocates meanwhile, these blocks are the
    // workers'.
    const BASE: usize = 200_000;
    let handles: Vec<_> = (0..4usize)
        .map(|t| {
            std::thread::spawn(move || {
                let mut kept = Vec::new();
                for i in 0..2000usize {
                    let mut v: Vec<u8> = Vec::with_capacity(BASE + (i + t) % 64);
                    v.push(t as u8);
                    if i % 10 == 0 {
                        kept.push(v);
                    }
                }
                // Grown past their first size, then dropped on another thread.
                kept.iter_mut().for_each(|v| v.resize(BASE + 100, 1));
                kept
            })
        })
        .collect();
    let kept: Vec<Vec<u8>> = handles.into_iter().flat_map(|h| h.join().expect("thread")).collect();
    // Growing doubles the capacity: the blocks are between BASE and 4 × BASE bytes.
    let outstanding = |leaks: &[Leak]| leaks.iter().filter(|l| (BASE..4 * BASE).contains(&l.size)).count();
    assert_eq!(outstanding(&LeakTracker::leaks()), kept.len());
    drop(kept);
    LeakTracker::disable();
    assert_eq!(outstanding(&LeakTracker::leaks()), 0);
    LeakTracker::reset();
}

#[test]
fn reallocated_blocks_keep_their_scope_and_take_the_new_size() {
    LeakTracker::run_scoped(|| {
        let mut v: Vec<u64> = Vec::with_capacity(4);
        for i in 0..10_000 {
            v.push(i);
        }
        let leaks = LeakTracker::leaks();
        let leak = find(&leaks, v.as_ptr() as usize).expect("the grown vector");
        assert_eq!(leak.size, v.capacity() * 8);
        assert_eq!(leaks.iter().filter(|l| l.size >= 32).count(), 1, "old buffers were freed");
        v.shrink_to_fit();
        drop(v);
        assert!(LeakTracker::verify_no_leaks().is_ok());
    });
}

#[test]
fn blocks_from_outside_grown_inside_a_scope_stay_outside() {
    let mut outside: Vec<u8> = Vec::with_capacity(8);
    LeakTracker::run_scoped(|| {
        outside.extend_from_slice(&[1; 100]);
        // The block was not allocated in the scope: growing it here does not make it the scope's.
        assert!(LeakTracker::leaks().is_empty());
    });
}

#[test]
fn filters_drop_by_size_and_by_function() {
    let (big, small, cached, leaks) = LeakTracker::run_scoped_with(
        |a: &Allocation<'_>| a.size() >= 64 && !a.backtrace().has_function("cache_fill"),
        || {
            let big = leak_bytes(500);
            let small = leak_bytes(10);
            let cached = leak_in_named_function_cache_fill(700);
            (big, small, cached, LeakTracker::leaks())
        },
    );
    assert!(find(&leaks, big).is_some());
    assert!(find(&leaks, small).is_none());
    assert!(find(&leaks, cached).is_none());
    let helpers = LeakTracker::run_scoped_with(leakview::api::filter::min_size(1000), || {
        let a = leak_bytes(999);
        let b = leak_bytes(1000);
        let leaks = LeakTracker::leaks();
        (find(&leaks, a).is_some(), find(&leaks, b).is_some())
    });
    assert_eq!(helpers, (false, true));
    let by_name = LeakTracker::run_scoped_with(leakview::api::filter::ignore_function("cache_fill"), || {
        let a = leak_in_named_function_cache_fill(40);
        let b = leak_bytes(40);
        let leaks = LeakTracker::leaks();
        (find(&leaks, a).is_some(), find(&leaks, b).is_some())
    });
    assert_eq!(by_name, (false, true));
}

#[test]
fn a_panicking_filter_keeps_the_allocation_and_the_scope_survives() {
    let kept = LeakTracker::run_scoped_with(
        |a: &Allocation<'_>| {
            if a.size() == 4321 {
                panic!("filter failure");
            }
            true
        },
        || {
            let address = leak_bytes(4321);
            find(&LeakTracker::leaks(), address).is_some()
        },
    );
    assert!(kept);
}

#[test]
fn verify_reports_count_bytes_sizes_and_frames() {
    let err = LeakTracker::run_scoped(|| {
        leak_bytes(1000);
        leak_bytes(24);
        LeakTracker::verify_no_leaks().expect_err("two leaks")
    });
    assert_eq!((err.count(), err.total_bytes), (2, 1024));
    let text = err.to_string();
    assert!(text.starts_with("leakview: 2 leaked allocations, 1.0 KiB (1024 bytes) in total"), "{text}");
    assert!(text.contains("1000 bytes (align 1)"), "{text}");
    assert!(text.contains("24 bytes (align 1)"), "{text}");
    assert!(text.contains("leak_bytes"), "{text}");
    assert!(text.contains("api_diagnostic.rs:"), "{text}");
}

#[test]
fn console_report_is_largest_first() {
    let text = LeakTracker::run_scoped(|| {
        leak_bytes(10);
        leak_bytes(5000);
        leak_in_named_function_cache_fill(300);
        ConsoleEmitter::new().render(&LeakTracker::leaks())
    });
    assert!(text.starts_with("leakview: 3 leaked blocks"), "{text}");
    let big = text.find("\n4.9 KiB (5000 bytes) in 1 block\n").expect("big block listed");
    let middle = text.find("\n300 bytes in 1 block\n").expect("middle block listed");
    let small = text.find("\n10 bytes in 1 block\n").expect("small block listed");
    assert!(big < middle && middle < small, "{text}");
    // Optimised builds with line tables only name functions without their module.
    assert!(text.contains("leak_in_named_function_cache_fill (/"), "{text}");
    assert!(!text.contains("__rust_alloc"), "{text}");
    assert!(!text.contains("raw_vec"), "{text}");
    assert_eq!(ConsoleEmitter::new().render(&[]), "leakview: no leaks\n");
}

#[test]
fn json_report_has_the_analyzer_shape() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("leaks.json");
    let emitter = JsonEmitter::new(&path);
    LeakTracker::run_scoped(|| {
        // One call site (a loop an optimiser cannot unroll): one group.
        for _ in 0..std::hint::black_box(3) {
            leak_bytes(64);
        }
        leak_in_named_function_cache_fill(4096);
        LeakTracker::emit(&emitter).expect("emit");
    });
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
    assert_eq!(doc["schema"], 1);
    assert_eq!(doc["outstanding"]["blocks"], 4);
    assert_eq!(doc["outstanding"]["bytes"], 3 * 64 + 4096);
    let groups = doc["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0]["bytes"], 4096);
    assert_eq!(groups[0]["blocks"], 1);
    assert_eq!(groups[1]["blocks"], 3);
    assert_eq!(groups[1]["threads"], 1);
    for group in groups {
        assert!(group["first_alloc_ns"].as_u64() <= group["last_alloc_ns"].as_u64());
        let frames = group["frames"].as_array().expect("frames");
        assert!(!frames.is_empty());
        for frame in frames {
            for key in ["function", "file", "line", "module", "address", "inlined"] {
                assert!(frame.get(key).is_some(), "{key} missing in {frame}");
            }
            assert!(frame["address"].as_str().is_some_and(|a| a.starts_with("0x")));
        }
    }
    let names: Vec<&str> =
        groups[0]["frames"].as_array().into_iter().flatten().filter_map(|f| f["function"].as_str()).collect();
    assert!(names.iter().any(|n| n.contains("leak_in_named_function_cache_fill")), "{names:?}");
}

/// A user emitter that allocates while emitting.
struct Collecting(Mutex<Vec<usize>>);

impl LeaksEmitter for Collecting {
    fn emit(&self, leaks: &[Leak]) -> std::io::Result<()> {
        let summary: Vec<String> = leaks.iter().map(|l| format!("{}:{}", l.address, l.size)).collect();
        self.0.lock().expect("lock").extend(leaks.iter().map(|l| l.size));
        assert_eq!(summary.len(), leaks.len());
        Ok(())
    }
}

#[test]
fn custom_emitters_get_the_scope_leaks_and_may_allocate() {
    let collected = Collecting(Mutex::new(Vec::with_capacity(8)));
    LeakTracker::run_scoped(|| {
        leak_bytes(77);
        LeakTracker::emit(&collected).expect("emit");
        // Emitting left nothing behind in the scope.
        assert_eq!(LeakTracker::leaks().len(), 1);
    });
    assert_eq!(*collected.0.lock().expect("lock"), vec![77]);
}

#[test]
fn query_results_are_never_reported_as_leaks() {
    LeakTracker::run_scoped(|| {
        leak_bytes(5);
        let first = LeakTracker::leaks();
        let frames = first[0].backtrace.frames().len();
        assert!(frames > 0);
        let second = LeakTracker::leaks();
        assert_eq!(second.len(), 1, "{second:?}");
    });
}

#[test]
fn enable_disable_and_enabled() {
    let _serial = PROCESS_WIDE.lock().unwrap_or_else(|p| p.into_inner());
    LeakTracker::disable();
    assert!(!LeakTracker::enabled());
    LeakTracker::reset();
    let untracked = leak_bytes(123);
    assert!(find(&LeakTracker::leaks(), untracked).is_none());
    LeakTracker::enable();
    assert!(LeakTracker::enabled());
    let tracked = leak_bytes(124);
    LeakTracker::disable();
    let after = leak_bytes(125);
    let leaks = LeakTracker::leaks();
    assert!(find(&leaks, tracked).is_some());
    assert!(find(&leaks, after).is_none());
    LeakTracker::reset();
    assert!(LeakTracker::verify_no_leaks().is_ok());
    LeakTracker::enable_in_debug();
    assert_eq!(LeakTracker::enabled(), cfg!(debug_assertions));
    LeakTracker::disable();
}

#[cfg(target_os = "linux")]
#[test]
fn forked_children_keep_tracking_while_other_threads_allocate() {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let busy = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            LeakTracker::run_scoped(|| {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let v: Vec<u64> = (0..64).collect();
                    std::hint::black_box(v);
                }
            })
        })
    };
    for _ in 0..8 {
        let status = LeakTracker::run_scoped(|| {
            let kept = leak_bytes(48);
            // SAFETY: fork in a test; the child only allocates, queries and leaves with _exit.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                let child_block = leak_bytes(96);
                let leaks = LeakTracker::leaks();
                let ok = find(&leaks, kept).is_some() && find(&leaks, child_block).is_some();
                // SAFETY: ends the child without running the parent's exit handlers.
                unsafe { libc::_exit(if ok { 0 } else { 1 }) };
            }
            assert!(pid > 0, "fork failed");
            let mut status = 0;
            // SAFETY: waiting for our own child.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            status
        });
        assert_eq!(status, 0, "child failed");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    busy.join().expect("thread");
}

#[test]
fn a_filter_may_query_the_tracker_and_allocate_without_recursing() {
    let seen_inside = Arc::new(Mutex::new(Vec::new()));
    let record = seen_inside.clone();
    let kept = LeakTracker::run_scoped_with(
        move |a: &Allocation<'_>| {
            // Inside the tracker: queries see nothing, allocations pass straight through.
            let names: Vec<String> =
                a.backtrace().frames().iter().filter_map(|f| f.function.clone()).collect();
            record.lock().expect("lock").push((LeakTracker::leaks().len(), names.len(), a.size()));
            true
        },
        || {
            let address = leak_bytes(4444);
            find(&LeakTracker::leaks(), address).is_some()
        },
    );
    assert!(kept);
    let seen = seen_inside.lock().expect("lock");
    let judged = seen.iter().find(|(_, _, size)| *size == 4444).expect("the filter judged the block");
    assert_eq!(judged.0, 0);
    assert!(judged.1 > 0);
}
