//! Incremental "counted at T" aggregates, so a scrub step costs work proportional to the
//! events between the old and the new T rather than to everything counted.
//!
//! Built once at load from the analyzer's blocks (dense ids in allocation order):
//! - `by_free`: freed block ids in order of free time;
//! - `by_stack`: block ids grouped by stack (each stack's ids in allocation order).
//!
//! [`Live`] holds, for one moment T and one [`Selection`], bytes and blocks per stack, per
//! (stack, size class) and per (stack, thread). Moving T applies only the allocations and frees
//! in between, by the analyzer's rules ([`Selection::counts`]): an outstanding block counts at T when
//! it was allocated at or before T and not freed by T (both kinds of event move it), an
//! allocated block when it was allocated at or before T (allocations only), a temporary block
//! when it was freed by T (frees only).

use leakview_analyzer::{AllocWindow, Analysis, Block, BlockId, IntMap, Selection, StackId, size_class};

/// Bytes and blocks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Agg {
    pub bytes: u64,
    pub blocks: u64,
}

impl Agg {
    fn add(&mut self, size: u64, sign: i8) {
        if sign > 0 {
            self.bytes += size;
            self.blocks += 1;
        } else {
            self.bytes = self.bytes.saturating_sub(size);
            self.blocks = self.blocks.saturating_sub(1);
        }
    }
}

/// The load-time index. Stacks are numbered densely (`dense`) in order of first allocation.
pub struct ScrubIndex {
    by_free: Vec<u32>,
    by_stack: Vec<u32>,
    stack_start: Vec<u32>,
    stacks: Vec<StackId>,
    dense: IntMap<u32, u32>,
}

fn block(analysis: &Analysis, id: u32) -> Option<Block> {
    analysis.block(BlockId(id))
}

impl ScrubIndex {
    /// Indexes every block of `analysis` (two passes over the blocks and one sort).
    pub fn build(analysis: &Analysis) -> Self {
        let n = analysis.block_count();
        let mut dense: IntMap<u32, u32> = IntMap::default();
        let mut stacks = Vec::new();
        let mut block_stack = Vec::with_capacity(n);
        let mut frees: Vec<(u64, u32)> = Vec::new();
        for id in 0..n as u32 {
            let Some(b) = block(analysis, id) else {
                block_stack.push(u32::MAX);
                continue;
            };
            let d = *dense.entry(b.stack.0).or_insert_with(|| {
                stacks.push(b.stack);
                stacks.len() as u32 - 1
            });
            block_stack.push(d);
            if let Some(f) = b.free_ns {
                frees.push((f, id));
            }
        }
        frees.sort_unstable();
        let by_free = frees.into_iter().map(|(_, id)| id).collect();
        let mut stack_start = vec![0u32; stacks.len() + 1];
        for &d in &block_stack {
            if d != u32::MAX {
                stack_start[d as usize + 1] += 1;
            }
        }
        for i in 1..stack_start.len() {
            stack_start[i] += stack_start[i - 1];
        }
        let mut fill = stack_start.clone();
        let mut by_stack = vec![0u32; stack_start.last().copied().unwrap_or(0) as usize];
        for (id, &d) in block_stack.iter().enumerate() {
            if d != u32::MAX {
                by_stack[fill[d as usize] as usize] = id as u32;
                fill[d as usize] += 1;
            }
        }
        ScrubIndex { by_free, by_stack, stack_start, stacks, dense }
    }

    pub fn stack_count(&self) -> usize {
        self.stacks.len()
    }

    pub fn stack(&self, dense: u32) -> StackId {
        self.stacks[dense as usize]
    }

    pub fn dense(&self, stack: StackId) -> Option<u32> {
        self.dense.get(&stack.0).copied()
    }

    /// The first block id allocated after `t`.
    fn alloc_boundary(&self, analysis: &Analysis, t: u64) -> usize {
        partition(analysis.block_count(), |id| block(analysis, id as u32).is_some_and(|b| b.alloc_ns <= t))
    }

    /// The first position of `by_free` freed after `t`.
    fn free_boundary(&self, analysis: &Analysis, t: u64) -> usize {
        partition(self.by_free.len(), |i| {
            block(analysis, self.by_free[i]).and_then(|b| b.free_ns).is_some_and(|f| f <= t)
        })
    }

    /// Ids of stack `dense`'s blocks, in allocation order.
    pub fn stack_blocks(&self, dense: u32) -> &[u32] {
        &self.by_stack
            [self.stack_start[dense as usize] as usize..self.stack_start[dense as usize + 1] as usize]
    }

    /// Ids of stack `dense`'s blocks allocated at or before `t`, in allocation order.
    fn stack_blocks_until<'a>(&'a self, analysis: &Analysis, dense: u32, t: u64) -> &'a [u32] {
        let ids = self.stack_blocks(dense);
        let end = partition(ids.len(), |i| block(analysis, ids[i]).is_some_and(|b| b.alloc_ns <= t));
        &ids[..end]
    }

    /// Alloc times of the oldest and newest blocks of stack `dense` that `what` counts at `t`
    /// (every one of them was allocated by `t`).
    pub fn span(&self, analysis: &Analysis, dense: u32, t: u64, what: Selection) -> Option<(u64, u64)> {
        let ids = self.stack_blocks_until(analysis, dense, t);
        let counted = |id: &u32| block(analysis, *id).filter(|b| counted_at(analysis, b, t, what));
        let first = ids.iter().find_map(counted)?;
        let last = ids.iter().rev().find_map(counted)?;
        Some((first.alloc_ns, last.alloc_ns))
    }
}

/// Whether `what` counts block `b` at `t`.
pub fn counted_at(analysis: &Analysis, b: &Block, t: u64, what: Selection) -> bool {
    let temporary = what == Selection::Temporary && analysis.is_temporary(b.id);
    what.counts(b.alloc_ns, b.free_ns, t, temporary)
}

/// The first index in `0..len` for which `before` is false (`before` must be true then false).
fn partition(len: usize, before: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0usize, len);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if before(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Bits below the dense stack in a key of [`Live::per_class`] (a size class is below 65).
pub const CLASS_KEY_BITS: u32 = 8;
/// Bits below the dense stack in a key of [`Live::per_thread`] (a thread index is a `u32`).
pub const THREAD_KEY_BITS: u32 = 32;

/// Aggregates of the blocks a selection counts at one moment.
#[derive(Default)]
pub struct Live {
    /// The moment and the selection counted, once built.
    at: Option<(u64, Selection)>,
    pub per_stack: Vec<Agg>,
    /// Key: dense stack << [`CLASS_KEY_BITS`] | size class.
    pub per_class: IntMap<u64, Agg>,
    /// Key: dense stack << [`THREAD_KEY_BITS`] | thread index.
    pub per_thread: IntMap<u64, Agg>,
    pub total: Agg,
}

/// Adds (or with `sign` −1 removes) a block of `size` bytes to the totals under `key`, which
/// go away when no block is left under it.
fn add_keyed(totals: &mut IntMap<u64, Agg>, key: u64, size: u64, sign: i8) {
    let entry = totals.entry(key).or_default();
    entry.add(size, sign);
    if entry.blocks == 0 {
        totals.remove(&key);
    }
}

/// Beyond this many events between two moments, rebuilding from the analyzer's snapshot is
/// cheaper than applying them one by one.
const REBUILD_FACTOR: usize = 2;

impl Live {
    fn apply(&mut self, index: &ScrubIndex, b: &Block, sign: i8) {
        let Some(d) = index.dense(b.stack) else { return };
        self.per_stack[d as usize].add(b.size, sign);
        self.total.add(b.size, sign);
        let class_key = u64::from(d) << CLASS_KEY_BITS | u64::from(size_class(b.size));
        add_keyed(&mut self.per_class, class_key, b.size, sign);
        let thread_key = u64::from(d) << THREAD_KEY_BITS | u64::from(b.thread.0);
        add_keyed(&mut self.per_thread, thread_key, b.size, sign);
    }

    fn rebuild(&mut self, index: &ScrubIndex, analysis: &Analysis, t: u64, what: Selection) {
        *self = Live { per_stack: vec![Agg::default(); index.stack_count()], ..Live::default() };
        let snapshot = analysis.select(t, &AllocWindow::all(), what);
        for b in analysis.blocks(&snapshot) {
            self.apply(index, &b, 1);
        }
        self.at = Some((t, what));
    }

    /// Brings the aggregates to moment `t`, counting what `what` selects.
    pub fn move_to(&mut self, index: &ScrubIndex, analysis: &Analysis, t: u64, what: Selection) {
        let Some((from, _)) = self.at.filter(|&(_, counted)| counted == what) else {
            return self.rebuild(index, analysis, t, what);
        };
        if from == t {
            return;
        }
        let (lo, hi) = (from.min(t), from.max(t));
        // Allocations matter to outstanding and allocated blocks, frees to outstanding and
        // temporary ones.
        let allocs = match what {
            Selection::Temporary => 0..0,
            _ => index.alloc_boundary(analysis, lo)..index.alloc_boundary(analysis, hi),
        };
        let frees = match what {
            Selection::Allocated => 0..0,
            _ => index.free_boundary(analysis, lo)..index.free_boundary(analysis, hi),
        };
        if allocs.len() + frees.len() > REBUILD_FACTOR * (self.total.blocks as usize) + 4096 {
            return self.rebuild(index, analysis, t, what);
        }
        // A block counted at hi and not at lo is added going forward, taken away going back; one
        // counted at lo and not at hi the other way round.
        let (gained, lost) = if t > from { (1, -1) } else { (-1, 1) };
        for id in allocs {
            if let Some(b) = block(analysis, id as u32) {
                // Allocated in (lo, hi]: never counted at lo.
                if counted_at(analysis, &b, hi, what) {
                    self.apply(index, &b, gained);
                }
            }
        }
        for &id in &index.by_free[frees] {
            if let Some(b) = block(analysis, id) {
                // Freed in (lo, hi]: an outstanding block allocated by lo was counted at lo and
                // is not at hi; a temporary one is counted at hi only.
                match what {
                    Selection::Outstanding if b.alloc_ns <= lo => self.apply(index, &b, lost),
                    Selection::Temporary if counted_at(analysis, &b, hi, what) => {
                        self.apply(index, &b, gained)
                    }
                    _ => {}
                }
            }
        }
        self.at = Some((t, what));
    }
}
