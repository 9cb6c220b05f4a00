//! Leak kinds as valgrind's memcheck names them, and sets of them as `--leak-kind` names them
//! (`definite,indirect`, `lost`, `all`).

/// What a block outstanding at the end of the trace is, judged from the heap scan at exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LeakKind {
    /// No pointer to it from the roots or from any other block's chain from the roots: its
    /// address is lost (the leader of a group of blocks that point to one another).
    DefinitelyLost,
    /// Reached only from a definitely lost block (through any pointers).
    IndirectlyLost,
    /// Reached from the roots, but only through a chain with a pointer into the middle of a
    /// block.
    PossiblyLost,
    /// Reached from the roots through pointers to the start of each block on the way.
    StillReachable,
    /// Allocated after the heap scan began: the scan could not see it.
    NotScanned,
}

impl LeakKind {
    /// Every kind, in the order reports list them.
    pub const ALL: [LeakKind; 5] = [
        LeakKind::DefinitelyLost,
        LeakKind::IndirectlyLost,
        LeakKind::PossiblyLost,
        LeakKind::StillReachable,
        LeakKind::NotScanned,
    ];

    /// `definitely lost`, as valgrind's LEAK SUMMARY says it.
    pub fn label(self) -> &'static str {
        match self {
            LeakKind::DefinitelyLost => "definitely lost",
            LeakKind::IndirectlyLost => "indirectly lost",
            LeakKind::PossiblyLost => "possibly lost",
            LeakKind::StillReachable => "still reachable",
            LeakKind::NotScanned => "not scanned",
        }
    }

    /// `definitely_lost`: the key of the kind in JSON documents.
    pub fn json_key(self) -> &'static str {
        match self {
            LeakKind::DefinitelyLost => "definitely_lost",
            LeakKind::IndirectlyLost => "indirectly_lost",
            LeakKind::PossiblyLost => "possibly_lost",
            LeakKind::StillReachable => "still_reachable",
            LeakKind::NotScanned => "not_scanned",
        }
    }

    /// `definite`: the kind's name in `--leak-kind` lists.
    pub fn option_name(self) -> &'static str {
        match self {
            LeakKind::DefinitelyLost => "definite",
            LeakKind::IndirectlyLost => "indirect",
            LeakKind::PossiblyLost => "possible",
            LeakKind::StillReachable => "reachable",
            LeakKind::NotScanned => "not-scanned",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// Why a `--leak-kind` list could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a leak kind; use a comma-separated list of definite, indirect, possible, reachable, \
     not-scanned, lost (definite,indirect) or all"
)]
pub struct LeakKindError(pub String);

/// A set of leak kinds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct LeakKindSet(u8);

impl LeakKindSet {
    /// Every kind, the blocks not scanned included.
    pub const ALL: LeakKindSet = LeakKindSet(0b1_1111);
    /// Definitely and indirectly lost: what LeakSanitizer reports.
    pub const LOST: LeakKindSet = LeakKindSet(0b11);

    /// The set of `kinds`.
    pub fn of(kinds: &[LeakKind]) -> Self {
        LeakKindSet(kinds.iter().fold(0, |bits, k| bits | k.bit()))
    }

    /// Reads a comma-separated list (`definite,indirect`; `lost` is the two, `all` every kind,
    /// `not-scanned` included); names are ASCII case-insensitive, blanks around them ignored.
    pub fn parse(text: &str) -> Result<Self, LeakKindError> {
        let mut set = LeakKindSet::default();
        for name in text.split(',') {
            let name = name.trim();
            let kinds = match name.to_ascii_lowercase().as_str() {
                "definite" => LeakKindSet::of(&[LeakKind::DefinitelyLost]),
                "indirect" => LeakKindSet::of(&[LeakKind::IndirectlyLost]),
                "possible" => LeakKindSet::of(&[LeakKind::PossiblyLost]),
                "reachable" => LeakKindSet::of(&[LeakKind::StillReachable]),
                "not-scanned" => LeakKindSet::of(&[LeakKind::NotScanned]),
                "lost" => LeakKindSet::LOST,
                "all" => LeakKindSet::ALL,
                _ => return Err(LeakKindError(name.to_string())),
            };
            set.0 |= kinds.0;
        }
        Ok(set)
    }

    pub fn contains(self, kind: LeakKind) -> bool {
        self.0 & kind.bit() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The kinds in the set, in [`LeakKind::ALL`]'s order.
    pub fn kinds(self) -> impl Iterator<Item = LeakKind> {
        LeakKind::ALL.into_iter().filter(move |&k| self.contains(k))
    }

    /// `definitely lost or indirectly lost`.
    pub fn describe(self) -> String {
        self.kinds().map(LeakKind::label).collect::<Vec<_>>().join(" or ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_name_kinds_and_groups_of_them() {
        use LeakKind::*;
        let set = LeakKindSet::parse("definite, Possible").expect("a list");
        assert_eq!(set.kinds().collect::<Vec<_>>(), [DefinitelyLost, PossiblyLost]);
        assert_eq!(
            LeakKindSet::parse("lost").expect("lost"),
            LeakKindSet::of(&[DefinitelyLost, IndirectlyLost])
        );
        assert_eq!(LeakKindSet::parse("lost,indirect").expect("lost"), LeakKindSet::LOST);
        assert_eq!(LeakKindSet::parse("all").expect("all").kinds().count(), 5);
        assert_eq!(LeakKindSet::parse("reachable").expect("one").describe(), "still reachable");
        assert_eq!(LeakKindSet::LOST.describe(), "definitely lost or indirectly lost");
        for kind in LeakKind::ALL {
            assert_eq!(LeakKindSet::parse(kind.option_name()), Ok(LeakKindSet::of(&[kind])));
        }
    }

    #[test]
    fn unknown_and_empty_names_are_errors() {
        assert_eq!(LeakKindSet::parse("definitely"), Err(LeakKindError("definitely".into())));
        assert_eq!(LeakKindSet::parse(""), Err(LeakKindError(String::new())));
        assert_eq!(LeakKindSet::parse("lost,"), Err(LeakKindError(String::new())));
    }
}
