//! The concurrent trace writer. Many threads append at once with no lock: each owns a chunk
//! claimed with one atomic add on the counter in the mapped header, and publishes the chunk's
//! valid length with a release store after every event.
//!
//! After [`TraceWriter::create`] returns, nothing here allocates through the global allocator,
//! takes a lock that an allocating thread could hold, or formats text: [`TraceWriter::append`]
//! is safe to call from inside `malloc` hooks. It may clobber `errno`; callers in hooks save it.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use crate::codec::{DeltaState, encode_event};
use crate::error::WriteError;
use crate::event::Event;
use crate::layout::{self, CHUNK_HEADER_LEN, HEADER_LEN, chunk_offset};
use crate::metadata::TraceMetadata;
use crate::trace_fd::TraceFd;
use crate::trim::SlowPunches;

/// Chunks reserved when the file is created.
const INITIAL_CHUNKS: u32 = 16;
/// Upper bound of one reservation step; steps double up to it.
const MAX_GROW_BYTES: u64 = 64 * 1024 * 1024;

/// Settings of a [`TraceWriter`].
#[derive(Clone, Debug)]
pub struct WriterOptions {
    /// Bytes per chunk, a multiple of 4096 between 4 KiB and 64 MiB.
    pub chunk_size: u32,
    /// The file never grows past this; recording stops (and the trace says it was truncated).
    pub max_file_size: u64,
}

/// The default [`WriterOptions::max_file_size`]: the file's length, not its disk usage (a thread
/// that ends gives its chunk's unused pages back), so it bounds how many chunks a recording can
/// claim — with 16 KiB chunks, 64M threads' worth on x86_64. Only address space is reserved for
/// it (the mapping is `MAP_NORESERVE` and halves where the space is not there); elsewhere, where
/// the address space may be as small as 512 GiB, 64 GiB.
#[cfg(target_arch = "x86_64")]
pub const DEFAULT_MAX_FILE_SIZE: u64 = 1 << 40;
#[cfg(not(target_arch = "x86_64"))]
pub const DEFAULT_MAX_FILE_SIZE: u64 = 64 << 30;

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions { chunk_size: layout::DEFAULT_CHUNK_SIZE, max_file_size: DEFAULT_MAX_FILE_SIZE }
    }
}

/// Tells streams of different writers apart, so a stream never writes into another writer's file.
static NEXT_WRITER_ID: AtomicU64 = AtomicU64::new(1);

/// A trace file open for appending from many threads. See the module docs.
pub struct TraceWriter {
    base: NonNull<u8>,
    map_len: usize,
    fd: TraceFd,
    id: u64,
    chunk_size: u32,
    max_chunks: u32,
    grow_lock: AtomicBool,
    stopped: AtomicBool,
    slow_punches: SlowPunches,
}

// SAFETY: the mapping is shared memory whose header fields are only touched through atomics and
// whose chunks are each written by the one stream that claimed it; `fd` is only used for
// fstat/fallocate/pwrite, which are thread-safe, and swapped atomically when reopened.
unsafe impl Send for TraceWriter {}
// SAFETY: as above; every `&self` method synchronises through atomics.
unsafe impl Sync for TraceWriter {}

/// One thread's position in a trace: its current chunk and delta-encoding state. Keep one per
/// thread (and per writer); it is `const`-constructible so it can live in static or TLS storage.
pub struct ThreadStream {
    writer_id: u64,
    chunk: *mut u8,
    used: u32,
    tid: u32,
    next_seq: u32,
    state: DeltaState,
}

// SAFETY: a stream is plain data plus a pointer into a writer's mapping; it can move to another
// thread as long as only one thread uses it at a time, which `&mut` guarantees.
unsafe impl Send for ThreadStream {}

impl ThreadStream {
    /// A stream for thread `tid` that has not claimed a chunk yet.
    pub const fn new(tid: u32) -> Self {
        ThreadStream {
            writer_id: 0,
            chunk: std::ptr::null_mut(),
            used: 0,
            tid,
            next_seq: 0,
            state: DeltaState::new(0),
        }
    }

    pub fn tid(&self) -> u32 {
        self.tid
    }

    /// Forgets the current chunk without touching it (e.g. in a forked child, whose chunks belong
    /// to the parent's trace) and takes a new thread id.
    pub fn reset(&mut self, tid: u32) {
        *self = ThreadStream::new(tid);
    }
}

/// Reserves `len` bytes of disk at `offset`: fallocate, or zero-filling where the filesystem
/// has no fallocate. Returns false if the space cannot be had, or if the file would pass the
/// process's file size limit (`ulimit -f`): there the kernel would end the program with
/// SIGXFSZ. Never allocates.
fn reserve(fd: i32, offset: u64, len: u64) -> bool {
    if offset.saturating_add(len) > file_size_limit() {
        return false;
    }
    // SAFETY: fallocate on a descriptor just checked to refer to the trace; no memory is passed.
    let rc = unsafe { libc::fallocate(fd, 0, offset as libc::off_t, len as libc::off_t) };
    if rc == 0 {
        return true;
    }
    // SAFETY: reading this thread's errno.
    let errno = unsafe { *libc::__errno_location() };
    if errno != libc::EOPNOTSUPP && errno != libc::ENOSYS {
        return false;
    }
    static ZEROS: [u8; 65536] = [0; 65536];
    let mut done = 0u64;
    while done < len {
        let n = (len - done).min(ZEROS.len() as u64) as usize;
        // SAFETY: writing from a static buffer of at least `n` bytes to our descriptor.
        let wrote = unsafe { libc::pwrite(fd, ZEROS.as_ptr().cast(), n, (offset + done) as libc::off_t) };
        if wrote <= 0 {
            return false;
        }
        done += wrote as u64;
    }
    true
}

/// The process's file size limit (`RLIMIT_FSIZE`) in bytes; `u64::MAX` for none.
fn file_size_limit() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: libc::RLIM_INFINITY, rlim_max: libc::RLIM_INFINITY };
    // SAFETY: getrlimit writes the limit into the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_FSIZE, &mut limit) } != 0
        || limit.rlim_cur == libc::RLIM_INFINITY
    {
        return u64::MAX;
    }
    limit.rlim_cur
}

impl TraceWriter {
    /// Creates a new trace at `path` (mode 0600; fails if anything, even a symlink, is already
    /// there), writes the header and reserves the first chunks. This is the only call that
    /// allocates.
    pub fn create(
        path: &Path,
        metadata: &TraceMetadata,
        options: &WriterOptions,
    ) -> Result<Self, WriteError> {
        let chunk_size = options.chunk_size;
        if !(layout::MIN_CHUNK_SIZE..=layout::MAX_CHUNK_SIZE).contains(&chunk_size)
            || !chunk_size.is_multiple_of(4096)
        {
            return Err(WriteError::Options("chunk size must be a multiple of 4096 from 4 KiB to 64 MiB"));
        }
        if options.max_file_size < chunk_offset(1, chunk_size) {
            return Err(WriteError::Options("maximum file size is smaller than one chunk"));
        }
        let meta_bytes = metadata.encode_to_fit().ok_or(WriteError::MetadataTooLarge)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
            .map_err(|error| WriteError::Create { path: path.to_path_buf(), error })?;
        let create_err = |error| WriteError::Create { path: path.to_path_buf(), error };
        let fd = TraceFd::new(file, path).map_err(create_err)?;
        let raw_fd = fd.get().ok_or_else(|| create_err(std::io::Error::other("the new trace went away")))?;
        // Where the disk has no room for the usual first reservation, fewer chunks will do: a
        // small trace is better than none, and growing reserves what later threads need.
        let mut first_chunks = INITIAL_CHUNKS;
        let first_len = loop {
            let len = chunk_offset(first_chunks, chunk_size).min(options.max_file_size);
            if reserve(raw_fd, 0, len) {
                break len;
            }
            if first_chunks == 1 {
                return Err(create_err(std::io::Error::last_os_error()));
            }
            first_chunks /= 2;
        };
        let (base, map_len) = map_window(raw_fd, options.max_file_size.max(first_len))
            .ok_or_else(|| create_err(std::io::Error::last_os_error()))?;
        let max_chunks = ((map_len as u64 - HEADER_LEN as u64) / u64::from(chunk_size))
            .min(u64::from(u32::MAX - 1)) as u32;
        let writer = TraceWriter {
            base,
            map_len,
            fd,
            id: NEXT_WRITER_ID.fetch_add(1, Ordering::Relaxed),
            chunk_size,
            max_chunks,
            grow_lock: AtomicBool::new(false),
            slow_punches: SlowPunches::new(),
            stopped: AtomicBool::new(false),
        };
        let reserved = ((first_len - HEADER_LEN as u64) / u64::from(chunk_size)) as u32;
        writer.write_header(&meta_bytes, reserved);
        Ok(writer)
    }

    fn write_header(&self, meta: &[u8], reserved: u32) {
        use layout::header as h;
        let mut page = [0u8; HEADER_LEN];
        page[h::MAGIC..h::MAGIC + 8].copy_from_slice(&layout::MAGIC);
        page[h::VERSION_MAJOR..h::VERSION_MAJOR + 2].copy_from_slice(&layout::VERSION_MAJOR.to_le_bytes());
        page[h::VERSION_MINOR..h::VERSION_MINOR + 2].copy_from_slice(&layout::VERSION_MINOR.to_le_bytes());
        page[h::HEADER_LEN..h::HEADER_LEN + 4].copy_from_slice(&(HEADER_LEN as u32).to_le_bytes());
        page[h::CHUNK_SIZE..h::CHUNK_SIZE + 4].copy_from_slice(&self.chunk_size.to_le_bytes());
        page[h::CHUNKS_RESERVED..h::CHUNKS_RESERVED + 4].copy_from_slice(&reserved.to_le_bytes());
        page[h::METADATA_LEN..h::METADATA_LEN + 4].copy_from_slice(&(meta.len() as u32).to_le_bytes());
        page[layout::METADATA_OFFSET..layout::METADATA_OFFSET + meta.len()].copy_from_slice(meta);
        // SAFETY: the mapping is at least HEADER_LEN bytes, reserved on disk, and no stream can
        // exist yet for this writer.
        unsafe { std::ptr::copy_nonoverlapping(page.as_ptr(), self.base.as_ptr(), HEADER_LEN) };
    }

    fn atomic_u32(&self, offset: usize) -> &AtomicU32 {
        // SAFETY: `offset` is a 4-aligned header field inside the mapping (page-aligned base),
        // the mapping lives as long as `self`, and the field is only accessed atomically.
        unsafe { &*self.base.as_ptr().add(offset).cast::<AtomicU32>() }
    }

    fn atomic_u64(&self, offset: usize) -> &AtomicU64 {
        // SAFETY: as in `atomic_u32`, for an 8-aligned header field.
        unsafe { &*self.base.as_ptr().add(offset).cast::<AtomicU64>() }
    }

    /// Appends `event` to the calling thread's `stream`. Never allocates. Returns
    /// [`WriteError::Stopped`] once recording has stopped (the event is counted as lost).
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn append(&self, stream: &mut ThreadStream, event: &Event<'_>) -> Result<(), WriteError> {
        // The usual case, kept small enough to inline into a recorder's hooks: recording, the
        // stream holds one of this writer's chunks, and the event fits in it.
        let has_chunk = stream.writer_id == self.id && !stream.chunk.is_null();
        if !self.stopped.load(Ordering::Relaxed) && has_chunk && self.encode_into_chunk(stream, event) {
            return Ok(());
        }
        self.append_slow(stream, event, has_chunk)
    }

    /// [`TraceWriter::append`] for a caller that knows the stream is this writer's and that
    /// recording had not stopped when it last looked (a recorder that keeps that knowledge per
    /// thread): only whether the stream holds a chunk and the event fits are asked. The bytes
    /// written are the same as `append`'s; any other case takes `append`'s own slow path.
    ///
    /// # Safety
    /// `stream` must have been used with this writer only since it was made (or reset), so
    /// that a chunk it holds is one of this writer's.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub unsafe fn append_to_own(
        &self,
        stream: &mut ThreadStream,
        event: &Event<'_>,
    ) -> Result<(), WriteError> {
        debug_assert!(stream.writer_id == self.id || stream.writer_id == 0);
        let has_chunk = !stream.chunk.is_null();
        if has_chunk && self.encode_into_chunk(stream, event) {
            return Ok(());
        }
        // (A stream whose writer id is 0 holds no chunk.)
        self.append_slow(stream, event, has_chunk)
    }

    /// Whether `stream` has been used with this writer only (or not at all yet): what
    /// [`TraceWriter::append_to_own`] asks of it.
    pub fn is_own_stream(&self, stream: &ThreadStream) -> bool {
        stream.writer_id == self.id || (stream.writer_id == 0 && stream.chunk.is_null())
    }

    /// [`TraceWriter::append`] when recording stopped, the stream has no chunk of this writer
    /// yet (`has_chunk` false), or the event did not fit in its chunk.
    #[cold]
    #[inline(never)]
    fn append_slow(
        &self,
        stream: &mut ThreadStream,
        event: &Event<'_>,
        has_chunk: bool,
    ) -> Result<(), WriteError> {
        if self.stopped.load(Ordering::Relaxed) {
            self.atomic_u64(layout::header::LOST_EVENTS).fetch_add(1, Ordering::Relaxed);
            return Err(WriteError::Stopped);
        }
        if has_chunk {
            // The event did not fit in the rest of the chunk.
            if stream.used == 0 {
                return Err(WriteError::EventTooLarge);
            }
            self.close_chunk(stream);
        }
        self.claim_chunk(stream, event)?;
        if self.encode_into_chunk(stream, event) { Ok(()) } else { Err(WriteError::EventTooLarge) }
    }

    /// Encodes `event` after the stream's last event and publishes the chunk's new length;
    /// false (nothing written) if it does not fit. The stream must hold a chunk of this writer.
    #[inline(always)]
    fn encode_into_chunk(&self, stream: &mut ThreadStream, event: &Event<'_>) -> bool {
        let body_len = self.chunk_size as usize - CHUNK_HEADER_LEN;
        // SAFETY: `stream.chunk` is a chunk of this writer's mapping (callers checked the writer
        // id) that this stream claimed, so it is reserved on disk and written by no one else.
        let body = unsafe { std::slice::from_raw_parts_mut(stream.chunk.add(CHUNK_HEADER_LEN), body_len) };
        let Some(n) = body
            .get_mut(stream.used as usize..)
            .and_then(|free| encode_event(&mut stream.state, event, free))
        else {
            return false;
        };
        stream.used += n as u32;
        self.chunk_u32(stream.chunk, layout::chunk::COMMITTED_LEN).store(stream.used, Ordering::Release);
        true
    }

    fn chunk_u32(&self, chunk: *mut u8, offset: usize) -> &AtomicU32 {
        // SAFETY: `chunk` points at a chunk inside the mapping (chunk offsets are 4096-aligned)
        // and `offset` is a 4-aligned chunk header field accessed only atomically.
        unsafe { &*chunk.add(offset).cast::<AtomicU32>() }
    }

    /// Marks the stream's chunk closed and lets go of it (call when a thread exits). The whole
    /// pages of the chunk that hold no events are given back to the filesystem while that is
    /// cheap, so a thread that recorded little costs the disk little more than a page.
    pub fn release(&self, stream: &mut ThreadStream) {
        if stream.writer_id == self.id && !stream.chunk.is_null() {
            let (chunk, used) = (stream.chunk, stream.used);
            self.close_chunk(stream);
            if !self.slow_punches.is_slow() {
                self.free_unused_pages(chunk, used);
            }
        }
    }

    /// Gives back the pages of a closed `chunk` past its `used` body bytes, timing it. Nothing
    /// writes there again (its stream let go of it), readers never look past the published
    /// length, and the pages read as zeros. Where the filesystem cannot punch holes the space
    /// stays allocated.
    fn free_unused_pages(&self, chunk: *mut u8, used: u32) {
        let start = chunk as u64 - self.base.as_ptr() as u64;
        if let Some(fd) = self.fd.get() {
            self.slow_punches.timed(|| crate::trim::free_chunk_tail(fd, start, self.chunk_size, used));
        }
    }

    fn close_chunk(&self, stream: &mut ThreadStream) {
        self.chunk_u32(stream.chunk, layout::chunk::FLAGS)
            .fetch_or(layout::CHUNK_FLAG_CLOSED, Ordering::Release);
        stream.chunk = std::ptr::null_mut();
        stream.used = 0;
    }

    fn claim_chunk(&self, stream: &mut ThreadStream, event: &Event<'_>) -> Result<(), WriteError> {
        if stream.writer_id != self.id {
            let tid = stream.tid;
            stream.reset(tid);
            stream.writer_id = self.id;
        }
        let index = self.atomic_u32(layout::header::CHUNKS_CLAIMED).fetch_add(1, Ordering::AcqRel);
        if index >= self.max_chunks {
            self.stop(true);
            return Err(WriteError::Stopped);
        }
        self.ensure_reserved(index)?;
        // A thread's times never go backwards, across its chunks as within one (FORMAT.md): an
        // earlier time (a plain TSC read that ran ahead of the one before it) takes its
        // predecessor's.
        let last = stream.state.last_timestamp();
        let base_ts = event.earliest_timestamp().map_or(last, |ts| ts.max(last));
        // SAFETY: `index < max_chunks`, so the chunk lies inside the mapping, and it is reserved
        // on disk; the fetch_add made it ours alone.
        let chunk = unsafe { self.base.as_ptr().add(chunk_offset(index, self.chunk_size) as usize) };
        // SAFETY: writing the chunk header fields of our own chunk, inside the mapping.
        unsafe {
            chunk.add(layout::chunk::TID).cast::<u32>().write(stream.tid);
            chunk.add(layout::chunk::SEQ_IN_THREAD).cast::<u32>().write(stream.next_seq);
            chunk.add(layout::chunk::BASE_TIMESTAMP).cast::<u64>().write(base_ts);
            chunk.add(layout::chunk::CHUNK_INDEX).cast::<u32>().write(index);
        }
        self.chunk_u32(chunk, layout::chunk::COMMITTED_LEN).store(0, Ordering::Relaxed);
        self.chunk_u32(chunk, layout::chunk::FLAGS).store(0, Ordering::Relaxed);
        self.chunk_u32(chunk, layout::chunk::MAGIC).store(layout::CHUNK_MAGIC, Ordering::Release);
        stream.chunk = chunk;
        stream.used = 0;
        stream.next_seq += 1;
        stream.state = DeltaState::new(base_ts);
        Ok(())
    }

    fn ensure_reserved(&self, index: u32) -> Result<(), WriteError> {
        let reserved = self.atomic_u32(layout::header::CHUNKS_RESERVED);
        loop {
            if index < reserved.load(Ordering::Acquire) {
                return Ok(());
            }
            if self.stopped.load(Ordering::Relaxed) {
                return Err(WriteError::Stopped);
            }
            if self.grow_lock.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
                std::hint::spin_loop();
                // SAFETY: sched_yield has no preconditions.
                unsafe { libc::sched_yield() };
                continue;
            }
            let have = reserved.load(Ordering::Acquire);
            let mut result = Ok(());
            if index >= have {
                let step = u64::from(have.max(INITIAL_CHUNKS))
                    .min(MAX_GROW_BYTES / u64::from(self.chunk_size))
                    .max(1);
                let want =
                    (u64::from(have) + step).max(u64::from(index) + 1).min(u64::from(self.max_chunks)) as u32;
                let from = chunk_offset(have, self.chunk_size);
                let reserve_up_to = |upto: u32| {
                    self.fd
                        .get()
                        .is_some_and(|fd| reserve(fd, from, chunk_offset(upto, self.chunk_size) - from))
                };
                // A full step or, where the disk has no room for one, just the chunk asked for.
                let needed = index + 1;
                let reserved_up_to = if reserve_up_to(want) {
                    Some(want)
                } else {
                    (needed < want && reserve_up_to(needed)).then_some(needed)
                };
                if let Some(upto) = reserved_up_to {
                    reserved.store(upto, Ordering::Release);
                } else {
                    self.stop(true);
                    result = Err(WriteError::Stopped);
                }
            }
            self.grow_lock.store(false, Ordering::Release);
            result?;
        }
    }

    /// Whether a released chunk's unused pages are given back to the filesystem: false once that
    /// turned out slow here (see `release`).
    pub fn gives_pages_back(&self) -> bool {
        !self.slow_punches.is_slow()
    }

    /// Stops recording: later appends fail with [`WriteError::Stopped`]. `truncated` marks the
    /// trace as cut short (disk full, size limit) rather than ended on purpose.
    pub fn stop(&self, truncated: bool) {
        self.stopped.store(true, Ordering::Relaxed);
        if truncated {
            self.atomic_u32(layout::header::FLAGS).fetch_or(layout::FLAG_TRUNCATED, Ordering::Release);
        }
    }

    /// Counts an event the recorder did not offer because recording had stopped (appends after
    /// the stop count themselves).
    pub fn count_lost(&self) {
        self.atomic_u64(layout::header::LOST_EVENTS).fetch_add(1, Ordering::Relaxed);
    }

    /// Whether recording has stopped. Asked on every recorded event.
    #[inline]
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }

    /// Whether the trace was cut short (the disk or the size limit ran out).
    pub fn is_truncated(&self) -> bool {
        self.atomic_u32(layout::header::FLAGS).load(Ordering::Relaxed) & layout::FLAG_TRUNCATED != 0
    }

    /// Marks the trace complete at monotonic time `end_ts`. Threads may still append afterwards
    /// (their events stay readable); call it when the recorded program exits.
    pub fn finish(&self, end_ts: u64) {
        self.atomic_u64(layout::header::END_TIMESTAMP).store(end_ts, Ordering::Relaxed);
        self.atomic_u32(layout::header::FLAGS).fetch_or(layout::FLAG_COMPLETE, Ordering::Release);
    }

    /// Bytes of the file in use so far (header plus claimed chunks that exist on disk).
    pub fn used_len(&self) -> u64 {
        let claimed = self.atomic_u32(layout::header::CHUNKS_CLAIMED).load(Ordering::Relaxed);
        let reserved = self.atomic_u32(layout::header::CHUNKS_RESERVED).load(Ordering::Relaxed);
        chunk_offset(claimed.min(reserved), self.chunk_size)
    }
}

impl Drop for TraceWriter {
    fn drop(&mut self) {
        // Closed while the mapping still keeps the file's inode from being handed to another
        // file, so the descriptor's check (device and inode) cannot be fooled.
        self.fd.close();
        // SAFETY: unmapping our own mapping; `&mut self` means no stream is mid-append, and
        // streams holding pointers into it re-claim on their next append (writer id mismatch
        // cannot happen for a dropped writer, whose streams must not be used with it again).
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.map_len) };
    }
}

/// Maps `len` bytes of the file (clamped down by halves if the address space refuses) with
/// MAP_SHARED so written pages belong to the page cache and survive the process.
fn map_window(fd: i32, len: u64) -> Option<(NonNull<u8>, usize)> {
    let page = 4096u64;
    let mut len = len.div_ceil(page) * page;
    let min = (HEADER_LEN as u64 + page).min(len);
    loop {
        // SAFETY: a fresh shared mapping of our own file descriptor; pages past the file's end
        // are never touched because only reserved chunks are written.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_NORESERVE,
                fd,
                0,
            )
        };
        if ptr != libc::MAP_FAILED {
            return NonNull::new(ptr.cast::<u8>()).map(|p| (p, len as usize));
        }
        if len / 2 < min {
            return None;
        }
        len = (len / 2).div_ceil(page) * page;
    }
}
