//! Address ranges sorted by start, and which of them hold an address: the blocks a scanned word
//! points into or lies in, the scanned regions a word lies in. Ranges may overlap (a damaged
//! trace, garbage regions): each range keeps the largest end among it and the ranges before
//! it, so a lookup walks back only over ranges that may still hold the address — one step
//! where ranges do not overlap.

use rayon::prelude::*;

/// Ranges sorted in parallel from this many on.
const PARALLEL_SORT: usize = 64 * 1024;

/// Half-open ranges `start..end`, each with an id (its index in the caller's list), sorted by
/// `(start, end)`. Positions (`0..len()`) index this order.
#[derive(Debug, Default)]
pub(crate) struct Intervals {
    starts: Vec<u64>,
    ends: Vec<u64>,
    /// The largest end among the ranges at and before each position.
    max_ends: Vec<u64>,
    ids: Vec<u32>,
}

impl Intervals {
    /// Sorts `ranges` (`(start, end, id)`; an empty or inverted range holds nothing).
    pub fn new(mut ranges: Vec<(u64, u64, u32)>) -> Self {
        if ranges.len() >= PARALLEL_SORT {
            ranges.par_sort_unstable();
        } else {
            ranges.sort_unstable();
        }
        let mut max_end = 0;
        let max_ends = ranges
            .iter()
            .map(|&(_, end, _)| {
                max_end = max_end.max(end);
                max_end
            })
            .collect();
        Intervals {
            starts: ranges.iter().map(|r| r.0).collect(),
            ends: ranges.iter().map(|r| r.1).collect(),
            max_ends,
            ids: ranges.iter().map(|r| r.2).collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// The caller's id of the range at `position`.
    pub fn id(&self, position: usize) -> u32 {
        self.ids[position]
    }

    pub fn start(&self, position: usize) -> u64 {
        self.starts[position]
    }

    /// Calls `visit(position)` for each range holding `x`, from the latest start back, until
    /// it returns false.
    pub fn each_holding(&self, x: u64, visit: impl FnMut(usize) -> bool) {
        self.each_overlapping(x, x.saturating_add(1), visit);
    }

    /// The range holding `x` that starts last (of equal starts, the longest).
    pub fn holding(&self, x: u64) -> Option<usize> {
        let mut found = None;
        self.each_holding(x, |p| {
            found = Some(p);
            false
        });
        found
    }

    /// Calls `visit(position)` for each range that overlaps `lo..hi`, from the latest start
    /// back, until it returns false.
    pub fn each_overlapping(&self, lo: u64, hi: u64, mut visit: impl FnMut(usize) -> bool) {
        let mut p = self.starts.partition_point(|&s| s < hi);
        while p > 0 {
            p -= 1;
            if self.max_ends[p] <= lo {
                return;
            }
            if self.ends[p] > lo && self.ends[p] > self.starts[p] && !visit(p) {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_find_the_range_holding_an_address() {
        let ranges = Intervals::new(vec![(0x200, 0x210, 1), (0x100, 0x110, 0), (0x300, 0x301, 2)]);
        assert_eq!(ranges.holding(0x100).map(|p| ranges.id(p)), Some(0));
        assert_eq!(ranges.holding(0x10f).map(|p| ranges.id(p)), Some(0));
        assert_eq!(ranges.holding(0x110), None);
        assert_eq!(ranges.holding(0x300).map(|p| ranges.id(p)), Some(2));
        assert_eq!(ranges.holding(0x301), None);
        assert_eq!(ranges.holding(0), None);
        assert_eq!(ranges.holding(u64::MAX), None);
    }

    #[test]
    fn overlapping_ranges_are_all_found() {
        // A long range holding two short ones, and an empty range that holds nothing.
        let ranges =
            Intervals::new(vec![(0x100, 0x1000, 0), (0x200, 0x210, 1), (0x400, 0x410, 2), (0x500, 0x500, 3)]);
        let mut held = Vec::new();
        ranges.each_holding(0x205, |p| {
            held.push(ranges.id(p));
            true
        });
        assert_eq!(held, [1, 0]);
        assert_eq!(ranges.holding(0x300).map(|p| ranges.id(p)), Some(0), "behind a range that ended");
        assert_eq!(ranges.holding(0x500).map(|p| ranges.id(p)), Some(0), "the empty range holds nothing");
        let mut overlapping = Vec::new();
        ranges.each_overlapping(0x20f, 0x401, |p| {
            overlapping.push(ranges.id(p));
            true
        });
        assert_eq!(overlapping, [2, 1, 0]);
        assert!(Intervals::new(Vec::new()).holding(5).is_none());
    }
}
