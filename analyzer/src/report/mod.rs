//! Reports of what was outstanding at a moment (or allocated up to it, or temporary): built once
//! ([`Report::new`], [`Report::build`]) and rendered as text for people, JSON for programs
//! (`"schema": 1`, fields only ever added), folded stacks for flamegraph tools, a flame graph
//! SVG or a call tree.

pub(crate) mod flamegraph;
pub(crate) mod folded;
mod json;
mod text;
mod tree;
pub mod units;

use crate::analysis::Analysis;
use crate::call_tree::TreeOrder;
use crate::frames::Frames;
use crate::group::{Group, GroupBy, GroupKey, Grouping, Snapshot, SortBy};
use crate::model::StackId;
use crate::progress::Progress;
use crate::reachability::LeakKindSet;
use crate::selection::Selection;
use crate::symbolize::Frame;
use crate::window::AllocWindow;

pub use flamegraph::FlameGraphError;
pub(crate) use json::leak_kinds_json;
pub use json::{JSON_SCHEMA, frame_json, trace_json};
pub use text::location as text_location;
pub(crate) use text::{
    write_frames_up_to, write_incomplete_warning, write_incomplete_warning_about, write_trace_lines,
    write_window,
};

/// What a report shows: which blocks, at which moment, grouped and ranked how.
#[derive(Debug, Clone)]
pub struct ReportSpec {
    /// The moment as the user named it (`end`, `mark:warmup`, ...).
    pub when: String,
    pub at_ns: u64,
    /// Only blocks allocated within this window are reported.
    pub window: AllocWindow,
    pub selection: Selection,
    pub by: GroupBy,
    /// [`SortBy::Bytes`] or [`SortBy::Blocks`].
    pub sort: SortBy,
    /// Groups to show (0: all).
    pub top: usize,
    /// Only blocks outstanding at the end of the trace with these leak kinds (see
    /// [`Analysis::leak_kinds`]; none where the trace has no complete heap scan).
    pub leak_kinds: Option<LeakKindSet>,
}

/// Blocks at one moment (outstanding, allocated or temporary), grouped, ranked and symbolized.
pub struct Report<'a> {
    pub analysis: &'a Analysis,
    /// The moment as the user named it (`end`, `mark:warmup`, ...).
    pub when: String,
    pub at_ns: u64,
    /// Only blocks allocated within this window are reported.
    pub window: AllocWindow,
    pub selection: Selection,
    /// Only blocks of these leak kinds are reported.
    pub leak_kinds: Option<LeakKindSet>,
    pub sort: SortBy,
    pub grouping: Grouping,
    /// The groups shown, best first (made once; the others stay unmade).
    shown: Vec<Group>,
}

impl<'a> Report<'a> {
    /// Groups the blocks outstanding at `at_ns` and allocated within `window` (stacks that read
    /// the same are one group: [`Analysis::group_merged`]), ranked by bytes, and symbolizes the
    /// stacks the report shows.
    pub fn new(
        analysis: &'a Analysis,
        when: &str,
        at_ns: u64,
        window: &AllocWindow,
        by: GroupBy,
        top: usize,
        progress: &dyn Progress,
    ) -> Self {
        let spec = ReportSpec {
            when: when.to_string(),
            at_ns,
            window: window.clone(),
            selection: Selection::Outstanding,
            by,
            sort: SortBy::Bytes,
            top,
            leak_kinds: None,
        };
        Self::build(analysis, &spec, progress)
    }

    /// Groups the blocks `spec` selects (stacks that read the same are one group:
    /// [`Analysis::group_merged`]), ranks them, and symbolizes the stacks the report shows.
    pub fn build(analysis: &'a Analysis, spec: &ReportSpec, progress: &dyn Progress) -> Self {
        let snapshot = select(analysis, spec.at_ns, &spec.window, spec.selection, spec.leak_kinds);
        let mut grouping = analysis.group_merged_with_progress(&snapshot, spec.by, progress);
        if spec.sort != SortBy::Bytes {
            grouping.sort(spec.sort);
        }
        let shown = grouping.top(if spec.top == 0 { usize::MAX } else { spec.top });
        let report = Report {
            analysis,
            when: spec.when.clone(),
            at_ns: spec.at_ns,
            window: spec.window.clone(),
            selection: spec.selection,
            leak_kinds: spec.leak_kinds,
            sort: spec.sort,
            grouping,
            shown,
        };
        let stacks: Vec<StackId> = report.shown().iter().filter_map(|g| g.stacks.first().copied()).collect();
        analysis.prepare_symbols(&stacks, progress);
        report
    }

    /// The blocks the report counts.
    pub(crate) fn snapshot(&self) -> Snapshot {
        select(self.analysis, self.at_ns, &self.window, self.selection, self.leak_kinds)
    }

    /// The groups to show, best first.
    pub fn shown(&self) -> &[Group] {
        &self.shown
    }

    /// The frames to show for `group`: its stack, or for other groupings the stack contributing
    /// the most bytes to it.
    pub fn frames_of(&self, group: &Group) -> Frames {
        match (&group.key, group.stacks.first()) {
            (GroupKey::Function(_), _) => {
                group.frame.iter().map(|f| Frame::clone(f)).collect::<Vec<_>>().into()
            }
            (_, Some(&stack)) => self.analysis.stack_frames(stack),
            (_, None) => Vec::new().into(),
        }
    }

    /// Human-readable text.
    pub fn to_text(&self) -> String {
        text::render(self)
    }

    /// JSON (`"schema": 1`), pretty-printed.
    pub fn to_json(&self) -> String {
        json::render(self)
    }

    /// Folded stacks, `root;...;leaf BYTES` (or `BLOCKS`, ranked by blocks), one line per
    /// stack of the selected blocks as shown (stacks that read the same are one line; all of
    /// them, whatever the grouping and however many groups are shown).
    pub fn to_folded(&self) -> String {
        folded::render(self)
    }

    /// The `top` heaviest stacks of the selected blocks (0: all; stacks as
    /// [`Report::to_folded`] lists them) as an interactive flame graph, an SVG document.
    pub fn to_flamegraph_svg(&self, top: usize) -> Result<String, FlameGraphError> {
        flamegraph::render(self, top)
    }

    /// The shown stacks as one call tree in `order` (outermost frame first, or bottom up from
    /// the allocating frames), under the text report's header (see the `tree` module).
    pub fn to_tree(&self, order: TreeOrder) -> String {
        tree::render(self, order)
    }
}

/// The blocks `selection` picks at `at_ns` within `window`, narrowed to `leak_kinds`.
fn select(
    analysis: &Analysis,
    at_ns: u64,
    window: &AllocWindow,
    selection: Selection,
    leak_kinds: Option<LeakKindSet>,
) -> Snapshot {
    let snapshot = analysis.select(at_ns, window, selection);
    match leak_kinds {
        Some(kinds) => analysis.of_leak_kinds(&snapshot, kinds),
        None => snapshot,
    }
}
