//! The stack trie of a trace: node id → (parent, return address). Walking a node's parents gives
//! its call stack, innermost frame first.

/// Longest stack walked; guards against cycles in damaged traces.
pub const MAX_STACK_DEPTH: usize = 4096;

/// Stack nodes sorted by id.
#[derive(Debug, Default)]
pub(crate) struct StackTable {
    /// (id, parent, ip), sorted by id, one entry per id.
    nodes: Vec<(u32, u32, u64)>,
}

impl StackTable {
    /// Builds the table from node definitions in any order; the first definition of an id wins.
    pub fn new(mut nodes: Vec<(u32, u32, u64)>) -> Self {
        nodes.sort_by_key(|n| n.0);
        nodes.dedup_by_key(|n| n.0);
        nodes.retain(|n| n.0 != 0);
        nodes.shrink_to_fit();
        StackTable { nodes }
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    fn node(&self, id: u32) -> Option<(u32, u64)> {
        let i = self.nodes.binary_search_by_key(&id, |n| n.0).ok()?;
        let (_, parent, ip) = self.nodes[i];
        Some((parent, ip))
    }

    /// Return addresses of stack `id`, innermost first. Unknown ids give the part that is known
    /// (nothing for an undefined node).
    pub fn addresses(&self, id: u32) -> Vec<u64> {
        let mut out = Vec::new();
        let mut current = id;
        while current != 0 && out.len() < MAX_STACK_DEPTH {
            let Some((parent, ip)) = self.node(current) else { break };
            out.push(ip);
            if parent == current {
                break;
            }
            current = parent;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_parents_innermost_first() {
        let table = StackTable::new(vec![(3, 2, 0x30), (1, 0, 0x10), (2, 1, 0x20), (4, 1, 0x40)]);
        assert_eq!(table.addresses(3), vec![0x30, 0x20, 0x10]);
        assert_eq!(table.addresses(4), vec![0x40, 0x10]);
        assert_eq!(table.addresses(0), Vec::<u64>::new());
        assert_eq!(table.addresses(99), Vec::<u64>::new());
    }

    #[test]
    fn cycles_in_damaged_traces_stop() {
        let table = StackTable::new(vec![(1, 2, 0x10), (2, 1, 0x20), (5, 5, 0x50)]);
        assert_eq!(table.addresses(1).len(), MAX_STACK_DEPTH);
        assert_eq!(table.addresses(5), vec![0x50]);
    }
}
