//! Damaged and truncated traces: the reader returns an error or the readable prefix, never
//! panics, and says the trace is incomplete.

mod common;

use leakview_format::{OwnedEvent, TraceReader, WriterOptions};
use proptest::prelude::*;

fn small_trace() -> (Vec<u8>, std::collections::BTreeMap<u32, Vec<OwnedEvent>>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.bin");
    let per_thread: Vec<_> = (0..3).map(|t| common::sample_events(t, 250)).collect();
    common::write_threads(&path, &per_thread, &common::small_chunks(), true);
    let bytes = std::fs::read(&path).expect("read");
    let full = common::read_threads(&TraceReader::from_bytes(bytes.clone()).expect("full trace reads"));
    (bytes, full)
}

fn read_all(reader: &TraceReader) -> usize {
    let mut n = 0;
    for chunk in reader.chunks() {
        for event in reader.events(chunk) {
            if event.is_err() {
                break;
            }
            n += 1;
        }
    }
    n
}

#[test]
fn truncated_at_every_offset_reads_a_prefix_without_panic() {
    let (bytes, full) = small_trace();
    let total: usize = full.values().map(Vec::len).sum();
    let mut last_seen = 0;
    for cut in 0..=bytes.len() {
        match TraceReader::from_bytes(bytes[..cut].to_vec()) {
            Err(_) => assert!(cut < 4096, "a trace with a whole header must open (cut at {cut})"),
            Ok(reader) => {
                let n = read_all(&reader);
                assert!(n >= last_seen || cut % 4096 != 0, "fewer events at a longer prefix");
                if cut < bytes.len() {
                    assert!(!reader.is_complete() || n == total, "cut at {cut} claims completeness");
                }
                // Every event read is the same as in the full trace, in order.
                let got = common::read_threads(&reader);
                for (tid, events) in got {
                    common::assert_same_events(
                        &events,
                        &full[&tid][..events.len().min(full[&tid].len())],
                        "prefix",
                    );
                }
                last_seen = n;
            }
        }
    }
    assert_eq!(last_seen, total);
}

#[test]
fn empty_and_foreign_files_are_typed_errors() {
    assert!(matches!(TraceReader::from_bytes(vec![]), Err(leakview_format::ReadError::Empty { .. })));
    assert!(matches!(
        TraceReader::from_bytes(b"hello world".to_vec()),
        Err(leakview_format::ReadError::NotATrace { .. })
    ));
    let mut future = small_trace().0;
    future[8] = 9;
    assert!(matches!(
        TraceReader::from_bytes(future),
        Err(leakview_format::ReadError::UnsupportedVersion { major: 9, .. })
    ));
}

#[test]
fn the_head_alone_reads_as_the_whole_trace_reads_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.bin");
    for finish in [false, true] {
        let _ = std::fs::remove_file(&path);
        common::write_threads(&path, &[common::sample_events(0, 3_000)], &common::small_chunks(), finish);
        let reader = TraceReader::open(&path).expect("open");
        let head = leakview_format::read_head(&path).expect("head");
        assert_eq!(&head.header, reader.header());
        assert_eq!(&head.metadata, reader.metadata());
        assert_eq!(head.header.finished(), finish);
    }
    // What open refuses, the head refuses alike.
    let full = std::fs::read(&path).expect("read");
    for (bytes, what) in [(&b""[..], "empty"), (&b"hello world"[..], "foreign"), (&full[..2000], "cut")] {
        std::fs::write(&path, bytes).expect("write");
        let by_open = TraceReader::open(&path).err().map(|e| e.to_string());
        let by_head = leakview_format::read_head(&path).err().map(|e| e.to_string());
        assert!(by_head.is_some(), "{what}: the head was accepted");
        assert_eq!(by_head, by_open, "{what}");
    }
}

#[test]
fn a_writer_that_never_finished_is_readable_and_incomplete() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.bin");
    let events = vec![common::sample_events(0, 5_000)];
    common::write_threads(&path, &events, &WriterOptions::default(), false);
    let reader = TraceReader::open(&path).expect("open");
    assert!(!reader.is_complete());
    assert!(!reader.header().finished());
    common::assert_same_events(&common::read_threads(&reader)[&100], &events[0], "unfinished");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn flipped_bytes_never_panic(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..20)) {
        let (mut bytes, _) = SMALL.with(|s| s.clone());
        for (at, value) in flips {
            let i = at % bytes.len();
            bytes[i] = value;
        }
        if let Ok(reader) = TraceReader::from_bytes(bytes) {
            let _ = read_all(&reader);
            let _ = reader.is_complete();
        }
    }
}

thread_local! {
    static SMALL: (Vec<u8>, std::collections::BTreeMap<u32, Vec<OwnedEvent>>) = small_trace();
}
