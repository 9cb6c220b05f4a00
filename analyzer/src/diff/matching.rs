//! Matching the two sides' sums key by key into [`DiffGroup`]s, each with its status, and
//! ranking them by the size of their change (function groups tied on it come nearest the
//! allocations first, as `report --group-by function` lists them).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

use super::key::{FrameKey, StackKey};
use super::side::{SideGroup, SideSums};
use super::status::DiffStatus;
use crate::frames::Frames;
use crate::model::StackId;

/// What one diff group is matched by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DiffKey {
    /// A whole (trimmed) stack.
    Stack(StackKey),
    /// One function (or anonymous frame), credited once per stack it is on.
    Function(Arc<FrameKey>),
}

/// One group of the diff: a key, its blocks and bytes on each side, and what happened to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffGroup {
    pub key: DiffKey,
    pub status: DiffStatus,
    pub blocks_a: u64,
    pub bytes_a: u64,
    pub blocks_b: u64,
    pub bytes_b: u64,
    /// A's stacks in this group, most bytes first (empty when the group is new).
    pub stacks_a: Vec<StackId>,
    /// B's stacks in this group, most bytes first (empty when the group is fixed).
    pub stacks_b: Vec<StackId>,
    /// Frames to show, innermost first, taken from B when B holds the group (so lines are B's):
    /// the heaviest stack when grouping by stack, the function's own frame when grouping by
    /// function.
    pub frames: Frames,
}

fn signed_difference(a: u64, b: u64) -> i64 {
    (i128::from(b) - i128::from(a)).clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

impl DiffGroup {
    /// `bytes_b - bytes_a`.
    pub fn change_bytes(&self) -> i64 {
        signed_difference(self.bytes_a, self.bytes_b)
    }

    /// `blocks_b - blocks_a`.
    pub fn change_blocks(&self) -> i64 {
        signed_difference(self.blocks_a, self.blocks_b)
    }

    /// Bytes gained from A to B (0 if the group did not gain bytes).
    pub fn growth_bytes(&self) -> u64 {
        self.bytes_b.saturating_sub(self.bytes_a)
    }

    /// Whether the group fails a growth gate: it is new or grew, by more than `threshold` bytes.
    pub fn grew_over(&self, threshold: u64) -> bool {
        matches!(self.status, DiffStatus::New | DiffStatus::Grew) && self.growth_bytes() > threshold
    }

    /// Whether any shown frame contains `needle` (ASCII case-insensitive) in its function, file
    /// or module's file name ([`crate::Frame::contains_text`]); the empty needle matches every
    /// group.
    pub fn matches(&self, needle: &str) -> bool {
        if needle.is_empty() {
            return true;
        }
        let needle = needle.to_ascii_lowercase();
        let key_hit = match &self.key {
            DiffKey::Function(key) => key.to_string().to_ascii_lowercase().contains(&needle),
            DiffKey::Stack(_) => false,
        };
        key_hit || self.frames.iter().any(|f| f.contains_text(&needle))
    }
}

/// Pairs the groups of `a` and `b` by key, classifies them and ranks them. Each comes with its
/// key `K`; `key_of` gives the readable key; frames are left empty.
pub(crate) fn match_sides<K: Hash + Eq>(
    a: SideSums<K>,
    b: SideSums<K>,
    key_of: &dyn Fn(&K) -> DiffKey,
) -> Vec<(K, DiffGroup)> {
    let mut pairs: HashMap<K, (SideGroup, SideGroup)> = HashMap::new();
    for (key, group) in a.groups {
        pairs.entry(key).or_default().0 = group;
    }
    for (key, group) in b.groups {
        pairs.entry(key).or_default().1 = group;
    }
    let mut groups: Vec<(K, DiffGroup, Option<usize>)> = pairs
        .into_iter()
        .map(|(id, (a, b))| {
            let nearest = [a.nearest, b.nearest].into_iter().flatten().min();
            let group = DiffGroup {
                key: key_of(&id),
                status: DiffStatus::classify(a.blocks, a.bytes, b.blocks, b.bytes),
                blocks_a: a.blocks,
                bytes_a: a.bytes,
                blocks_b: b.blocks,
                bytes_b: b.bytes,
                stacks_a: a.ranked_stacks(),
                stacks_b: b.ranked_stacks(),
                frames: Vec::new().into(),
            };
            (id, group, nearest)
        })
        .collect();
    groups.sort_by(|(_, x, near_x), (_, y, near_y)| rank((x, *near_x), (y, *near_y)));
    groups.into_iter().map(|(id, group, _)| (id, group)).collect()
}

/// Largest change of bytes first (either way), then largest change of blocks, then largest
/// group, then (function groups) the function nearest the allocations on either side first — a
/// chain of callers that all hold the same blocks reads from the allocating function outward —
/// then by key so the order is stable. Each group comes with how near its function comes.
fn rank(
    (x, near_x): (&DiffGroup, Option<usize>),
    (y, near_y): (&DiffGroup, Option<usize>),
) -> std::cmp::Ordering {
    y.change_bytes()
        .unsigned_abs()
        .cmp(&x.change_bytes().unsigned_abs())
        .then(y.change_blocks().unsigned_abs().cmp(&x.change_blocks().unsigned_abs()))
        .then(y.bytes_a.max(y.bytes_b).cmp(&x.bytes_a.max(x.bytes_b)))
        .then(near_x.cmp(&near_y))
        .then_with(|| x.key.cmp(&y.key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::LiveTotals;

    fn function(name: &str) -> DiffKey {
        DiffKey::Function(FrameKey::Function { name: name.to_string(), file: Some("app.c".into()) }.into())
    }

    fn match_sides(a: SideSums<DiffKey>, b: SideSums<DiffKey>) -> Vec<DiffGroup> {
        super::match_sides(a, b, &|k| k.clone()).into_iter().map(|(_, g)| g).collect()
    }

    /// Function groups as (name, stack, blocks, bytes, depth of the function on the stack).
    fn side_at_depths(entries: &[(&str, u32, u64, u64, usize)]) -> SideSums<DiffKey> {
        let mut sums = SideSums::default();
        for &(name, stack, blocks, bytes, depth) in entries {
            sums.groups.entry(function(name)).or_default().add_at_depth(StackId(stack), blocks, bytes, depth);
        }
        sums
    }

    fn side(entries: &[(&str, u32, u64, u64)]) -> SideSums<DiffKey> {
        let mut sums = SideSums::default();
        for &(name, stack, blocks, bytes) in entries {
            sums.groups.entry(function(name)).or_default().add(StackId(stack), blocks, bytes);
            sums.totals =
                LiveTotals { blocks: sums.totals.blocks + blocks, bytes: sums.totals.bytes + bytes };
        }
        sums
    }

    fn find<'a>(groups: &'a [DiffGroup], name: &str) -> &'a DiffGroup {
        groups.iter().find(|g| g.key == function(name)).unwrap_or_else(|| panic!("no group {name}"))
    }

    #[test]
    fn every_key_of_either_side_gets_one_group() {
        let a =
            side(&[("fixed", 1, 3, 3000), ("same", 2, 4, 256), ("grows", 3, 5, 640), ("shrinks", 4, 8, 256)]);
        let b = side(&[
            ("added", 7, 2, 1024),
            ("same", 8, 4, 256),
            ("grows", 9, 10, 1280),
            ("shrinks", 10, 2, 64),
        ]);
        let groups = match_sides(a, b);
        assert_eq!(groups.len(), 5);
        let statuses: Vec<(DiffStatus, u64, u64, u64, u64)> = ["fixed", "added", "same", "grows", "shrinks"]
            .iter()
            .map(|n| {
                let g = find(&groups, n);
                (g.status, g.blocks_a, g.bytes_a, g.blocks_b, g.bytes_b)
            })
            .collect();
        assert_eq!(
            statuses,
            vec![
                (DiffStatus::Fixed, 3, 3000, 0, 0),
                (DiffStatus::New, 0, 0, 2, 1024),
                (DiffStatus::Same, 4, 256, 4, 256),
                (DiffStatus::Grew, 5, 640, 10, 1280),
                (DiffStatus::Shrank, 8, 256, 2, 64),
            ]
        );
        assert_eq!(find(&groups, "added").stacks_b, vec![StackId(7)]);
        assert!(find(&groups, "added").stacks_a.is_empty());
    }

    #[test]
    fn ranked_by_size_of_change_either_way() {
        let a = side(&[("fixed", 1, 3, 3000), ("same", 2, 4, 256), ("grows", 3, 5, 640)]);
        let b = side(&[("added", 7, 2, 1024), ("same", 8, 4, 256), ("grows", 9, 10, 1280)]);
        let order: Vec<DiffKey> = match_sides(a, b).into_iter().map(|g| g.key).collect();
        assert_eq!(order, vec![function("fixed"), function("added"), function("grows"), function("same")]);
    }

    #[test]
    fn functions_tied_on_change_come_nearest_the_allocations_first() {
        // One stack, `_start` → `main` → `make` → `leaf`, holding 64 bytes in A and 128 in B:
        // every function changed alike; `leaf` allocated.
        let chain = [("leaf", 0), ("make", 1), ("main", 2), ("_start", 3)];
        let a: Vec<_> = chain.iter().map(|&(n, d)| (n, 1, 1, 64, d)).collect();
        let b: Vec<_> = chain.iter().map(|&(n, d)| (n, 1, 2, 128, d)).collect();
        let order = |a: &[(&str, u32, u64, u64, usize)], b: &[(&str, u32, u64, u64, usize)]| {
            match_sides(side_at_depths(a), side_at_depths(b)).into_iter().map(|g| g.key).collect::<Vec<_>>()
        };
        assert_eq!(
            order(&a, &b),
            vec![function("leaf"), function("make"), function("main"), function("_start")]
        );
        // On B's stack `main` and `make` swap places (an edit moved the call): a function's
        // nearest depth on either side counts (1 for both here, so then by name).
        let swapped = [("leaf", 0), ("main", 1), ("make", 2), ("_start", 3)];
        let b: Vec<_> = swapped.iter().map(|&(n, d)| (n, 1, 2, 128, d)).collect();
        assert_eq!(
            order(&a, &b),
            vec![function("leaf"), function("main"), function("make"), function("_start")]
        );
    }

    #[test]
    fn collapsed_stacks_are_summed_and_ranked() {
        let a = side(&[("leak", 1, 1, 10), ("leak", 2, 2, 30)]);
        let b = side(&[("leak", 5, 1, 50)]);
        let groups = match_sides(a, b);
        assert_eq!(groups.len(), 1);
        let g = &groups[0];
        assert_eq!((g.blocks_a, g.bytes_a, g.blocks_b, g.bytes_b), (3, 40, 1, 50));
        assert_eq!(g.status, DiffStatus::Grew);
        assert_eq!(g.stacks_a, vec![StackId(2), StackId(1)]);
        assert_eq!(g.change_bytes(), 10);
        assert_eq!(g.change_blocks(), -2);
    }

    #[test]
    fn growth_gate_counts_new_and_grown_bytes_over_the_threshold() {
        let a = side(&[("grows", 1, 1, 100), ("shrinks", 2, 1, 100), ("fixed", 3, 1, 100)]);
        let b = side(&[("grows", 1, 1, 150), ("shrinks", 2, 1, 10), ("added", 4, 1, 80)]);
        let groups = match_sides(a, b);
        let failing = |t: u64| groups.iter().filter(|g| g.grew_over(t)).count();
        assert_eq!(failing(0), 2);
        assert_eq!(failing(50), 1);
        assert_eq!(failing(80), 0);
        assert_eq!(find(&groups, "shrinks").growth_bytes(), 0);
    }

    #[test]
    fn empty_sides_give_no_groups() {
        assert!(match_sides(SideSums::default(), SideSums::default()).is_empty());
    }
}
