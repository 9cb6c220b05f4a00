//! The heap scan at exit (`leakview record --leak-kinds`): reads the process's writable private
//! memory once and writes, per mapping, a scan region event and the words whose value lies in
//! scanned memory (so may point into a heap block), then a scan end (format 2.2, FORMAT.md
//! "Heap scan at exit"). The analyzer follows those references from the roots through the
//! blocks outstanding at the end to tell lost blocks from reachable ones, as memcheck does.
//!
//! What is read: the mappings of [`memory_map::collect`], the exiting thread's stack only from
//! its stack pointer up, never the recorder's own memory ([`own_memory`]: its regions and the
//! threads' TLS blocks, which hold copies of the program's addresses). Memory is read with
//! `process_vm_readv` on the process itself, so a page that vanished or cannot be read is
//! skipped instead of faulting, and only pages `mincore` reports resident are read (untouched
//! reservations cost nothing). Nothing allocates: buffers are the recorder's own regions.

use leakview_format::{Event, References, ThreadStream, region_kind};

use crate::engine::memory_map::{self, Area};
use crate::engine::own_memory;
use crate::engine::session::Session;
use crate::engine::sys::{self, Region};

/// Room for the text of `/proc/self/maps` (reserved, touched as used).
const MAPS_CAPACITY: usize = 16 << 20;
/// Most mappings scanned.
const MAX_AREAS: usize = 1 << 16;
/// Most ranges of the recorder's own memory.
const MAX_OWN: usize = 1 << 15;
/// Bytes read per `process_vm_readv`.
const READ_LEN: usize = 64 * 1024;
const PAGE: u64 = 4096;
/// Pages asked of `mincore` at once.
const MINCORE_PAGES: usize = 4096;
/// References per event (at most 20 bytes each: an event fits the smallest chunk).
const BATCH: usize = 160;

/// Why a scan did not run or did not finish (the one warning says so).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanFailure {
    /// The recorder could not list all of its own memory (too many threads or regions).
    OwnMemoryUnlisted,
    /// `/proc/self/maps` could not be read, or holds more than the scan has room for.
    MapsUnreadable,
    /// No memory for the scan's buffers.
    NoMemory,
    /// `process_vm_readv` is not allowed (a seccomp filter, an old kernel).
    CannotRead,
    /// The trace could not take the scan's events.
    TraceFull,
}

impl ScanFailure {
    pub fn message(self) -> &'static [u8] {
        match self {
            ScanFailure::OwnMemoryUnlisted => b"too many threads to tell the recorder's memory apart",
            ScanFailure::MapsUnreadable => b"/proc/self/maps could not be read",
            ScanFailure::NoMemory => b"no memory for the scan",
            ScanFailure::CannotRead => b"the process's memory could not be read (process_vm_readv refused)",
            ScanFailure::TraceFull => b"the trace could not take it",
        }
    }
}

/// What a finished scan read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanTotals {
    pub regions: u64,
    pub bytes: u64,
    pub references: u64,
}

/// Scans the process's memory at `ts` into `stream`; `sp` is the exiting thread's stack
/// pointer (the stack below it is dead).
pub fn scan(
    session: &Session,
    stream: &mut ThreadStream,
    ts: u64,
    sp: u64,
) -> Result<ScanTotals, ScanFailure> {
    if !own_memory::complete() {
        return Err(ScanFailure::OwnMemoryUnlisted);
    }
    let maps_buf = Region::new(MAPS_CAPACITY).ok_or(ScanFailure::NoMemory)?;
    let area_buf = Region::new(MAX_AREAS * std::mem::size_of::<Area>()).ok_or(ScanFailure::NoMemory)?;
    let own_buf = Region::new(MAX_OWN * 16).ok_or(ScanFailure::NoMemory)?;
    let read_buf = Region::new(READ_LEN).ok_or(ScanFailure::NoMemory)?;
    let pages_buf = Region::new(MINCORE_PAGES).ok_or(ScanFailure::NoMemory)?;
    // SAFETY: each region is this scan's own fresh, zeroed mapping of at least the length
    // given, aligned to a page (enough for u64 and Area), alive until the end of the function.
    let (maps, areas, own, words, pages) = unsafe {
        (
            std::slice::from_raw_parts_mut(maps_buf.as_ptr(), MAPS_CAPACITY),
            std::slice::from_raw_parts_mut(area_buf.as_ptr().cast::<Area>(), MAX_AREAS),
            std::slice::from_raw_parts_mut(own_buf.as_ptr().cast::<(u64, u64)>(), MAX_OWN),
            std::slice::from_raw_parts_mut(read_buf.as_ptr().cast::<u64>(), READ_LEN / 8),
            std::slice::from_raw_parts_mut(pages_buf.as_ptr(), MINCORE_PAGES),
        )
    };
    let maps_len = sys::read_file(c"/proc/self/maps", maps).ok_or(ScanFailure::MapsUnreadable)?;
    let maps = &maps[..maps_len];
    let own_file = own_library(maps);
    let count = memory_map::collect(maps, own_file, areas).ok_or(ScanFailure::MapsUnreadable)?;
    let areas = &mut areas[..count];
    // The exiting thread's stack: only from its stack pointer up.
    if let Some(i) = memory_map::find(areas, sp) {
        areas[i] = Area { start: sp & !7, end: areas[i].end, kind: region_kind::STACK };
    }
    let mut own_count = 0;
    own_memory::for_each(|start, end| {
        if let Some(slot) = own.get_mut(own_count) {
            *slot = (start, end);
            own_count += 1;
        }
    });
    if own_count == own.len() {
        return Err(ScanFailure::OwnMemoryUnlisted);
    }
    let own = &mut own[..own_count];
    own.sort_unstable();

    let mut out =
        Emitter { session, stream, ts, batch: [(0, 0); BATCH], len: 0, totals: ScanTotals::default() };
    let targets: &[Area] = areas;
    for area in targets {
        out.event(&Event::ScanRegion { ts, start: area.start, len: area.end - area.start, kind: area.kind })?;
        out.totals.regions += 1;
        for (from, to) in without(area.start, area.end, own) {
            scan_range(from, to, targets, words, pages, &mut out)?;
        }
        out.flush()?;
    }
    let totals = out.totals;
    out.event(&Event::ScanEnd {
        ts,
        regions: totals.regions,
        bytes: totals.bytes,
        references: totals.references,
    })?;
    Ok(totals)
}

/// Writes the scan's events, references in batches.
struct Emitter<'s> {
    session: &'s Session,
    stream: &'s mut ThreadStream,
    ts: u64,
    batch: [(u64, u64); BATCH],
    len: usize,
    totals: ScanTotals,
}

impl Emitter<'_> {
    fn event(&mut self, event: &Event<'_>) -> Result<(), ScanFailure> {
        if self.session.append(self.stream, event) { Ok(()) } else { Err(ScanFailure::TraceFull) }
    }

    #[inline]
    fn push(&mut self, location: u64, value: u64) -> Result<(), ScanFailure> {
        self.batch[self.len] = (location, value);
        self.len += 1;
        self.totals.references += 1;
        if self.len == BATCH { self.flush() } else { Ok(()) }
    }

    fn flush(&mut self) -> Result<(), ScanFailure> {
        if self.len == 0 {
            return Ok(());
        }
        let len = std::mem::take(&mut self.len);
        let event = Event::References { ts: self.ts, refs: References::Slice(&self.batch[..len]) };
        if self.session.append(self.stream, &event) { Ok(()) } else { Err(ScanFailure::TraceFull) }
    }
}

/// The parts of `[start, end)` outside the sorted ranges `own`.
fn without(start: u64, end: u64, own: &[(u64, u64)]) -> impl Iterator<Item = (u64, u64)> + '_ {
    let mut from = start;
    let mut i = own.partition_point(|&(_, e)| e <= start);
    std::iter::from_fn(move || {
        while from < end {
            match own.get(i) {
                Some(&(s, e)) if s <= from => {
                    from = from.max(e);
                    i += 1;
                }
                Some(&(s, _)) if s < end => {
                    let part = (from, s);
                    from = s;
                    return Some(part);
                }
                _ => {
                    let part = (from, end);
                    from = end;
                    return Some(part);
                }
            }
        }
        None
    })
}

/// Reads the resident pages of `[from, to)` and writes the words that lie in `targets`.
fn scan_range(
    from: u64,
    to: u64,
    targets: &[Area],
    words: &mut [u64],
    pages: &mut [u8],
    out: &mut Emitter<'_>,
) -> Result<(), ScanFailure> {
    let lowest = targets.first().map_or(0, |a| a.start);
    let highest = targets.last().map_or(0, |a| a.end);
    let mut at = from & !7;
    while at < to {
        let page = at & !(PAGE - 1);
        let span_end = to.min(page.saturating_add(MINCORE_PAGES as u64 * PAGE));
        let span_pages = (span_end - page).div_ceil(PAGE) as usize;
        // SAFETY: mincore only writes `span_pages` bytes into our own buffer, which is that
        // long; an unmapped range is reported (ENOMEM), not faulted on.
        let rc = unsafe {
            libc::mincore(page as *mut libc::c_void, (span_end - page) as usize, pages.as_mut_ptr())
        };
        for (p, &residency) in pages[..span_pages].iter().enumerate() {
            let page_start = page + p as u64 * PAGE;
            let (lo, hi) = (at.max(page_start), span_end.min(page_start + PAGE));
            if lo >= hi || (rc == 0 && residency & 1 == 0) {
                continue;
            }
            let got = read(lo, hi, words)?;
            out.totals.bytes += got as u64 * 8;
            for (k, &value) in words[..got].iter().enumerate() {
                if value >= lowest && value < highest && memory_map::find(targets, value).is_some() {
                    out.push(lo + k as u64 * 8, value)?;
                }
            }
        }
        at = span_end;
    }
    Ok(())
}

/// Copies the words of `[from, to)` (within one page) into `words`; how many were read (0 for
/// a page that cannot be read).
fn read(from: u64, to: u64, words: &mut [u64]) -> Result<usize, ScanFailure> {
    let len = ((to - from) as usize).min(words.len() * 8) & !7;
    let local = libc::iovec { iov_base: words.as_mut_ptr().cast(), iov_len: len };
    let remote = libc::iovec { iov_base: from as *mut libc::c_void, iov_len: len };
    // SAFETY: the local piece is our own buffer of at least `len` bytes; the kernel reads the
    // remote piece and reports what it cannot read instead of faulting.
    let got = unsafe { libc::process_vm_readv(sys::getpid() as libc::pid_t, &local, 1, &remote, 1, 0) };
    if got < 0 {
        return match sys::errno() {
            libc::EPERM | libc::ENOSYS | libc::EACCES => Err(ScanFailure::CannotRead),
            _ => Ok(0),
        };
    }
    Ok(got as usize / 8)
}

/// The (device, inode) of the file this code was loaded from, found by the address of one of
/// its statics; (0, 0) if it cannot be told.
fn own_library(maps: &[u8]) -> (u64, u64) {
    static MARKER: u8 = 0;
    let address = &raw const MARKER as u64;
    maps.split(|&b| b == b'\n')
        .filter_map(memory_map::parse_line)
        .find(|l| l.start <= address && address < l.end)
        .map_or((0, 0), |l| l.file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_ranges_are_cut_out_of_an_area() {
        let own = [(0x1000, 0x2000), (0x3000, 0x3800), (0x9000, 0xa000)];
        let parts: Vec<_> = without(0x0800, 0x4000, &own).collect();
        assert_eq!(parts, vec![(0x0800, 0x1000), (0x2000, 0x3000), (0x3800, 0x4000)]);
        assert_eq!(without(0x1000, 0x2000, &own).count(), 0);
        assert_eq!(without(0x5000, 0x6000, &own).collect::<Vec<_>>(), vec![(0x5000, 0x6000)]);
    }

    #[test]
    fn the_recorders_own_library_is_found_in_the_maps() {
        let mut buf = vec![0u8; MAPS_CAPACITY];
        let len = sys::read_file(c"/proc/self/maps", &mut buf).expect("readable");
        assert_ne!(own_library(&buf[..len]), (0, 0));
    }
}
