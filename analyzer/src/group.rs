//! Grouping the blocks outstanding at a moment: by full stack, by function (inclusive: every
//! function on a block's stack is credited once per block, like a bottom-up profile), by exact
//! size, by power-of-two size class, or by thread; and ranking the groups.
//!
//! Grouping is flat: each outstanding block gets its group's key, the block ids are sorted by
//! key with a (parallel) counting sort when keys are dense (stack ids, threads, size classes) or
//! a parallel sort otherwise, and each group is then one contiguous run of ids, summed in
//! parallel. No per-group hash maps, no per-block allocations.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::Arc;

use rayon::prelude::*;

use crate::lifetimes::{LifetimeStore, Site};
use crate::model::{BlockId, LiveTotals, StackId, ThreadIndex};
use crate::symbolize::Frame;

/// The blocks live at one moment (ids sorted, i.e. in allocation order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub(crate) at_ns: u64,
    pub(crate) ids: Vec<u32>,
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
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The outstanding blocks, in allocation order.
    pub fn block_ids(&self) -> impl ExactSizeIterator<Item = BlockId> + '_ {
        self.ids.iter().map(|&i| BlockId(i))
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
    pub frame: Option<Frame>,
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

/// Snapshots at least this large are keyed and summed in parallel.
const PARALLEL_BLOCKS: usize = 32 * 1024;
/// Groupings with at least this many groups are ranked in parallel.
const PARALLEL_GROUPS: usize = 4 * 1024;

/// One outstanding block as grouping carries it: its store entry and site, read once (20
/// bytes, so the buffers of a large grouping stay small).
#[derive(Debug, Clone, Copy, Default)]
struct Row {
    id: u32,
    size32: u32,
    alloc_low: u32,
    stack: u32,
    thread: u32,
}

/// The row and key of each block of `ids` (in parallel when there are many); `key` gets the
/// block's site and size.
fn rows_of(
    store: &LifetimeStore,
    ids: &[u32],
    key: impl Fn(Site, u64) -> u64 + Sync,
) -> (Vec<Row>, Vec<u64>) {
    let row = |&id: &u32| {
        let (size32, site, alloc_low) = store.entry(id);
        let site = store.site_by_id(site);
        let row = Row { id, size32, alloc_low, stack: site.stack, thread: site.thread };
        (row, key(site, store.full_size(id, size32)))
    };
    if ids.len() >= PARALLEL_BLOCKS { ids.par_iter().map(row).unzip() } else { ids.iter().map(row).unzip() }
}

/// `rows` reordered so equal keys are contiguous (each run in the original order), and each
/// run's key and range. `dense` bounds the keys when a counting sort applies.
fn runs_by_key(rows: Vec<Row>, keys: Vec<u64>, dense: Option<u64>) -> (Vec<Row>, Vec<(u64, Range<u32>)>) {
    if let Some(bound) = dense.filter(|&b| b as usize <= 4 * rows.len() + (1 << 20)) {
        return counting_runs(&rows, &keys, bound as usize);
    }
    // Ids are unique, so an unstable sort by (key, id) keeps each run in allocation order.
    let mut keyed: Vec<(u64, u32, usize)> =
        keys.iter().zip(&rows).enumerate().map(|(i, (&k, r))| (k, r.id, i)).collect();
    keyed.par_sort_unstable();
    let mut runs: Vec<(u64, Range<u32>)> = Vec::new();
    for (pos, &(k, _, _)) in keyed.iter().enumerate() {
        match runs.last_mut() {
            Some((last, range)) if *last == k => range.end = pos as u32 + 1,
            _ => runs.push((k, pos as u32..pos as u32 + 1)),
        }
    }
    (keyed.iter().map(|&(_, _, i)| rows[i]).collect(), runs)
}

/// A stable counting sort of `rows` by `keys` (all below `bound`), in parallel parts.
fn counting_runs(rows: &[Row], keys: &[u64], bound: usize) -> (Vec<Row>, Vec<(u64, Range<u32>)>) {
    let parts = (rows.len() / PARALLEL_BLOCKS).clamp(1, rayon::current_num_threads().max(1));
    let part_len = rows.len().div_ceil(parts).max(1);
    let mut counts: Vec<Vec<u32>> = keys
        .par_chunks(part_len)
        .map(|part| {
            let mut c = vec![0u32; bound];
            for &k in part {
                if let Some(n) = c.get_mut(k as usize) {
                    *n += 1;
                }
            }
            c
        })
        .collect();
    // Turn counts into each part's first slot per key: keys in order, parts in order within a key.
    let mut runs = Vec::new();
    let mut next = 0u32;
    for k in 0..bound {
        let start = next;
        for c in counts.iter_mut() {
            let n = c[k];
            c[k] = next;
            next += n;
        }
        if next > start {
            runs.push((k as u64, start..next));
        }
    }
    let mut out = vec![Row::default(); rows.len()];
    for ((part, part_keys), slots) in rows.chunks(part_len).zip(keys.chunks(part_len)).zip(counts.iter_mut())
    {
        for (r, &k) in part.iter().zip(part_keys) {
            if let Some(slot) = slots.get_mut(k as usize) {
                out[*slot as usize] = *r;
                *slot += 1;
            }
        }
    }
    (out, runs)
}

/// A group's figures, summed from its run of rows (in allocation order).
struct Sums {
    bytes: u64,
    first_alloc_ns: u64,
    last_alloc_ns: u64,
    threads: Vec<ThreadIndex>,
    stacks: Vec<StackId>,
}

fn summarize(store: &LifetimeStore, key: u64, rows: &[Row], by: GroupBy) -> Sums {
    let mut bytes = 0u64;
    let mut threads: Vec<u32> = Vec::new();
    let mut stack_bytes: Vec<(u32, u64)> = Vec::new();
    let by_stack = matches!(by, GroupBy::Stack | GroupBy::Function);
    for r in rows {
        let size = store.full_size(r.id, r.size32);
        bytes += size;
        if !by_stack {
            stack_bytes.push((r.stack, size));
        }
        if threads.last() != Some(&r.thread) && !threads.contains(&r.thread) {
            threads.push(r.thread);
        }
    }
    threads.sort_unstable();
    let stacks = if by_stack { vec![StackId(key as u32)] } else { ranked_stacks(stack_bytes) };
    let alloc_ns = |r: &Row| store.alloc_ns_from_low(r.id, r.alloc_low);
    Sums {
        bytes,
        first_alloc_ns: rows.first().map_or(0, alloc_ns),
        last_alloc_ns: rows.last().map_or(0, alloc_ns),
        threads: threads.into_iter().map(ThreadIndex).collect(),
        stacks,
    }
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

/// Groups `snapshot` by anything but function.
pub(crate) fn group_simple(store: &LifetimeStore, snapshot: &Snapshot, by: GroupBy) -> Grouping {
    let ids = &snapshot.ids;
    let ((rows, keys), dense) = match by {
        GroupBy::Stack | GroupBy::Function => {
            (rows_of(store, ids, |site, _| u64::from(site.stack)), Some(u64::from(store.max_stack()) + 1))
        }
        GroupBy::Thread => {
            let bound = store.sites.iter().map(|s| s.thread).max().map_or(1, |t| u64::from(t) + 1);
            (rows_of(store, ids, |site, _| u64::from(site.thread)), Some(bound))
        }
        GroupBy::Size => (rows_of(store, ids, |_, size| size), None),
        GroupBy::SizeClass => (rows_of(store, ids, |_, size| u64::from(size_class(size))), Some(65)),
    };
    let (rows, runs) = runs_by_key(rows, keys, dense);
    let group_key = |k: u64| match by {
        GroupBy::Stack | GroupBy::Function => GroupKey::Stack(StackId(k as u32)),
        GroupBy::Size => GroupKey::Size(k),
        GroupBy::SizeClass => GroupKey::SizeClass(k as u8),
        GroupBy::Thread => GroupKey::Thread(ThreadIndex(k as u32)),
    };
    // Sum each run where its rows lie (in key order), then make the groups in rank order:
    // (bytes, blocks, key), so they are never moved once made.
    let sum = |(k, r): &(u64, Range<u32>)| summarize(store, *k, &rows[r.start as usize..r.end as usize], by);
    let sums: Vec<Sums> = if runs.len() >= PARALLEL_GROUPS {
        runs.par_iter().map(sum).collect()
    } else {
        runs.iter().map(sum).collect()
    };
    let mut ranked: Vec<(u64, u64, u64, usize)> = runs
        .iter()
        .zip(&sums)
        .enumerate()
        .map(|(i, ((k, r), s))| (!s.bytes, !u64::from(r.end - r.start), *k, i))
        .collect();
    ranked.par_sort_unstable();
    let mut sums = sums;
    let groups: Vec<Group> = ranked
        .iter()
        .map(|&(_, _, k, i)| {
            let s = &mut sums[i];
            let r = runs[i].1.clone();
            Group {
                key: group_key(k),
                blocks: u64::from(r.end - r.start),
                bytes: s.bytes,
                first_alloc_ns: s.first_alloc_ns,
                last_alloc_ns: s.last_alloc_ns,
                threads: std::mem::take(&mut s.threads),
                stacks: std::mem::take(&mut s.stacks),
                frame: None,
                members: r,
            }
        })
        .collect();
    let members = if rows.len() >= PARALLEL_BLOCKS {
        rows.par_iter().map(|r| r.id).collect()
    } else {
        rows.iter().map(|r| r.id).collect()
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
                frame: Some(frame.clone()),
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
