//! The CI gate behind `leakview check`: outstanding blocks at a moment (optionally only those of
//! some leak kinds, see [`crate::reachability`]), minus the runtimes' own (unless asked to count
//! them, see [`crate::runtime_blocks`]) and those whose stack matches a suppression rule. Any
//! block left is a leak.

use std::fmt::Write;

use crate::analysis::Analysis;
use crate::group::{Group, GroupBy, GroupKey};
use crate::model::LiveTotals;
use crate::progress::Progress;
use crate::reachability::LeakKindSet;
use crate::report::units::{bytes, plural};
use crate::runtime_blocks::is_runtime_block;
use crate::suggest::{SuggestedSuppression, suggest};
use crate::suppress::{Rule, Suppressions};
use crate::symbolize::Frame;
use crate::window::AllocWindow;

/// Whether the runtimes' own blocks (stdio buffers, locale data, ...) count as leaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeBlocks {
    /// Left out of the verdict and totalled apart (the default of `leakview check`).
    NotCounted,
    /// Checked like any other block.
    Counted,
}

/// Stacks listed in the short text of a failed check.
const LISTED: usize = 10;
/// Frames shown per leak (`leakview report` shows them all).
const FRAMES_LISTED: usize = 8;

/// What a check found.
#[derive(Debug, Clone)]
pub struct CheckOutcome {
    pub at_ns: u64,
    /// Only blocks allocated within this window were checked.
    pub window: AllocWindow,
    /// Everything outstanding at `at_ns`.
    pub outstanding: LiveTotals,
    /// Only blocks of these leak kinds were checked.
    pub leak_kinds: Option<LeakKindSet>,
    /// Outstanding blocks of other leak kinds than those checked, left out of the verdict.
    pub other_kinds: LiveTotals,
    /// Outstanding and not suppressed.
    pub leaked: LiveTotals,
    /// The runtimes' own blocks, when they are not counted.
    pub runtime: LiveTotals,
    pub suppressed: LiveTotals,
    /// Unsuppressed stack groups (stacks that read the same merged), most bytes first.
    pub leaks: Vec<Group>,
    /// Each rule with the blocks it suppressed.
    pub rule_hits: Vec<(Rule, LiveTotals)>,
}

impl CheckOutcome {
    /// Whether the check passes (nothing leaked).
    pub fn passed(&self) -> bool {
        self.leaked.blocks == 0
    }

    /// Suppression lines that together match every leak a line can name (see
    /// [`crate::suggest`]); `matches` index [`CheckOutcome::leaks`].
    pub fn suggested_suppressions(&self, analysis: &Analysis) -> Vec<SuggestedSuppression> {
        let frames: Vec<std::sync::Arc<[Frame]>> = self
            .leaks
            .iter()
            .map(|g| g.stacks.first().map(|&s| analysis.stack_frames(s)).unwrap_or_else(|| Vec::new().into()))
            .collect();
        let stacks: Vec<&[Frame]> = frames.iter().map(|f| &f[..]).collect();
        suggest(&stacks)
    }

    /// The suggested lines as text for a suppressions file: each with a comment naming the
    /// leaks it matches by their number in [`CheckOutcome::to_text`], then the leaks no line
    /// could name; empty when nothing leaked.
    pub fn suggestions_text(&self, analysis: &Analysis) -> String {
        if self.leaks.is_empty() {
            return String::new();
        }
        let suggested = self.suggested_suppressions(analysis);
        let mut out = String::from(
            "\nsuppressions for these leaks (a line matches every stack with that function in it; \
             put them in a file for --suppressions):\n",
        );
        let width = suggested.iter().map(|s| s.line.chars().count()).max().unwrap_or(0);
        let numbers = |leaks: &mut dyn Iterator<Item = usize>| {
            leaks.map(|i| format!("#{}", i + 1)).collect::<Vec<_>>().join(", ")
        };
        for s in &suggested {
            let _ = writeln!(out, "{:<width$}  # {}", s.line, numbers(&mut s.matches.iter().copied()));
        }
        let mut covered = vec![false; self.leaks.len()];
        for &i in suggested.iter().flat_map(|s| &s.matches) {
            covered[i] = true;
        }
        if self.leaks.len() > LISTED {
            let _ = writeln!(
                out,
                "# leaks after #{LISTED} are not listed above; `--format json` has them all, numbered from 0"
            );
        }
        let mut uncovered = (0..self.leaks.len()).filter(|&i| !covered[i]).peekable();
        if uncovered.peek().is_some() {
            let _ = writeln!(
                out,
                "# no line for {}: no function of the program's own below main or a thread's start \
                 function, and a rule for one of those would match nearly every stack",
                numbers(&mut uncovered)
            );
        }
        out
    }

    /// The verdict as JSON (`leakview check --format json`, see [`crate::check_json`]), checked
    /// at the moment the user named `when`.
    pub fn to_json(&self, analysis: &Analysis, when: &str) -> String {
        crate::check_json::render(self, analysis, when)
    }

    /// A short text: the verdict, totals, the largest leaking stacks, suppression hits.
    pub fn to_text(&self, analysis: &Analysis, when: &str) -> String {
        let mut out = String::new();
        let at = match self.window.describe() {
            Some(window) => format!("{}, {window}", crate::when::format_duration(self.at_ns)),
            None => crate::when::format_duration(self.at_ns),
        };
        if self.passed() && self.outstanding.blocks == 0 {
            let _ = writeln!(out, "ok: no leaks at {when} ({at}); nothing outstanding");
        } else if self.passed() {
            let why = match (self.runtime.blocks > 0, self.suppressed.blocks > 0) {
                (true, true) => "the runtimes' own or suppressed",
                (true, false) => "all the runtimes' own",
                _ => "all suppressed",
            };
            let why = match self.leak_kinds.filter(|_| self.other_kinds.blocks > 0) {
                Some(kinds) if self.runtime.blocks + self.suppressed.blocks == 0 => {
                    format!("none {}", kinds.describe())
                }
                Some(kinds) => format!("not {}, {}", kinds.describe(), why.trim_start_matches("all ")),
                None => why.to_string(),
            };
            let _ = writeln!(
                out,
                "ok: no leaks at {when} ({at}); {} in {} outstanding, {why}",
                bytes(self.outstanding.bytes),
                plural(self.outstanding.blocks, "block", "blocks")
            );
        } else {
            let kinds = self.leak_kinds.map(|k| format!(" ({})", k.describe())).unwrap_or_default();
            let _ = writeln!(
                out,
                "leaks: {} in {} outstanding{kinds} at {when} ({at}) from {}",
                bytes(self.leaked.bytes),
                plural(self.leaked.blocks, "block", "blocks"),
                plural(self.leaks.len() as u64, "stack", "stacks")
            );
            for (i, g) in self.leaks.iter().take(LISTED).enumerate() {
                let _ = writeln!(
                    out,
                    "\n#{}  {} in {}",
                    i + 1,
                    bytes(g.bytes),
                    plural(g.blocks, "block", "blocks")
                );
                let frames = g.stacks.first().map(|&s| analysis.stack_frames(s)).unwrap_or_default();
                crate::report::write_frames_up_to(&frames, FRAMES_LISTED, &mut out);
            }
            if self.leaks.len() > LISTED {
                let _ = writeln!(
                    out,
                    "\n… and {} more; `leakview report` shows them all",
                    plural((self.leaks.len() - LISTED) as u64, "stack", "stacks")
                );
            }
        }
        if let Some(kinds) = self.leak_kinds.filter(|_| self.other_kinds.blocks > 0) {
            let _ = writeln!(
                out,
                "\nnot checked: {} in {} outstanding at the end, not {}",
                bytes(self.other_kinds.bytes),
                plural(self.other_kinds.blocks, "block", "blocks"),
                kinds.describe()
            );
        }
        if self.runtime.blocks > 0 {
            let _ = writeln!(
                out,
                "\nnot counted: {} in {} that the C, C++ and Rust runtimes keep for themselves (stdio \
                 buffers, locale and NSS data, ...; --no-default-suppressions counts them)",
                bytes(self.runtime.bytes),
                plural(self.runtime.blocks, "block", "blocks")
            );
        }
        if self.suppressed.blocks > 0 {
            let _ = writeln!(
                out,
                "\nsuppressed: {} in {}",
                bytes(self.suppressed.bytes),
                plural(self.suppressed.blocks, "block", "blocks")
            );
            // One row per rule that suppressed something, in columns: rule, bytes, blocks.
            let rows: Vec<[String; 3]> = self
                .rule_hits
                .iter()
                .filter(|(_, h)| h.blocks > 0)
                .map(|(rule, hits)| [rule.label(), bytes(hits.bytes), plural(hits.blocks, "block", "blocks")])
                .collect();
            let width = |k: usize| rows.iter().map(|r| r[k].chars().count()).max().unwrap_or(0);
            let (w0, w1) = (width(0), width(1));
            for [rule, size, blocks] in &rows {
                let _ = writeln!(out, "    {rule:<w0$}  {size:>w1$} in {blocks}");
            }
        }
        if analysis.summary().truncated {
            out.push('\n');
            crate::report::write_incomplete_warning(analysis.summary(), &mut out);
        }
        out
    }
}

/// Checks the blocks outstanding at `at_ns` and allocated within `window` against
/// `suppressions`, with or without the runtimes' own; with `leak_kinds`, only the blocks of
/// those kinds (see [`Analysis::leak_kinds`]: a trace without a complete heap scan has none, and
/// every block is then of other kinds), the others totalled apart.
pub fn check(
    analysis: &Analysis,
    at_ns: u64,
    window: &AllocWindow,
    suppressions: &Suppressions,
    runtime: RuntimeBlocks,
    leak_kinds: Option<LeakKindSet>,
    progress: &dyn Progress,
) -> CheckOutcome {
    let outstanding = analysis.outstanding_in(at_ns, window);
    let snapshot = match leak_kinds {
        Some(kinds) => analysis.of_leak_kinds(&outstanding, kinds),
        None => outstanding.clone(),
    };
    let all = outstanding.totals();
    let checked = snapshot.totals();
    let other_kinds =
        LiveTotals { blocks: all.blocks - checked.blocks, bytes: all.bytes.saturating_sub(checked.bytes) };
    // Symbolizes every stack; stacks that read the same are one group (their shown frames, which
    // the suppressions and the runtimes' rules look at, are equal).
    let groups = analysis.group_merged_with_progress(&snapshot, GroupBy::Stack, progress).all();
    let skip_runtime = runtime == RuntimeBlocks::NotCounted;
    let mut outcome = CheckOutcome {
        at_ns,
        window: window.clone(),
        outstanding: all,
        leak_kinds,
        other_kinds,
        leaked: LiveTotals::default(),
        runtime: LiveTotals::default(),
        suppressed: LiveTotals::default(),
        leaks: Vec::new(),
        rule_hits: suppressions.rules().iter().map(|r| (r.clone(), LiveTotals::default())).collect(),
    };
    for g in groups {
        let GroupKey::Stack(stack) = g.key else { continue };
        let frames: std::sync::Arc<[Frame]> = if skip_runtime || !suppressions.is_empty() {
            analysis.stack_frames(stack)
        } else {
            Vec::new().into()
        };
        if skip_runtime && is_runtime_block(&frames) {
            outcome.runtime.blocks += g.blocks;
            outcome.runtime.bytes += g.bytes;
            continue;
        }
        let rule = if suppressions.is_empty() { None } else { suppressions.matching_rule(&frames) };
        match rule {
            Some(i) => {
                outcome.suppressed.blocks += g.blocks;
                outcome.suppressed.bytes += g.bytes;
                outcome.rule_hits[i].1.blocks += g.blocks;
                outcome.rule_hits[i].1.bytes += g.bytes;
            }
            None => {
                outcome.leaked.blocks += g.blocks;
                outcome.leaked.bytes += g.bytes;
                outcome.leaks.push(g);
            }
        }
    }
    outcome
}
