//! What happened to a group between side A and side B: [`DiffStatus`] and its rules.

use std::fmt;

/// The fate of a group between A and B.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DiffStatus {
    /// Outstanding only in B.
    New,
    /// Outstanding only in A.
    Fixed,
    /// More bytes in B (or, with equal bytes, more blocks).
    Grew,
    /// Fewer bytes in B (or, with equal bytes, fewer blocks).
    Shrank,
    /// Equal bytes and blocks.
    Same,
}

impl DiffStatus {
    /// All statuses, in display order.
    pub const ALL: [DiffStatus; 5] =
        [DiffStatus::New, DiffStatus::Fixed, DiffStatus::Grew, DiffStatus::Shrank, DiffStatus::Same];

    /// `new`, `fixed`, `grew`, `shrank` or `same` (as in the JSON).
    pub fn name(self) -> &'static str {
        match self {
            DiffStatus::New => "new",
            DiffStatus::Fixed => "fixed",
            DiffStatus::Grew => "grew",
            DiffStatus::Shrank => "shrank",
            DiffStatus::Same => "same",
        }
    }

    /// The status of a group with these blocks and bytes on each side. A side holds the group
    /// when it has at least one block (a block may have 0 bytes).
    pub fn classify(blocks_a: u64, bytes_a: u64, blocks_b: u64, bytes_b: u64) -> DiffStatus {
        use std::cmp::Ordering::{Equal, Greater, Less};
        match (blocks_a, blocks_b) {
            (0, 0) => DiffStatus::Same,
            (0, _) => DiffStatus::New,
            (_, 0) => DiffStatus::Fixed,
            _ => match bytes_b.cmp(&bytes_a).then(blocks_b.cmp(&blocks_a)) {
                Greater => DiffStatus::Grew,
                Less => DiffStatus::Shrank,
                Equal => DiffStatus::Same,
            },
        }
    }
}

impl fmt::Display for DiffStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How many groups have each status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusCounts {
    pub new: u64,
    pub fixed: u64,
    pub grew: u64,
    pub shrank: u64,
    pub same: u64,
}

impl StatusCounts {
    pub fn add(&mut self, status: DiffStatus) {
        *self.get_mut(status) += 1;
    }

    fn get_mut(&mut self, status: DiffStatus) -> &mut u64 {
        match status {
            DiffStatus::New => &mut self.new,
            DiffStatus::Fixed => &mut self.fixed,
            DiffStatus::Grew => &mut self.grew,
            DiffStatus::Shrank => &mut self.shrank,
            DiffStatus::Same => &mut self.same,
        }
    }

    pub fn get(&self, status: DiffStatus) -> u64 {
        match status {
            DiffStatus::New => self.new,
            DiffStatus::Fixed => self.fixed,
            DiffStatus::Grew => self.grew,
            DiffStatus::Shrank => self.shrank,
            DiffStatus::Same => self.same,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presence_decides_new_and_fixed() {
        assert_eq!(DiffStatus::classify(0, 0, 2, 64), DiffStatus::New);
        assert_eq!(DiffStatus::classify(3, 96, 0, 0), DiffStatus::Fixed);
        // A zero-sized block is still a block.
        assert_eq!(DiffStatus::classify(0, 0, 1, 0), DiffStatus::New);
        assert_eq!(DiffStatus::classify(1, 0, 0, 0), DiffStatus::Fixed);
    }

    #[test]
    fn bytes_decide_then_blocks() {
        assert_eq!(DiffStatus::classify(1, 100, 1, 200), DiffStatus::Grew);
        assert_eq!(DiffStatus::classify(5, 200, 1, 100), DiffStatus::Shrank);
        // More bytes in fewer blocks still grew: bytes come first.
        assert_eq!(DiffStatus::classify(4, 100, 1, 101), DiffStatus::Grew);
        assert_eq!(DiffStatus::classify(2, 100, 2, 100), DiffStatus::Same);
        assert_eq!(DiffStatus::classify(2, 100, 4, 100), DiffStatus::Grew);
        assert_eq!(DiffStatus::classify(4, 100, 2, 100), DiffStatus::Shrank);
    }

    #[test]
    fn counts_follow_statuses() {
        let mut counts = StatusCounts::default();
        for status in [DiffStatus::New, DiffStatus::New, DiffStatus::Same] {
            counts.add(status);
        }
        assert_eq!(counts.get(DiffStatus::New), 2);
        assert_eq!(counts.get(DiffStatus::Same), 1);
        assert_eq!(counts.get(DiffStatus::Grew), 0);
        assert_eq!(DiffStatus::ALL.map(|s| s.name()), ["new", "fixed", "grew", "shrank", "same"]);
    }
}
