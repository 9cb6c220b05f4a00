//! Grouping the blocks outstanding at a moment: by full stack, by function (inclusive: every
//! function on a block's stack is credited once per block, like a bottom-up profile), by exact
//! size, by power-of-two size class, or by thread; and ranking the groups.
//!
//! Grouping by stack (the default, and the one a time query must answer fast) sums into a
//! dense table and makes groups only when they are read: see `by_stack.rs`. The other
//! groupings are flat: the snapshot holds each outstanding block's fields (read from the store
//! when it was found live), the blocks' positions are ordered by key with a counting sort
//! when keys are dense (stack ids, threads, size classes) or a parallel sort otherwise, so each
//! group is one contiguous run; the runs are ranked by their bytes, and only then is each group
//! made, in its place and in parallel. No per-group hash maps, no per-block allocations, and
//! only small buffers (fresh memory costs a page fault per 4 KiB, a large part of a query).

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::Arc;

use rayon::prelude::*;

mod by_stack;
mod merge;

use crate::lifetimes::{LifetimeStore, LiveBlock, Site};
use crate::model::{BlockId, LiveTotals, StackId, ThreadIndex};
use crate::symbolize::Frame;
pub(crate) use by_stack::ScratchPool;
use by_stack::StackGroups;
pub(crate) use merge::merge_alike;

/// The blocks live at one moment (in allocation order), each with the fields a grouping reads,
/// taken from the store in the same read that found it live.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub(crate) at_ns: u64,
    /// Shared with the groupings made from it.
    pub(crate) blocks: Arc<Vec<LiveBlock>>,
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
    /// The group's block ids in [`Grouping::members`] (empty for groups made from stack groups,
    /// by function or merged, whose blocks come from their stacks).
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

/// Outstanding blocks at one moment, grouped and ranked (by bytes unless re-sorted). Groups
/// by stack are made only when read ([`Grouping::top`], [`Grouping::group`],
/// [`Grouping::iter`]), so a query that shows a few of 200k stacks makes only those.
#[derive(Debug, Clone)]
pub struct Grouping {
    pub by: GroupBy,
    pub at_ns: u64,
    /// All outstanding blocks and bytes at `at_ns` (function groups overlap, so the groups'
    /// sums can exceed this).
    pub totals: LiveTotals,
    groups: Groups,
}

#[derive(Debug, Clone)]
enum Groups {
    /// Every group made, ranked.
    Made {
        groups: Vec<Group>,
        /// Block ids of every group (or of every stack, for groups made from stack groups),
        /// each group's (or stack's) a contiguous run in allocation order.
        members: Vec<u32>,
        /// Each stack's run of `members`, for groups made from stack groups (by function, or
        /// stacks that read alike merged); empty otherwise.
        by_stack: HashMap<u32, Range<u32>>,
    },
    /// Sums by stack; groups made on demand.
    Stacks(StackGroups),
}

impl Grouping {
    /// Number of groups.
    pub fn len(&self) -> usize {
        match &self.groups {
            Groups::Made { groups, .. } => groups.len(),
            Groups::Stacks(s) => s.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The group ranked `rank` (0: the first).
    pub fn group(&self, rank: usize) -> Option<Group> {
        match &self.groups {
            Groups::Made { groups, .. } => groups.get(rank).cloned(),
            Groups::Stacks(s) => s.group(rank),
        }
    }

    /// The best `n` groups (all of them if there are fewer), in rank order.
    pub fn top(&self, n: usize) -> Vec<Group> {
        match &self.groups {
            Groups::Made { groups, .. } => groups.iter().take(n).cloned().collect(),
            Groups::Stacks(s) => s.top(n),
        }
    }

    /// Every group, in rank order.
    pub fn iter(&self) -> impl Iterator<Item = Group> + '_ {
        (0..self.len()).map_while(move |rank| self.group(rank))
    }

    /// Every group, in rank order, as one list.
    pub fn all(&self) -> Vec<Group> {
        self.top(usize::MAX)
    }

    /// The stacks of every group, in no particular order.
    pub(crate) fn stack_ids(&self) -> Vec<StackId> {
        match &self.groups {
            Groups::Made { groups, .. } => {
                let mut stacks: Vec<StackId> = groups.iter().flat_map(|g| g.stacks.iter().copied()).collect();
                stacks.sort_unstable();
                stacks.dedup();
                stacks
            }
            Groups::Stacks(s) => s.non_empty_stacks().map(StackId).collect(),
        }
    }

    /// Re-ranks the groups; ties are broken by bytes, then by blocks, then by key (function
    /// groups tied keep their order: nearest the allocations first).
    pub fn sort(&mut self, by: SortBy) {
        match &mut self.groups {
            Groups::Made { groups, .. } => sort_groups(groups, by),
            Groups::Stacks(s) => s.sort(by),
        }
    }

    /// The outstanding blocks of `group` (one of this grouping's), in allocation order.
    pub fn block_ids(&self, group: &Group) -> Vec<BlockId> {
        let (members, by_stack) = match &self.groups {
            Groups::Stacks(s) => {
                let GroupKey::Stack(stack) = group.key else { return Vec::new() };
                return s.block_ids(stack.0);
            }
            Groups::Made { members, by_stack, .. } => (members, by_stack),
        };
        let run = |r: &Range<u32>| members.get(r.start as usize..r.end as usize).unwrap_or(&[]);
        if by_stack.is_empty() {
            return run(&group.members).iter().map(|&i| BlockId(i)).collect();
        }
        let mut ids: Vec<u32> =
            group.stacks.iter().filter_map(|s| by_stack.get(&s.0)).flat_map(run).copied().collect();
        ids.sort_unstable();
        ids.dedup();
        ids.into_iter().map(BlockId).collect()
    }
}

/// Ranks `groups` by `by`; ties are broken by bytes, then by blocks, then by key, except that
/// function groups tied keep their order (the sort is stable): [`group_by_function`] made them
/// nearest the allocations first, so a chain of callers holding the same blocks still reads
/// from the allocating function outward.
fn sort_groups(groups: &mut Vec<Group>, by: SortBy) {
    let order = |a: &Group, b: &Group| {
        let primary = match by {
            SortBy::Bytes => b.bytes.cmp(&a.bytes),
            SortBy::Blocks => b.blocks.cmp(&a.blocks),
            SortBy::Newest => b.last_alloc_ns.cmp(&a.last_alloc_ns),
        };
        primary.then(b.bytes.cmp(&a.bytes)).then(b.blocks.cmp(&a.blocks)).then_with(|| {
            match (&a.key, &b.key) {
                (GroupKey::Function(_), GroupKey::Function(_)) => std::cmp::Ordering::Equal,
                _ => a.key.cmp(&b.key),
            }
        })
    };
    if groups.len() < PARALLEL_GROUPS {
        groups.sort_by(order);
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
    let keys: Option<Vec<RankKey>> = groups
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
        groups.par_sort_by(order);
        return;
    };
    keys.par_sort_unstable();
    let mut taken: Vec<Option<Group>> = std::mem::take(groups).into_iter().map(Some).collect();
    *groups = keys.iter().filter_map(|k| taken[k.4 as usize].take()).collect();
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

/// Groups `snapshot` by anything but function (`GroupBy::Function` gives the stack groups a
/// function grouping is made from).
pub(crate) fn group_simple(
    store: &Arc<LifetimeStore>,
    pool: &Arc<ScratchPool>,
    snapshot: &Snapshot,
    by: GroupBy,
) -> Grouping {
    if matches!(by, GroupBy::Stack | GroupBy::Function)
        && let Some(stacks) = StackGroups::new(store, pool, snapshot)
    {
        return Grouping {
            by: GroupBy::Stack,
            at_ns: snapshot.at_ns,
            totals: snapshot.totals,
            groups: Groups::Stacks(stacks),
        };
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
    Grouping {
        by,
        at_ns: snapshot.at_ns,
        totals: snapshot.totals,
        groups: Groups::Made { groups, members, by_stack: HashMap::new() },
    }
}

/// A grouping by stack taken apart: every stack's group (in rank order), the block ids of
/// every stack, and each stack's run of them. Groupings made from stack groups (by function,
/// or stacks that read alike merged) find their blocks through the runs.
pub(crate) struct StackParts {
    pub groups: Vec<Group>,
    pub members: Vec<u32>,
    pub by_stack: HashMap<u32, Range<u32>>,
}

impl StackParts {
    /// Takes apart `grouping`, a grouping by stack.
    pub fn of(grouping: Grouping) -> Self {
        match grouping.groups {
            Groups::Stacks(s) => {
                let groups = s.top(usize::MAX);
                let (members, by_stack) = s.into_members_by_stack();
                StackParts { groups, members, by_stack }
            }
            Groups::Made { groups, members, by_stack } if !by_stack.is_empty() => {
                StackParts { groups, members, by_stack }
            }
            Groups::Made { groups, members, .. } => {
                let by_stack = groups
                    .iter()
                    .filter_map(|g| match g.key {
                        GroupKey::Stack(stack) => Some((stack.0, g.members.clone())),
                        _ => None,
                    })
                    .collect();
                StackParts { groups, members, by_stack }
            }
        }
    }
}

/// Groups `snapshot` by function, given each stack's trimmed frames.
pub(crate) fn group_by_function(
    store: &Arc<LifetimeStore>,
    pool: &Arc<ScratchPool>,
    snapshot: &Snapshot,
    frames_of: &dyn Fn(u32) -> Arc<[Frame]>,
) -> Grouping {
    let StackParts { groups: stack_groups, members, by_stack } =
        StackParts::of(group_simple(store, pool, snapshot, GroupBy::Stack));
    // Each function's group, and how near the allocations it comes on any of its stacks
    // (0: innermost).
    let mut functions: HashMap<Arc<str>, (Group, usize)> = HashMap::new();
    // Heaviest stacks first, so each function's frame comes from its heaviest stack.
    for stack_group in stack_groups {
        let GroupKey::Stack(stack) = stack_group.key else { continue };
        let frames = frames_of(stack.0);
        let mut credited: HashSet<String> = HashSet::new();
        for (depth, frame) in frames.iter().enumerate() {
            let name = frame.display_name();
            if !credited.insert(name.clone()) {
                continue;
            }
            let name: Arc<str> = name.into();
            let (g, nearest) = functions.entry(name.clone()).or_insert_with(|| {
                let group = Group {
                    key: GroupKey::Function(name),
                    blocks: 0,
                    bytes: 0,
                    first_alloc_ns: stack_group.first_alloc_ns,
                    last_alloc_ns: stack_group.last_alloc_ns,
                    threads: Vec::new(),
                    stacks: Vec::new(),
                    frame: Some(Box::new(frame.clone())),
                    members: 0..0,
                };
                (group, depth)
            });
            *nearest = (*nearest).min(depth);
            g.blocks += stack_group.blocks;
            g.bytes += stack_group.bytes;
            g.first_alloc_ns = g.first_alloc_ns.min(stack_group.first_alloc_ns);
            g.last_alloc_ns = g.last_alloc_ns.max(stack_group.last_alloc_ns);
            g.threads.extend(stack_group.threads.iter().copied());
            g.stacks.push(stack);
        }
    }
    let mut groups: Vec<(usize, Group)> = functions
        .into_values()
        .map(|(mut g, depth)| {
            g.threads.sort_unstable();
            g.threads.dedup();
            (depth, g)
        })
        .collect();
    // Ranked by bytes, then blocks; functions tied come nearest the allocations first (a chain
    // of callers that all hold the same blocks reads from the allocating function outward),
    // then by name.
    groups.sort_by(|(depth_a, a), (depth_b, b)| {
        b.bytes
            .cmp(&a.bytes)
            .then(b.blocks.cmp(&a.blocks))
            .then(depth_a.cmp(depth_b))
            .then_with(|| a.key.cmp(&b.key))
    });
    Grouping {
        by: GroupBy::Function,
        at_ns: snapshot.at_ns,
        totals: snapshot.totals,
        groups: Groups::Made { groups: groups.into_iter().map(|(_, g)| g).collect(), members, by_stack },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store of `n` blocks over `stacks` stacks and `threads` threads, half of them freed.
    fn random_store(n: u32, stacks: u32, threads: u32) -> LifetimeStore {
        let mut store = LifetimeStore::default();
        let mut rng = leakview_format::testing::XorShift::new(0x2545_f491_4f6c_dd1d);
        let mut next = || rng.next_u64();
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
        Snapshot {
            at_ns: t,
            totals: LiveTotals { blocks: blocks.len() as u64, bytes },
            blocks: Arc::new(blocks),
        }
    }

    /// The groups of `grouping` with their block ids (the ids apart, as groups made on demand
    /// do not carry their run of members).
    fn with_members(grouping: &Grouping) -> (Vec<Group>, Vec<Vec<BlockId>>) {
        let groups = grouping.all();
        let members = groups.iter().map(|g| grouping.block_ids(g)).collect();
        (groups.into_iter().map(|g| Group { members: 0..0, ..g }).collect(), members)
    }

    #[test]
    fn lazy_stack_grouping_agrees_with_grouping_by_order() {
        // Enough blocks for several parallel parts; threads beyond the dense thread mask.
        for (n, stacks, threads) in [(300_000, 5_000, 70), (5_000, 40, 3), (20_000, 9_000, 2)] {
            let store = Arc::new(random_store(n, stacks, threads));
            let pool = Arc::new(ScratchPool::default());
            for t in [u64::from(n) * 2, u64::from(n) / 3, u64::from(n) * 3] {
                let snapshot = snapshot_at(&store, t);
                assert!(snapshot.len() > n as usize / 8);
                let mut lazy = group_simple(&store, &pool, &snapshot, GroupBy::Stack);
                assert!(matches!(lazy.groups, Groups::Stacks(_)), "dense sums apply");
                let mut ordered = group_by_order(&store, &snapshot, GroupBy::Stack);
                assert_eq!(lazy.len(), ordered.len());
                let (want, want_members) = with_members(&ordered);
                assert_eq!(with_members(&lazy), (want.clone(), want_members));
                assert!(want.iter().any(|g| g.threads.len() > 1));
                // The best few, one by rank, and re-ranking, each as the full order says.
                for k in [0, 1, 7, 100, want.len()] {
                    let fresh = group_simple(&store, &pool, &snapshot, GroupBy::Stack);
                    let top: Vec<Group> =
                        fresh.top(k).into_iter().map(|g| Group { members: 0..0, ..g }).collect();
                    assert_eq!(top[..], want[..k.min(want.len())], "top {k}");
                    let fresh = group_simple(&store, &pool, &snapshot, GroupBy::Stack);
                    assert_eq!(fresh.group(k).map(|g| g.key), want.get(k).map(|g| g.key.clone()), "rank {k}");
                }
                for by in [SortBy::Newest, SortBy::Blocks, SortBy::Bytes] {
                    lazy.sort(by);
                    ordered.sort(by);
                    let keys = |g: &Grouping| g.top(50).into_iter().map(|g| g.key).collect::<Vec<_>>();
                    assert_eq!(keys(&lazy), keys(&ordered), "{by:?}");
                    assert_eq!(lazy.all().len(), ordered.len());
                    assert_eq!(with_members(&lazy).0.last(), with_members(&ordered).0.last(), "{by:?}");
                }
            }
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
