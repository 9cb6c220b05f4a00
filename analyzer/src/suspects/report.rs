//! [`SuspectReport`]: the ranked suspects at one moment, rendered as text for people or JSON for
//! programs.

use super::{Suspect, Verdict, json, text};
use crate::analysis::Analysis;
use crate::model::LiveTotals;
use crate::progress::Progress;
use crate::window::AllocWindow;

/// Leak suspects at one moment, ranked.
pub struct SuspectReport<'a> {
    pub analysis: &'a Analysis,
    /// The moment as the user named it (`end`, `mark:warmup`, ...).
    pub when: String,
    pub at_ns: u64,
    /// Only blocks allocated within this window are suspects' survivors.
    pub window: AllocWindow,
    /// Outstanding blocks and bytes at the moment (all suspects together).
    pub totals: LiveTotals,
    /// Every suspect, best first.
    pub suspects: Vec<Suspect>,
    /// How many of them to show.
    pub shown: usize,
}

impl<'a> SuspectReport<'a> {
    /// Ranks the stacks holding blocks at `at_ns` allocated within `window` (those that read the
    /// same as one); the first `top` (0: all) are shown.
    pub fn new(
        analysis: &'a Analysis,
        when: &str,
        at_ns: u64,
        window: &AllocWindow,
        top: usize,
        progress: &dyn Progress,
    ) -> Self {
        // Symbolizes every stack holding blocks, to judge those that read the same as one.
        let suspects = analysis.suspects_in_with_progress(at_ns, window, progress);
        let totals = LiveTotals {
            blocks: suspects.iter().map(|s| s.blocks).sum(),
            bytes: suspects.iter().map(|s| s.bytes).sum(),
        };
        let shown = if top == 0 { suspects.len() } else { top.min(suspects.len()) };
        SuspectReport {
            analysis,
            when: when.to_string(),
            at_ns,
            window: window.clone(),
            totals,
            suspects,
            shown,
        }
    }

    /// The suspects to show, best first.
    pub fn shown(&self) -> &[Suspect] {
        &self.suspects[..self.shown]
    }

    /// How many recorded stacks hold outstanding blocks (more than suspects where some read
    /// the same).
    pub fn recorded_stacks(&self) -> usize {
        self.suspects.iter().map(|s| s.stacks.len()).sum()
    }

    /// How many suspects have `verdict`.
    pub fn count(&self, verdict: Verdict) -> usize {
        self.suspects.iter().filter(|s| s.verdict == verdict).count()
    }

    /// Human-readable text.
    pub fn to_text(&self) -> String {
        text::render(self)
    }

    /// JSON (`"schema": 1`), pretty-printed.
    pub fn to_json(&self) -> String {
        json::render(self)
    }
}
