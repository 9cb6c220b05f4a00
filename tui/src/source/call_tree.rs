//! The browser's call tree (the `t` key): the largest stacks of the blocks counted at T merged
//! from the outermost frame in (or bottom up, from the allocating frame out), laid out by the
//! analyzer's [`call_tree_lines`] as `report --format tree` (or `bottom-up`) draws them. Built from what any [`DataSource`] answers: its stack groups at T
//! and their frames. A line opens ([`stacks_allocations`]) as the blocks of the stacks it
//! counts.

use leakview_analyzer::{CallTreeLine, TreeOrder, call_tree_lines};

use super::{
    AllocationRow, DataSource, FrameInfo, GroupKey, GroupQuery, Grouping, SortKey, StackKey, Totals,
    allocation_order,
};

/// Stacks a tree merges at most: the largest at T.
pub const TREE_STACKS: usize = 200;

/// A call tree at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallTree {
    pub lines: Vec<CallTreeLine<FrameInfo>>,
    /// The stack groups merged, in the order the lines' `stacks` number them.
    pub stack_keys: Vec<GroupKey>,
    pub order: TreeOrder,
    /// Stacks holding counted blocks at T, and how many of them (the largest) the tree merges.
    pub stacks: usize,
    pub drawn: usize,
    /// What the stacks left out hold.
    pub left_out: Totals,
}

impl CallTree {
    /// What the tree is called on screen (see [`tree_name`]).
    pub fn name(&self) -> &'static str {
        tree_name(self.order)
    }

    /// The stack groups whose blocks line `line` counts.
    pub fn line_stacks(&self, line: usize) -> Vec<GroupKey> {
        let Some(line) = self.lines.get(line) else { return Vec::new() };
        line.stacks.iter().filter_map(|&i| self.stack_keys.get(i).copied()).collect()
    }
}

/// What a tree in `order` is called on screen: `call tree`, `call tree bottom up`.
pub fn tree_name(order: TreeOrder) -> &'static str {
    match order {
        TreeOrder::TopDown => "call tree",
        TreeOrder::BottomUp => "call tree bottom up",
    }
}

/// The stack query behind the tree of `query`: its moment, selection and filter, stacks ranked
/// by blocks when the list is sorted by blocks, else by bytes.
pub fn tree_query(query: &GroupQuery) -> GroupQuery {
    let sort = if query.sort == SortKey::Blocks { SortKey::Blocks } else { SortKey::Bytes };
    GroupQuery { grouping: Grouping::Stack, sort, ..query.clone() }
}

/// The call tree, in `order`, of the [`TREE_STACKS`] largest stacks `query` selects (see
/// [`tree_query`]).
pub fn call_tree<S: DataSource + ?Sized>(source: &S, query: &GroupQuery, order: TreeOrder) -> CallTree {
    let query = tree_query(query);
    let rows = source.groups(&query);
    let drawn = rows.len().min(TREE_STACKS);
    let left_out = rows[drawn..].iter().fold(Totals::default(), |t, r| Totals {
        bytes: t.bytes + r.totals.bytes,
        blocks: t.blocks + r.totals.blocks,
    });
    let stacks = rows[..drawn].iter().map(|row| {
        let mut frames = source.stack_frames(StackKey(row.key.0));
        if frames.is_empty() {
            frames.push(FrameInfo {
                function: "(no stack recorded)".to_string(),
                location: None,
                module: None,
                inlined: false,
            });
        }
        (frames, row.totals.bytes, row.totals.blocks)
    });
    let lines = call_tree_lines(stacks, query.sort == SortKey::Blocks, order);
    let stack_keys = rows[..drawn].iter().map(|row| row.key).collect();
    CallTree { lines, stack_keys, order, stacks: rows.len(), drawn, left_out }
}

/// The blocks of the stack groups `keys` that `query` counts (its moment, selection and
/// filter), in [`allocation_order`] of its sort: what an opened tree line lists.
pub fn stacks_allocations<S: DataSource + ?Sized>(
    source: &S,
    query: &GroupQuery,
    keys: &[GroupKey],
) -> Vec<AllocationRow> {
    let query = GroupQuery { grouping: Grouping::Stack, ..query.clone() };
    let mut rows: Vec<AllocationRow> =
        keys.iter().flat_map(|&key| source.allocations(&query, key, 0, usize::MAX).rows).collect();
    rows.sort_by_key(|r| allocation_order(query.sort, r.size, r.at_ns, r.address));
    rows
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::source::{MemoryAllocation, MemorySource, Selection};

    fn frame(name: &str) -> FrameInfo {
        FrameInfo { function: name.to_string(), location: None, module: None, inlined: false }
    }

    fn source() -> MemorySource {
        let alloc = |address, size, alloc_ns, free_ns, stack| MemoryAllocation {
            address,
            size,
            alloc_ns,
            free_ns,
            tid: 1,
            stack,
        };
        MemorySource::new(
            "prog",
            100,
            vec![
                vec![frame("leak"), frame("serve"), frame("main")],
                vec![frame("cache"), frame("serve"), frame("main")],
                vec![frame("main")],
            ],
            vec![
                alloc(0x10, 100, 10, None, 0),
                alloc(0x20, 50, 20, None, 1),
                alloc(0x30, 30, 30, Some(40), 2),
                alloc(0x40, 10, 50, None, 2),
                alloc(0x50, 5, 60, None, 2),
                alloc(0x60, 5, 70, None, 2),
            ],
            vec![],
            HashMap::new(),
        )
    }

    fn texts(tree: &CallTree) -> Vec<String> {
        tree.lines
            .iter()
            .map(|l| format!("{} {}{}", l.bytes, l.prefix, l.part.text(|f| f.function.clone())))
            .collect()
    }

    #[test]
    fn the_tree_merges_the_stacks_at_t_from_the_outermost_frame() {
        let s = source();
        let at_end = GroupQuery { at_ns: 100, ..GroupQuery::default() };
        let tree = call_tree(&s, &at_end, TreeOrder::TopDown);
        assert_eq!(
            texts(&tree),
            ["170 main", "150 ├─ serve", "100 │  ├─ leak", "50 │  └─ cache", "20 └─ (allocated here)"]
        );
        assert_eq!((tree.stacks, tree.drawn, tree.left_out), (3, 3, Totals::default()));
        // By blocks, main's own three come before serve's two.
        let blocks = GroupQuery { sort: SortKey::Blocks, ..at_end.clone() };
        assert_eq!(
            texts(&call_tree(&s, &blocks, TreeOrder::TopDown)),
            ["170 main", "20 ├─ (allocated here)", "150 └─ serve", "100    ├─ leak", "50    └─ cache"]
        );
        // Every allocation by 35: main's own block is the 30-byte one freed at 40.
        let allocated = GroupQuery { at_ns: 35, what: Selection::Allocated, ..at_end.clone() };
        assert_eq!(texts(&call_tree(&s, &allocated, TreeOrder::TopDown))[4], "30 └─ (allocated here)");
        // A filter narrows the stacks merged.
        let filtered = GroupQuery { filter: "cache".to_string(), ..at_end };
        assert_eq!(texts(&call_tree(&s, &filtered, TreeOrder::TopDown)), ["50 main", "50 serve", "50 cache"]);
        // Bottom up: each allocating frame, its callers below it.
        let bottom_up = call_tree(&s, &at_end, TreeOrder::BottomUp);
        assert_eq!(
            texts(&bottom_up),
            [
                "100 ├─ leak",
                "100 │  serve",
                "100 │  main",
                "50 ├─ cache",
                "50 │  serve",
                "50 │  main",
                "20 └─ main"
            ]
        );
        assert_eq!(bottom_up.order, TreeOrder::BottomUp);
    }
}
