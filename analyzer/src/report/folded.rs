//! Folded stacks for flamegraph tools: `root;caller;...;leaf BYTES`, one line per stack of the
//! report's blocks as shown (stacks that read the same summed into one line), outermost frame
//! first, heaviest stack first. Ranked by blocks, each line's figure is its blocks instead.

use super::Report;
use crate::group::{GroupBy, SortBy};
use crate::model::StackId;
use crate::symbolize::Frame;

pub(super) fn render(report: &Report<'_>) -> String {
    let a = report.analysis;
    let by_stack = if report.grouping.by == GroupBy::Stack {
        report.grouping.clone()
    } else {
        let mut grouping = a.group_merged(&report.snapshot(), GroupBy::Stack);
        if report.sort != SortBy::Bytes {
            grouping.sort(report.sort);
        }
        grouping
    };
    let groups = by_stack.all();
    let stacks: Vec<StackId> = groups.iter().filter_map(|g| g.stacks.first().copied()).collect();
    a.prepare_symbols(&stacks, &crate::progress::NoProgress);
    let mut out = String::new();
    for g in &groups {
        let Some(&stack) = g.stacks.first() else { continue };
        out.push_str(&folded_stack(&a.stack_frames(stack)));
        out.push(' ');
        let figure = if report.sort == SortBy::Blocks { g.blocks } else { g.bytes };
        out.push_str(&figure.to_string());
        out.push('\n');
    }
    out
}

/// `frames` (innermost first) as one folded stack, `root;caller;...;leaf` (`[unknown]` for no
/// frame), with the separators a name may hold replaced.
pub(crate) fn folded_stack(frames: &[Frame]) -> String {
    let names: Vec<String> =
        frames.iter().rev().map(|f| f.display_name().replace(';', ":").replace('\n', " ")).collect();
    if names.is_empty() { "[unknown]".to_string() } else { names.join(";") }
}
