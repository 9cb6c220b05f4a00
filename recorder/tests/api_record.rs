//! `LeakTracker::record_to`: an in-process recording written through the engine's trace writer,
//! read back with the format crate. One recording per process, so this file has one test of it
//! (and, where the engine is not available, one of the refusal).

use std::alloc::System;

use leakview::{Diagnostic, LeakTracker};

#[global_allocator]
static ALLOCATOR: Diagnostic = Diagnostic::new(System);

#[cfg(any(not(target_os = "linux"), leakview_portable))]
#[test]
fn record_to_is_unsupported_without_the_engine() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = LeakTracker::record_to(dir.path().join("t.bin")).expect_err("unsupported");
    assert_eq!(err.kind(), std::io::ErrorKind::Unsupported);
    assert!(!LeakTracker::recording());
    assert!(!LeakTracker::stop_recording());
    assert!(std::fs::read_dir(dir.path()).expect("dir").next().is_none(), "no file left behind");
}

#[cfg(all(target_os = "linux", not(leakview_portable)))]
mod engine {
    use std::collections::HashMap;

    use super::LeakTracker;
    use leakview_format::{OwnedEvent, RecorderKind, TraceReader};

    #[inline(never)]
    fn leak_in_recording(size: usize) -> usize {
        Vec::leak(vec![0x5au8; size]).as_ptr() as usize
    }

    fn read_events(reader: &TraceReader) -> Vec<(u32, OwnedEvent)> {
        let mut events = Vec::new();
        for chunk in reader.chunks() {
            for event in reader.events(chunk) {
                events.push((chunk.tid, event.expect("decodable event").to_owned_event()));
            }
        }
        events
    }

    /// The return addresses of `stack`, innermost first, from the trace's `StackNode`s.
    fn stack_ips(nodes: &HashMap<u32, (u32, u64)>, mut stack: u32) -> Vec<u64> {
        let mut ips = Vec::new();
        while stack != 0 {
            let (parent, ip) = nodes[&stack];
            ips.push(ip);
            stack = parent;
        }
        ips
    }

    #[test]
    fn record_to_writes_a_trace_of_the_tracked_allocations() {
        let dir = tempfile::tempdir().expect("tempdir");
        let requested = dir.path().join("in-process.bin");
        std::fs::write(&requested, b"someone else's file").expect("write");
        assert!(!LeakTracker::recording());

        let path = LeakTracker::record_to(&requested).expect("recording starts");
        assert!(LeakTracker::recording());
        assert!(LeakTracker::enabled());
        // The existing file is never clobbered: the trace goes beside it.
        assert_ne!(path, requested);
        assert_eq!(std::fs::read(&requested).expect("read"), b"someone else's file");
        assert!(LeakTracker::record_to(dir.path().join("second.bin")).is_err(), "one trace per process");

        let leaked = leak_in_recording(3000);
        let from_thread = std::thread::spawn(|| leak_in_recording(700)).join().expect("thread");
        let freed = vec![1u64; 100];
        let freed_address = freed.as_ptr() as usize;
        drop(freed);
        let mut grown: Vec<u32> = Vec::with_capacity(2);
        grown.extend(0..5000);
        let grown_address = grown.as_ptr() as usize;
        // Allocations for 25 ms, the last one after them (however the thread was scheduled):
        // the resident set size is sampled again once 10 ms have passed.
        let until = std::time::Instant::now() + std::time::Duration::from_millis(25);
        loop {
            let done = std::time::Instant::now() >= until;
            drop(std::hint::black_box(vec![0u8; 64]));
            if done {
                break;
            }
        }
        let in_process = LeakTracker::leaks();

        assert!(LeakTracker::stop_recording());
        assert!(!LeakTracker::recording());
        assert!(!LeakTracker::stop_recording());
        LeakTracker::disable();

        let reader = TraceReader::open(&path).expect("readable trace");
        assert!(reader.is_complete());
        let meta = reader.metadata();
        assert_eq!(meta.recorder_kind, RecorderKind::RustApi);
        assert!(meta.recorder.contains("in-process"), "{}", meta.recorder);
        assert_eq!(meta.pid, std::process::id());

        let events = read_events(&reader);
        let exe = std::env::current_exe().expect("exe");
        assert!(events.iter().any(
        |(_, e)| matches!(e, OwnedEvent::ModuleLoad { path, .. } if std::path::Path::new(std::str::from_utf8(path).unwrap_or("")) == exe)
    ));
        let nodes: HashMap<u32, (u32, u64)> = events
            .iter()
            .filter_map(|(_, e)| match e {
                OwnedEvent::StackNode { id, parent, ip } => Some((*id, (*parent, *ip))),
                _ => None,
            })
            .collect();
        let allocs: HashMap<u64, (u32, u64, u32)> = events
            .iter()
            .filter_map(|(tid, e)| match e {
                OwnedEvent::Alloc { addr, size, stack, .. } => Some((*addr, (*tid, *size, *stack))),
                _ => None,
            })
            .collect();
        let frees: Vec<u64> = events
            .iter()
            .filter_map(|(_, e)| if let OwnedEvent::Free { addr, .. } = e { Some(*addr) } else { None })
            .collect();

        // The leaked blocks: allocated with a stack, never freed, on the threads that made them.
        let leak = in_process.iter().find(|l| l.address == leaked).expect("in the registry too");
        let (tid, size, stack) = allocs[&(leaked as u64)];
        assert_eq!((size, u64::from(tid)), (3000, leak.thread));
        assert!(!frees.contains(&(leaked as u64)));
        let (thread_tid, thread_size, _) = allocs[&(from_thread as u64)];
        assert_eq!(thread_size, 700);
        assert_ne!(thread_tid, tid);
        // Its stack in the trace is the one the in-process registry holds.
        let ips: Vec<usize> = stack_ips(&nodes, stack).into_iter().map(|ip| ip as usize).collect();
        assert_eq!(ips, leak.backtrace.addresses());
        assert!(leak.backtrace.has_function("leak_in_recording"));

        // The freed block has its free; the grown vector ends in a realloc to its final address.
        assert!(allocs.contains_key(&(freed_address as u64)));
        assert!(frees.contains(&(freed_address as u64)));
        assert!(events.iter().any(|(_, e)| matches!(e,
        OwnedEvent::Realloc { new_addr, size, stack, .. } if *new_addr == grown_address as u64 && *size == grown.capacity() as u64 * 4 && *stack != 0)));
        drop(grown);

        // The resident set size: sampled when the recording started and on the way, 10 ms apart.
        let mut resident: Vec<(u64, u64)> = events
            .iter()
            .filter_map(|(_, e)| match e {
                OwnedEvent::ResidentMemory { ts, bytes } => Some((*ts, *bytes)),
                _ => None,
            })
            .collect();
        resident.sort_unstable();
        assert!(resident.len() >= 2, "{resident:?}");
        assert!(resident.iter().all(|&(_, bytes)| bytes > 1 << 20), "{resident:?}");
        assert!(resident.windows(2).all(|w| w[1].0 - w[0].0 >= 10_000_000), "{resident:?}");
    }
}
