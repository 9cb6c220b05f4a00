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
use std::sync::atomic::{AtomicU32, Ordering};

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
    if header[..8] != layout::MAGIC || !layout::is_readable_major(u16::from_le_bytes([header[8], header[9]]))
    {
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

/// Punches holes over the pages of the first `chunks` chunks that hold no events: past the
/// published length of each chunk still open at the end (its thread outlived the program's
/// end), or all of a chunk that was claimed and never used, when those pages come to at least
/// [`MIN_HOLES_TO_PUNCH`]. Closed chunks are passed over: a chunk closed when it filled up has
/// no whole page to give back, and one closed at its thread's end had its pages given back then,
/// unless that was too slow (see [`SlowPunches`]), which it would be here too. Damaged chunks
/// are left as they are. Filesystems that cannot punch holes keep the space; where punching
/// turns out slow, it stops.
fn free_unused_pages(file: &std::fs::File, chunks: u32, chunk_size: u32) -> io::Result<()> {
    use layout::chunk as c;
    let body_len = chunk_size as usize - layout::CHUNK_HEADER_LEN;
    let mut holes = Vec::new();
    for index in 0..chunks {
        let start = chunk_offset(index, chunk_size);
        let mut head = [0u8; layout::CHUNK_HEADER_LEN];
        file.read_exact_at(&mut head, start)?;
        let field = |at: usize| u32::from_le_bytes([head[at], head[at + 1], head[at + 2], head[at + 3]]);
        if head.iter().all(|&b| b == 0) {
            holes.push((start, u64::from(chunk_size)));
        } else if field(c::MAGIC) == layout::CHUNK_MAGIC
            && field(c::CHUNK_INDEX) == index
            && field(c::COMMITTED_LEN) as usize <= body_len
            && field(c::FLAGS) & layout::CHUNK_FLAG_CLOSED == 0
        {
            holes.extend(chunk_tail(start, chunk_size, field(c::COMMITTED_LEN)));
        }
    }
    if holes.iter().map(|&(_, len)| len).sum::<u64>() < MIN_HOLES_TO_PUNCH {
        return Ok(());
    }
    let slow = SlowPunches::new();
    for (offset, len) in holes {
        if slow.is_slow() {
            break;
        }
        slow.timed(|| {
            punch_hole(file.as_raw_fd(), offset, len);
            true
        });
    }
    Ok(())
}

/// The unused pages of a trace are given back at its end only when they come to this much: a
/// few threads' unfilled pages (at most a chunk each) cost the disk less than punching them
/// costs the wait — 0.5 to 5 ms a hole on a disk mounted to discard freed blocks.
const MIN_HOLES_TO_PUNCH: u64 = 1 << 20;

/// The whole pages of the chunk at `start` past its header and `used` body bytes, as
/// `(offset, length)`, if there are any.
fn chunk_tail(start: u64, chunk_size: u32, used: u32) -> Option<(u64, u64)> {
    const PAGE: u64 = 4096;
    let in_use = (layout::CHUNK_HEADER_LEN as u64 + u64::from(used)).next_multiple_of(PAGE);
    (in_use < u64::from(chunk_size)).then(|| (start + in_use, u64::from(chunk_size) - in_use))
}

/// Gives back the whole pages of the chunk at `start` past its header and `used` body bytes
/// (which must not be written again); whether there were any to give back. Used by the writer
/// for a chunk released at a thread's end.
pub(crate) fn free_chunk_tail(fd: RawFd, start: u64, chunk_size: u32, used: u32) -> bool {
    let Some((offset, len)) = chunk_tail(start, chunk_size, used) else { return false };
    punch_hole(fd, offset, len);
    true
}

/// Whether giving pages back is too slow to do at every thread's end. Punching a 60 KiB hole
/// was measured at about 30 µs on tmpfs and 0.08 to 0.3 ms on an idle ext4 disk, but 2 to 3 ms
/// on that disk while other programs wrote to it; a program that starts and ends many threads
/// would wait that long at each thread's end. Once at least [`SLOW_PUNCHES_TO_STOP`] holes took longer than
/// [`SLOW_PUNCH_NS`] and they are most of the holes punched, punching stops and a short thread
/// costs its whole chunk instead. (A busy machine makes the odd hole slow anywhere; only a
/// filesystem makes most of them slow.)
pub(crate) struct SlowPunches {
    /// Holes punched, and those of them that were slow.
    punched: AtomicU32,
    slow: AtomicU32,
}

/// A hole that took longer than this to punch counts as slow.
pub(crate) const SLOW_PUNCH_NS: u64 = 250_000;
/// Slow holes needed before punching stops.
pub(crate) const SLOW_PUNCHES_TO_STOP: u32 = 8;

impl SlowPunches {
    pub(crate) const fn new() -> SlowPunches {
        SlowPunches { punched: AtomicU32::new(0), slow: AtomicU32::new(0) }
    }

    /// Runs `punch`, which says whether it punched a hole, and counts the hole with its time.
    pub(crate) fn timed(&self, punch: impl FnOnce() -> bool) {
        let began = std::time::Instant::now();
        if punch() {
            self.note(u64::try_from(began.elapsed().as_nanos()).unwrap_or(u64::MAX));
        }
    }

    /// Counts a hole that took `ns` to punch.
    fn note(&self, ns: u64) {
        self.punched.fetch_add(1, Ordering::Relaxed);
        if ns > SLOW_PUNCH_NS {
            self.slow.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Whether punching has been too slow to go on with.
    pub(crate) fn is_slow(&self) -> bool {
        let slow = self.slow.load(Ordering::Relaxed);
        slow >= SLOW_PUNCHES_TO_STOP && u64::from(slow) * 2 > u64::from(self.punched.load(Ordering::Relaxed))
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

    #[test]
    fn punching_stops_only_when_most_holes_are_slow() {
        let fast = SLOW_PUNCH_NS / 10;
        let slow = SLOW_PUNCH_NS * 4;
        // A busy machine: a slow hole now and then among many fast ones.
        let busy = SlowPunches::new();
        for i in 0..1000 {
            busy.note(if i % 20 == 0 { slow } else { fast });
        }
        assert!(!busy.is_slow());
        // A filesystem where every hole is slow: stops after the first few.
        let discarding = SlowPunches::new();
        for _ in 0..SLOW_PUNCHES_TO_STOP - 1 {
            discarding.note(slow);
            assert!(!discarding.is_slow());
        }
        discarding.note(slow);
        assert!(discarding.is_slow());
        // Slow ones that are not most of them: goes on.
        let mixed = SlowPunches::new();
        for _ in 0..SLOW_PUNCHES_TO_STOP {
            mixed.note(slow);
            mixed.note(fast);
        }
        assert!(!mixed.is_slow());
        mixed.note(slow);
        assert!(mixed.is_slow());
    }
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
