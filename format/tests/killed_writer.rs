//! A recorded process killed with SIGKILL leaves a trace readable up to its last published
//! event: the mapping is MAP_SHARED, so written pages belong to the page cache.

mod common;

use std::process::Command;

use leakview_format::{ThreadStream, TraceReader, TraceWriter};

const CHILD_ENV: &str = "LEAKVIEW_FORMAT_TEST_KILLED_WRITER";
const EVENTS_BEFORE_KILL: usize = 50_000;

/// In the child process: write, then die without any chance to clean up.
#[test]
fn child_writer() {
    let Some(path) = std::env::var_os(CHILD_ENV) else { return };
    let writer =
        TraceWriter::create(path.as_ref(), &common::metadata(), &common::small_chunks()).expect("create");
    let mut stream = ThreadStream::new(9);
    for e in common::sample_events(0, EVENTS_BEFORE_KILL) {
        writer.append(&mut stream, &e.as_event()).expect("append");
    }
    // SAFETY: raising a signal on ourselves; SIGKILL cannot be caught.
    unsafe { libc::raise(libc::SIGKILL) };
}

#[test]
fn killed_writer_leaves_a_readable_incomplete_trace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("killed.bin");
    let status = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "child_writer", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &path)
        .status()
        .expect("run child");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL), "child must die of SIGKILL: {status:?}");
    let reader = TraceReader::open(&path).expect("open");
    assert!(!reader.is_complete());
    let got = common::read_threads(&reader);
    common::assert_same_events(&got[&9], &common::sample_events(0, EVENTS_BEFORE_KILL), "killed");
}
