//! Diffs: the blocks outstanding at one moment of trace A against those at one moment of trace
//! B (or at two moments of one trace), matched by symbolized stacks, each group marked `new`,
//! `fixed`, `grew`, `shrank` or `same`.
//!
//! ```no_run
//! use std::sync::Arc;
//! use leakview_analyzer::{Analysis, LoadOptions, NoProgress};
//! use leakview_analyzer::diff::{Comparison, DiffBy};
//!
//! let load = |p: &str| Analysis::open(p.as_ref(), &LoadOptions::default(), &NoProgress);
//! let comparison = Comparison::new(Arc::new(load("before.bin")?), Arc::new(load("after.bin")?));
//! let diff = comparison.diff(comparison.a().duration_ns(), comparison.b().duration_ns(), DiffBy::Stack);
//! for group in &diff.groups {
//!     println!("{:>6} {:+} bytes", group.status, group.change_bytes());
//! }
//! // Another moment of A: only the new snapshot and unseen stacks cost anything.
//! let at_peak = comparison.a().totals().peak_at_ns;
//! let _again = comparison.diff(at_peak, comparison.b().duration_ns(), DiffBy::Stack);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Matching keys (`key`) ignore addresses, line numbers and directories and are interned to
//! dense ids (`intern`); each side's blocks are summed per key (`side`, with a per-stack key
//! cache); the sums are paired, classified and ranked (`matching`, `status`); [`DiffReport`]
//! renders text (`text`), JSON (`json`) and a differential flame graph (`flamegraph`).

mod flamegraph;
mod intern;
mod json;
mod key;
mod matching;
mod side;
mod status;
mod text;

use std::sync::Arc;

use crate::analysis::Analysis;
use crate::error::WhenError;
use crate::frames::Frames;
use crate::model::{LiveTotals, StackId};
use crate::progress::{NoProgress, Progress};
use crate::selection::Selection;

pub use key::{FrameKey, StackKey};
pub use matching::{DiffGroup, DiffKey};
pub use status::{DiffStatus, StatusCounts};

use intern::KeyTable;
use key::KeyPolicy;
use side::{GroupId, KeyCache, Keying};

/// How a diff groups blocks before matching them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DiffBy {
    /// One group per symbolized stack (stacks that differ only in addresses, lines or
    /// directories are one group).
    Stack,
    /// One group per function; a block counts for every function on its stack (inclusive).
    Function,
}

impl DiffBy {
    pub fn name(self) -> &'static str {
        match self {
            DiffBy::Stack => "stack",
            DiffBy::Function => "function",
        }
    }
}

/// One of the two sides of a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    A,
    B,
}

/// Two loaded traces (or one trace twice) and the caches that make repeated diffs at other
/// moments cheap. `Send + Sync`; every method takes `&self`.
pub struct Comparison {
    a: Arc<Analysis>,
    b: Arc<Analysis>,
    policy: KeyPolicy,
    /// Interned keys, shared by both sides.
    table: KeyTable,
    /// Each side's stacks' keys (one cache when both sides are one trace).
    keys_a: Arc<KeyCache>,
    keys_b: Arc<KeyCache>,
}

impl std::fmt::Debug for Comparison {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Comparison")
            .field("a", &self.a.summary().path)
            .field("b", &self.b.summary().path)
            .finish_non_exhaustive()
    }
}

impl Comparison {
    /// Compares trace `a` (before) with trace `b` (after). Passing the same `Arc` twice is
    /// [`Comparison::one_trace`].
    pub fn new(a: Arc<Analysis>, b: Arc<Analysis>) -> Self {
        let one_trace = Arc::ptr_eq(&a, &b);
        let policy = KeyPolicy::new(a.modules(), b.modules(), one_trace);
        let keys_a = Arc::new(KeyCache::default());
        let keys_b = if one_trace { keys_a.clone() } else { Arc::new(KeyCache::default()) };
        Comparison { a, b, policy, table: KeyTable::default(), keys_a, keys_b }
    }

    /// Compares two moments of one trace.
    pub fn one_trace(trace: Arc<Analysis>) -> Self {
        Self::new(trace.clone(), trace)
    }

    /// Whether both sides are the same trace.
    pub fn is_one_trace(&self) -> bool {
        Arc::ptr_eq(&self.a, &self.b)
    }

    /// The trace of `side`.
    pub fn analysis(&self, side: Side) -> &Arc<Analysis> {
        match side {
            Side::A => &self.a,
            Side::B => &self.b,
        }
    }

    /// Side A's trace (before).
    pub fn a(&self) -> &Analysis {
        &self.a
    }

    /// Side B's trace (after).
    pub fn b(&self) -> &Analysis {
        &self.b
    }

    /// Parses and resolves a `WHEN` string against `side`'s trace.
    pub fn resolve_when(&self, side: Side, text: &str) -> Result<u64, WhenError> {
        self.analysis(side).resolve_when(text)
    }

    /// The diff of what was outstanding at `at_a_ns` in A and at `at_b_ns` in B.
    pub fn diff(&self, at_a_ns: u64, at_b_ns: u64, by: DiffBy) -> Diff {
        self.diff_with_progress(at_a_ns, at_b_ns, by, &NoProgress)
    }

    /// The diff of the blocks `selection` picks on each side: outstanding at the moment,
    /// allocated up to it, or temporary (see [`Analysis::select`]).
    pub fn diff_selected(
        &self,
        at_a_ns: u64,
        at_b_ns: u64,
        by: DiffBy,
        selection: Selection,
        progress: &dyn Progress,
    ) -> Diff {
        let a = self.keying(Side::A).sum(at_a_ns, by, selection, progress);
        let b = self.keying(Side::B).sum(at_b_ns, by, selection, progress);
        let (totals_a, totals_b) = (a.totals, b.totals);
        let key_of = |id: &GroupId| match *id {
            GroupId::Stack(id) => DiffKey::Stack(self.table.stack_key(id)),
            GroupId::Function(id) => DiffKey::Function(self.table.frame_key(id)),
        };
        let groups = matching::match_sides(a, b, &key_of)
            .into_iter()
            .map(|(id, mut group)| {
                group.frames = self.frames_of(id, &group);
                group
            })
            .collect();
        Diff { by, selection, at_a_ns, at_b_ns, totals_a, totals_b, groups }
    }

    /// [`Comparison::diff`], reporting symbolization progress.
    pub fn diff_with_progress(
        &self,
        at_a_ns: u64,
        at_b_ns: u64,
        by: DiffBy,
        progress: &dyn Progress,
    ) -> Diff {
        self.diff_selected(at_a_ns, at_b_ns, by, Selection::Outstanding, progress)
    }

    fn keying(&self, side: Side) -> Keying<'_> {
        let (analysis, cache) = match side {
            Side::A => (&self.a, &self.keys_a),
            Side::B => (&self.b, &self.keys_b),
        };
        Keying { analysis, cache, policy: &self.policy, table: &self.table }
    }

    /// The frames to show for `group` (whose key is `id`): from B when B holds it, else from A.
    fn frames_of(&self, id: GroupId, group: &DiffGroup) -> Frames {
        let (side, stack) = match (group.stacks_b.first(), group.stacks_a.first()) {
            (Some(&s), _) => (Side::B, s),
            (None, Some(&s)) => (Side::A, s),
            (None, None) => return Vec::new().into(),
        };
        let frames = self.analysis(side).stack_frames(stack);
        match id {
            GroupId::Stack(_) => frames,
            GroupId::Function(function) => {
                // A stack key has one frame key per trimmed frame, in order.
                let key = self.keying(side).key(stack);
                let position = key.frames.iter().position(|&f| f == function);
                position.and_then(|i| frames.get(i).cloned()).into_iter().collect()
            }
        }
    }

    /// The frames of one of `side`'s stacks (e.g. from [`DiffGroup::stacks_a`]), innermost
    /// first, allocator frames trimmed.
    pub fn stack_frames(&self, side: Side, stack: StackId) -> Frames {
        self.analysis(side).stack_frames(stack)
    }
}

/// The result of [`Comparison::diff`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diff {
    pub by: DiffBy,
    /// Which blocks each side counts.
    pub selection: Selection,
    /// The moments compared (ns since the start of each side's trace).
    pub at_a_ns: u64,
    pub at_b_ns: u64,
    /// Every block counted on each side (function groups overlap, so their sums can exceed
    /// these).
    pub totals_a: LiveTotals,
    pub totals_b: LiveTotals,
    /// Every group present on either side, largest change first.
    pub groups: Vec<DiffGroup>,
}

impl Diff {
    /// Groups per status.
    pub fn counts(&self) -> StatusCounts {
        let mut counts = StatusCounts::default();
        for group in &self.groups {
            counts.add(group.status);
        }
        counts
    }

    /// Outstanding bytes of B minus those of A.
    pub fn change_bytes(&self) -> i64 {
        (i128::from(self.totals_b.bytes) - i128::from(self.totals_a.bytes))
            .clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }

    /// Outstanding blocks of B minus those of A.
    pub fn change_blocks(&self) -> i64 {
        (i128::from(self.totals_b.blocks) - i128::from(self.totals_a.blocks))
            .clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }

    /// The groups that fail a growth gate: new or grown by more than `threshold` bytes.
    pub fn grown_over(&self, threshold: u64) -> Vec<&DiffGroup> {
        self.groups.iter().filter(|g| g.grew_over(threshold)).collect()
    }

    /// Indices into `groups` of the groups that [`DiffGroup::matches`] `needle`.
    pub fn filter(&self, needle: &str) -> Vec<usize> {
        self.groups.iter().enumerate().filter(|(_, g)| g.matches(needle)).map(|(i, _)| i).collect()
    }
}

/// A diff ready to render, with the moments as the user named them.
#[derive(Debug)]
pub struct DiffReport<'a> {
    pub comparison: &'a Comparison,
    pub diff: &'a Diff,
    /// The moments as named (`end`, `mark:warmup`, ...).
    pub when_a: String,
    pub when_b: String,
    /// Groups shown (0: all).
    pub top: usize,
}

impl<'a> DiffReport<'a> {
    pub fn new(comparison: &'a Comparison, diff: &'a Diff, when_a: &str, when_b: &str, top: usize) -> Self {
        DiffReport {
            comparison,
            diff,
            when_a: when_a.trim().to_string(),
            when_b: when_b.trim().to_string(),
            top,
        }
    }

    /// The groups to show, largest change first.
    pub fn shown(&self) -> &[DiffGroup] {
        let all = &self.diff.groups;
        if self.top == 0 { all } else { &all[..self.top.min(all.len())] }
    }

    /// Human-readable text: both sides, totals, ranked groups with their top frames.
    pub fn to_text(&self) -> String {
        text::render(self)
    }

    /// JSON (`"schema": 1`), pretty-printed; its shape is documented in the README.
    pub fn to_json(&self) -> String {
        json::render(self)
    }

    /// The shown groups of a diff by stack as a differential flame graph, an SVG document:
    /// widths by B's bytes, red where B holds more than A, blue where less.
    pub fn to_flamegraph_svg(&self) -> Result<String, crate::report::FlameGraphError> {
        flamegraph::render(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn comparison_can_be_shared_between_threads() {
        assert_send_sync::<Comparison>();
        assert_send_sync::<Diff>();
    }
}
