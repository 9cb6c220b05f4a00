//! The pointer graph of a heap scan: which scanned words are roots and which are pointers from
//! one block to another. Each word (a reference) whose value lies in a block is a pointer to it
//! (to its start, or into its middle); a word lying in a block is that block's, a word lying in
//! no block counts as a root when the caller says so (see [`Graph::build`]), and any other word
//! is ignored. Words are looked up in parallel; the graph keeps each block's pointers together
//! (compressed rows), in memory proportional to the words.

use rayon::prelude::*;

use super::intervals::Intervals;

/// Words looked up per parallel task, at least.
const MIN_TASK: usize = 4096;
/// `from` of a pointer from a root.
const ROOT: u32 = u32::MAX;

/// A pointer to block `to` (its position in address order): to its start, or into it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pointer {
    pub to: u32,
    pub start: bool,
}

/// Pointers from the roots, and from each block (by position in address order).
#[derive(Debug, Default)]
pub(crate) struct Graph {
    /// Block `n`'s pointers are `pointers[offsets[n]..offsets[n + 1]]`.
    offsets: Vec<usize>,
    pointers: Vec<Pointer>,
    pub roots: Vec<Pointer>,
}

impl Graph {
    /// The graph of `references` (`(location, value)`) among `blocks`: a reference lying in no
    /// block is a root if `is_root(its index, location)`. Pointers of a block to itself are left
    /// out.
    pub fn build(
        blocks: &Intervals,
        is_root: impl Fn(usize, u64) -> bool + Sync,
        references: &[(u64, u64)],
    ) -> Graph {
        let mut links: Vec<(u32, Pointer)> = references
            .par_iter()
            .enumerate()
            .with_min_len(MIN_TASK)
            .filter_map(|(index, &(location, value))| {
                let to = blocks.holding(value)?;
                let pointer = Pointer { to: to as u32, start: blocks.start(to) == value };
                match blocks.holding(location) {
                    Some(from) if from == to => None,
                    Some(from) => Some((from as u32, pointer)),
                    None => is_root(index, location).then_some((ROOT, pointer)),
                }
            })
            .collect();
        // Sorted by location, words of one block come together already (unless blocks overlap).
        if !links.is_sorted_by_key(|l| l.0) {
            links.par_sort_by_key(|l| l.0);
        }
        let from_blocks = links.partition_point(|l| l.0 != ROOT);
        let roots = links[from_blocks..].iter().map(|l| l.1).collect();
        links.truncate(from_blocks);
        let mut offsets = vec![0usize; blocks.len() + 1];
        for &(from, _) in &links {
            offsets[from as usize + 1] += 1;
        }
        for n in 1..offsets.len() {
            offsets[n] += offsets[n - 1];
        }
        let pointers = links.into_iter().map(|l| l.1).collect();
        Graph { offsets, pointers, roots }
    }

    /// The pointers held by block `node`.
    pub fn pointers(&self, node: usize) -> &[Pointer] {
        match (self.offsets.get(node), self.offsets.get(node + 1)) {
            (Some(&from), Some(&to)) => &self.pointers[from..to],
            _ => &[],
        }
    }
}
