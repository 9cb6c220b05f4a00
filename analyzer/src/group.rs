//! Grouping the blocks outstanding at a moment: by full stack, by function (inclusive: every
//! function on a block's stack is credited once per block, like a bottom-up profile), by exact
//! size, by power-of-two size class, or by thread; and ranking the groups.

use std::collections::{HashMap, HashSet};

use crate::hashing::IntMap;
use std::sync::Arc;

use crate::lifetimes::LifetimeStore;
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
    /// Block ids (empty for function groups, whose blocks come from their stacks).
    members: Vec<u32>,
}

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
    /// Block ids per stack, for function groups.
    by_stack: HashMap<u32, Vec<u32>>,
}

impl Grouping {
    /// Re-ranks the groups; ties are broken by bytes, then by key.
    pub fn sort(&mut self, by: SortBy) {
        self.groups.sort_by(|a, b| {
            let primary = match by {
                SortBy::Bytes => b.bytes.cmp(&a.bytes),
                SortBy::Blocks => b.blocks.cmp(&a.blocks),
                SortBy::Newest => b.last_alloc_ns.cmp(&a.last_alloc_ns),
            };
            primary.then(b.bytes.cmp(&a.bytes)).then(b.blocks.cmp(&a.blocks)).then_with(|| a.key.cmp(&b.key))
        });
    }

    /// The outstanding blocks of `group` (one of `self.groups`), in allocation order.
    pub fn block_ids(&self, group: &Group) -> Vec<BlockId> {
        if !matches!(group.key, GroupKey::Function(_)) {
            return group.members.iter().map(|&i| BlockId(i)).collect();
        }
        let mut ids: Vec<u32> =
            group.stacks.iter().filter_map(|s| self.by_stack.get(&s.0)).flatten().copied().collect();
        ids.sort_unstable();
        ids.dedup();
        ids.into_iter().map(BlockId).collect()
    }
}

/// Running sums for one group.
#[derive(Debug, Default)]
struct Agg {
    blocks: u64,
    bytes: u64,
    first: u64,
    last: u64,
    /// Few per group in practice; a vector beats a set.
    threads: Vec<u32>,
    stack_bytes: IntMap<u32, u64>,
    members: Vec<u32>,
}

impl Agg {
    fn add(&mut self, id: u32, size: u64, alloc_ns: u64, thread: u32, stack: u32, keep_stack: bool) {
        if self.blocks == 0 {
            self.first = alloc_ns;
        }
        self.blocks += 1;
        self.bytes += size;
        self.first = self.first.min(alloc_ns);
        self.last = self.last.max(alloc_ns);
        if !self.threads.contains(&thread) {
            self.threads.push(thread);
        }
        if keep_stack {
            *self.stack_bytes.entry(stack).or_default() += size;
        }
        self.members.push(id);
    }

    fn into_group(self, key: GroupKey, single_stack: Option<u32>) -> Group {
        let mut threads: Vec<ThreadIndex> = self.threads.into_iter().map(ThreadIndex).collect();
        threads.sort_unstable();
        let stacks = match single_stack {
            Some(s) => vec![StackId(s)],
            None => ranked_stacks(self.stack_bytes),
        };
        Group {
            key,
            blocks: self.blocks,
            bytes: self.bytes,
            first_alloc_ns: self.first,
            last_alloc_ns: self.last,
            threads,
            stacks,
            frame: None,
            members: self.members,
        }
    }
}

fn ranked_stacks(bytes: IntMap<u32, u64>) -> Vec<StackId> {
    let mut v: Vec<(u32, u64)> = bytes.into_iter().collect();
    v.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v.into_iter().map(|(s, _)| StackId(s)).collect()
}

/// Groups `snapshot` by anything but function.
pub(crate) fn group_simple(store: &LifetimeStore, snapshot: &Snapshot, by: GroupBy) -> Grouping {
    let mut aggs: IntMap<u64, Agg> = IntMap::default();
    for &id in &snapshot.ids {
        let l = &store.lifetimes[id as usize];
        let site = store.site_of(l);
        let size = store.size_of(l);
        let key = match by {
            GroupBy::Stack | GroupBy::Function => u64::from(site.stack),
            GroupBy::Size => size,
            GroupBy::SizeClass => u64::from(size_class(size)),
            GroupBy::Thread => u64::from(site.thread),
        };
        let keep_stack = by != GroupBy::Stack;
        aggs.entry(key).or_default().add(id, size, l.alloc_ns, site.thread, site.stack, keep_stack);
    }
    let groups = aggs
        .into_iter()
        .map(|(k, agg)| match by {
            GroupBy::Stack | GroupBy::Function => {
                agg.into_group(GroupKey::Stack(StackId(k as u32)), Some(k as u32))
            }
            GroupBy::Size => agg.into_group(GroupKey::Size(k), None),
            GroupBy::SizeClass => agg.into_group(GroupKey::SizeClass(k as u8), None),
            GroupBy::Thread => agg.into_group(GroupKey::Thread(ThreadIndex(k as u32)), None),
        })
        .collect();
    let mut grouping =
        Grouping { by, at_ns: snapshot.at_ns, totals: snapshot.totals, groups, by_stack: HashMap::new() };
    grouping.sort(SortBy::Bytes);
    grouping
}

/// Groups `snapshot` by function, given each stack's trimmed frames.
pub(crate) fn group_by_function(
    store: &LifetimeStore,
    snapshot: &Snapshot,
    frames_of: &dyn Fn(u32) -> Arc<[Frame]>,
) -> Grouping {
    let by_stacks = group_simple(store, snapshot, GroupBy::Stack);
    let mut functions: HashMap<Arc<str>, Group> = HashMap::new();
    let mut by_stack = HashMap::new();
    // Heaviest stacks first, so each function's frame comes from its heaviest stack.
    for stack_group in by_stacks.groups {
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
                members: Vec::new(),
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
    let mut grouping =
        Grouping { by: GroupBy::Function, at_ns: snapshot.at_ns, totals: snapshot.totals, groups, by_stack };
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
