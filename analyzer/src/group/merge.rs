//! Stack groups whose stacks read the same, merged into one group: two return addresses on one
//! source line (a loop the compiler unrolled), or stacks that differ only in the allocator's
//! frames trimmed from the top, would otherwise be listed as two groups that look identical.
//! Totals never change; only how the blocks are partitioned into groups. The merged group is
//! ranked by its summed figures and keyed by its heaviest stack, and [`Group::stacks`] lists
//! every member stack, most bytes first.

use std::collections::HashMap;

use super::{Group, GroupBy, Grouping, Groups, SortBy, StackParts, sort_groups};
use crate::alike::ShownStackId;
use crate::model::StackId;

/// `grouping` (a grouping by stack; any other is returned as it is) with the groups of stacks
/// that read alike merged; `shown_ids` gives each stack's [`ShownStackId`]. A grouping where
/// no two stacks read alike is returned as it is (still lazy).
pub(crate) fn merge_alike(
    grouping: Grouping,
    shown_ids: &dyn Fn(&[StackId]) -> Vec<ShownStackId>,
) -> Grouping {
    if grouping.by != GroupBy::Stack {
        return grouping;
    }
    let stacks = grouping.stack_ids();
    let ids = shown_ids(&stacks);
    let mut distinct = ids.clone();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() == stacks.len() {
        return grouping;
    }
    let shown_of: HashMap<StackId, ShownStackId> = stacks.into_iter().zip(ids).collect();
    let (by, at_ns, totals) = (grouping.by, grouping.at_ns, grouping.totals);
    let StackParts { groups: mut stack_groups, members, by_stack } = StackParts::of(grouping);
    // Heaviest first, so each merged group's first stack is its heaviest (a no-op unless the
    // grouping was re-sorted).
    sort_groups(&mut stack_groups, SortBy::Bytes);
    let mut position: HashMap<ShownStackId, usize> = HashMap::new();
    let mut groups: Vec<Group> = Vec::new();
    for g in stack_groups {
        let Some(&stack) = g.stacks.first() else { continue };
        let Some(&shown) = shown_of.get(&stack) else { continue };
        match position.get(&shown) {
            Some(&at) => absorb(&mut groups[at], g),
            None => {
                position.insert(shown, groups.len());
                groups.push(Group { members: 0..0, ..g });
            }
        }
    }
    for g in &mut groups {
        g.threads.sort_unstable();
        g.threads.dedup();
    }
    sort_groups(&mut groups, SortBy::Bytes);
    Grouping { by, at_ns, totals, groups: Groups::Made { groups, members, by_stack } }
}

/// Adds stack group `other` (lighter) to `merged`.
fn absorb(merged: &mut Group, other: Group) {
    merged.blocks += other.blocks;
    merged.bytes += other.bytes;
    merged.first_alloc_ns = merged.first_alloc_ns.min(other.first_alloc_ns);
    merged.last_alloc_ns = merged.last_alloc_ns.max(other.last_alloc_ns);
    merged.threads.extend(other.threads);
    merged.stacks.extend(other.stacks);
}
