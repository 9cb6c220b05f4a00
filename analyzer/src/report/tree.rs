//! The call tree as text (`report --format tree` top down, `--format bottom-up` from the
//! allocating frames out): the report's shown stacks laid out by [`crate::call_tree`], each line
//! with the bytes, blocks and share below it, under the text report's header; what the stacks
//! left out hold is counted at the end.

use std::fmt::Write;

use super::Report;
use super::text::{location, write_start};
use super::units::{bytes, count, share};
use crate::call_tree::{TreeOrder, call_tree_lines};
use crate::group::SortBy;

/// One line of the tree: its figures and the text after them (branch lines and label).
struct Line {
    bytes: u64,
    blocks: u64,
    text: String,
}

pub(super) fn render(report: &Report<'_>, order: TreeOrder) -> String {
    let mut out = String::new();
    if !write_start(report, &mut out) {
        return out;
    }
    let shown = report.shown();
    let stacks = shown.iter().map(|group| {
        let frames = report.frames_of(group);
        let labels: Vec<String> = if frames.is_empty() {
            vec!["(no stack recorded)".to_string()]
        } else {
            frames
                .iter()
                .map(|f| {
                    let loc = location(f);
                    let inlined = if f.inlined { "  [inlined]" } else { "" };
                    if loc.is_empty() {
                        format!("{}{inlined}", f.display_name())
                    } else {
                        format!("{}  {loc}{inlined}", f.display_name())
                    }
                })
                .collect()
        };
        (labels, group.bytes, group.blocks)
    });
    let by_blocks = report.sort == SortBy::Blocks;
    let lines: Vec<Line> = call_tree_lines(stacks, by_blocks, order)
        .into_iter()
        .map(|l| {
            let text = format!("{}{}", l.prefix, l.part.text(String::clone));
            Line { bytes: l.bytes, blocks: l.blocks, text }
        })
        .collect();
    let drawn_bytes: u64 = shown.iter().map(|g| g.bytes).sum();

    let totals = report.grouping.totals;
    let share_of = |l: &Line| {
        if by_blocks { share(l.blocks, totals.blocks) } else { share(l.bytes, totals.bytes) }
    };
    let cells: Vec<[String; 3]> =
        lines.iter().map(|l| [bytes(l.bytes), count(l.blocks), share_of(l)]).collect();
    let width = |k: usize, header: &str| {
        cells.iter().map(|c| c[k].chars().count()).max().unwrap_or(0).max(header.chars().count())
    };
    let widths = [width(0, "bytes"), width(1, "blocks"), width(2, "share")];
    let stacks = report.grouping.len();
    let whose = if shown.len() < stacks {
        format!("the {} largest of {} stacks", count(shown.len() as u64), count(stacks as u64))
    } else {
        "every stack".to_string()
    };
    let runs = match order {
        TreeOrder::TopDown => "outermost frame first",
        TreeOrder::BottomUp => "bottom up: allocating frame first, its callers below it",
    };
    // After a blank line, the header and every line: three figures right-aligned, then the text.
    out.push('\n');
    let mut row = |figures: [&str; 3], text: &str| {
        let [w0, w1, w2] = widths;
        let _ = writeln!(out, "{:>w0$}  {:>w1$}  {:>w2$}  {text}", figures[0], figures[1], figures[2]);
    };
    row(["bytes", "blocks", "share"], &format!("call tree, {runs} ({whose})"));
    for (line, cell) in lines.iter().zip(&cells) {
        row([&cell[0], &cell[1], &cell[2]], &line.text);
    }
    let hidden = stacks - shown.len();
    if hidden > 0 {
        let noun = if hidden == 1 { "stack" } else { "stacks" };
        let left = totals.bytes.saturating_sub(drawn_bytes);
        let _ = writeln!(
            out,
            "\n… and {} more {noun}, {} (--top 0 draws all)",
            count(hidden as u64),
            bytes(left)
        );
    }
    out
}
