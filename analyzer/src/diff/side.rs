//! One side of a diff: the blocks outstanding at a moment of one trace, summed per matching
//! key. Stack keys are cached per stack, so looking at another moment costs only the new
//! snapshot and the stacks not seen before.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use super::DiffBy;
use super::key::{FrameKey, KeyPolicy, StackKey};
use crate::analysis::Analysis;
use crate::group::{GroupBy, GroupKey};
use crate::model::{LiveTotals, StackId};
use crate::progress::Progress;

/// What one diff group is matched by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DiffKey {
    /// A whole (trimmed) stack.
    Stack(StackKey),
    /// One function (or anonymous frame), credited once per stack it is on.
    Function(Arc<FrameKey>),
}

/// The blocks of one side that share a key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SideGroup {
    pub blocks: u64,
    pub bytes: u64,
    /// The stacks of the group with their bytes, in the order they were added.
    pub stacks: Vec<(StackId, u64)>,
}

impl SideGroup {
    pub fn add(&mut self, stack: StackId, blocks: u64, bytes: u64) {
        self.blocks += blocks;
        self.bytes += bytes;
        self.stacks.push((stack, bytes));
    }

    /// Stack ids, most bytes first (ties: lowest id first).
    pub fn ranked_stacks(&self) -> Vec<StackId> {
        let mut stacks = self.stacks.clone();
        stacks.sort_unstable_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
        stacks.into_iter().map(|(s, _)| s).collect()
    }
}

/// One side, summed per key.
#[derive(Debug, Clone, Default)]
pub(crate) struct SideSums {
    pub totals: LiveTotals,
    pub groups: HashMap<DiffKey, SideGroup>,
}

/// Stack keys of one trace, computed once per stack.
#[derive(Debug, Default)]
pub(crate) struct KeyCache {
    keys: RwLock<HashMap<u32, StackKey>>,
}

impl KeyCache {
    fn get(&self, stack: StackId) -> Option<StackKey> {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).get(&stack.0).cloned()
    }

    fn insert(&self, stack: StackId, key: StackKey) {
        self.keys.write().unwrap_or_else(|p| p.into_inner()).insert(stack.0, key);
    }

    /// The key of `stack`, computing (and symbolizing) it if needed.
    pub fn key(&self, analysis: &Analysis, policy: &KeyPolicy, stack: StackId) -> StackKey {
        if let Some(key) = self.get(stack) {
            return key;
        }
        let key = policy.stack_key(&analysis.stack_frames(stack));
        self.insert(stack, key.clone());
        key
    }

    /// Symbolizes, in bulk, the stacks of `stacks` whose keys are not cached yet.
    pub fn prepare(&self, analysis: &Analysis, stacks: &[StackId], progress: &dyn Progress) {
        let missing: Vec<StackId> = {
            let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
            stacks.iter().copied().filter(|s| !keys.contains_key(&s.0)).collect()
        };
        if !missing.is_empty() {
            analysis.prepare_symbols(&missing, progress);
        }
    }
}

/// Sums the blocks of `analysis` outstanding at `at_ns` per key.
pub(crate) fn sum_side(
    analysis: &Analysis,
    cache: &KeyCache,
    policy: &KeyPolicy,
    at_ns: u64,
    by: DiffBy,
    progress: &dyn Progress,
) -> SideSums {
    let snapshot = analysis.outstanding_at(at_ns);
    let by_stack = analysis.group(&snapshot, GroupBy::Stack);
    let stacks: Vec<StackId> = by_stack
        .groups
        .iter()
        .filter_map(|g| match g.key {
            GroupKey::Stack(s) => Some(s),
            _ => None,
        })
        .collect();
    cache.prepare(analysis, &stacks, progress);
    let mut sums = SideSums { totals: snapshot.totals(), groups: HashMap::new() };
    for group in &by_stack.groups {
        let GroupKey::Stack(stack) = group.key else { continue };
        let key = cache.key(analysis, policy, stack);
        match by {
            DiffBy::Stack => {
                sums.groups.entry(DiffKey::Stack(key)).or_default().add(stack, group.blocks, group.bytes);
            }
            DiffBy::Function => {
                let mut credited: HashSet<&Arc<FrameKey>> = HashSet::new();
                for frame in key.iter() {
                    if credited.insert(frame) {
                        sums.groups.entry(DiffKey::Function(frame.clone())).or_default().add(
                            stack,
                            group.blocks,
                            group.bytes,
                        );
                    }
                }
            }
        }
    }
    sums
}
