//! Finishing the trace of a process image that replaced itself with `exec`: the recorder in the
//! old image never ran its exit path, so the trace is not marked complete, yet it holds every
//! event up to the exec (the kernel releases all of the old image's memory there). Whoever knows
//! that the image was replaced (`leakview record`, which sees a later trace of the same process)
//! marks it complete, ending at its latest event.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use crate::layout;
use crate::reader::{ChunkInfo, TraceReader};

/// Marks the unfinished trace at `path` complete, with its latest event's time as the end.
/// Returns whether it changed anything (a finished trace is left alone).
///
/// Only call it when the trace's process image is known to have been replaced by `exec`, so that
/// nothing can still write it.
pub fn finish_replaced_image(path: &Path) -> io::Result<bool> {
    let reader = TraceReader::open_sparse(path)
        .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error.to_string()))?;
    if reader.header().finished() {
        return Ok(false);
    }
    let mut end = reader.metadata().start_monotonic_ns;
    for chunk in last_chunks(reader.chunks()) {
        // A chunk that stops decoding still delivered the events before the damage.
        let _ = reader.for_each_event(chunk, |event| {
            if let Some(ts) = event.timestamp() {
                end = end.max(ts);
            }
        });
    }
    let flags = reader.header().flags;
    drop(reader);
    let file = OpenOptions::new().write(true).custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC).open(path)?;
    file.write_all_at(&end.to_le_bytes(), layout::header::END_TIMESTAMP as u64)?;
    file.write_all_at(&(flags | layout::FLAG_COMPLETE).to_le_bytes(), layout::header::FLAGS as u64)?;
    Ok(true)
}

/// The chunks that may end a thread's stream, which hold its latest times (a stream's times
/// never go backwards from chunk to chunk): per tid, those at each `seq_in_thread` that fewer
/// chunks reach the next of. A tid the kernel gave to a later thread starts a second stream
/// at seq 0, so one seq can hold several streams' chunks; all of them are taken.
fn last_chunks(chunks: &[ChunkInfo]) -> impl Iterator<Item = &ChunkInfo> {
    let mut at_seq: HashMap<(u32, u32), usize> = HashMap::new();
    for chunk in chunks {
        *at_seq.entry((chunk.tid, chunk.seq_in_thread)).or_default() += 1;
    }
    chunks.iter().filter(move |c| {
        let here = at_seq.get(&(c.tid, c.seq_in_thread)).copied().unwrap_or(0);
        let next = c.seq_in_thread.checked_add(1).and_then(|s| at_seq.get(&(c.tid, s))).copied().unwrap_or(0);
        here > next
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Event, RecorderKind, ThreadStream, TraceMetadata, TraceWriter, WriterOptions};

    #[test]
    fn an_unfinished_trace_ends_at_its_latest_event() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.bin");
        let meta = TraceMetadata {
            recorder_kind: RecorderKind::Synthetic,
            start_monotonic_ns: 1_000,
            ..TraceMetadata::default()
        };
        let writer = TraceWriter::create(&path, &meta, &WriterOptions::default()).expect("create");
        let (mut first, mut second) = (ThreadStream::new(1), ThreadStream::new(2));
        let alloc = |ts, addr| Event::Alloc { ts, addr, size: 8, align: 0, stack: 0 };
        writer.append(&mut first, &alloc(2_000, 0x10)).expect("append");
        writer.append(&mut second, &alloc(9_000, 0x20)).expect("append");
        writer.append(&mut first, &Event::Free { ts: 5_000, addr: 0x10 }).expect("append");
        drop(writer);
        assert!(!TraceReader::open(&path).expect("open").header().finished());

        assert!(finish_replaced_image(&path).expect("finish"));
        let reader = TraceReader::open(&path).expect("open");
        assert!(reader.is_complete());
        assert_eq!(reader.header().end_timestamp, 9_000);
        drop(reader);
        assert!(!finish_replaced_image(&path).expect("again"), "a finished trace is left alone");
    }

    #[test]
    fn only_the_chunks_that_end_a_stream_are_read_even_where_a_tid_came_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.bin");
        let meta = TraceMetadata { recorder_kind: RecorderKind::Synthetic, ..TraceMetadata::default() };
        let options = WriterOptions { chunk_size: 4096, ..WriterOptions::default() };
        let writer = TraceWriter::create(&path, &meta, &options).expect("create");
        let alloc = |ts, addr| Event::Alloc { ts, addr, size: 8, align: 0, stack: 0 };
        // Thread 1 fills several chunks; thread 2 writes a few events; then a later thread that
        // got tid 1 again writes the latest event of all, at seq 0 of its own stream.
        let (mut first, mut second, mut again) =
            (ThreadStream::new(1), ThreadStream::new(2), ThreadStream::new(1));
        for i in 0..3_000u64 {
            writer.append(&mut first, &alloc(1_000 + i, 0x1000 + 16 * i)).expect("append");
        }
        for i in 0..10u64 {
            writer.append(&mut second, &alloc(20_000 + i, 0x9000 + 16 * i)).expect("append");
        }
        writer.append(&mut again, &alloc(50_000, 0x10)).expect("append");
        drop(writer);

        let reader = TraceReader::open(&path).expect("open");
        let first_chunks = reader.chunks().iter().filter(|c| c.tid == 1).count() - 1;
        assert!(first_chunks >= 3, "thread 1 wrote {first_chunks} chunks");
        let mut read: Vec<(u32, u32)> =
            last_chunks(reader.chunks()).map(|c| (c.tid, c.seq_in_thread)).collect();
        read.sort_unstable();
        assert_eq!(read, vec![(1, 0), (1, 0), (1, first_chunks as u32 - 1), (2, 0)]);
        drop(reader);

        assert!(finish_replaced_image(&path).expect("finish"));
        assert_eq!(TraceReader::open(&path).expect("open").header().end_timestamp, 50_000);
    }

    #[test]
    fn a_file_that_is_not_a_trace_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("junk.bin");
        std::fs::write(&path, b"not a trace").expect("write");
        assert!(finish_replaced_image(&path).is_err());
        assert_eq!(std::fs::read(&path).expect("read"), b"not a trace");
    }
}
