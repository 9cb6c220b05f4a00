//! A disk with room for only a few chunks (simulated with RLIMIT_FSIZE) still gets a trace: the
//! writer starts with a smaller reservation when the usual one does not fit, grows by single
//! chunks when a full step does not, and stops cleanly when not even one more chunk fits.

mod common;

use leakview_format::{ThreadStream, TraceReader, TraceWriter, WriteError, WriterOptions, layout};

const CHUNK_SIZE: u32 = 64 * 1024;

#[test]
fn a_disk_with_room_for_three_chunks_holds_three_chunks_of_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.bin");
    // Room for the header, three chunks and half of a fourth.
    let room = layout::chunk_offset(3, CHUNK_SIZE) + u64::from(CHUNK_SIZE) / 2;
    // SAFETY: test process setup: ignore SIGXFSZ so exceeding the limit is an error return,
    // then cap the size of files this process may write. This test file is its own process.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        let limit = libc::rlimit { rlim_cur: room, rlim_max: libc::RLIM_INFINITY };
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0);
    }
    let options = WriterOptions { chunk_size: CHUNK_SIZE, ..WriterOptions::default() };
    let writer = TraceWriter::create(&path, &common::metadata(), &options).expect("create on a small disk");
    let mut stream = ThreadStream::new(1);
    let events = common::sample_events(0, 200_000);
    let mut written = 0usize;
    for e in &events {
        match writer.append(&mut stream, &e.as_event()) {
            Ok(()) => written += 1,
            Err(WriteError::Stopped) => break,
            Err(other) => panic!("unexpected error {other}"),
        }
    }
    assert!(writer.is_truncated(), "two hundred thousand events do not fit in three chunks");
    writer.finish(u64::MAX / 2);
    let reader = TraceReader::open(&path).expect("open");
    assert!(reader.file_len() <= room);
    assert_eq!(reader.chunks().len(), 3, "every chunk that fits is used");
    let got = common::read_threads(&reader);
    common::assert_same_events(&got[&1], &events[..written], "small disk");
}
