//! Decoding one chunk for the replay: its allocations and frees into a compact, time-ordered list
//! of records, each allocation's stack and thread interned into a site, and everything else
//! noted in a [`ChunkScan`]. Chunks are decoded in parallel, a round ahead of the replay, and
//! dropped once replayed, so memory holds only the chunks around the replay's current moment,
//! never all raw events.

use std::cell::RefCell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use leakview_format::{ChunkInfo, Event, EventSink, TraceReader};

use super::reorder::SiteThreads;
use super::scan::ChunkScan;
use crate::hashing::IntMap;
use crate::lifetimes::{Site, is_big, size32};

/// The high half of a free record's `meta` (no site reaches it: sites number far fewer).
const FREE: u32 = u32::MAX;

/// One allocation or free of a non-zero address, at an absolute (monotonic) time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Record {
    pub ts: u64,
    pub addr: u64,
    /// An allocation's site (high half) and 32-bit size (low half); [`FREE`] (high half) and the
    /// thread index (low half) of a free.
    meta: u64,
}

impl Record {
    pub(crate) fn alloc(ts: u64, addr: u64, size32: u32, site: u32) -> Self {
        Record { ts, addr, meta: (u64::from(site) << 32) | u64::from(size32) }
    }

    pub(crate) fn free(ts: u64, addr: u64, thread: u32) -> Self {
        Record { ts, addr, meta: (u64::from(FREE) << 32) | u64::from(thread) }
    }

    pub fn is_free(&self) -> bool {
        (self.meta >> 32) as u32 == FREE
    }

    /// The thread index of a free.
    pub fn thread(&self) -> u32 {
        self.meta as u32
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

/// A decoded chunk: its records in time order and the rest of what it holds.
#[derive(Debug, Default)]
pub(crate) struct DecodedChunk {
    pub records: Vec<Record>,
    pub scan: ChunkScan,
    /// Every timestamp of the chunk lies in the range the replay was promised.
    pub in_range: bool,
}

/// Sizes of 4 GiB and more (whose records hold a marker), by (time, address) of the allocation.
#[derive(Debug, Default)]
pub(crate) struct BigSizes {
    map: Mutex<IntMap<(u64, u64), u64>>,
}

impl BigSizes {
    fn add(&self, sizes: Vec<((u64, u64), u64)>) {
        if sizes.is_empty() {
            return;
        }
        let mut g = match self.map.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        g.extend(sizes);
    }

    /// The size of the allocation `record`.
    #[inline(always)]
    pub fn size_of(&self, record: &Record) -> u64 {
        let s = record.size32();
        if !is_big(s) {
            return u64::from(s);
        }
        self.big_size_of(record)
    }

    #[cold]
    #[inline(never)]
    fn big_size_of(&self, record: &Record) -> u64 {
        let s = record.size32();
        let g = match self.map.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        g.get(&(record.ts, record.addr)).copied().unwrap_or(u64::from(s))
    }
}

/// Record buffers of replayed chunks, reused for the next chunks decoded: filling fresh memory
/// costs a page fault per 4 KiB, which adds up to a good part of a load.
#[derive(Debug, Default)]
pub(crate) struct RecordPool {
    free: Mutex<Vec<Vec<Record>>>,
}

/// Buffers are sized in steps of this many records, so that one chunk's buffer fits the next
/// chunk's (full chunks' bodies differ by a few bytes, so their capacity hints by a record or
/// two): otherwise a buffer one record short is regrown, its old contents copied into fresh
/// memory.
const RECORD_STEP: usize = 1024;

impl RecordPool {
    fn take(&self, capacity: usize) -> Vec<Record> {
        let capacity = capacity.div_ceil(RECORD_STEP).saturating_mul(RECORD_STEP);
        let reused = match self.free.lock() {
            Ok(mut g) => g.pop(),
            Err(poisoned) => poisoned.into_inner().pop(),
        };
        match reused {
            Some(mut v) if v.capacity() >= capacity => {
                v.clear();
                v
            }
            // Too small (a short chunk's): a fresh buffer, not a regrown one whose old records
            // would be copied for nothing.
            _ => Vec::with_capacity(capacity),
        }
    }

    /// Gives a buffer back.
    pub fn put(&self, records: Vec<Record>) {
        match self.free.lock() {
            Ok(mut g) => g.push(records),
            Err(poisoned) => poisoned.into_inner().push(records),
        }
    }
}

/// One thread's stack → site table: dense while its stack ids are not too sparse.
#[derive(Debug)]
enum ThreadSites {
    /// `site + 1` by stack id (0: none yet).
    Dense(Vec<u32>),
    Sparse(IntMap<u32, u32>),
}

/// The site table: sites in order of first use, and each thread's stack → site table.
#[derive(Debug, Default)]
struct SiteTables {
    sites: Vec<Site>,
    threads: Vec<(ThreadSites, u32)>,
}

impl SiteTables {
    fn intern(&mut self, stack: u32, thread: u32) -> u32 {
        let t = thread as usize;
        if self.threads.len() <= t {
            self.threads.resize_with(t + 1, || (ThreadSites::Dense(Vec::new()), 0));
        }
        let next = self.sites.len() as u32;
        let (table, count) = &mut self.threads[t];
        let s = stack as usize;
        let found = match table {
            ThreadSites::Dense(v) => match v.get(s) {
                Some(&plus_one) if plus_one != 0 => Some(plus_one - 1),
                Some(_) => {
                    v[s] = next + 1;
                    None
                }
                // Dense while the table stays within a few times the stacks it holds.
                None if s < 1 << 18 || s < 16 * (*count as usize) => {
                    v.resize((s + 1).next_power_of_two(), 0);
                    v[s] = next + 1;
                    None
                }
                None => {
                    let mut map: IntMap<u32, u32> = v
                        .iter()
                        .enumerate()
                        .filter(|&(_, &p)| p != 0)
                        .map(|(k, &p)| (k as u32, p - 1))
                        .collect();
                    map.insert(stack, next);
                    *table = ThreadSites::Sparse(map);
                    None
                }
            },
            ThreadSites::Sparse(map) => match map.get(&stack) {
                Some(&site) => Some(site),
                None => {
                    map.insert(stack, next);
                    None
                }
            },
        };
        found.unwrap_or_else(|| {
            *count += 1;
            self.sites.push(Site { stack, thread });
            next
        })
    }
}

/// Interns (stack, thread) pairs into dense site ids, shared by all decoding threads.
#[derive(Debug)]
pub(crate) struct SiteInterner {
    /// Tells this interner's ids apart from another load's in the workers' caches.
    id: u64,
    tables: Mutex<SiteTables>,
}

impl Default for SiteInterner {
    fn default() -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        SiteInterner { id: NEXT_ID.fetch_add(1, Ordering::Relaxed), tables: Mutex::default() }
    }
}

impl SiteThreads for SiteInterner {
    /// Takes the table's lock: for the replay's rare questions only.
    fn thread_of(&self, site: u32) -> Option<u32> {
        let tables = match self.tables.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        tables.sites.get(site as usize).map(|s| s.thread)
    }
}

impl SiteInterner {
    pub fn into_sites(self) -> Vec<Site> {
        match self.tables.into_inner() {
            Ok(t) => t.sites,
            Err(poisoned) => poisoned.into_inner().sites,
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

/// What decoding a chunk gathers: its allocation and free records (each allocation with its
/// site if the worker's cache knows it, else noted in `pending`), big sizes, counts and time
/// span, and the scan of its other events.
struct ChunkSink<'c> {
    records: Vec<Record>,
    big: Vec<((u64, u64), u64)>,
    cache: &'c [(u64, u32)],
    thread: u32,
    pending: Pending,
    scan: ChunkScan,
    allocs: u64,
    frees: u64,
    reallocs: u64,
    /// Allocation records.
    blocks: u64,
    /// The earliest and latest time of the events that made no record.
    lo: u64,
    hi: u64,
}

impl ChunkSink<'_> {
    /// Appends the allocation `(ts, addr, size, stack)` of a non-zero address.
    #[inline(always)]
    fn push_alloc(&mut self, ts: u64, addr: u64, size: u64, stack: u32) {
        self.blocks += 1;
        let s = size32(size);
        if is_big(s) {
            self.big.push(((ts, addr), size));
        }
        let key = site_key(self.thread, stack);
        let site = match self.cache.get(site_slot(key)) {
            Some(&(k, site)) if k == key => site,
            _ => {
                self.pending.push((self.records.len() as u32, stack));
                0
            }
        };
        self.records.push(Record::alloc(ts, addr, s, site));
    }

    /// Takes note of the time of an event of a zero address (which makes no record: the times
    /// of records are taken from them at the end).
    #[inline(always)]
    fn saw(&mut self, ts: u64) {
        (self.lo, self.hi) = (self.lo.min(ts), self.hi.max(ts));
    }
}

impl<'a> EventSink<'a> for ChunkSink<'_> {
    #[inline(always)]
    fn alloc(&mut self, ts: u64, addr: u64, size: u64, _align: u64, stack: u32) {
        self.allocs += 1;
        if addr != 0 {
            self.push_alloc(ts, addr, size, stack);
        } else {
            self.saw(ts);
        }
    }

    #[inline(always)]
    fn free(&mut self, ts: u64, addr: u64) {
        self.frees += 1;
        if addr != 0 {
            self.records.push(Record::free(ts, addr, self.thread));
        } else {
            self.saw(ts);
        }
    }

    #[inline(always)]
    fn realloc(&mut self, ts_free: u64, ts: u64, old_addr: u64, new_addr: u64, size: u64, stack: u32) {
        self.reallocs += 1;
        if old_addr != 0 {
            self.records.push(Record::free(ts_free, old_addr, self.thread));
        } else {
            self.saw(ts_free);
        }
        if new_addr != 0 {
            self.push_alloc(ts, new_addr, size, stack);
        } else {
            self.saw(ts);
        }
    }

    fn other(&mut self, event: Event<'a>) {
        self.scan.observe(&event);
    }
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
    let mut tables = match interner.tables.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    };
    for &(pos, stack) in pending {
        let site = tables.intern(stack, thread);
        if let Some(r) = records.get_mut(pos as usize) {
            r.set_site(site);
        }
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
    pub big_sizes: &'a BigSizes,
}

/// Decodes `chunk`.
pub(crate) fn decode_chunk(
    reader: &TraceReader,
    chunk: &ChunkInfo,
    spec: &DecodeSpec,
    shared: &DecodeShared<'_>,
) -> DecodedChunk {
    let records: Vec<Record> = shared.pool.take(spec.expected);
    let mut cache = SITE_CACHE.with(|c| std::mem::take(&mut c.borrow_mut().slots));
    let owner = SITE_CACHE.with(|c| c.borrow().owner);
    if owner != shared.interner.id || cache.len() != SITE_CACHE_SLOTS {
        cache.clear();
        cache.resize(SITE_CACHE_SLOTS, (u64::MAX, 0));
    }
    let thread = spec.thread;
    let mut sink = ChunkSink {
        records,
        big: Vec::new(),
        cache: &cache,
        thread,
        pending: Vec::new(),
        scan: ChunkScan::default(),
        allocs: 0,
        frees: 0,
        reallocs: 0,
        blocks: 0,
        lo: u64::MAX,
        hi: 0,
    };
    let decoded = reader.decode_into(chunk, &mut sink);
    let ChunkSink {
        mut records,
        big,
        pending,
        mut scan,
        allocs,
        frees,
        reallocs,
        blocks,
        mut lo,
        mut hi,
        ..
    } = sink;
    resolve_pending(&mut records, &pending, thread, shared.interner, &mut cache);
    SITE_CACHE.with(|c| *c.borrow_mut() = SiteCache { owner: shared.interner.id, slots: cache });
    if records.windows(2).any(|w| w[1].ts < w[0].ts) {
        // Only a damaged chunk gets here: put its records in time order (stably, so events of
        // one moment keep their order).
        records.sort_by_key(|r| r.ts);
    }
    if let (Some(first), Some(last)) = (records.first(), records.last()) {
        (lo, hi) = (lo.min(first.ts), hi.max(last.ts));
    }
    scan.undecodable = decoded.is_err();
    scan.counts.alloc += allocs;
    scan.counts.free += frees;
    scan.counts.realloc += reallocs;
    scan.blocks = blocks;
    scan.releases = records.len() as u64 - blocks;
    if allocs + frees + reallocs > 0 {
        scan.min_ts = Some(scan.min_ts.map_or(lo, |m| m.min(lo)));
        scan.max_ts = Some(scan.max_ts.map_or(hi, |m| m.max(hi)));
    }
    let in_range = match (scan.min_ts, scan.max_ts) {
        (Some(lo), Some(hi)) => spec.times.contains(&lo) && spec.times.contains(&hi),
        _ => true,
    };
    shared.big_sizes.add(big);
    DecodedChunk { records, scan, in_range }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_hands_a_buffer_back_for_a_chunk_a_record_longer() {
        let pool = RecordPool::default();
        let mut first = pool.take(4087);
        first.push(Record::free(1, 0x10, 0));
        let (at, capacity) = (first.as_ptr(), first.capacity());
        pool.put(first);
        let again = pool.take(4088);
        assert!(again.is_empty());
        assert_eq!((again.as_ptr(), again.capacity()), (at, capacity), "the same buffer, not regrown");
        pool.put(again);
        let bigger = pool.take(capacity + 1);
        assert!(bigger.capacity() > capacity && bigger.is_empty());
    }

    #[test]
    fn records_pack_their_fields() {
        let a = Record::alloc(5, 0x10, 48, 7);
        assert!(!a.is_free());
        assert_eq!((a.site(), a.size32()), (7, 48));
        let mut b = a;
        b.set_site(u32::MAX - 1);
        assert_eq!((b.site(), b.size32()), (u32::MAX - 1, 48));
        let f = Record::free(5, 0x10, 3);
        assert!(f.is_free());
        assert_eq!(f.thread(), 3);
    }
}
