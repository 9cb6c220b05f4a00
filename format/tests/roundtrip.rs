//! Round-trip property tests: what several writer threads append is what the reader returns,
//! per thread and in order.

mod common;

use leakview_format::{OwnedEvent, Segment, TraceReader, WriterOptions};
use proptest::prelude::*;

fn event_strategy() -> impl Strategy<Value = OwnedEvent> {
    let addr = prop_oneof![any::<u64>(), (0x5555_0000_0000u64..0x5555_0100_0000).prop_map(|a| a & !0xf)];
    let small = prop_oneof![0u64..5000, any::<u64>()];
    let bytes = proptest::collection::vec(any::<u8>(), 0..300);
    prop_oneof![
        (0u64..10_000, addr.clone(), small.clone(), prop_oneof![Just(0u64), 1u64..4096], any::<u32>())
            .prop_map(|(dt, addr, size, align, stack)| OwnedEvent::Alloc {
                ts: dt,
                addr,
                size,
                align,
                stack
            }),
        (0u64..10_000, addr.clone()).prop_map(|(dt, addr)| OwnedEvent::Free { ts: dt, addr }),
        (0u64..10_000, 0u64..100, addr.clone(), addr, small, any::<u32>()).prop_map(
            |(dt, dt2, old_addr, new_addr, size, stack)| OwnedEvent::Realloc {
                ts_free: dt,
                ts: dt2,
                old_addr,
                new_addr,
                size,
                stack
            }
        ),
        (any::<u32>(), any::<u32>(), any::<u64>()).prop_map(|(id, parent, ip)| OwnedEvent::StackNode {
            id,
            parent,
            ip
        }),
        (
            0u64..10_000,
            any::<u32>(),
            any::<u64>(),
            bytes.clone(),
            bytes.clone(),
            proptest::collection::vec((any::<u64>(), any::<u64>(), any::<u32>()), 0..5)
        )
            .prop_map(|(dt, id, base, path, build_id, segs)| OwnedEvent::ModuleLoad {
                ts: dt,
                id,
                base,
                path,
                build_id,
                segments: segs
                    .into_iter()
                    .map(|(vaddr, memsz, flags)| Segment { vaddr, memsz, flags })
                    .collect(),
            }),
        (0u64..10_000, any::<u32>()).prop_map(|(dt, id)| OwnedEvent::ModuleUnload { ts: dt, id }),
        (0u64..10_000, any::<u32>(), bytes.clone()).prop_map(|(dt, tid, name)| OwnedEvent::ThreadName {
            ts: dt,
            tid,
            name
        }),
        (0u64..10_000, bytes).prop_map(|(dt, label)| OwnedEvent::Mark { ts: dt, label }),
        (0u64..10_000, any::<u64>()).prop_map(|(dt, bytes)| OwnedEvent::ResidentMemory { ts: dt, bytes }),
        (0u64..10_000, any::<u64>(), any::<u64>(), any::<u8>())
            .prop_map(|(dt, start, len, kind)| OwnedEvent::ScanRegion { ts: dt, start, len, kind }),
        (0u64..10_000, proptest::collection::vec((any::<u64>(), any::<u64>()), 0..40)).prop_map(
            |(dt, mut refs)| {
                refs.sort_unstable();
                OwnedEvent::References { ts: dt, refs }
            }
        ),
        (0u64..10_000, any::<u64>(), any::<u64>(), any::<u64>()).prop_map(
            |(dt, regions, bytes, references)| { OwnedEvent::ScanEnd { ts: dt, regions, bytes, references } }
        ),
    ]
}

/// Turns the generated time deltas into nondecreasing timestamps, as a real thread produces.
fn with_real_timestamps(events: Vec<OwnedEvent>, start: u64) -> Vec<OwnedEvent> {
    let mut now = start;
    events
        .into_iter()
        .map(|mut e| {
            match &mut e {
                OwnedEvent::Alloc { ts, .. }
                | OwnedEvent::Free { ts, .. }
                | OwnedEvent::ModuleLoad { ts, .. }
                | OwnedEvent::ModuleUnload { ts, .. }
                | OwnedEvent::ThreadName { ts, .. }
                | OwnedEvent::Mark { ts, .. }
                | OwnedEvent::ResidentMemory { ts, .. }
                | OwnedEvent::ScanRegion { ts, .. }
                | OwnedEvent::References { ts, .. }
                | OwnedEvent::ScanEnd { ts, .. } => {
                    now += *ts;
                    *ts = now;
                }
                OwnedEvent::Realloc { ts_free, ts, .. } => {
                    now += *ts_free;
                    *ts_free = now;
                    now += *ts;
                    *ts = now;
                }
                OwnedEvent::StackNode { .. } => {}
            }
            e
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn concurrent_writers_round_trip(threads in proptest::collection::vec(proptest::collection::vec(event_strategy(), 0..400), 1..5)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.bin");
        let per_thread: Vec<Vec<OwnedEvent>> = threads.into_iter().enumerate().map(|(i, t)| with_real_timestamps(t, 1_000 + i as u64)).collect();
        common::write_threads(&path, &per_thread, &common::small_chunks(), true);
        let reader = TraceReader::open(&path).expect("open");
        prop_assert!(reader.is_complete());
        let got = common::read_threads(&reader);
        for (i, events) in per_thread.iter().enumerate() {
            let empty = Vec::new();
            let read = got.get(&(100 + i as u32)).unwrap_or(&empty);
            prop_assert_eq!(read, events, "thread {}", i);
        }
    }
}

#[test]
fn many_chunks_and_file_growth_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("big.bin");
    let per_thread: Vec<_> = (0..4).map(|t| common::sample_events(t, 60_000)).collect();
    common::write_threads(&path, &per_thread, &common::small_chunks(), true);
    let reader = TraceReader::open(&path).expect("open");
    assert!(reader.chunks().len() > 100, "expected many chunks, got {}", reader.chunks().len());
    assert_eq!(reader.metadata(), &common::metadata());
    let got = common::read_threads(&reader);
    assert_eq!(got.len(), 4);
    for (i, events) in per_thread.iter().enumerate() {
        common::assert_same_events(&got[&(100 + i as u32)], events, "thread");
    }
    // Mapped without reading ahead, it is the same trace.
    let sparse = TraceReader::open_sparse(&path).expect("open sparse");
    assert_eq!(sparse.header(), reader.header());
    assert_eq!(sparse.chunks(), reader.chunks());
    assert_eq!(common::read_threads(&sparse), got);
}

#[test]
fn trace_files_are_private_and_never_clobbered() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.bin");
    common::write_threads(&path, &[common::sample_events(0, 10)], &WriterOptions::default(), true);
    let mode = std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let again = leakview_format::TraceWriter::create(&path, &common::metadata(), &WriterOptions::default());
    assert!(again.is_err(), "an existing trace must not be overwritten");
    let target = dir.path().join("target");
    let link = dir.path().join("link.bin");
    std::os::unix::fs::symlink(&target, &link).expect("symlink");
    assert!(
        leakview_format::TraceWriter::create(&link, &common::metadata(), &WriterOptions::default()).is_err()
    );
    assert!(!target.exists(), "the symlink must not be followed");
}

#[test]
fn an_event_larger_than_a_chunk_is_refused_and_the_stream_goes_on() {
    use leakview_format::{Event, ThreadStream, TraceWriter, WriteError};
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("large.bin");
    let writer = TraceWriter::create(&path, &common::metadata(), &common::small_chunks()).expect("create");
    let mut stream = ThreadStream::new(7);
    let huge = vec![b'x'; 64 * 1024];
    let alloc = |ts| Event::Alloc { ts, addr: 0x1000 + ts * 16, size: 32, align: 0, stack: 0 };
    // Into an empty stream, and into a stream whose chunk already holds an event.
    let refused = writer.append(&mut stream, &Event::Mark { ts: 10, label: &huge });
    assert!(matches!(refused, Err(WriteError::EventTooLarge)), "{refused:?}");
    writer.append(&mut stream, &alloc(20)).expect("small event after the refused one");
    let refused = writer.append(&mut stream, &Event::Mark { ts: 30, label: &huge });
    assert!(matches!(refused, Err(WriteError::EventTooLarge)), "{refused:?}");
    writer.append(&mut stream, &alloc(40)).expect("small event after the second refusal");
    writer.release(&mut stream);
    writer.finish(50);
    let reader = TraceReader::open(&path).expect("open");
    let got = common::read_threads(&reader);
    let want: Vec<OwnedEvent> = [alloc(20), alloc(40)].iter().map(Event::to_owned_event).collect();
    common::assert_same_events(&got[&7], &want, "thread 7");
}

#[test]
fn a_time_that_goes_backwards_in_a_new_chunk_takes_its_predecessors() {
    use leakview_format::{Event, ThreadStream, TraceWriter};
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("back.bin");
    let writer = TraceWriter::create(&path, &common::metadata(), &common::small_chunks()).expect("create");
    let mut stream = ThreadStream::new(3);
    // Three marks of 1.2 KB fill a 4 KiB chunk; every other time is 10 ns before the one it
    // follows, so such a time comes first in a fresh chunk (the 4th, the 10th).
    let label = vec![b'm'; 1200];
    let mut wrote = Vec::new();
    for i in 0..12u64 {
        let ts = if i % 2 == 1 { 1_000 * i - 10 } else { 1_000 * (i + 1) };
        writer.append(&mut stream, &Event::Mark { ts, label: &label }).expect("append");
        wrote.push(ts);
    }
    writer.release(&mut stream);
    writer.finish(20_000);
    let reader = TraceReader::open(&path).expect("open");
    assert!(reader.chunks().len() > 3, "the marks span several chunks");
    let got: Vec<u64> = common::read_threads(&reader)[&3]
        .iter()
        .filter_map(|e| match e {
            OwnedEvent::Mark { ts, .. } => Some(*ts),
            _ => None,
        })
        .collect();
    assert_eq!(got.len(), wrote.len());
    assert!(got.windows(2).all(|w| w[0] <= w[1]), "times went backwards: {got:?}");
}
