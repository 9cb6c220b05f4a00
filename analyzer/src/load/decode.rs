//! Decoding one chunk for the replay: its allocations and frees into a compact, time-ordered list
//! of records, each allocation's stack and thread interned into a site, and everything else
//! noted in a [`ChunkScan`]. Chunks are decoded in parallel, a round ahead of the replay, and
//! dropped once replayed, so memory holds only the chunks around the replay's current moment,
//! never all raw events.

use std::cell::RefCell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use leakview_format::{ChunkInfo, Event, TraceReader};

use super::scan::ChunkScan;
use crate::hashing::IntMap;
use crate::lifetimes::{Site, is_big, size32};

/// `meta` of a free record.
const FREE: u64 = u64::MAX;

/// One allocation or free of a non-zero address, at an absolute (monotonic) time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Record {
    pub ts: u64,
    pub addr: u64,
    /// [`FREE`], or an allocation's site (high half) and 32-bit size (low half).
    meta: u64,
}

impl Record {
    fn alloc(ts: u64, addr: u64, size32: u32, site: u32) -> Self {
        Record { ts, addr, meta: (u64::from(site) << 32) | u64::from(size32) }
    }

    fn free(ts: u64, addr: u64) -> Self {
        Record { ts, addr, meta: FREE }
    }

    pub fn is_free(&self) -> bool {
        self.meta == FREE
    }

    pub fn site(&self) -> u32 {
        (self.meta >> 32) as u32
    }

    pub fn size32(&self) -> u32 {
        self.meta as u32
    }

    fn set_site(&mut self, site: u32) {
        self.meta = (u64::from(site) << 32) | (self.meta & 0xffff_ffff);
    }
}

/// A decoded chunk: its records in time order, the sizes that do not fit 32 bits, and the rest
/// of what it holds.
#[derive(Debug, Default)]
pub(crate) struct DecodedChunk {
    pub records: Vec<Record>,
    /// Full sizes of the records whose 32-bit size is the big marker, by record position.
    big_sizes: IntMap<u32, u64>,
    pub scan: ChunkScan,
    /// Every timestamp of the chunk lies in the range the replay was promised.
    pub in_range: bool,
}

impl DecodedChunk {
    /// The size of the allocation record at `pos`.
    pub fn size_at(&self, pos: usize) -> u64 {
        let s = self.records[pos].size32();
        if is_big(s) {
            self.big_sizes.get(&(pos as u32)).copied().unwrap_or(u64::from(s))
        } else {
            u64::from(s)
        }
    }
}

/// Record buffers of replayed chunks, reused for the next chunks decoded: filling fresh memory
/// costs a page fault per 4 KiB, which adds up to a good part of a load.
#[derive(Debug, Default)]
pub(crate) struct RecordPool {
    free: Mutex<Vec<Vec<Record>>>,
}

impl RecordPool {
    fn take(&self, capacity: usize) -> Vec<Record> {
        let reused = match self.free.lock() {
            Ok(mut g) => g.pop(),
            Err(poisoned) => poisoned.into_inner().pop(),
        };
        let mut v = reused.unwrap_or_default();
        v.clear();
        v.reserve(capacity);
        v
    }

    /// Gives a buffer back.
    pub fn put(&self, records: Vec<Record>) {
        match self.free.lock() {
            Ok(mut g) => g.push(records),
            Err(poisoned) => poisoned.into_inner().push(records),
        }
    }
}

/// Interns (stack, thread) pairs into dense site ids, shared by all decoding threads.
#[derive(Debug)]
pub(crate) struct SiteInterner {
    /// Tells this interner's ids apart from another load's in the workers' caches.
    id: u64,
    inner: Mutex<(IntMap<Site, u32>, Vec<Site>)>,
}

impl Default for SiteInterner {
    fn default() -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        SiteInterner { id: NEXT_ID.fetch_add(1, Ordering::Relaxed), inner: Mutex::default() }
    }
}

impl SiteInterner {
    /// Site ids of `stacks` on `thread`, under one lock.
    fn intern_all(&self, stacks: &[u32], thread: u32) -> Vec<u32> {
        let mut guard = match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let (map, list) = &mut *guard;
        stacks
            .iter()
            .map(|&stack| {
                let site = Site { stack, thread };
                *map.entry(site).or_insert_with(|| {
                    list.push(site);
                    (list.len() - 1) as u32
                })
            })
            .collect()
    }

    pub fn into_sites(self) -> Vec<Site> {
        match self.inner.into_inner() {
            Ok((_, list)) => list,
            Err(poisoned) => poisoned.into_inner().1,
        }
    }
}

/// Slots of a worker's [`SiteCache`] (a power of two).
const SITE_CACHE_SLOTS: usize = 1 << 14;

/// A decoding worker's direct-mapped cache of (thread, stack) → site, kept across the chunks it
/// decodes, so a program's allocation sites are looked up in the shared table once per worker,
/// not once per chunk.
struct SiteCache {
    /// The interner the cached ids belong to.
    owner: u64,
    /// ((thread << 32) | stack, site); the key `u64::MAX` is never a real one.
    slots: Vec<(u64, u32)>,
}

thread_local! {
    static SITE_CACHE: RefCell<SiteCache> = const { RefCell::new(SiteCache { owner: 0, slots: Vec::new() }) };
}

fn site_key(thread: u32, stack: u32) -> u64 {
    (u64::from(thread) << 32) | u64::from(stack)
}

fn site_slot(key: u64) -> usize {
    (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - SITE_CACHE_SLOTS.trailing_zeros())) as usize
}

/// The allocations of a chunk whose site was not in the cache: (record position, stack).
type Pending = Vec<(u32, u32)>;

/// Appends the allocation `(ts, addr, size, stack)`, with its site if the cache knows it.
#[inline(always)]
fn push_alloc(
    records: &mut Vec<Record>,
    big: &mut Vec<(usize, u64)>,
    cache: &[(u64, u32)],
    thread: u32,
    pending: &mut Pending,
    a: (u64, u64, u64, u32),
) {
    let (ts, addr, size, stack) = a;
    let s = size32(size);
    if is_big(s) {
        big.push((records.len(), size));
    }
    let key = site_key(thread, stack);
    let site = match cache.get(site_slot(key)) {
        Some(&(k, site)) if k == key => site,
        _ => {
            pending.push((records.len() as u32, stack));
            0
        }
    };
    records.push(Record::alloc(ts, addr, s, site));
}

/// Fills in the sites of `pending` allocations (interning their stacks under one lock) and
/// remembers them in `cache`.
fn resolve_pending(
    records: &mut [Record],
    pending: &Pending,
    thread: u32,
    interner: &SiteInterner,
    cache: &mut [(u64, u32)],
) {
    if pending.is_empty() {
        return;
    }
    let mut stacks: Vec<u32> = pending.iter().map(|&(_, stack)| stack).collect();
    stacks.sort_unstable();
    stacks.dedup();
    let sites = interner.intern_all(&stacks, thread);
    for &(pos, stack) in pending {
        let site = stacks.binary_search(&stack).ok().and_then(|i| sites.get(i)).copied().unwrap_or(0);
        if let Some(r) = records.get_mut(pos as usize) {
            r.set_site(site);
        }
    }
    for (&stack, &site) in stacks.iter().zip(&sites) {
        let key = site_key(thread, stack);
        if let Some(slot) = cache.get_mut(site_slot(key)) {
            *slot = (key, site);
        }
    }
}

/// How to decode a chunk.
pub(crate) struct DecodeSpec {
    /// The chunk's thread index.
    pub thread: u32,
    /// Records expected (a capacity hint).
    pub expected: usize,
    /// Every timestamp must lie in this range, or [`DecodedChunk::in_range`] is false.
    pub times: std::ops::RangeInclusive<u64>,
}

/// Where decoding puts what it finds: the site table and the buffer pool.
pub(crate) struct DecodeShared<'a> {
    pub interner: &'a SiteInterner,
    pub pool: &'a RecordPool,
}

/// Decodes `chunk`.
pub(crate) fn decode_chunk(
    reader: &TraceReader,
    chunk: &ChunkInfo,
    spec: &DecodeSpec,
    shared: &DecodeShared<'_>,
) -> DecodedChunk {
    let mut records: Vec<Record> = shared.pool.take(spec.expected);
    let mut scan = ChunkScan::default();
    let mut big: Vec<(usize, u64)> = Vec::new();
    let mut cache = SITE_CACHE.with(|c| std::mem::take(&mut c.borrow_mut().slots));
    let owner = SITE_CACHE.with(|c| c.borrow().owner);
    if owner != shared.interner.id || cache.len() != SITE_CACHE_SLOTS {
        cache.clear();
        cache.resize(SITE_CACHE_SLOTS, (u64::MAX, 0));
    }
    let thread = spec.thread;
    let mut pending: Pending = Vec::new();
    // Allocations and frees are counted here; everything else goes to the scan.
    let (mut allocs, mut frees, mut reallocs) = (0u64, 0u64, 0u64);
    let (mut lo, mut hi) = (u64::MAX, 0u64);
    let decoded = reader.for_each_event(chunk, |event| match event {
        Event::Alloc { ts, addr, size, stack, .. } => {
            allocs += 1;
            (lo, hi) = (lo.min(ts), hi.max(ts));
            if addr != 0 {
                push_alloc(&mut records, &mut big, &cache, thread, &mut pending, (ts, addr, size, stack));
            }
        }
        Event::Free { ts, addr } => {
            frees += 1;
            (lo, hi) = (lo.min(ts), hi.max(ts));
            if addr != 0 {
                records.push(Record::free(ts, addr));
            }
        }
        Event::Realloc { ts_free, ts, old_addr, new_addr, size, stack } => {
            reallocs += 1;
            (lo, hi) = (lo.min(ts_free).min(ts), hi.max(ts_free).max(ts));
            if old_addr != 0 {
                records.push(Record::free(ts_free, old_addr));
            }
            if new_addr != 0 {
                push_alloc(&mut records, &mut big, &cache, thread, &mut pending, (ts, new_addr, size, stack));
            }
        }
        other => scan.observe(&other),
    });
    scan.undecodable = decoded.is_err();
    scan.counts.alloc += allocs;
    scan.counts.free += frees;
    scan.counts.realloc += reallocs;
    scan.blocks = records.iter().filter(|r| !r.is_free()).count() as u64;
    scan.releases = records.len() as u64 - scan.blocks;
    if allocs + frees + reallocs > 0 {
        scan.min_ts = Some(scan.min_ts.map_or(lo, |m| m.min(lo)));
        scan.max_ts = Some(scan.max_ts.map_or(hi, |m| m.max(hi)));
    }
    resolve_pending(&mut records, &pending, thread, shared.interner, &mut cache);
    SITE_CACHE.with(|c| *c.borrow_mut() = SiteCache { owner: shared.interner.id, slots: cache });
    let in_range = match (scan.min_ts, scan.max_ts) {
        (Some(lo), Some(hi)) => spec.times.contains(&lo) && spec.times.contains(&hi),
        _ => true,
    };
    if records.windows(2).any(|w| w[1].ts < w[0].ts) {
        // Only a damaged chunk gets here: put its records in time order (stably, so events of
        // one moment keep their order), carrying the big sizes along.
        let mut with_big: Vec<(Record, Option<u64>)> = records.iter().map(|&r| (r, None)).collect();
        for &(pos, size) in &big {
            with_big[pos].1 = Some(size);
        }
        with_big.sort_by_key(|(r, _)| r.ts);
        records = with_big.iter().map(|(r, _)| *r).collect();
        big = with_big.iter().enumerate().filter_map(|(pos, (_, b))| b.map(|s| (pos, s))).collect();
    }
    let big_sizes = big.into_iter().map(|(pos, size)| (pos as u32, size)).collect();
    DecodedChunk { records, big_sizes, scan, in_range }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_pack_their_fields() {
        let a = Record::alloc(5, 0x10, 48, 7);
        assert!(!a.is_free());
        assert_eq!((a.site(), a.size32()), (7, 48));
        let mut b = a;
        b.set_site(u32::MAX - 1);
        assert_eq!((b.site(), b.size32()), (u32::MAX - 1, 48));
        assert!(Record::free(5, 0x10).is_free());
    }
}
