//! Reports of what was outstanding at a moment: built once ([`Report::new`]) and rendered as
//! text for people, JSON for programs (`"schema": 1`, fields only ever added) or folded stacks
//! for flamegraph tools.

mod folded;
mod json;
mod text;
pub mod units;

use crate::analysis::Analysis;
use crate::frames::Frames;
use crate::group::{Group, GroupBy, GroupKey, Grouping};
use crate::model::StackId;
use crate::progress::Progress;
use crate::symbolize::Frame;
use crate::window::AllocWindow;

pub use json::{JSON_SCHEMA, frame_json, trace_json};
pub use text::location as text_location;
pub(crate) use text::{
    write_frames_up_to, write_incomplete_warning, write_incomplete_warning_about, write_trace_lines,
    write_window,
};

/// Outstanding blocks at one moment, grouped, ranked and symbolized.
pub struct Report<'a> {
    pub analysis: &'a Analysis,
    /// The moment as the user named it (`end`, `mark:warmup`, ...).
    pub when: String,
    pub at_ns: u64,
    /// Only blocks allocated within this window are reported.
    pub window: AllocWindow,
    pub grouping: Grouping,
    /// The groups shown, best first (made once; the others stay unmade).
    shown: Vec<Group>,
}

impl<'a> Report<'a> {
    /// Groups the blocks outstanding at `at_ns` and allocated within `window` (stacks that read
    /// the same are one group: [`Analysis::group_merged`]), and symbolizes the stacks the
    /// report shows.
    pub fn new(
        analysis: &'a Analysis,
        when: &str,
        at_ns: u64,
        window: &AllocWindow,
        by: GroupBy,
        top: usize,
        progress: &dyn Progress,
    ) -> Self {
        let snapshot = analysis.outstanding_in(at_ns, window);
        let grouping = analysis.group_merged_with_progress(&snapshot, by, progress);
        let shown = grouping.top(if top == 0 { usize::MAX } else { top });
        let report =
            Report { analysis, when: when.to_string(), at_ns, window: window.clone(), grouping, shown };
        let stacks: Vec<StackId> = report.shown().iter().filter_map(|g| g.stacks.first().copied()).collect();
        analysis.prepare_symbols(&stacks, progress);
        report
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

    /// Folded stacks, `root;...;leaf BYTES`, one line per outstanding stack as shown (stacks
    /// that read the same are one line; all of them, whatever the grouping and however many
    /// groups are shown).
    pub fn to_folded(&self) -> String {
        folded::render(self)
    }
}
