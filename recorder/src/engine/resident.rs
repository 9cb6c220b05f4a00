//! Samples of the process's resident set size (RSS) for the trace: taken on the allocation path
//! when one is due (every `LEAKVIEW_RSS_INTERVAL_MS`, 10 ms by default, as heaptrack and memray
//! sample), by whichever thread allocates first after the due time, and once at the end. The
//! check on the allocation path is one relaxed load and a compare; the sample itself reads
//! `/proc/self/statm` with three system calls and no allocation. The session takes the first
//! sample when it starts.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::engine::sys;

/// Default time between samples.
pub const DEFAULT_INTERVAL_NS: u64 = 10_000_000;

/// When the next sample is due (monotonic ns); `u64::MAX`: never (sampling off, or
/// `/proc/self/statm` could not be read).
static NEXT_DUE: AtomicU64 = AtomicU64::new(u64::MAX);
/// Time between samples; 0 turns sampling off.
static INTERVAL_NS: AtomicU64 = AtomicU64::new(0);

/// Sets the interval (0: no samples), counted from `now` (when the session takes its first
/// sample).
pub fn configure(interval_ns: u64, now: u64) {
    INTERVAL_NS.store(interval_ns, Ordering::Relaxed);
    let next = if interval_ns == 0 { u64::MAX } else { now.saturating_add(interval_ns) };
    NEXT_DUE.store(next, Ordering::Relaxed);
}

/// Whether a sample is due at `ts` (the allocation path's check).
#[inline(always)]
pub fn due(ts: u64) -> bool {
    ts >= NEXT_DUE.load(Ordering::Relaxed)
}

/// Claims the sample due at `ts` (one thread wins; the others go on) and reads the resident
/// set size: `None` if another thread claimed it or it cannot be read. The sample is the size
/// at `ts` (read microseconds later); the next is due one interval after `ts`, so samples are
/// never closer than the interval.
#[cold]
#[inline(never)]
pub fn claim(ts: u64) -> Option<u64> {
    let due = NEXT_DUE.load(Ordering::Relaxed);
    if ts < due {
        return None;
    }
    // Sampling off never gets here: `due` is then `u64::MAX`.
    let next = ts.saturating_add(INTERVAL_NS.load(Ordering::Relaxed));
    NEXT_DUE.compare_exchange(due, next, Ordering::Relaxed, Ordering::Relaxed).ok()?;
    let bytes = read();
    if bytes.is_none() {
        // No /proc (a sandbox): stop asking.
        NEXT_DUE.store(u64::MAX, Ordering::Relaxed);
    }
    bytes
}

/// The resident set size now, whatever the interval (for the sample at the end); `None` when
/// sampling is off or `/proc/self/statm` cannot be read.
pub fn now() -> Option<u64> {
    if INTERVAL_NS.load(Ordering::Relaxed) == 0 {
        return None;
    }
    read()
}

/// Reads `/proc/self/statm` (resident pages, its second field) without allocating.
fn read() -> Option<u64> {
    let mut buf = [0u8; 128];
    let len = sys::read_file(c"/proc/self/statm", &mut buf)?;
    let text = buf.get(..len)?;
    resident_bytes(text, page_size())
}

fn page_size() -> u64 {
    // SAFETY: getauxval has no preconditions; AT_PAGESZ is always supplied on Linux.
    match unsafe { libc::getauxval(libc::AT_PAGESZ) } {
        0 => 4096,
        size => size,
    }
}

/// The resident bytes in a `statm` line (`size resident shared text lib data dt`, in pages).
fn resident_bytes(statm: &[u8], page_size: u64) -> Option<u64> {
    let field = statm.split(|&b| b == b' ').nth(1)?;
    let pages: u64 = std::str::from_utf8(field).ok()?.parse().ok()?;
    pages.checked_mul(page_size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_second_field_counts_resident_pages() {
        assert_eq!(resident_bytes(b"5702 1370 1053 63 0 178 0\n", 4096), Some(1370 * 4096));
        assert_eq!(resident_bytes(b"5702 1370", 16384), Some(1370 * 16384));
        assert_eq!(resident_bytes(b"5702", 4096), None);
        assert_eq!(resident_bytes(b"5702  1370", 4096), None);
        assert_eq!(resident_bytes(b"5702 13x0 1", 4096), None);
        assert_eq!(resident_bytes(b"1 99999999999999999999999 1", 4096), None);
        assert_eq!(resident_bytes(b"1 18446744073709551615 1", 4096), None);
    }

    #[test]
    fn this_process_has_resident_memory() {
        let bytes = read().expect("/proc/self/statm is readable");
        // A test binary's code and heap alone take more than a megabyte.
        assert!(bytes > 1 << 20, "{bytes}");
        assert_eq!(bytes % page_size(), 0);
    }
}
