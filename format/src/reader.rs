//! The zero-copy trace reader: maps the file, validates the header, lists the chunks that hold
//! published events and decodes each chunk independently (so callers can decode in parallel).
//! Damaged input yields typed errors or the readable prefix; nothing here panics or reads out of
//! bounds.

use std::path::{Path, PathBuf};

use crate::codec::{Deliver, DeltaState, decode_event, decode_hot_in_window, decode_with};
use crate::error::{DecodeError, ReadError};
use crate::event::Event;
use crate::layout::{self, CHUNK_HEADER_LEN, HEADER_LEN};
use crate::metadata::TraceMetadata;
use crate::varint::WINDOW_LEN;

/// The file header's fields, as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderInfo {
    pub version_major: u16,
    pub version_minor: u16,
    pub chunk_size: u32,
    pub flags: u32,
    pub chunks_claimed: u32,
    pub chunks_reserved: u32,
    pub lost_events: u64,
    /// CLOCK_MONOTONIC ns when the writer finished; 0 if it never did.
    pub end_timestamp: u64,
}

impl HeaderInfo {
    /// The writer finished cleanly.
    pub fn finished(&self) -> bool {
        self.flags & layout::FLAG_COMPLETE != 0
    }

    /// Recording stopped early (disk full or size limit).
    pub fn truncated(&self) -> bool {
        self.flags & layout::FLAG_TRUNCATED != 0
    }
}

/// A chunk with published events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkInfo {
    pub index: u32,
    /// The thread that wrote every event in this chunk.
    pub tid: u32,
    /// Order of this chunk among its thread's chunks.
    pub seq_in_thread: u32,
    /// Time base of the chunk's first event.
    pub base_timestamp: u64,
    /// The writer closed the chunk (it filled up or its thread ended).
    pub closed: bool,
    body_offset: usize,
    body_len: usize,
}

impl ChunkInfo {
    /// Bytes of published events in this chunk.
    pub fn body_len(&self) -> usize {
        self.body_len
    }
}

enum Backing {
    Map(memmap2::Mmap),
    Bytes(Vec<u8>),
}

impl Backing {
    fn bytes(&self) -> &[u8] {
        match self {
            Backing::Map(m) => m,
            Backing::Bytes(b) => b,
        }
    }
}

/// Receives the events of a chunk from [`TraceReader::decode_into`]: allocations, frees and
/// reallocs (the events of every allocator call) field by field, as [`Event::Alloc`],
/// [`Event::Free`] and [`Event::Realloc`] hold them, and every other event whole. Readers that
/// go through every event of many chunks implement it with inlined methods.
pub trait EventSink<'a> {
    /// An [`Event::Alloc`].
    fn alloc(&mut self, ts: u64, addr: u64, size: u64, align: u64, stack: u32);
    /// An [`Event::Free`].
    fn free(&mut self, ts: u64, addr: u64);
    /// An [`Event::Realloc`].
    fn realloc(&mut self, ts_free: u64, ts: u64, old_addr: u64, new_addr: u64, size: u64, stack: u32);
    /// Any other event.
    fn other(&mut self, event: Event<'a>);
}

/// An open trace. See the module docs.
pub struct TraceReader {
    backing: Backing,
    path: PathBuf,
    header: HeaderInfo,
    metadata: TraceMetadata,
    chunks: Vec<ChunkInfo>,
    damaged_chunks: u32,
    missing_chunks: u32,
}

fn read_u16(b: &[u8], at: usize) -> u16 {
    let mut a = [0u8; 2];
    a.copy_from_slice(&b[at..at + 2]);
    u16::from_le_bytes(a)
}

fn read_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn read_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// A trace's header and metadata: what it says of its recording, without its chunks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceHead {
    pub header: HeaderInfo,
    pub metadata: TraceMetadata,
}

/// Reads the header page of the trace at `path` (one 4 KiB read, no mapping): for callers that
/// need what a trace says of its process, not its chunks or events. Errors as
/// [`TraceReader::open`] gives them for a bad header.
pub fn read_head(path: &Path) -> Result<TraceHead, ReadError> {
    use std::io::Read;
    let io = |error| ReadError::Io { path: path.to_path_buf(), error };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut page = Vec::with_capacity(HEADER_LEN);
    file.take(HEADER_LEN as u64).read_to_end(&mut page).map_err(io)?;
    if page.is_empty() {
        return Err(ReadError::Empty { path: path.to_path_buf() });
    }
    parse_head(&page, path)
}

/// Validates the header page at the start of `b` and decodes the header and metadata.
fn parse_head(b: &[u8], path: &Path) -> Result<TraceHead, ReadError> {
    use layout::header as h;
    let path = path.to_path_buf();
    if b.len() < 8 || b[..8] != layout::MAGIC {
        return Err(ReadError::NotATrace { path });
    }
    let bad = |what: &str| ReadError::BadHeader { path: path.clone(), what: what.to_string() };
    if b.len() < HEADER_LEN {
        return Err(bad("file is shorter than the header page"));
    }
    let (major, minor) = (read_u16(b, h::VERSION_MAJOR), read_u16(b, h::VERSION_MINOR));
    if !layout::is_readable_major(major) {
        return Err(ReadError::UnsupportedVersion { path, major, minor, supported: layout::VERSION_MAJOR });
    }
    if read_u32(b, h::HEADER_LEN) as usize != HEADER_LEN {
        return Err(bad("unexpected header length"));
    }
    let chunk_size = read_u32(b, h::CHUNK_SIZE);
    if !(layout::MIN_CHUNK_SIZE..=layout::MAX_CHUNK_SIZE).contains(&chunk_size)
        || !chunk_size.is_multiple_of(8)
    {
        return Err(bad("chunk size out of range"));
    }
    let meta_len = read_u32(b, h::METADATA_LEN) as usize;
    if meta_len > layout::METADATA_CAPACITY {
        return Err(bad("metadata length out of range"));
    }
    let meta_bytes = &b[layout::METADATA_OFFSET..layout::METADATA_OFFSET + meta_len];
    let metadata =
        TraceMetadata::decode(meta_bytes, major, minor).map_err(|e| bad(&format!("metadata: {e}")))?;
    let header = HeaderInfo {
        version_major: major,
        version_minor: minor,
        chunk_size,
        flags: read_u32(b, h::FLAGS),
        chunks_claimed: read_u32(b, h::CHUNKS_CLAIMED),
        chunks_reserved: read_u32(b, h::CHUNKS_RESERVED),
        lost_events: read_u64(b, h::LOST_EVENTS),
        end_timestamp: read_u64(b, h::END_TIMESTAMP),
    };
    Ok(TraceHead { header, metadata })
}

impl TraceReader {
    /// Opens and validates the trace at `path`.
    pub fn open(path: &Path) -> Result<Self, ReadError> {
        // Readers go through every page of a trace; mapping them all up front costs far less than
        // a page fault for each 4 KiB.
        Self::map(path, true)
    }

    /// Opens the trace at `path` like [`TraceReader::open`] but maps it without reading it in:
    /// for callers that look at the header and the chunk list (a page per chunk), not at events.
    pub fn open_sparse(path: &Path) -> Result<Self, ReadError> {
        Self::map(path, false)
    }

    fn map(path: &Path, populate: bool) -> Result<Self, ReadError> {
        let io = |error| ReadError::Io { path: path.to_path_buf(), error };
        let file = std::fs::File::open(path).map_err(io)?;
        let stat = file.metadata().map_err(io)?;
        if stat.len() == 0 {
            return Err(ReadError::Empty { path: path.to_path_buf() });
        }
        let mut options = memmap2::MmapOptions::new();
        // A file whose chunks are mostly holes (threads that recorded little) is read a page at
        // a time: populating would fill the page cache with the holes' zeros.
        if populate && !mostly_holes(&stat) {
            options.populate();
        }
        // SAFETY: the map is read-only; a recorder may still be appending to the file, which only
        // changes bytes past the published lengths this reader trusts (or header counters it
        // re-validates), and every access below is bounds-checked against the mapped length.
        let map = unsafe { options.map(&file) }.map_err(io)?;
        Self::parse(Backing::Map(map), path.to_path_buf())
    }

    /// Reads a trace held in memory (tests, fuzzing, traces received over a pipe).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, ReadError> {
        let path = PathBuf::from("<memory>");
        if bytes.is_empty() {
            return Err(ReadError::Empty { path });
        }
        Self::parse(Backing::Bytes(bytes), path)
    }

    fn parse(backing: Backing, path: PathBuf) -> Result<Self, ReadError> {
        let TraceHead { header, metadata } = parse_head(backing.bytes(), &path)?;
        let (chunks, damaged_chunks, missing_chunks) = list_chunks(backing.bytes(), &header);
        Ok(TraceReader { backing, path, header, metadata, chunks, damaged_chunks, missing_chunks })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn header(&self) -> &HeaderInfo {
        &self.header
    }

    pub fn metadata(&self) -> &TraceMetadata {
        &self.metadata
    }

    /// Chunks holding published events, in file order.
    pub fn chunks(&self) -> &[ChunkInfo] {
        &self.chunks
    }

    /// Chunks that were skipped because their header is damaged.
    pub fn damaged_chunks(&self) -> u32 {
        self.damaged_chunks
    }

    /// Chunks the header counts that are not in the file (it was cut short).
    pub fn missing_chunks(&self) -> u32 {
        self.missing_chunks
    }

    /// Size of the trace in bytes.
    pub fn file_len(&self) -> u64 {
        self.backing.bytes().len() as u64
    }

    /// Whether the trace holds everything the recorder saw: the writer finished, nothing was
    /// truncated, lost, damaged or cut off. An incomplete trace is still readable up to its last
    /// published event in every chunk.
    pub fn is_complete(&self) -> bool {
        self.header.finished()
            && !self.header.truncated()
            && self.header.lost_events == 0
            && self.damaged_chunks == 0
            && self.missing_chunks == 0
    }

    /// Decodes the events of `chunk`, which must come from [`TraceReader::chunks`] of this reader.
    pub fn events(&self, chunk: &ChunkInfo) -> ChunkEvents<'_> {
        ChunkEvents {
            body: self.body(chunk),
            pos: 0,
            state: DeltaState::new(chunk.base_timestamp),
            done: false,
        }
    }

    /// Calls `f` with each event of `chunk` in order: the events [`TraceReader::events`] yields,
    /// without an iterator's bookkeeping per event (for readers that go through every event of
    /// many chunks). Stops at the first event that cannot be decoded and returns its error; the
    /// events before it have been delivered.
    #[inline]
    pub fn for_each_event<'a>(
        &'a self,
        chunk: &ChunkInfo,
        f: impl FnMut(Event<'a>),
    ) -> Result<(), DecodeError> {
        self.decode_into(chunk, &mut Deliver(f))
    }

    /// [`TraceReader::for_each_event`], handing allocations, frees and reallocs to `sink` field by
    /// field (no [`Event`] is made for them) and every other event whole.
    #[inline]
    pub fn decode_into<'a>(
        &'a self,
        chunk: &ChunkInfo,
        sink: &mut impl EventSink<'a>,
    ) -> Result<(), DecodeError> {
        let body = self.body(chunk);
        let mut state = DeltaState::new(chunk.base_timestamp);
        let mut pos = 0;
        while pos < body.len() {
            // While a whole hot event surely fits in what is left, it is read from a window of
            // fixed length, without checks against the body's end.
            if let Some(window) = body.get(pos..).and_then(|rest| rest.first_chunk::<WINDOW_LEN>())
                && let Some(len) = decode_hot_in_window(&mut state, window, sink)?
            {
                pos += len;
                continue;
            }
            decode_with(&mut state, body, &mut pos, sink)?;
        }
        Ok(())
    }

    fn body(&self, chunk: &ChunkInfo) -> &[u8] {
        let b = self.backing.bytes();
        b.get(chunk.body_offset..chunk.body_offset + chunk.body_len).unwrap_or(&[])
    }
}

/// Whether less than three quarters of the file's length is allocated on disk.
fn mostly_holes(stat: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    stat.blocks().saturating_mul(512).saturating_mul(4) < stat.len().saturating_mul(3)
}

fn list_chunks(b: &[u8], header: &HeaderInfo) -> (Vec<ChunkInfo>, u32, u32) {
    use layout::chunk as c;
    let chunk_size = header.chunk_size as usize;
    let in_file = ((b.len() - HEADER_LEN) / chunk_size) as u64;
    let claimed = u64::from(header.chunks_claimed.min(header.chunks_reserved));
    let present = claimed.min(in_file);
    let missing = (claimed - present) as u32;
    let mut chunks = Vec::new();
    let mut damaged = 0u32;
    for index in 0..present as u32 {
        let start = layout::chunk_offset(index, header.chunk_size) as usize;
        let raw = &b[start..start + chunk_size];
        let magic = read_u32(raw, c::MAGIC);
        if magic != layout::CHUNK_MAGIC {
            if raw[..CHUNK_HEADER_LEN].iter().any(|&x| x != 0) {
                damaged += 1;
            }
            // An all-zero header: claimed by a writer that died (or stopped) before using it.
            continue;
        }
        let committed = read_u32(raw, c::COMMITTED_LEN) as usize;
        if read_u32(raw, c::CHUNK_INDEX) != index || committed > chunk_size - CHUNK_HEADER_LEN {
            damaged += 1;
            continue;
        }
        chunks.push(ChunkInfo {
            index,
            tid: read_u32(raw, c::TID),
            seq_in_thread: read_u32(raw, c::SEQ_IN_THREAD),
            base_timestamp: read_u64(raw, c::BASE_TIMESTAMP),
            closed: read_u32(raw, c::FLAGS) & layout::CHUNK_FLAG_CLOSED != 0,
            body_offset: start + CHUNK_HEADER_LEN,
            body_len: committed,
        });
    }
    (chunks, damaged, missing)
}

/// Iterator over one chunk's events. After an error it yields nothing more: the rest of that
/// chunk cannot be decoded, but other chunks are unaffected.
pub struct ChunkEvents<'a> {
    body: &'a [u8],
    pos: usize,
    state: DeltaState,
    done: bool,
}

impl ChunkEvents<'_> {
    /// Bytes of the chunk body decoded so far.
    pub fn position(&self) -> usize {
        self.pos
    }
}

impl<'a> Iterator for ChunkEvents<'a> {
    type Item = Result<Event<'a>, DecodeError>;

    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        while !self.done && self.pos < self.body.len() {
            match decode_event(&mut self.state, self.body, &mut self.pos) {
                Ok(Some(event)) => return Some(Ok(event)),
                Ok(None) => continue,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        None
    }
}
