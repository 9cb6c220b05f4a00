//! One side of a diff: the blocks outstanding at a moment of one trace (or allocated up to
//! it, or temporary), summed per matching key. Each stack's interned key is cached, so looking
//! at another moment costs only the new snapshot and the stacks not seen before.

use std::collections::HashMap;
use std::sync::RwLock;

use super::DiffBy;
use super::intern::{FrameKeyId, InternedStack, KeyTable, StackKeyId};
use super::key::KeyPolicy;
use crate::analysis::Analysis;
use crate::group::{GroupBy, GroupKey};
use crate::model::{LiveTotals, StackId};
use crate::progress::Progress;
use crate::selection::Selection;
use crate::window::AllocWindow;

/// What one side's blocks are summed by: an interned stack key or an interned frame key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum GroupId {
    Stack(StackKeyId),
    Function(FrameKeyId),
}

/// The blocks of one side that share a key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SideGroup {
    pub blocks: u64,
    pub bytes: u64,
    /// The stacks of the group with their bytes, in the order they were added.
    pub stacks: Vec<(StackId, u64)>,
    /// For a function group, how near the allocations the function comes on any of the group's
    /// stacks (0: the innermost frame); `None` for a stack group.
    pub nearest: Option<usize>,
}

impl SideGroup {
    pub fn add(&mut self, stack: StackId, blocks: u64, bytes: u64) {
        self.blocks += blocks;
        self.bytes += bytes;
        self.stacks.push((stack, bytes));
    }

    /// [`SideGroup::add`] for a function group, whose function is `depth` frames out from the
    /// allocation on `stack`.
    pub fn add_at_depth(&mut self, stack: StackId, blocks: u64, bytes: u64, depth: usize) {
        self.add(stack, blocks, bytes);
        self.nearest = Some(self.nearest.map_or(depth, |d| d.min(depth)));
    }

    /// Stack ids, most bytes first (ties: lowest id first).
    pub fn ranked_stacks(&self) -> Vec<StackId> {
        let mut stacks = self.stacks.clone();
        stacks.sort_unstable_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
        stacks.into_iter().map(|(s, _)| s).collect()
    }
}

/// One side, summed per key.
#[derive(Debug, Clone)]
pub(crate) struct SideSums<K> {
    pub totals: LiveTotals,
    pub groups: HashMap<K, SideGroup>,
}

impl<K> Default for SideSums<K> {
    fn default() -> Self {
        SideSums { totals: LiveTotals::default(), groups: HashMap::new() }
    }
}

/// The interned keys of one trace's stacks, computed once per stack.
#[derive(Debug, Default)]
pub(crate) struct KeyCache {
    keys: RwLock<HashMap<u32, InternedStack>>,
}

/// What computing a stack's key needs.
pub(crate) struct Keying<'a> {
    pub analysis: &'a Analysis,
    pub cache: &'a KeyCache,
    pub policy: &'a KeyPolicy,
    pub table: &'a KeyTable,
}

impl Keying<'_> {
    /// The interned key of `stack`, computing (and symbolizing) it if needed.
    pub fn key(&self, stack: StackId) -> InternedStack {
        if let Some(key) = self.cache.keys.read().unwrap_or_else(|p| p.into_inner()).get(&stack.0) {
            return key.clone();
        }
        let key = self.table.intern_stack(self.policy, &self.analysis.stack_frames(stack));
        self.cache.keys.write().unwrap_or_else(|p| p.into_inner()).insert(stack.0, key.clone());
        key
    }

    /// Symbolizes, in bulk, the stacks of `stacks` whose keys are not cached yet.
    fn prepare(&self, stacks: &[StackId], progress: &dyn Progress) {
        let missing: Vec<StackId> = {
            let keys = self.cache.keys.read().unwrap_or_else(|p| p.into_inner());
            stacks.iter().copied().filter(|s| !keys.contains_key(&s.0)).collect()
        };
        if !missing.is_empty() {
            self.analysis.prepare_symbols(&missing, progress);
        }
    }

    /// Sums the blocks `selection` picks at `at_ns` (outstanding, allocated or temporary) per
    /// key.
    pub fn sum(
        &self,
        at_ns: u64,
        by: DiffBy,
        selection: Selection,
        progress: &dyn Progress,
    ) -> SideSums<GroupId> {
        let snapshot = self.analysis.select(at_ns, &AllocWindow::all(), selection);
        let by_stack = self.analysis.group(&snapshot, GroupBy::Stack).all();
        let stacks: Vec<StackId> = by_stack
            .iter()
            .filter_map(|g| match g.key {
                GroupKey::Stack(s) => Some(s),
                _ => None,
            })
            .collect();
        self.prepare(&stacks, progress);
        let mut sums = SideSums { totals: snapshot.totals(), groups: HashMap::new() };
        let mut credited: Vec<FrameKeyId> = Vec::new();
        for group in &by_stack {
            let GroupKey::Stack(stack) = group.key else { continue };
            let key = self.key(stack);
            match by {
                DiffBy::Stack => {
                    sums.groups.entry(GroupId::Stack(key.id)).or_default().add(
                        stack,
                        group.blocks,
                        group.bytes,
                    );
                }
                DiffBy::Function => {
                    // Each function once per stack, even when it recurses, at its innermost call.
                    credited.clear();
                    for (depth, &frame) in key.frames.iter().enumerate() {
                        if credited.contains(&frame) {
                            continue;
                        }
                        credited.push(frame);
                        sums.groups.entry(GroupId::Function(frame)).or_default().add_at_depth(
                            stack,
                            group.blocks,
                            group.bytes,
                            depth,
                        );
                    }
                }
            }
        }
        sums
    }
}
