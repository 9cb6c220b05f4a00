//! Byte offsets and constants of the file header and chunk header (see `FORMAT.md`).

/// First eight bytes of every trace file.
pub const MAGIC: [u8; 8] = *b"LVTRACE\0";
/// Incompatible changes bump the major version. Version 2 added the alloc kind 7 (an alloc's
/// size with its two low bits in the tag); its layout is version 1's.
pub const VERSION_MAJOR: u16 = 2;
/// Compatible additions (new event sub-kinds, appended metadata fields) bump the minor version.
pub const VERSION_MINOR: u16 = 2;
/// The oldest major version readers still read (every event kind of it is still decoded).
pub const OLDEST_READABLE_MAJOR: u16 = 1;

/// Whether readers of this version read traces of major version `major`.
pub fn is_readable_major(major: u16) -> bool {
    (OLDEST_READABLE_MAJOR..=VERSION_MAJOR).contains(&major)
}

/// Size of the header page; chunk 0 starts here.
pub const HEADER_LEN: usize = 4096;
/// Where the bincode-encoded metadata starts inside the header page.
pub const METADATA_OFFSET: usize = 64;
/// The most metadata bytes the header page can hold.
pub const METADATA_CAPACITY: usize = HEADER_LEN - METADATA_OFFSET;

/// Header field offsets (all little-endian).
pub mod header {
    pub const MAGIC: usize = 0;
    pub const VERSION_MAJOR: usize = 8;
    pub const VERSION_MINOR: usize = 10;
    pub const HEADER_LEN: usize = 12;
    pub const CHUNK_SIZE: usize = 16;
    /// `AtomicU32`: [`super::FLAG_COMPLETE`], [`super::FLAG_TRUNCATED`].
    pub const FLAGS: usize = 20;
    /// `AtomicU32`: chunks handed out so far (may exceed the chunks that exist on disk).
    pub const CHUNKS_CLAIMED: usize = 24;
    /// `AtomicU32`: chunks for which disk space has been reserved.
    pub const CHUNKS_RESERVED: usize = 28;
    pub const METADATA_LEN: usize = 32;
    /// `AtomicU64`: events the writer had to drop after recording stopped.
    pub const LOST_EVENTS: usize = 40;
    /// `AtomicU64`: CLOCK_MONOTONIC ns when the writer finished (0 if it never did).
    pub const END_TIMESTAMP: usize = 48;
}

/// The writer finished cleanly: every thread's last events are published.
pub const FLAG_COMPLETE: u32 = 1 << 0;
/// Recording stopped early (disk full, file size limit): later events are missing.
pub const FLAG_TRUNCATED: u32 = 1 << 1;

/// `"LVCH"`, the first four bytes of a chunk that a writer has initialised.
pub const CHUNK_MAGIC: u32 = u32::from_le_bytes(*b"LVCH");
/// Size of the chunk header; the chunk body follows it.
pub const CHUNK_HEADER_LEN: usize = 32;

/// Chunk header field offsets, relative to the start of the chunk.
pub mod chunk {
    pub const MAGIC: usize = 0;
    /// `AtomicU32`: bytes of the body holding published events.
    pub const COMMITTED_LEN: usize = 4;
    pub const TID: usize = 8;
    /// Position of this chunk among the chunks of its thread (0, 1, 2, ...).
    pub const SEQ_IN_THREAD: usize = 12;
    /// CLOCK_MONOTONIC ns; the first event's time delta is relative to it.
    pub const BASE_TIMESTAMP: usize = 16;
    pub const CHUNK_INDEX: usize = 24;
    /// `AtomicU32`: [`super::CHUNK_FLAG_CLOSED`].
    pub const FLAGS: usize = 28;
}

/// The owning thread finished with this chunk (it filled up or the thread exited).
pub const CHUNK_FLAG_CLOSED: u32 = 1 << 0;

/// Default chunk size: 16 KiB, about 2,700 events. Every thread takes a chunk, so this is also
/// what a thread that records a few events costs the disk where its chunk's unused pages cannot
/// be given back cheaply (see `TraceWriter::release`).
pub const DEFAULT_CHUNK_SIZE: u32 = 16 * 1024;
/// Smallest chunk size a writer accepts (and a reader trusts).
pub const MIN_CHUNK_SIZE: u32 = 4096;
/// Largest chunk size a writer accepts (and a reader trusts).
pub const MAX_CHUNK_SIZE: u32 = 64 * 1024 * 1024;

/// Byte offset of chunk `index` in a file with chunks of `chunk_size` bytes.
pub fn chunk_offset(index: u32, chunk_size: u32) -> u64 {
    HEADER_LEN as u64 + u64::from(index) * u64::from(chunk_size)
}
