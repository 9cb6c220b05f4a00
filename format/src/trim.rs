//! Trimming a finished trace: the writer reserves disk space ahead of use, so a trace whose
//! process has ended can carry reserved chunks that were never claimed, and chunks whose threads
//! were still running at the end keep their unfilled pages. Cutting the former off and punching
//! holes over the latter leaves every event in place and makes the file take as little disk as
//! its contents.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use crate::layout::{self, HEADER_LEN, chunk_offset};

/// Cuts the unused reserved chunks off the finished trace at `path`; returns its new length.
///
/// Only call it when no process can still be writing the trace (its recorded process has
/// exited): a writer that claimed a chunk past the new end would fault. Traces that are not
/// marked finished are left alone (returns their length unchanged).
pub fn trim_finished(path: &Path) -> io::Result<u64> {
    use layout::header as h;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)?;
    let len = file.metadata()?.len();
    let mut header = [0u8; HEADER_LEN];
    file.read_exact_at(&mut header, 0)?;
    let field = |at: usize| u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]]);
    if header[..8] != layout::MAGIC || u16::from_le_bytes([header[8], header[9]]) != layout::VERSION_MAJOR {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "not a leakview trace"));
    }
    let chunk_size = field(h::CHUNK_SIZE);
    if field(h::FLAGS) & layout::FLAG_COMPLETE == 0
        || !(layout::MIN_CHUNK_SIZE..=layout::MAX_CHUNK_SIZE).contains(&chunk_size)
    {
        return Ok(len);
    }
    let used_chunks = field(h::CHUNKS_CLAIMED).min(field(h::CHUNKS_RESERVED));
    let used = chunk_offset(used_chunks, chunk_size);
    free_unused_pages(&file, used_chunks.min(chunks_in(len, chunk_size)), chunk_size)?;
    if used >= len {
        return Ok(len);
    }
    file.write_all_at(&used_chunks.to_le_bytes(), h::CHUNKS_RESERVED as u64)?;
    file.set_len(used)?;
    Ok(used)
}

/// Whole chunks in a file of `len` bytes.
fn chunks_in(len: u64, chunk_size: u32) -> u32 {
    (len.saturating_sub(HEADER_LEN as u64) / u64::from(chunk_size)).min(u64::from(u32::MAX)) as u32
}

/// Punches holes over the pages of the first `chunks` chunks that hold no events: past each
/// chunk's published length, or all of a chunk that was claimed and never used. Damaged chunks
/// are left as they are. Filesystems that cannot punch holes keep the space.
fn free_unused_pages(file: &std::fs::File, chunks: u32, chunk_size: u32) -> io::Result<()> {
    use layout::chunk as c;
    let body_len = chunk_size as usize - layout::CHUNK_HEADER_LEN;
    for index in 0..chunks {
        let start = chunk_offset(index, chunk_size);
        let mut head = [0u8; layout::CHUNK_HEADER_LEN];
        file.read_exact_at(&mut head, start)?;
        let field = |at: usize| u32::from_le_bytes([head[at], head[at + 1], head[at + 2], head[at + 3]]);
        if head.iter().all(|&b| b == 0) {
            punch_hole(file.as_raw_fd(), start, u64::from(chunk_size));
        } else if field(c::MAGIC) == layout::CHUNK_MAGIC
            && field(c::CHUNK_INDEX) == index
            && field(c::COMMITTED_LEN) as usize <= body_len
        {
            free_chunk_tail(file.as_raw_fd(), start, chunk_size, field(c::COMMITTED_LEN));
        }
    }
    Ok(())
}

/// Gives back the whole pages of the chunk at `start` past its header and `used` body bytes
/// (which must not be written again). Shared by the writer (a chunk released at a thread's
/// end) and trimming.
pub(crate) fn free_chunk_tail(fd: RawFd, start: u64, chunk_size: u32, used: u32) {
    const PAGE: u64 = 4096;
    let in_use = (layout::CHUNK_HEADER_LEN as u64 + u64::from(used)).next_multiple_of(PAGE);
    if in_use < u64::from(chunk_size) {
        punch_hole(fd, start + in_use, u64::from(chunk_size) - in_use);
    }
}

/// Gives `len` bytes at `offset` back to the filesystem (they read as zeros); does nothing where
/// the filesystem cannot.
fn punch_hole(fd: RawFd, offset: u64, len: u64) {
    // SAFETY: fallocate on a descriptor the caller owns; no memory is passed. Failure leaves
    // the bytes as they were, which is harmless.
    unsafe {
        libc::fallocate(
            fd,
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            offset as libc::off_t,
            len as libc::off_t,
        )
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Event, RecorderKind, ThreadStream, TraceMetadata, TraceReader, TraceWriter, WriterOptions};

    fn write(path: &Path, finish: bool) -> Vec<crate::OwnedEvent> {
        let meta = TraceMetadata { recorder_kind: RecorderKind::Synthetic, ..TraceMetadata::default() };
        let writer =
            TraceWriter::create(path, &meta, &WriterOptions { chunk_size: 4096, ..WriterOptions::default() })
                .expect("create");
        let mut stream = ThreadStream::new(1);
        let mut events = Vec::new();
        for i in 0..500u64 {
            let e = Event::Alloc { ts: i, addr: 0x1000 + i * 48, size: i, align: 0, stack: 0 };
            writer.append(&mut stream, &e).expect("append");
            events.push(e.to_owned_event());
        }
        if finish {
            writer.finish(1000);
        }
        events
    }

    fn read_all(path: &Path) -> Vec<crate::OwnedEvent> {
        let reader = TraceReader::open(path).expect("open");
        reader
            .chunks()
            .iter()
            .flat_map(|c| reader.events(c).map(|e| e.expect("event").to_owned_event()).collect::<Vec<_>>())
            .collect()
    }

    #[test]
    fn finished_traces_lose_only_their_unused_reservation() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.bin");
        let events = write(&path, true);
        let before = std::fs::metadata(&path).expect("stat").len();
        let after = trim_finished(&path).expect("trim");
        assert!(after < before, "{after} < {before}");
        assert_eq!(std::fs::metadata(&path).expect("stat").len(), after);
        assert_eq!(read_all(&path), events);
        assert!(TraceReader::open(&path).expect("open").is_complete());
        assert_eq!(trim_finished(&path).expect("again"), after, "trimming twice changes nothing");
    }

    #[test]
    fn unfinished_traces_are_left_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.bin");
        write(&path, false);
        let before = std::fs::metadata(&path).expect("stat").len();
        assert_eq!(trim_finished(&path).expect("trim"), before);
    }
}
