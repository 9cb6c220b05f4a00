//! [`ComparisonSource`]: what the diff browser shows, over the analyzer's [`Comparison`] of two
//! traces (or of two moments of one trace).
//!
//! The expensive question, "the diff of what was outstanding at T_A in A and at T_B in B", is
//! [`ComparisonSource::table`]; it costs two snapshots and their grouping (the analyzer caches
//! symbols and matching keys), so the browser asks it off the UI thread (see `DiffApp`). The
//! answer, a [`DiffTable`], is then filtered, sorted and detailed cheaply on the UI thread.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use leakview_analyzer as analyzer;
use leakview_analyzer::diff::DiffKey;
use leakview_analyzer::{Analysis, Comparison, DiffBy, DiffGroup, DiffStatus, LoadOptions, Selection, Side};

use super::analysis::{LoadReporter, frame_info, summary_of};
use super::{FrameInfo, GroupKey, Summary, Totals, alike};
use crate::runner::ProgressFn;

/// The two moments compared, how blocks are grouped and which blocks are counted (those
/// outstanding at each moment, by default): what a [`DiffTable`] answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DiffMoment {
    pub at_a_ns: u64,
    pub at_b_ns: u64,
    pub by: DiffBy,
    pub what: Selection,
}

impl DiffMoment {
    /// The moment of `side`.
    pub fn at(&self, side: Side) -> u64 {
        match side {
            Side::A => self.at_a_ns,
            Side::B => self.at_b_ns,
        }
    }
}

/// The next grouping in the cycle the `g` key walks in the diff browser.
pub fn next_diff_by(by: DiffBy) -> DiffBy {
    match by {
        DiffBy::Stack => DiffBy::Function,
        DiffBy::Function => DiffBy::Stack,
    }
}

/// The order of the diff list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum DiffSort {
    /// Largest change first, either way (the analyzer's ranking).
    #[default]
    Change,
    /// Most bytes in A first.
    BytesA,
    /// Most bytes in B first.
    BytesB,
    /// New, fixed, grew, shrank, same; largest change first within each.
    Status,
}

impl DiffSort {
    /// The next sort in the cycle the `s` key walks.
    pub fn next(self) -> Self {
        match self {
            DiffSort::Change => DiffSort::BytesA,
            DiffSort::BytesA => DiffSort::BytesB,
            DiffSort::BytesB => DiffSort::Status,
            DiffSort::Status => DiffSort::Change,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DiffSort::Change => "change",
            DiffSort::BytesA => "A bytes",
            DiffSort::BytesB => "B bytes",
            DiffSort::Status => "status",
        }
    }
}

/// One row of the diff list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiffRow {
    /// Stable across moments: the same group keeps its key when T_A or T_B moves.
    pub key: GroupKey,
    pub status: DiffStatus,
    pub a: Totals,
    pub b: Totals,
    /// The top frame (by stack) or the function (by function).
    pub label: String,
}

/// `b - a`, saturating at the ends of `i64`.
fn signed_difference(a: u64, b: u64) -> i64 {
    (i128::from(b) - i128::from(a)).clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

impl DiffRow {
    /// Bytes of B minus bytes of A.
    pub fn change_bytes(&self) -> i64 {
        signed_difference(self.a.bytes, self.b.bytes)
    }

    /// Blocks of B minus blocks of A.
    pub fn change_blocks(&self) -> i64 {
        signed_difference(self.a.blocks, self.b.blocks)
    }
}

/// The diff at one [`DiffMoment`]: every group present on either side, largest change first.
#[derive(Debug)]
pub struct DiffTable {
    pub moment: DiffMoment,
    /// Everything outstanding on side A and on side B.
    pub totals_a: Totals,
    pub totals_b: Totals,
    pub rows: Vec<DiffRow>,
    /// The analyzer's groups, in the order of `rows`.
    groups: Vec<DiffGroup>,
}

impl DiffTable {
    /// Indices into `rows` of the groups with a shown frame containing `filter` (function, file
    /// or module, ASCII case-insensitive; empty: all), in `sort` order.
    pub fn shown(&self, filter: &str, sort: DiffSort) -> Vec<usize> {
        let mut shown: Vec<usize> = if filter.is_empty() {
            (0..self.rows.len()).collect()
        } else {
            let needle = filter.to_ascii_lowercase();
            (0..self.rows.len()).filter(|&i| self.groups[i].matches(&needle)).collect()
        };
        let rows = &self.rows;
        let status_rank = |s: DiffStatus| DiffStatus::ALL.iter().position(|&x| x == s).unwrap_or(0);
        // A stable sort: equal rows keep the analyzer's ranking.
        match sort {
            DiffSort::Change => {}
            DiffSort::BytesA => shown.sort_by(|&x, &y| rows[y].a.bytes.cmp(&rows[x].a.bytes)),
            DiffSort::BytesB => shown.sort_by(|&x, &y| rows[y].b.bytes.cmp(&rows[x].b.bytes)),
            DiffSort::Status => shown.sort_by_key(|&i| status_rank(rows[i].status)),
        }
        shown
    }

    /// The row of group `key`, if present on either side.
    pub fn position(&self, key: GroupKey) -> Option<usize> {
        self.rows.iter().position(|r| r.key == key)
    }
}

/// Everything the details pane shows about one group of the diff.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiffDetails {
    pub label: String,
    pub status: DiffStatus,
    pub a: Totals,
    pub b: Totals,
    /// Distinct stacks of the group on side A and on side B.
    pub stacks_a: usize,
    pub stacks_b: usize,
    /// Whose stack `frames` is: the side asked for, or the other when the group is not there.
    pub frames_side: Side,
    /// The heaviest stack of the group on `frames_side`, innermost first.
    pub frames: Vec<FrameInfo>,
}

impl DiffDetails {
    /// Bytes of B minus bytes of A.
    pub fn change_bytes(&self) -> i64 {
        signed_difference(self.a.bytes, self.b.bytes)
    }

    /// Blocks of B minus blocks of A.
    pub fn change_blocks(&self) -> i64 {
        signed_difference(self.a.blocks, self.b.blocks)
    }
}

/// A diff browser's data: the comparison, each side's summary and stable keys for groups.
pub struct ComparisonSource {
    comparison: Comparison,
    summaries: [Summary; 2],
    names: [String; 2],
    /// Group keys handed out so far, so a group keeps its key from one moment to the next.
    keys: Mutex<HashMap<DiffKey, u64>>,
}

/// Where `side` stands in the `[A, B]` arrays of the diff browser: 0 for A, 1 for B.
pub fn side_index(side: Side) -> usize {
    match side {
        Side::A => 0,
        Side::B => 1,
    }
}

/// The file name of `path`, for titles.
fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string())
}

impl ComparisonSource {
    /// Loads trace `a` and trace `b`, or with no `b` one trace to compare two moments of,
    /// reporting progress to `progress` (stages are prefixed `A: ` and `B: ` for two traces).
    pub fn open(a: &Path, b: Option<&Path>, progress: ProgressFn<'_>) -> Result<Self, analyzer::LoadError> {
        let load = |path: &Path, prefix: &str| {
            Analysis::open(path, &LoadOptions::default(), &LoadReporter::new(progress, prefix)).map(Arc::new)
        };
        let comparison = match b {
            Some(b) => Comparison::new(load(a, "A: ")?, load(b, "B: ")?),
            None => Comparison::one_trace(load(a, "")?),
        };
        Ok(Self::new(comparison))
    }

    pub fn new(comparison: Comparison) -> Self {
        let summaries = [summary_of(comparison.a()), summary_of(comparison.b())];
        let names = [file_name(&comparison.a().summary().path), file_name(&comparison.b().summary().path)];
        ComparisonSource { comparison, summaries, names, keys: Mutex::new(HashMap::new()) }
    }

    pub fn comparison(&self) -> &Comparison {
        &self.comparison
    }

    /// Whether both sides are one trace (two moments of it).
    pub fn is_one_trace(&self) -> bool {
        self.comparison.is_one_trace()
    }

    pub fn summary(&self, side: Side) -> &Summary {
        &self.summaries[side_index(side)]
    }

    /// The file name of `side`'s trace.
    pub fn trace_name(&self, side: Side) -> &str {
        &self.names[side_index(side)]
    }

    /// Outstanding on `side` at `at_ns` (cheap: from the analyzer's index).
    pub fn totals_at(&self, side: Side, at_ns: u64) -> Totals {
        let live = self.comparison.analysis(side).live_at(at_ns);
        Totals { bytes: live.bytes, blocks: live.blocks }
    }

    /// What `what` counts on `side` in each of `buckets` equal slices of its trace (see
    /// [`DataSource::timeline`](super::DataSource::timeline)).
    pub fn timeline(&self, side: Side, buckets: usize, what: Selection) -> Vec<u64> {
        self.comparison.analysis(side).bytes_over_time(what, buckets)
    }

    /// Resolves a `WHEN` string (`end`, `peak`, `40%`, `1.5s`, `mark:LABEL`) on `side`.
    pub fn resolve_when(&self, side: Side, text: &str) -> Result<u64, analyzer::WhenError> {
        self.comparison.resolve_when(side, text)
    }

    /// The diff at `moment` (the slow part: see the module docs), symbolizing what it needs with
    /// progress reported to `progress`.
    pub fn table_with_progress(&self, moment: DiffMoment, progress: &dyn analyzer::Progress) -> DiffTable {
        let diff =
            self.comparison.diff_selected(moment.at_a_ns, moment.at_b_ns, moment.by, moment.what, progress);
        let mut rows = {
            let mut keys = self.keys.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            diff.groups
                .iter()
                .map(|g| {
                    let next = keys.len() as u64;
                    let key = *keys.entry(g.key.clone()).or_insert(next);
                    DiffRow {
                        key: GroupKey(key),
                        status: g.status,
                        a: Totals { bytes: g.bytes_a, blocks: g.blocks_a },
                        b: Totals { bytes: g.bytes_b, blocks: g.blocks_b },
                        label: label_of(g),
                    }
                })
                .collect::<Vec<DiffRow>>()
        };
        if moment.by == DiffBy::Stack {
            tell_alike_apart(&mut rows, &diff.groups);
        }
        DiffTable {
            moment,
            totals_a: Totals { bytes: diff.totals_a.bytes, blocks: diff.totals_a.blocks },
            totals_b: Totals { bytes: diff.totals_b.bytes, blocks: diff.totals_b.blocks },
            rows,
            groups: diff.groups,
        }
    }

    /// [`ComparisonSource::table_with_progress`], reporting to the loading screen.
    pub fn table_for_loading(&self, moment: DiffMoment, progress: ProgressFn<'_>) -> DiffTable {
        self.table_with_progress(moment, &LoadReporter::new(progress, ""))
    }

    /// [`ComparisonSource::table_with_progress`] without progress.
    pub fn table(&self, moment: DiffMoment) -> DiffTable {
        self.table_with_progress(moment, &analyzer::NoProgress)
    }

    /// Details of row `row` of `table`, with the heaviest stack of `side` (or of the other side
    /// when the group is not on `side`).
    pub fn details(&self, table: &DiffTable, row: usize, side: Side) -> Option<DiffDetails> {
        let (r, g) = (table.rows.get(row)?, table.groups.get(row)?);
        let stacks = |s: Side| match s {
            Side::A => &g.stacks_a,
            Side::B => &g.stacks_b,
        };
        let other = match side {
            Side::A => Side::B,
            Side::B => Side::A,
        };
        let frames_side = if stacks(side).is_empty() { other } else { side };
        let frames = stacks(frames_side)
            .first()
            .map(|&stack| self.comparison.stack_frames(frames_side, stack).iter().map(frame_info).collect())
            .unwrap_or_default();
        Some(DiffDetails {
            label: r.label.clone(),
            status: r.status,
            a: r.a,
            b: r.b,
            stacks_a: g.stacks_a.len(),
            stacks_b: g.stacks_b.len(),
            frames_side,
            frames,
        })
    }
}

/// Stack rows (`rows[i]` of `groups[i]`) whose top frames share a name get the caller, or else
/// the place, that sets each apart, as in the browser of one trace (see [`alike`]).
fn tell_alike_apart(rows: &mut [DiffRow], groups: &[DiffGroup]) {
    let mut ids = alike::FunctionIds::default();
    let functions: Vec<Vec<u32>> = groups.iter().map(|g| ids.of_frames(&g.frames)).collect();
    let places: Vec<Option<String>> =
        groups.iter().map(|g| g.frames.first().and_then(alike::place_of)).collect();
    let labels: Vec<String> = rows.iter().map(|r| r.label.clone()).collect();
    let suffixes = alike::distinguishing_callers(
        &labels.iter().map(String::as_str).collect::<Vec<_>>(),
        &functions.iter().map(Vec::as_slice).collect::<Vec<_>>(),
        &places.iter().map(Option::as_deref).collect::<Vec<_>>(),
        |id| ids.name(id).map(str::to_string),
    );
    for (row, suffix) in rows.iter_mut().zip(suffixes) {
        if let Some(suffix) = suffix {
            row.label.push_str(&suffix);
        }
    }
}

/// What names a group in the list: its function (by function), else its top frame.
fn label_of(group: &DiffGroup) -> String {
    match &group.key {
        DiffKey::Function(key) => key.to_string(),
        DiffKey::Stack(_) => {
            group.frames.first().map(|f| f.display_name()).unwrap_or_else(|| "(no stack)".to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(key: u64, status: DiffStatus, a: u64, b: u64) -> DiffRow {
        DiffRow {
            key: GroupKey(key),
            status,
            a: Totals { bytes: a, blocks: a.min(1) },
            b: Totals { bytes: b, blocks: b.min(1) },
            label: format!("g{key}"),
        }
    }

    fn table(rows: Vec<DiffRow>) -> DiffTable {
        DiffTable {
            moment: DiffMoment { at_a_ns: 0, at_b_ns: 0, by: DiffBy::Stack, what: Selection::Outstanding },
            totals_a: Totals::default(),
            totals_b: Totals::default(),
            rows,
            groups: Vec::new(),
        }
    }

    #[test]
    fn sorts_keep_the_ranking_among_equals() {
        let t = table(vec![
            row(1, DiffStatus::Fixed, 3000, 0),
            row(2, DiffStatus::New, 0, 1024),
            row(3, DiffStatus::Grew, 640, 1280),
            row(4, DiffStatus::Same, 256, 256),
            row(5, DiffStatus::New, 0, 8),
        ]);
        let keys = |sort| t.shown("", sort).into_iter().map(|i| t.rows[i].key.0).collect::<Vec<_>>();
        assert_eq!(keys(DiffSort::Change), [1, 2, 3, 4, 5]);
        assert_eq!(keys(DiffSort::BytesA), [1, 3, 4, 2, 5]);
        assert_eq!(keys(DiffSort::BytesB), [3, 2, 4, 5, 1]);
        assert_eq!(keys(DiffSort::Status), [2, 5, 1, 3, 4]);
    }

    #[test]
    fn sort_cycle_visits_every_order_once() {
        let mut sort = DiffSort::default();
        let mut seen = vec![sort];
        for _ in 0..3 {
            sort = sort.next();
            assert!(!seen.contains(&sort));
            seen.push(sort);
        }
        assert_eq!(sort.next(), DiffSort::Change);
        assert_eq!(next_diff_by(next_diff_by(DiffBy::Stack)), DiffBy::Stack);
    }

    #[test]
    fn changes_are_signed() {
        let r = row(1, DiffStatus::Shrank, 300, 100);
        assert_eq!((r.change_bytes(), r.change_blocks()), (-200, 0));
        assert_eq!(row(2, DiffStatus::New, 0, u64::MAX).change_bytes(), i64::MAX);
    }
}
