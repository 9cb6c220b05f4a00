//! Grouping the blocks outstanding at a moment: by full stack, by function (inclusive: every
//! function on a block's stack is credited once per block, like a bottom-up profile), by exact
//! size, by power-of-two size class, or by thread; and ranking the groups.
//!
//! Grouping is flat: the snapshot holds each outstanding block's fields (read from the store
//! when it was found live), the blocks' positions are ordered by key with a counting sort
//! when keys are dense (stack ids, threads, size classes) or a parallel sort otherwise, so each
//! group is one contiguous run; the runs are ranked by their bytes, and only then is each group
//! made, in its place and in parallel. No per-group hash maps, no per-block allocations, and
//! only small buffers (fresh memory costs a page fault per 4 KiB, a large part of a query).

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::Arc;

use rayon::prelude::*;

use crate::lifetimes::{LifetimeStore, LiveBlock, Site};
use crate::model::{BlockId, LiveTotals, StackId, ThreadIndex};
use crate::symbolize::Frame;

/// The blocks live at one moment (in allocation order), each with the fields a grouping reads,
/// taken from the store in the same read that found it live.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub(crate) at_ns: u64,
    pub(crate) blocks: Vec<LiveBlock>,
    pub(crate) totals: LiveTotals,
}

impl Snapshot {
    /// The moment (ns since the start of the trace).
    pub fn at_ns(&self) -> u64 {
        self.at_ns
    }

    /// Outstanding blocks and bytes.
    pub fn totals(&self) -> LiveTotals {
        self.totals
    }

    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// The outstanding blocks, in allocation order.
    pub fn block_ids(&self) -> impl ExactSizeIterator<Item = BlockId> + '_ {
        self.blocks.iter().map(|b| BlockId(b.id))
    }
}

/// How to group outstanding blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupBy {
    /// One group per distinct call stack.
    Stack,
    /// One group per function; a block counts for every function on its (trimmed) stack.
    Function,
    /// One group per exact size.
    Size,
    /// One group per power-of-two size class.
    SizeClass,
    /// One group per allocating thread.
    Thread,
}

impl GroupBy {
    pub fn name(self) -> &'static str {
        match self {
            GroupBy::Stack => "stack",
            GroupBy::Function => "function",
            GroupBy::Size => "size",
            GroupBy::SizeClass => "size-class",
            GroupBy::Thread => "thread",
        }
    }
}

/// What a group stands for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GroupKey {
    Stack(StackId),
    /// A function's display name (`function`, or `module+0xOFFSET` without symbols).
    Function(Arc<str>),
    Size(u64),
    /// Sizes in `size_class_bounds(class)`.
    SizeClass(u8),
    Thread(ThreadIndex),
}

/// The power-of-two class of `size`: 0 for 0, otherwise `k` such that `2^(k-1) <= size < 2^k`.
pub fn size_class(size: u64) -> u8 {
    (64 - size.leading_zeros()) as u8
}

/// Smallest and largest size of class `class`.
pub fn size_class_bounds(class: u8) -> (u64, u64) {
    match class {
        0 => (0, 0),
        64.. => (1 << 63, u64::MAX),
        k => (1 << (k - 1), (1u64 << k) - 1),
    }
}

/// One group of outstanding blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub key: GroupKey,
    pub blocks: u64,
    pub bytes: u64,
    /// Time of the group's oldest and newest outstanding allocation.
    pub first_alloc_ns: u64,
    pub last_alloc_ns: u64,
    /// Threads that allocated the group's blocks, sorted.
    pub threads: Vec<ThreadIndex>,
    /// Stacks of the group's blocks, most bytes first.
    pub stacks: Vec<StackId>,
    /// For function groups: the function's frame (file and line as seen on the heaviest stack).
    pub frame: Option<Box<Frame>>,
    /// The group's block ids in [`Grouping::members`] (empty for function groups, whose blocks
    /// come from their stacks).
    members: Range<u32>,
}

/// A group's rank as one sortable value: (primary figure, bytes, blocks) complemented so that
/// larger sorts first, then the key's order, then the group's position.
type RankKey = (u64, u64, u64, u64, u32);

/// How groups are ranked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SortBy {
    Bytes,
    Blocks,
    /// Most recent allocation first.
    Newest,
}

/// Outstanding blocks at one moment, grouped and ranked (by bytes unless re-sorted).
#[derive(Debug, Clone)]
pub struct Grouping {
    pub by: GroupBy,
    pub at_ns: u64,
    /// All outstanding blocks and bytes at `at_ns` (function groups overlap, so the groups'
    /// sums can exceed this).
    pub totals: LiveTotals,
    pub groups: Vec<Group>,
    /// Block ids of every group (or of every stack, for function groups), each group's a
    /// contiguous run in allocation order.
    members: Vec<u32>,
    /// Each stack's run of `members`, for function groups.
    by_stack: HashMap<u32, Range<u32>>,
}

impl Grouping {
    /// Re-ranks the groups; ties are broken by bytes, then by key.
    pub fn sort(&mut self, by: SortBy) {
        let order = |a: &Group, b: &Group| {
            let primary = match by {
                SortBy::Bytes => b.bytes.cmp(&a.bytes),
                SortBy::Blocks => b.blocks.cmp(&a.blocks),
                SortBy::Newest => b.last_alloc_ns.cmp(&a.last_alloc_ns),
            };
            primary.then(b.bytes.cmp(&a.bytes)).then(b.blocks.cmp(&a.blocks)).then_with(|| a.key.cmp(&b.key))
        };
        if self.groups.len() < PARALLEL_GROUPS {
            self.groups.sort_by(order);
            return;
        }
        // Many groups (of one key kind other than function): sort compact keys, not the large
        // groups, then move each group once. Descending figures sort as their complements.
        let rank = |key: &GroupKey| match key {
            GroupKey::Stack(s) => Some(u64::from(s.0)),
            GroupKey::Size(size) => Some(*size),
            GroupKey::SizeClass(c) => Some(u64::from(*c)),
            GroupKey::Thread(t) => Some(u64::from(t.0)),
            GroupKey::Function(_) => None,
        };
        let keys: Option<Vec<RankKey>> = self
            .groups
            .par_iter()
            .enumerate()
            .map(|(i, g)| {
                let primary = match by {
                    SortBy::Bytes => g.bytes,
                    SortBy::Blocks => g.blocks,
                    SortBy::Newest => g.last_alloc_ns,
                };
                rank(&g.key).map(|r| (!primary, !g.bytes, !g.blocks, r, i as u32))
            })
            .collect();
        let Some(mut keys) = keys else {
            self.groups.par_sort_by(order);
            return;
        };
        keys.par_sort_unstable();
        let mut taken: Vec<Option<Group>> = std::mem::take(&mut self.groups).into_iter().map(Some).collect();
        self.groups = keys.iter().filter_map(|k| taken[k.4 as usize].take()).collect();
    }

    /// The outstanding blocks of `group` (one of `self.groups`), in allocation order.
    pub fn block_ids(&self, group: &Group) -> Vec<BlockId> {
        let run = |r: &Range<u32>| self.members.get(r.start as usize..r.end as usize).unwrap_or(&[]);
        if !matches!(group.key, GroupKey::Function(_)) {
            return run(&group.members).iter().map(|&i| BlockId(i)).collect();
        }
        let mut ids: Vec<u32> =
            group.stacks.iter().filter_map(|s| self.by_stack.get(&s.0)).flat_map(run).copied().collect();
        ids.sort_unstable();
        ids.dedup();
        ids.into_iter().map(BlockId).collect()
    }
}

/// Snapshots at least this large are gathered, ordered and summed in parallel.
const PARALLEL_BLOCKS: usize = 32 * 1024;
/// Groupings with at least this many groups are summed, ranked and made in parallel.
const PARALLEL_GROUPS: usize = 4 * 1024;

/// The site (stack and thread) of each block of `blocks`, in their order (looked up in
/// parallel when there are many; the site table is small, so this stays in the cache).
fn sites_of(store: &LifetimeStore, blocks: &[LiveBlock]) -> Vec<Site> {
    let site = |b: &LiveBlock| store.site_by_id(b.site);
    if blocks.len() >= PARALLEL_BLOCKS {
        blocks.par_iter().map(site).collect()
    } else {
        blocks.iter().map(site).collect()
    }
}

/// The positions `0..n` ordered by `key` (each key's positions ascending, i.e. in allocation
/// order), and each key's run of them. A counting sort when the keys are below `dense` (and
/// that bound is not much larger than `n`), otherwise a sort of (key, position) pairs.
fn order_by_key(
    n: usize,
    key: impl Fn(usize) -> u64 + Sync,
    dense: Option<u64>,
) -> (Vec<u32>, Vec<(u64, Range<u32>)>) {
    if let Some(bound) = dense.filter(|&b| b as usize <= 4 * n + (1 << 20)) {
        return counting_order(n, &key, bound as usize);
    }
    let mut keyed: Vec<(u64, u32)> = if n >= PARALLEL_BLOCKS {
        (0..n).into_par_iter().map(|p| (key(p), p as u32)).collect()
    } else {
        (0..n).map(|p| (key(p), p as u32)).collect()
    };
    if n >= PARALLEL_BLOCKS {
        keyed.par_sort_unstable();
    } else {
        keyed.sort_unstable();
    }
    let mut runs: Vec<(u64, Range<u32>)> = Vec::new();
    for (pos, &(k, _)) in keyed.iter().enumerate() {
        match runs.last_mut() {
            Some((last, range)) if *last == k => range.end = pos as u32 + 1,
            _ => runs.push((k, pos as u32..pos as u32 + 1)),
        }
    }
    (keyed.into_iter().map(|(_, p)| p).collect(), runs)
}

/// A stable counting sort of the positions `0..n` by `key` (all below `bound`): counted in
/// parallel parts, then placed in one pass.
fn counting_order(
    n: usize,
    key: &(impl Fn(usize) -> u64 + Sync),
    bound: usize,
) -> (Vec<u32>, Vec<(u64, Range<u32>)>) {
    let parts = (n / PARALLEL_BLOCKS).clamp(1, rayon::current_num_threads().max(1));
    let part_len = n.div_ceil(parts).max(1);
    let count = |part: usize| {
        let mut c = vec![0u32; bound];
        for p in part * part_len..((part + 1) * part_len).min(n) {
            if let Some(slot) = c.get_mut(key(p) as usize) {
                *slot += 1;
            }
        }
        c
    };
    let mut counts: Vec<Vec<u32>> =
        if parts > 1 { (0..parts).into_par_iter().map(count).collect() } else { vec![count(0)] };
    // Counts become each part's first slot per key: keys in order, parts in order within a key.
    let mut runs = Vec::new();
    let mut next = 0u32;
    for k in 0..bound {
        let start = next;
        for c in counts.iter_mut() {
            let here = c[k];
            c[k] = next;
            next += here;
        }
        if next > start {
            runs.push((k as u64, start..next));
        }
    }
    let mut order = vec![0u32; n];
    for (part, slots) in counts.iter_mut().enumerate() {
        for p in part * part_len..((part + 1) * part_len).min(n) {
            if let Some(slot) = slots.get_mut(key(p) as usize)
                && let Some(out) = order.get_mut(*slot as usize)
            {
                *out = p as u32;
                *slot += 1;
            }
        }
    }
    (order, runs)
}

/// Threads of a group's blocks, sorted and distinct.
fn threads_of(rows: &[Site], run: &[u32]) -> Vec<ThreadIndex> {
    let mut threads: Vec<u32> = Vec::new();
    for &p in run {
        let t = rows[p as usize].thread;
        if threads.last() != Some(&t) && !threads.contains(&t) {
            threads.push(t);
        }
    }
    threads.sort_unstable();
    threads.into_iter().map(ThreadIndex).collect()
}

/// Stacks by bytes (most first, ties by id) from (stack, size) pairs.
fn ranked_stacks(mut pairs: Vec<(u32, u64)>) -> Vec<StackId> {
    pairs.sort_unstable_by_key(|p| p.0);
    let mut sums: Vec<(u32, u64)> = Vec::new();
    for (stack, size) in pairs {
        match sums.last_mut() {
            Some((s, b)) if *s == stack => *b += size,
            _ => sums.push((stack, size)),
        }
    }
    sums.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    sums.into_iter().map(|(s, _)| StackId(s)).collect()
}

/// A stack's figures while grouping by stack: summed per part of the snapshot, then merged.
#[derive(Debug, Clone, Copy, Default)]
struct StackSums {
    bytes: u64,
    /// Bit `t` for each thread `t` below [`MASK_THREADS`]; higher threads are listed apart.
    threads: u64,
    blocks: u32,
    /// Snapshot positions of the stack's first and last block.
    first: u32,
    last: u32,
}

/// A part's sums by stack, and the (stack, thread) pairs of its threads beyond the mask.
type PartSums = (Vec<StackSums>, Vec<(u32, u32)>);

/// Threads kept in [`StackSums::threads`].
const MASK_THREADS: u32 = 64;

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

/// Groups `snapshot` by stack with one dense table of sums per part (no ordering of blocks
/// before the groups are known); `None` when stack ids are too sparse for dense tables.
fn group_by_stack_dense(store: &LifetimeStore, snapshot: &Snapshot) -> Option<Grouping> {
    let blocks = &snapshot.blocks;
    let n = blocks.len();
    let bound = store.max_stack() as usize + 1;
    if bound > 4 * n + (1 << 16) {
        return None;
    }
    let sites = &store.sites;
    let site_of = |b: &LiveBlock| sites.get(b.site as usize).copied().unwrap_or(Site { stack: 0, thread: 0 });
    let size = |b: &LiveBlock| store.full_size(b.id, b.size32);
    let parts = (n / PARALLEL_BLOCKS).clamp(1, rayon::current_num_threads().max(1));
    let part_len = n.div_ceil(parts).max(1);
    // Each part: its stacks' sums, and (stack, thread) of its blocks of threads beyond the mask.
    let sum_part = |part: usize| {
        let mut sums = vec![StackSums::default(); bound];
        let mut high_threads: Vec<(u32, u32)> = Vec::new();
        let from = part * part_len;
        for (k, b) in blocks.iter().enumerate().take(n.min(from + part_len)).skip(from) {
            let site = site_of(b);
            let Some(s) = sums.get_mut(site.stack as usize) else { continue };
            if s.blocks == 0 {
                s.first = k as u32;
            }
            s.last = k as u32;
            s.blocks += 1;
            s.bytes += size(b);
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
    let (first, rest) = per_part.split_first_mut()?;
    let sums = &mut first.0;
    if !rest.is_empty() {
        sums.par_iter_mut().enumerate().with_min_len(4096).for_each(|(k, s)| {
            for (other, _) in rest.iter() {
                s.merge(&other[k]);
            }
        });
    }
    // Each stack's run of members, in stack order; members in allocation order within a run.
    let mut next = vec![0u32; bound];
    let mut stacks: Vec<u32> = Vec::new();
    let mut at = 0u32;
    for (k, s) in sums.iter().enumerate() {
        if s.blocks > 0 {
            next[k] = at;
            at += s.blocks;
            stacks.push(k as u32);
        }
    }
    let mut members = vec![0u32; n];
    for b in blocks {
        if let Some(slot) = next.get_mut(site_of(b).stack as usize)
            && let Some(m) = members.get_mut(*slot as usize)
        {
            *m = b.id;
            *slot += 1;
        }
    }
    let rank = |&k: &u32| {
        let s = &sums[k as usize];
        (!s.bytes, !u64::from(s.blocks), k)
    };
    let mut ranked: Vec<(u64, u64, u32)> = if stacks.len() >= PARALLEL_GROUPS {
        stacks.par_iter().map(rank).collect()
    } else {
        stacks.iter().map(rank).collect()
    };
    if ranked.len() >= PARALLEL_GROUPS {
        ranked.par_sort_unstable();
    } else {
        ranked.sort_unstable();
    }
    let alloc_ns =
        |pos: u32| blocks.get(pos as usize).map_or(0, |b| store.alloc_ns_from_low(b.id, b.alloc_low));
    let make = |&(_, _, k): &(u64, u64, u32)| {
        let s = &sums[k as usize];
        let end = next[k as usize];
        let mut threads: Vec<ThreadIndex> =
            (0..MASK_THREADS).filter(|t| s.threads & (1 << t) != 0).map(ThreadIndex).collect();
        let high = high_threads.partition_point(|&(stack, _)| stack < k);
        threads.extend(
            high_threads[high..].iter().take_while(|&&(stack, _)| stack == k).map(|&(_, t)| ThreadIndex(t)),
        );
        Group {
            key: GroupKey::Stack(StackId(k)),
            blocks: u64::from(s.blocks),
            bytes: s.bytes,
            first_alloc_ns: alloc_ns(s.first),
            last_alloc_ns: alloc_ns(s.last),
            threads,
            stacks: vec![StackId(k)],
            frame: None,
            members: end - s.blocks..end,
        }
    };
    let groups: Vec<Group> = if ranked.len() >= PARALLEL_GROUPS {
        ranked.par_iter().map(make).collect()
    } else {
        ranked.iter().map(make).collect()
    };
    Some(Grouping {
        by: GroupBy::Stack,
        at_ns: snapshot.at_ns,
        totals: snapshot.totals,
        groups,
        members,
        by_stack: HashMap::new(),
    })
}

/// Groups `snapshot` by anything but function.
pub(crate) fn group_simple(store: &LifetimeStore, snapshot: &Snapshot, by: GroupBy) -> Grouping {
    if matches!(by, GroupBy::Stack | GroupBy::Function)
        && let Some(grouping) = group_by_stack_dense(store, snapshot)
    {
        return grouping;
    }
    group_by_order(store, snapshot, by)
}

/// Groups `snapshot` by ordering its blocks by key (any grouping but function).
fn group_by_order(store: &LifetimeStore, snapshot: &Snapshot, by: GroupBy) -> Grouping {
    let blocks = &snapshot.blocks;
    let rows = sites_of(store, blocks);
    let size = |p: usize| store.full_size(blocks[p].id, blocks[p].size32);
    let (order, runs) = match by {
        GroupBy::Stack | GroupBy::Function => {
            order_by_key(rows.len(), |p| u64::from(rows[p].stack), Some(u64::from(store.max_stack()) + 1))
        }
        GroupBy::Thread => {
            let bound = store.sites.iter().map(|s| s.thread).max().map_or(1, |t| u64::from(t) + 1);
            order_by_key(rows.len(), |p| u64::from(rows[p].thread), Some(bound))
        }
        GroupBy::Size => order_by_key(rows.len(), size, None),
        GroupBy::SizeClass => order_by_key(rows.len(), |p| u64::from(size_class(size(p))), Some(65)),
    };
    let group_key = |k: u64| match by {
        GroupBy::Stack | GroupBy::Function => GroupKey::Stack(StackId(k as u32)),
        GroupBy::Size => GroupKey::Size(k),
        GroupBy::SizeClass => GroupKey::SizeClass(k as u8),
        GroupBy::Thread => GroupKey::Thread(ThreadIndex(k as u32)),
    };
    let run_of = |r: &Range<u32>| &order[r.start as usize..r.end as usize];
    // Rank first, from each run's bytes alone: (bytes, blocks, key), so that each group is made
    // once, in its place, with only what it needs.
    let rank = |(i, (k, r)): (usize, &(u64, Range<u32>))| {
        let bytes: u64 = run_of(r).iter().map(|&p| size(p as usize)).sum();
        (!bytes, !u64::from(r.end - r.start), *k, i)
    };
    let mut ranked: Vec<(u64, u64, u64, usize)> = if runs.len() >= PARALLEL_GROUPS {
        runs.par_iter().enumerate().map(rank).collect()
    } else {
        runs.iter().enumerate().map(rank).collect()
    };
    if ranked.len() >= PARALLEL_GROUPS {
        ranked.par_sort_unstable();
    } else {
        ranked.sort_unstable();
    }
    let by_stack = matches!(by, GroupBy::Stack | GroupBy::Function);
    let make = |&(not_bytes, _, k, i): &(u64, u64, u64, usize)| {
        let r = runs[i].1.clone();
        let run = run_of(&r);
        let alloc_ns = |p: Option<&u32>| {
            p.map_or(0, |&p| store.alloc_ns_from_low(blocks[p as usize].id, blocks[p as usize].alloc_low))
        };
        let stacks = if by_stack {
            vec![StackId(k as u32)]
        } else {
            ranked_stacks(run.iter().map(|&p| (rows[p as usize].stack, size(p as usize))).collect())
        };
        Group {
            key: group_key(k),
            blocks: u64::from(r.end - r.start),
            bytes: !not_bytes,
            first_alloc_ns: alloc_ns(run.first()),
            last_alloc_ns: alloc_ns(run.last()),
            threads: threads_of(&rows, run),
            stacks,
            frame: None,
            members: r,
        }
    };
    let groups: Vec<Group> = if ranked.len() >= PARALLEL_GROUPS {
        ranked.par_iter().map(make).collect()
    } else {
        ranked.iter().map(make).collect()
    };
    let members = if order.len() >= PARALLEL_BLOCKS {
        order.par_iter().map(|&p| blocks[p as usize].id).collect()
    } else {
        order.iter().map(|&p| blocks[p as usize].id).collect()
    };
    // Already ranked by bytes (as `sort(SortBy::Bytes)` would).
    Grouping { by, at_ns: snapshot.at_ns, totals: snapshot.totals, groups, members, by_stack: HashMap::new() }
}

/// Groups `snapshot` by function, given each stack's trimmed frames.
pub(crate) fn group_by_function(
    store: &LifetimeStore,
    snapshot: &Snapshot,
    frames_of: &dyn Fn(u32) -> Arc<[Frame]>,
) -> Grouping {
    let Grouping { groups: stack_groups, members, .. } = group_simple(store, snapshot, GroupBy::Stack);
    let mut functions: HashMap<Arc<str>, Group> = HashMap::new();
    let mut by_stack = HashMap::new();
    // Heaviest stacks first, so each function's frame comes from its heaviest stack.
    for stack_group in stack_groups {
        let GroupKey::Stack(stack) = stack_group.key else { continue };
        let frames = frames_of(stack.0);
        let mut credited: HashSet<String> = HashSet::new();
        for frame in frames.iter() {
            let name = frame.display_name();
            if !credited.insert(name.clone()) {
                continue;
            }
            let name: Arc<str> = name.into();
            let g = functions.entry(name.clone()).or_insert_with(|| Group {
                key: GroupKey::Function(name),
                blocks: 0,
                bytes: 0,
                first_alloc_ns: stack_group.first_alloc_ns,
                last_alloc_ns: stack_group.last_alloc_ns,
                threads: Vec::new(),
                stacks: Vec::new(),
                frame: Some(Box::new(frame.clone())),
                members: 0..0,
            });
            g.blocks += stack_group.blocks;
            g.bytes += stack_group.bytes;
            g.first_alloc_ns = g.first_alloc_ns.min(stack_group.first_alloc_ns);
            g.last_alloc_ns = g.last_alloc_ns.max(stack_group.last_alloc_ns);
            g.threads.extend(stack_group.threads.iter().copied());
            g.stacks.push(stack);
        }
        by_stack.insert(stack.0, stack_group.members);
    }
    let groups = functions
        .into_values()
        .map(|mut g| {
            g.threads.sort_unstable();
            g.threads.dedup();
            g
        })
        .collect();
    let mut grouping = Grouping {
        by: GroupBy::Function,
        at_ns: snapshot.at_ns,
        totals: snapshot.totals,
        groups,
        members,
        by_stack,
    };
    grouping.sort(SortBy::Bytes);
    grouping
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store of `n` blocks over `stacks` stacks and `threads` threads, half of them freed.
    fn random_store(n: u32, stacks: u32, threads: u32) -> LifetimeStore {
        let mut store = LifetimeStore::default();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut sites = Vec::new();
        for i in 0..n {
            let site = sites.len() as u32;
            sites.push(Site {
                stack: 1 + (next() % u64::from(stacks)) as u32,
                thread: (next() % u64::from(threads)) as u32,
            });
            let size = if next() % 1000 == 0 { 5 << 32 } else { 1 + next() % 5000 };
            store.push(u64::from(i) * 3, 0x1000 + u64::from(i) * 16, size, site);
            if next() % 2 == 0 {
                store.set_free(i, u64::from(i) * 3 + 1 + next() % 1000);
            }
        }
        store.set_sites(sites);
        store
    }

    fn snapshot_at(store: &LifetimeStore, t: u64) -> Snapshot {
        let blocks: Vec<LiveBlock> = (0..store.len() as u32).filter_map(|i| store.live_block(i, t)).collect();
        let bytes = blocks.iter().map(|b| store.full_size(b.id, b.size32)).sum();
        Snapshot { at_ns: t, totals: LiveTotals { blocks: blocks.len() as u64, bytes }, blocks }
    }

    #[test]
    fn dense_stack_grouping_agrees_with_grouping_by_order() {
        // Enough blocks for several parallel parts; threads beyond the dense thread mask.
        for (n, stacks, threads) in [(300_000, 5_000, 70), (5_000, 40, 3)] {
            let store = random_store(n, stacks, threads);
            let snapshot = snapshot_at(&store, u64::from(n) * 2);
            assert!(snapshot.len() > n as usize / 4);
            let dense = group_by_stack_dense(&store, &snapshot).map(|g| {
                let members: Vec<Vec<BlockId>> = g.groups.iter().map(|x| g.block_ids(x)).collect();
                (g.groups, members)
            });
            let ordered = group_by_order(&store, &snapshot, GroupBy::Stack);
            let members: Vec<Vec<BlockId>> = ordered.groups.iter().map(|x| ordered.block_ids(x)).collect();
            let strip = |groups: Vec<Group>| -> Vec<Group> {
                groups.into_iter().map(|g| Group { members: 0..0, ..g }).collect()
            };
            let (dense_groups, dense_members) = dense.expect("dense tables apply");
            assert_eq!(strip(dense_groups), strip(ordered.groups.clone()));
            assert_eq!(dense_members, members);
            assert!(ordered.groups.iter().any(|g| g.threads.len() > 1));
        }
    }

    #[test]
    fn size_classes_are_powers_of_two() {
        assert_eq!(size_class(0), 0);
        assert_eq!(size_class(1), 1);
        assert_eq!(size_class(2), 2);
        assert_eq!(size_class(3), 2);
        assert_eq!(size_class(4), 3);
        assert_eq!(size_class(4096), 13);
        assert_eq!(size_class_bounds(13), (4096, 8191));
        assert_eq!(size_class_bounds(1), (1, 1));
        for size in [1u64, 7, 8, 1000, 1 << 40, u64::MAX] {
            let (lo, hi) = size_class_bounds(size_class(size));
            assert!(lo <= size && size <= hi, "{size}");
        }
    }
}
