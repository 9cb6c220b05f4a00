//! The replay: every chunk's allocations and frees merged into one stream in time order and fed
//! to the [`Lifecycle`], one moment (timestamp) at a time.
//!
//! Chunks are taken in order of their earliest timestamp and decoded in rounds: while the
//! replay works through the chunks of one round, the next round is decoded in parallel. After
//! a round is decoded, every event before the earliest timestamp of the next round is known, so
//! the replay may run up to (not including) that moment. A decoded chunk is dropped as soon as
//! it is replayed. A min-heap over the decoded chunks' next timestamps picks the next event;
//! usually a run of events of one chunk comes before any other chunk's next one and is taken
//! without touching the heap.
//!
//! Events of one moment (a clock tie) are handed over together, since their order is not
//! known: the [`Lifecycle`] orders them by each address's state.

use leakview_format::TraceReader;
use rayon::prelude::*;

use super::decode::{DecodeShared, DecodeSpec, DecodedChunk, RecordPool, SiteInterner, decode_chunk};
use super::lifecycle::{Lifecycle, TieEvent};
use super::scan::ChunkScan;
use crate::progress::Progress;

/// Chunk bytes decoded per round (at least one chunk per worker thread).
const ROUND_BYTES: usize = 2 << 20;

/// A binary min-heap of (next timestamp, chunk) that exposes the runner-up.
#[derive(Debug, Default)]
struct ChunkHeap {
    items: Vec<(u64, u32)>,
}

impl ChunkHeap {
    fn push(&mut self, item: (u64, u32)) {
        self.items.push(item);
        let mut i = self.items.len() - 1;
        while i > 0 {
            let parent = (i - 1) / 2;
            if self.items[parent] <= self.items[i] {
                break;
            }
            self.items.swap(parent, i);
            i = parent;
        }
    }

    fn peek(&self) -> Option<(u64, u32)> {
        self.items.first().copied()
    }

    /// The smallest timestamp after the top's.
    fn runner_up(&self) -> u64 {
        match self.items.len() {
            0 | 1 => u64::MAX,
            2 => self.items[1].0,
            _ => self.items[1].0.min(self.items[2].0),
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        let n = self.items.len();
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut smallest = i;
            if l < n && self.items[l] < self.items[smallest] {
                smallest = l;
            }
            if r < n && self.items[r] < self.items[smallest] {
                smallest = r;
            }
            if smallest == i {
                return;
            }
            self.items.swap(i, smallest);
            i = smallest;
        }
    }

    /// Gives the top a new timestamp.
    fn replace_top_key(&mut self, ts: u64) {
        if let Some(top) = self.items.first_mut() {
            top.0 = ts;
            self.sift_down(0);
        }
    }

    fn pop(&mut self) -> Option<(u64, u32)> {
        let last = self.items.pop()?;
        if self.items.is_empty() {
            return Some(last);
        }
        let top = std::mem::replace(&mut self.items[0], last);
        self.sift_down(0);
        Some(top)
    }
}

/// The decoded chunks being replayed.
struct Active<'p> {
    pool: &'p RecordPool,
    chunks: Vec<Option<DecodedChunk>>,
    scans: Vec<Option<ChunkScan>>,
    in_range: bool,
    cursor: Vec<usize>,
    heap: ChunkHeap,
    ties: Vec<TieEvent>,
}

impl Active<'_> {
    fn add(&mut self, index: usize, mut chunk: DecodedChunk) {
        self.scans[index] = Some(std::mem::take(&mut chunk.scan));
        self.in_range &= chunk.in_range;
        if let Some(first) = chunk.records.first() {
            self.heap.push((first.ts, index as u32));
            self.cursor[index] = 0;
            self.chunks[index] = Some(chunk);
        }
    }

    /// Moves chunk `c` to position `pos`: re-keys it in the heap (it must be the top) or drops it.
    fn advance_top(&mut self, c: usize, pos: usize) {
        self.cursor[c] = pos;
        let next = self.chunks[c].as_ref().and_then(|d| d.records.get(pos)).map(|r| r.ts);
        match next {
            Some(ts) => self.heap.replace_top_key(ts),
            None => {
                self.heap.pop();
                if let Some(done) = self.chunks[c].take() {
                    self.pool.put(done.records);
                }
            }
        }
    }

    /// Replays every event before `bound`.
    fn replay_until(&mut self, bound: u64, life: &mut Lifecycle) {
        while let Some((t, c)) = self.heap.peek() {
            if t >= bound {
                return;
            }
            let c = c as usize;
            let runner_up = self.heap.runner_up();
            if runner_up == t {
                self.replay_tie_across_chunks(t, life);
                continue;
            }
            let limit = runner_up.min(bound);
            let Some(chunk) = self.chunks[c].as_ref() else {
                self.heap.pop();
                continue;
            };
            let records = &chunk.records;
            let mut i = self.cursor[c];
            while i < records.len() && records[i].ts < limit {
                let r = records[i];
                let next_same = records.get(i + 1).is_some_and(|n| n.ts == r.ts);
                if !next_same {
                    if r.is_free() {
                        life.free(r.ts, r.addr);
                    } else {
                        life.alloc(r.ts, r.addr, chunk.size_at(i), r.site());
                    }
                    life.end_moment(r.ts);
                    i += 1;
                    continue;
                }
                self.ties.clear();
                while i < records.len() && records[i].ts == r.ts {
                    self.ties.push(TieEvent::of(&records[i], chunk.size_at(i)));
                    i += 1;
                }
                life.tie(r.ts, &mut self.ties);
                life.end_moment(r.ts);
            }
            self.advance_top(c, i);
        }
    }

    /// Replays the events at `t` of every chunk whose next event is at `t`.
    fn replay_tie_across_chunks(&mut self, t: u64, life: &mut Lifecycle) {
        self.ties.clear();
        while let Some((ts, c)) = self.heap.peek() {
            if ts != t {
                break;
            }
            let c = c as usize;
            let mut i = self.cursor[c];
            if let Some(chunk) = self.chunks[c].as_ref() {
                while i < chunk.records.len() && chunk.records[i].ts == t {
                    self.ties.push(TieEvent::of(&chunk.records[i], chunk.size_at(i)));
                    i += 1;
                }
            }
            self.advance_top(c, i);
        }
        life.tie(t, &mut self.ties);
        life.end_moment(t);
    }
}

/// What the replay needs to know about the chunks.
pub(crate) struct ReplayPlan<'a> {
    pub reader: &'a TraceReader,
    /// No event of chunk `i` is earlier than `lower_bounds[i]`.
    pub lower_bounds: &'a [u64],
    pub chunk_threads: &'a [u32],
    /// Records expected per chunk (capacity hints).
    pub expected: &'a [usize],
    /// Every timestamp of the trace is expected in this range.
    pub times: std::ops::RangeInclusive<u64>,
    /// Stop as soon as a promise is broken.
    pub checked: bool,
    pub interner: &'a SiteInterner,
}

/// What the replay found besides the lifetimes.
pub(crate) struct Replayed {
    /// Every chunk's scan, in chunk order.
    pub scans: Vec<ChunkScan>,
    /// The promises of the plan held: every timestamp in range and no chunk earlier than its
    /// lower bound. When false, the replay's results are not to be used.
    pub promises_held: bool,
}

/// Replays the whole trace into `life`; `None` if cancelled.
pub(crate) fn replay(
    plan: &ReplayPlan<'_>,
    life: &mut Lifecycle,
    progress: &dyn Progress,
) -> Option<Replayed> {
    let chunks = plan.reader.chunks();
    let mut order: Vec<usize> = (0..chunks.len()).collect();
    order.sort_by_key(|&i| (plan.lower_bounds[i], i));
    let workers = rayon::current_num_threads().max(1);
    let mut rounds: Vec<&[usize]> = Vec::new();
    let mut rest = order.as_slice();
    while !rest.is_empty() {
        let mut take = 0;
        let mut bytes = 0;
        while take < rest.len() && (take < workers || bytes < ROUND_BYTES) {
            bytes += chunks[rest[take]].body_len();
            take += 1;
        }
        let (round, tail) = rest.split_at(take);
        rounds.push(round);
        rest = tail;
    }
    let pool = RecordPool::default();
    let shared = DecodeShared { interner: plan.interner, pool: &pool };
    let decode_round = |round: &[usize]| -> Vec<(usize, DecodedChunk)> {
        round
            .par_iter()
            .map(|&i| {
                let lower = plan.lower_bounds[i].max(*plan.times.start());
                let spec = DecodeSpec {
                    thread: plan.chunk_threads[i],
                    expected: plan.expected[i],
                    times: lower..=*plan.times.end(),
                };
                (i, decode_chunk(plan.reader, &chunks[i], &spec, &shared))
            })
            .collect()
    };
    let mut active = Active {
        pool: &pool,
        chunks: (0..chunks.len()).map(|_| None).collect(),
        scans: (0..chunks.len()).map(|_| None).collect(),
        in_range: true,
        cursor: vec![0; chunks.len()],
        heap: ChunkHeap::default(),
        ties: Vec::new(),
    };
    let mut next = rounds.first().map(|r| decode_round(r)).unwrap_or_default();
    for (k, round) in rounds.iter().enumerate() {
        if progress.cancelled() {
            return None;
        }
        for (i, d) in std::mem::take(&mut next) {
            active.add(i, d);
        }
        if !active.in_range && plan.checked {
            // The plan's promises were broken: this replay is void, stop early.
            return Some(Replayed { scans: Vec::new(), promises_held: false });
        }
        let bound = rounds.get(k + 1).and_then(|r| r.first()).map_or(u64::MAX, |&i| plan.lower_bounds[i]);
        let following = rounds.get(k + 1).copied();
        let (decoded, ()) = rayon::join(
            || following.map(decode_round).unwrap_or_default(),
            || active.replay_until(bound, life),
        );
        next = decoded;
        progress.advance(round.len() as u64);
    }
    active.replay_until(u64::MAX, life);
    let scans = active.scans.into_iter().map(Option::unwrap_or_default).collect();
    Some(Replayed { scans, promises_held: active.in_range })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heap_pops_in_order_and_knows_the_runner_up() {
        let mut h = ChunkHeap::default();
        for (i, ts) in [50u64, 10, 40, 10, 30, 20].into_iter().enumerate() {
            h.push((ts, i as u32));
        }
        assert_eq!(h.peek(), Some((10, 1)));
        assert_eq!(h.runner_up(), 10);
        h.replace_top_key(35);
        assert_eq!(h.peek(), Some((10, 3)));
        assert_eq!(h.runner_up(), 20);
        let mut out = Vec::new();
        while let Some(x) = h.pop() {
            out.push(x);
        }
        assert_eq!(out, vec![(10, 3), (20, 5), (30, 4), (35, 1), (40, 2), (50, 0)]);
        assert_eq!(h.runner_up(), u64::MAX);
    }
}
