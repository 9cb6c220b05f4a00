//! Threads that record a few events and end cost the disk about a page each, not a chunk: the
//! writer gives a released chunk's unfilled pages back to the filesystem, trimming a finished
//! trace does the same for the chunks still held at the end (when they leave a megabyte or more
//! unfilled), and every event stays readable.

mod common;

use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use leakview_format::{OwnedEvent, ThreadStream, TraceReader, TraceWriter, WriterOptions, trim_finished};

const STREAMS: u32 = 3000;
const CHUNK_SIZE: u32 = 64 * 1024;
const PAGE: u64 = 4096;

/// Bytes the file occupies on disk.
fn allocated(path: &Path) -> u64 {
    std::fs::metadata(path).expect("stat").blocks() * 512
}

/// Whether the filesystem holding `dir` can punch holes (tmpfs, ext4, xfs, btrfs can).
fn can_punch_holes(dir: &Path) -> bool {
    let probe = std::fs::File::create(dir.join("probe")).expect("create probe");
    probe.set_len(2 * PAGE).expect("size probe");
    // SAFETY: fallocate on a file we own; no memory is passed.
    let rc = unsafe {
        libc::fallocate(
            probe.as_raw_fd(),
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            0,
            PAGE as libc::off_t,
        )
    };
    rc == 0
}

/// Stream `i`'s events: one allocation, or for every tenth stream enough to fill a few pages.
fn events_of(i: u32) -> Vec<OwnedEvent> {
    let n = if i.is_multiple_of(10) { 3000 } else { 1 };
    (0..n)
        .map(|k| OwnedEvent::Alloc {
            ts: 10_000 + u64::from(i) * 10 + k,
            addr: 0x7000_0000 + (u64::from(i) << 20) + k * 48,
            size: 16 + k % 300,
            align: 0,
            stack: 0,
        })
        .collect()
}

#[test]
fn released_streams_take_a_page_not_a_chunk() {
    // In memory where there is a tmpfs: it punches holes quickly everywhere, while a disk's
    // filesystem may be slow at it (then the writer stops, and there is less to check).
    let dir = tempfile::tempdir_in("/dev/shm").or_else(|_| tempfile::tempdir()).expect("tempdir");
    let path = dir.path().join("t.bin");
    let options = WriterOptions { chunk_size: CHUNK_SIZE, ..WriterOptions::default() };
    let writer = TraceWriter::create(&path, &common::metadata(), &options).expect("create");
    let wanted: Vec<Vec<OwnedEvent>> = (0..STREAMS).map(events_of).collect();
    // Every third stream is still open when the trace finishes (its thread outlived the program's
    // end); the others end, one after another, as thread-per-task programs' threads do.
    let mut open = Vec::new();
    for (i, events) in wanted.iter().enumerate() {
        let mut stream = ThreadStream::new(1 + i as u32);
        for e in events {
            writer.append(&mut stream, &e.as_event()).expect("append");
        }
        if i.is_multiple_of(3) {
            open.push(stream);
        } else {
            writer.release(&mut stream);
        }
    }
    writer.finish(u64::MAX / 2);
    let header_reserved = {
        let reader = TraceReader::open(&path).expect("open before trimming");
        u64::from(reader.header().chunks_reserved - reader.header().chunks_claimed)
    };
    // Where punching holes is slow the writer stops giving pages back at release (a short
    // thread then costs its chunk); trimming the finished trace still frees what was reserved.
    let punched = can_punch_holes(dir.path()) && writer.gives_pages_back();
    let whole_chunks = u64::from(STREAMS) * u64::from(CHUNK_SIZE);
    let before_trim = allocated(&path);
    if punched {
        // Open streams keep their chunks; released ones a page or a few; reserved chunks that no
        // stream claimed yet are still whole.
        let open_chunks = open.len() as u64 * u64::from(CHUNK_SIZE);
        let limit = open_chunks + (header_reserved + 1) * u64::from(CHUNK_SIZE) + whole_chunks / 10;
        assert!(before_trim < limit, "{before_trim} bytes on disk before trimming, expected under {limit}");
    }
    drop(open);
    drop(writer);

    trim_finished(&path).expect("trim");
    let after_trim = allocated(&path);
    if punched {
        assert!(
            after_trim * 8 < whole_chunks,
            "{after_trim} bytes on disk for {STREAMS} short streams of {CHUNK_SIZE}-byte chunks"
        );
    }
    assert!(after_trim <= before_trim);

    let reader = TraceReader::open(&path).expect("open");
    assert!(reader.is_complete());
    let got = common::read_threads(&reader);
    assert_eq!(got.len(), STREAMS as usize, "every stream's chunk is read");
    for (i, want) in wanted.iter().enumerate() {
        common::assert_same_events(&got[&(1 + i as u32)], want, &format!("stream {i}"));
    }
}

#[test]
fn a_few_open_streams_keep_their_pages_at_the_end() {
    // Punching a hole can take milliseconds on a disk that discards freed blocks: the few pages
    // a handful of threads left unfilled are not worth the wait at the end of every recording.
    let dir = tempfile::tempdir_in("/dev/shm").or_else(|_| tempfile::tempdir()).expect("tempdir");
    let path = dir.path().join("t.bin");
    let options = WriterOptions { chunk_size: CHUNK_SIZE, ..WriterOptions::default() };
    let writer = TraceWriter::create(&path, &common::metadata(), &options).expect("create");
    let mut open = Vec::new();
    for i in 0..4u32 {
        let mut stream = ThreadStream::new(1 + i);
        for e in events_of(i + 1) {
            writer.append(&mut stream, &e.as_event()).expect("append");
        }
        open.push(stream);
    }
    writer.finish(u64::MAX / 2);
    drop(open);
    drop(writer);
    let len = trim_finished(&path).expect("trim");
    assert_eq!(len, u64::from(PAGE as u32) + 4 * u64::from(CHUNK_SIZE), "cut to the claimed chunks");
    if can_punch_holes(dir.path()) {
        assert!(
            allocated(&path) >= len,
            "{} bytes on disk for a {len}-byte trace: holes punched",
            allocated(&path)
        );
    }
    let reader = TraceReader::open(&path).expect("open");
    assert_eq!(common::read_threads(&reader).len(), 4);
}
