//! Finishing the trace of a process image that replaced itself with `exec`: the recorder in the
//! old image never ran its exit path, so the trace is not marked complete, yet it holds every
//! event up to the exec (the kernel releases all of the old image's memory there). Whoever knows
//! that the image was replaced (`leakview record`, which sees a later trace of the same process)
//! marks it complete, ending at its latest event.

use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use crate::layout;
use crate::reader::TraceReader;

/// Marks the unfinished trace at `path` complete, with its latest event's time as the end.
/// Returns whether it changed anything (a finished trace is left alone).
///
/// Only call it when the trace's process image is known to have been replaced by `exec`, so that
/// nothing can still write it.
pub fn finish_replaced_image(path: &Path) -> io::Result<bool> {
    let reader = TraceReader::open(path)
        .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error.to_string()))?;
    if reader.header().finished() {
        return Ok(false);
    }
    let mut end = reader.metadata().start_monotonic_ns;
    for chunk in reader.chunks() {
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
    fn a_file_that_is_not_a_trace_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("junk.bin");
        std::fs::write(&path, b"not a trace").expect("write");
        assert!(finish_replaced_image(&path).is_err());
        assert_eq!(std::fs::read(&path).expect("read"), b"not a trace");
    }
}
