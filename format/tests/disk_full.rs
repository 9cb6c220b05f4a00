//! A full disk (simulated with RLIMIT_FSIZE) stops recording cleanly: no crash, no SIGBUS, the
//! trace says it was truncated, and everything written before is readable.

mod common;

use leakview_format::{ThreadStream, TraceReader, TraceWriter, WriteError};

#[test]
fn full_disk_stops_recording_and_marks_the_trace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.bin");
    // SAFETY: test process setup: ignore SIGXFSZ so exceeding the limit is an error return,
    // then cap the size of files this process may write. This test file is its own process.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        let limit = libc::rlimit { rlim_cur: 2 << 20, rlim_max: libc::RLIM_INFINITY };
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0);
    }
    let writer = TraceWriter::create(&path, &common::metadata(), &common::small_chunks()).expect("create");
    let mut stream = ThreadStream::new(1);
    let events = common::sample_events(0, 2_000_000);
    let mut written = 0usize;
    let mut stopped = false;
    for e in &events {
        match writer.append(&mut stream, &e.as_event()) {
            Ok(()) => written += 1,
            Err(WriteError::Stopped) => {
                stopped = true;
                break;
            }
            Err(other) => panic!("unexpected error {other}"),
        }
    }
    assert!(stopped, "a 2 MiB limit must stop a trace of two million events");
    assert!(writer.is_truncated());
    assert!(matches!(writer.append(&mut stream, &events[0].as_event()), Err(WriteError::Stopped)));
    writer.finish(1);
    let reader = TraceReader::open(&path).expect("open");
    assert!(reader.header().truncated());
    assert!(!reader.is_complete());
    assert!(reader.header().lost_events >= 1);
    let got = common::read_threads(&reader);
    assert_eq!(got[&1].len(), written);
    common::assert_same_events(&got[&1], &events[..written], "disk full");
}
