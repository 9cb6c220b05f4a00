//! The heap scan a recorder takes at exit (format 2.2, `leakview record --leak-kinds`): the
//! regions of memory it read and the words in them that may point into the heap, gathered from
//! the trace's scan events ([`ScanParts`], filled by the load) into one [`HeapScan`], sorted by
//! address. Only a scan that ended (its scan end event is in the trace) counts; the
//! reachability of the blocks (`crate::reachability`) is worked out from it.

use leakview_format::References;
use rayon::prelude::*;

/// References sorted in parallel from this many on.
const PARALLEL_SORT: usize = 64 * 1024;

/// A region of memory the scan read. `kind` is one of [`leakview_format::region_kind`]'s
/// values (a kind this analyzer does not know is kept as it is, and its words are not roots).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ScanRegion {
    pub start: u64,
    pub len: u64,
    pub kind: u8,
}

/// What the scan says of itself when it ends: regions and bytes read, words found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanTotals {
    pub regions: u64,
    pub bytes: u64,
    pub references: u64,
}

/// A complete heap scan: its regions sorted by start, its references (`(location, value)`
/// pairs) sorted by location.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeapScan {
    at_ns: u64,
    regions: Vec<ScanRegion>,
    references: Vec<(u64, u64)>,
    totals: ScanTotals,
}

impl HeapScan {
    /// A scan taken at `at_ns` (ns since the start of the trace); sorts what it is given.
    pub(crate) fn new(
        at_ns: u64,
        mut regions: Vec<ScanRegion>,
        mut references: Vec<(u64, u64)>,
        totals: ScanTotals,
    ) -> Self {
        regions.sort_unstable();
        if references.len() >= PARALLEL_SORT {
            references.par_sort_unstable();
        } else {
            references.sort_unstable();
        }
        references.shrink_to_fit();
        HeapScan { at_ns, regions, references, totals }
    }

    /// When the scan began (ns since the start of the trace): blocks allocated later were not
    /// there for it to see.
    pub fn at_ns(&self) -> u64 {
        self.at_ns
    }

    /// The regions read, by start address.
    pub fn regions(&self) -> &[ScanRegion] {
        &self.regions
    }

    /// The words that may point into the heap, `(location, value)`, by location.
    pub fn references(&self) -> &[(u64, u64)] {
        &self.references
    }

    /// The scan's own count of what it read (its scan end event).
    pub fn totals(&self) -> ScanTotals {
        self.totals
    }
}

/// What a load found of a heap scan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum ScanFound {
    /// No scan event: the trace was recorded without `--leak-kinds` (or before format 2.2).
    #[default]
    NotRecorded,
    /// Scan events without the scan's end: the scan was interrupted.
    Interrupted,
    Complete(HeapScan),
}

/// The scan events of one chunk (or of several, merged), with their raw timestamps.
#[derive(Debug, Default)]
pub(crate) struct ScanParts {
    regions: Vec<ScanRegion>,
    references: Vec<(u64, u64)>,
    /// Time of the earliest scan event.
    first_ts: Option<u64>,
    /// The latest scan end: its time and totals.
    end: Option<(u64, ScanTotals)>,
}

impl ScanParts {
    fn saw(&mut self, ts: u64) {
        self.first_ts = Some(self.first_ts.map_or(ts, |t| t.min(ts)));
    }

    pub fn region(&mut self, ts: u64, start: u64, len: u64, kind: u8) {
        self.saw(ts);
        self.regions.push(ScanRegion { start, len, kind });
    }

    pub fn references(&mut self, ts: u64, refs: &References<'_>) {
        self.saw(ts);
        self.references.reserve(refs.len());
        self.references.extend(refs.iter());
    }

    pub fn end(&mut self, ts: u64, totals: ScanTotals) {
        self.saw(ts);
        if self.end.is_none_or(|(t, _)| ts >= t) {
            self.end = Some((ts, totals));
        }
    }

    /// Adds another chunk's parts to these.
    pub fn merge(&mut self, other: ScanParts) {
        if let Some(ts) = other.first_ts {
            self.saw(ts);
        }
        if let Some((ts, totals)) = other.end {
            self.end(ts, totals);
        }
        self.regions.extend(other.regions);
        if self.references.is_empty() {
            self.references = other.references;
        } else {
            self.references.extend(other.references);
        }
    }

    /// The scan, its times counted from `origin`.
    pub fn finish(self, origin: u64) -> ScanFound {
        match (self.first_ts, self.end) {
            (None, _) => ScanFound::NotRecorded,
            (Some(_), None) => ScanFound::Interrupted,
            (Some(first), Some((_, totals))) => ScanFound::Complete(HeapScan::new(
                first.saturating_sub(origin),
                self.regions,
                self.references,
                totals,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_from_several_chunks_make_one_sorted_scan() {
        let mut a = ScanParts::default();
        a.region(120, 0x9000, 64, 1);
        a.references(120, &References::Slice(&[(0x9008, 5), (0x9000, 7)]));
        let mut b = ScanParts::default();
        b.region(110, 0x1000, 32, 0);
        b.references(115, &References::Slice(&[(0x1000, 3)]));
        b.end(130, ScanTotals { regions: 2, bytes: 96, references: 3 });
        a.merge(b);
        let ScanFound::Complete(scan) = a.finish(100) else { panic!("a complete scan") };
        assert_eq!(scan.at_ns(), 10);
        assert_eq!(scan.regions().iter().map(|r| r.start).collect::<Vec<_>>(), [0x1000, 0x9000]);
        assert_eq!(scan.references(), [(0x1000, 3), (0x9000, 7), (0x9008, 5)]);
        assert_eq!(scan.totals(), ScanTotals { regions: 2, bytes: 96, references: 3 });
    }

    #[test]
    fn a_scan_without_its_end_is_interrupted() {
        let mut parts = ScanParts::default();
        parts.region(5, 0x1000, 8, 0);
        assert_eq!(parts.finish(0), ScanFound::Interrupted);
        assert_eq!(ScanParts::default().finish(0), ScanFound::NotRecorded);
    }
}
