//! Grouping by stack, the default query, kept lazy: one pass sums the outstanding blocks into a
//! dense table indexed by stack id (per parallel part, then merged), and nothing else happens
//! until a group is asked for. Ranking picks only the groups asked for (`top(n)` keeps the best
//! `n` in a small heap; the full order is sorted once, on first need), a [`Group`] is made only
//! when it is read, and the block ids of each stack are ordered only when
//! [`Grouping::block_ids`](super::Grouping::block_ids) first asks. The sum tables come from a
//! [`ScratchPool`] and go back to it when the grouping is dropped, so repeated queries do not
//! fault fresh pages in.

use std::collections::BinaryHeap;
use std::ops::Range;
use std::sync::{Arc, Mutex, OnceLock};

use rayon::prelude::*;

use super::{Group, GroupKey, PARALLEL_BLOCKS, PARALLEL_GROUPS, Snapshot, SortBy};
use crate::lifetimes::{LifetimeStore, LiveBlock, Site};
use crate::model::{BlockId, StackId, ThreadIndex};

/// A stack's figures: summed per part of the snapshot, then merged.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct StackSums {
    bytes: u64,
    /// Bit `t` for each thread `t` below [`MASK_THREADS`]; higher threads are listed apart.
    threads: u64,
    blocks: u32,
    /// Snapshot positions of the stack's first and last block.
    first: u32,
    last: u32,
}

/// Threads kept in [`StackSums::threads`].
const MASK_THREADS: u32 = 64;

/// Sum tables kept at most by a pool.
const POOLED_TABLES: usize = 4;

impl StackSums {
    /// Adds `other`, which sums blocks after this one's.
    fn merge(&mut self, other: &StackSums) {
        if other.blocks == 0 {
            return;
        }
        if self.blocks == 0 {
            self.first = other.first;
        }
        self.last = other.last;
        self.blocks += other.blocks;
        self.bytes += other.bytes;
        self.threads |= other.threads;
    }
}

/// Sum tables of earlier queries, reused so that a query writes into memory that is already
/// mapped (a fresh 4 KiB page costs a page fault, a large part of a query's time).
#[derive(Debug, Default)]
pub(crate) struct ScratchPool {
    tables: Mutex<Vec<Vec<StackSums>>>,
}

impl ScratchPool {
    /// A table of `len` zeroed sums.
    fn take(&self, len: usize) -> Vec<StackSums> {
        let reused = self.tables.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match reused {
            Some(mut table) => {
                table.clear();
                table.resize(len, StackSums::default());
                table
            }
            None => vec![StackSums::default(); len],
        }
    }

    fn give(&self, table: Vec<StackSums>) {
        let mut tables = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        if tables.len() < POOLED_TABLES && table.capacity() > 0 {
            tables.push(table);
        }
    }
}

/// The outstanding blocks of a snapshot summed by stack; groups made on demand.
pub(crate) struct StackGroups {
    store: Arc<LifetimeStore>,
    pool: Arc<ScratchPool>,
    blocks: Arc<Vec<LiveBlock>>,
    /// Sums by stack id (all stacks of the trace; most may be empty).
    sums: Vec<StackSums>,
    /// (stack, thread) of blocks of threads beyond the mask, sorted and distinct.
    high_threads: Vec<(u32, u32)>,
    /// Stacks with at least one block.
    len: usize,
    rank_by: SortBy,
    /// Every non-empty stack, in rank order (sorted on first need).
    order: OnceLock<Vec<u32>>,
    /// Block ids ordered by stack (allocation order within a stack), and where each stack's run
    /// ends (made on first need).
    members: OnceLock<(Vec<u32>, Vec<u32>)>,
}

impl std::fmt::Debug for StackGroups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StackGroups").field("len", &self.len).field("rank_by", &self.rank_by).finish()
    }
}

impl Clone for StackGroups {
    fn clone(&self) -> Self {
        let mut sums = self.pool.take(0);
        sums.extend_from_slice(&self.sums);
        StackGroups {
            store: self.store.clone(),
            pool: self.pool.clone(),
            blocks: self.blocks.clone(),
            sums,
            high_threads: self.high_threads.clone(),
            len: self.len,
            rank_by: self.rank_by,
            order: self.order.clone(),
            members: self.members.clone(),
        }
    }
}

impl Drop for StackGroups {
    fn drop(&mut self) {
        self.pool.give(std::mem::take(&mut self.sums));
    }
}

/// A part's sums by stack, and the (stack, thread) pairs of its threads beyond the mask.
type PartSums = (Vec<StackSums>, Vec<(u32, u32)>);

/// A rank as one sortable value (smaller ranks first): complemented figures, then the stack.
type Rank = (u64, u64, u64, u32);

impl StackGroups {
    /// Sums `snapshot` by stack; `None` when stack ids are too sparse for a dense table.
    pub fn new(store: &Arc<LifetimeStore>, pool: &Arc<ScratchPool>, snapshot: &Snapshot) -> Option<Self> {
        let blocks = &snapshot.blocks;
        let n = blocks.len();
        let bound = store.max_stack() as usize + 1;
        if bound > 4 * n + (1 << 16) {
            return None;
        }
        let sites = &store.sites;
        let parts = (n / PARALLEL_BLOCKS).clamp(1, rayon::current_num_threads().max(1));
        let part_len = n.div_ceil(parts).max(1);
        let sum_part = |part: usize| {
            let mut sums = pool.take(bound);
            let mut high_threads: Vec<(u32, u32)> = Vec::new();
            let from = part * part_len;
            let to = n.min(from + part_len);
            for (k, b) in blocks.get(from..to).unwrap_or(&[]).iter().enumerate() {
                let site = sites.get(b.site as usize).copied().unwrap_or(Site { stack: 0, thread: 0 });
                let Some(s) = sums.get_mut(site.stack as usize) else { continue };
                let k = (from + k) as u32;
                if s.blocks == 0 {
                    s.first = k;
                }
                s.last = k;
                s.blocks += 1;
                s.bytes += store.full_size(b.id, b.size32);
                if site.thread < MASK_THREADS {
                    s.threads |= 1 << site.thread;
                } else if high_threads.last() != Some(&(site.stack, site.thread)) {
                    high_threads.push((site.stack, site.thread));
                }
            }
            (sums, high_threads)
        };
        let mut per_part: Vec<PartSums> =
            if parts > 1 { (0..parts).into_par_iter().map(sum_part).collect() } else { vec![sum_part(0)] };
        let mut high_threads: Vec<(u32, u32)> =
            per_part.iter_mut().flat_map(|p| std::mem::take(&mut p.1)).collect();
        high_threads.sort_unstable();
        high_threads.dedup();
        let mut rest = per_part.split_off(1);
        let (mut sums, _) = per_part.pop()?;
        let len = sums
            .par_iter_mut()
            .enumerate()
            .with_min_len(4096)
            .map(|(k, s)| {
                for (other, _) in rest.iter() {
                    s.merge(&other[k]);
                }
                usize::from(s.blocks > 0)
            })
            .sum();
        for (table, _) in rest.drain(..) {
            pool.give(table);
        }
        Some(StackGroups {
            store: store.clone(),
            pool: pool.clone(),
            blocks: snapshot.blocks.clone(),
            sums,
            high_threads,
            len,
            rank_by: SortBy::Bytes,
            order: OnceLock::new(),
            members: OnceLock::new(),
        })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// The stacks with at least one block, by id.
    pub fn non_empty_stacks(&self) -> impl Iterator<Item = u32> + '_ {
        self.sums.iter().enumerate().filter(|(_, s)| s.blocks > 0).map(|(k, _)| k as u32)
    }

    /// Ranks by `by` from now on.
    pub fn sort(&mut self, by: SortBy) {
        if by != self.rank_by {
            self.rank_by = by;
            self.order = OnceLock::new();
        }
    }

    fn alloc_ns(&self, pos: u32) -> u64 {
        self.blocks.get(pos as usize).map_or(0, |b| self.store.alloc_ns_from_low(b.id, b.alloc_low))
    }

    /// The rank of stack `k` (as `Grouping::sort` orders: primary figure, bytes, blocks, key).
    fn rank(&self, k: u32) -> Rank {
        let s = &self.sums[k as usize];
        let primary = match self.rank_by {
            SortBy::Bytes => s.bytes,
            SortBy::Blocks => u64::from(s.blocks),
            SortBy::Newest => self.alloc_ns(s.last),
        };
        (!primary, !s.bytes, !u64::from(s.blocks), k)
    }

    /// Every non-empty stack in rank order.
    fn order(&self) -> &[u32] {
        self.order.get_or_init(|| {
            let rank = |(k, s): (usize, &StackSums)| (s.blocks > 0).then(|| self.rank(k as u32));
            let mut ranks: Vec<Rank> = if self.sums.len() >= PARALLEL_GROUPS {
                self.sums.par_iter().enumerate().filter_map(rank).collect()
            } else {
                self.sums.iter().enumerate().filter_map(rank).collect()
            };
            if ranks.len() >= PARALLEL_GROUPS {
                ranks.par_sort_unstable();
            } else {
                ranks.sort_unstable();
            }
            ranks.into_iter().map(|r| r.3).collect()
        })
    }

    /// The best `n` stacks in rank order, without ranking the others.
    fn top_stacks(&self, n: usize) -> Vec<u32> {
        if let Some(order) = self.order.get() {
            return order.iter().take(n).copied().collect();
        }
        if n.saturating_mul(8) >= self.len {
            return self.order().iter().take(n).copied().collect();
        }
        // A max-heap of the best `n` ranks seen so far (its top is the worst of them).
        let mut best: BinaryHeap<Rank> = BinaryHeap::with_capacity(n + 1);
        for (k, s) in self.sums.iter().enumerate() {
            if s.blocks == 0 {
                continue;
            }
            let r = self.rank(k as u32);
            if best.len() < n {
                best.push(r);
            } else if best.peek().is_some_and(|worst| r < *worst) {
                best.pop();
                best.push(r);
            }
        }
        best.into_sorted_vec().into_iter().map(|r| r.3).collect()
    }

    /// The group of stack `k`.
    fn make(&self, k: u32) -> Group {
        let s = &self.sums[k as usize];
        let mut threads: Vec<ThreadIndex> =
            (0..MASK_THREADS).filter(|t| s.threads & (1 << t) != 0).map(ThreadIndex).collect();
        let high = self.high_threads.partition_point(|&(stack, _)| stack < k);
        threads.extend(
            self.high_threads[high..]
                .iter()
                .take_while(|&&(stack, _)| stack == k)
                .map(|&(_, t)| ThreadIndex(t)),
        );
        Group {
            key: GroupKey::Stack(StackId(k)),
            blocks: u64::from(s.blocks),
            bytes: s.bytes,
            first_alloc_ns: self.alloc_ns(s.first),
            last_alloc_ns: self.alloc_ns(s.last),
            threads,
            stacks: vec![StackId(k)],
            frame: None,
            members: 0..0,
        }
    }

    /// The group ranked `rank` (0 is the first).
    pub fn group(&self, rank: usize) -> Option<Group> {
        let k = match self.order.get() {
            Some(order) => *order.get(rank)?,
            None if rank == 0 => *self.top_stacks(1).first()?,
            None => *self.order().get(rank)?,
        };
        Some(self.make(k))
    }

    /// The best `n` groups, in rank order.
    pub fn top(&self, n: usize) -> Vec<Group> {
        let stacks = self.top_stacks(n.min(self.len));
        if stacks.len() >= PARALLEL_GROUPS {
            stacks.par_iter().map(|&k| self.make(k)).collect()
        } else {
            stacks.iter().map(|&k| self.make(k)).collect()
        }
    }

    /// Block ids ordered by stack, and each stack's run end.
    fn members(&self) -> &(Vec<u32>, Vec<u32>) {
        self.members.get_or_init(|| {
            let mut next = vec![0u32; self.sums.len()];
            let mut at = 0u32;
            for (k, s) in self.sums.iter().enumerate() {
                next[k] = at;
                at += s.blocks;
            }
            let mut members = vec![0u32; self.blocks.len()];
            for b in self.blocks.iter() {
                let stack = self.store.site_by_id(b.site).stack;
                if let Some(slot) = next.get_mut(stack as usize)
                    && let Some(m) = members.get_mut(*slot as usize)
                {
                    *m = b.id;
                    *slot += 1;
                }
            }
            (members, next)
        })
    }

    /// The run of `members` of stack `k`.
    fn run(&self, k: u32) -> Range<usize> {
        let (_, ends) = self.members();
        let end = ends.get(k as usize).copied().unwrap_or(0) as usize;
        let blocks = self.sums.get(k as usize).map_or(0, |s| s.blocks) as usize;
        end - blocks.min(end)..end
    }

    /// The outstanding blocks of stack `k`, in allocation order.
    pub fn block_ids(&self, k: u32) -> Vec<BlockId> {
        let run = self.run(k);
        self.members().0.get(run).unwrap_or(&[]).iter().map(|&i| BlockId(i)).collect()
    }

    /// All block ids ordered by stack, and each non-empty stack's run of them (for function
    /// groups, whose blocks come from their stacks).
    pub fn into_members_by_stack(mut self) -> (Vec<u32>, std::collections::HashMap<u32, Range<u32>>) {
        let by_stack = (0..self.sums.len() as u32)
            .filter(|&k| self.sums[k as usize].blocks > 0)
            .map(|k| {
                let r = self.run(k);
                (k, r.start as u32..r.end as u32)
            })
            .collect();
        self.members();
        let members = std::mem::take(&mut self.members).into_inner().map(|(members, _)| members);
        (members.unwrap_or_default(), by_stack)
    }
}
