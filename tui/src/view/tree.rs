//! The call tree in the browser (the `t` key, top down, then bottom up): the list pane draws the
//! tree's lines, each with
//! its bytes, blocks and share of what is counted at T; the details pane tells the selected
//! line's frame in full (function, place, module) and what its figures cover.

use leakview_analyzer::{CallTreeLine, TreeOrder, TreePart};
use ratatui::Frame;
use ratatui::text::{Line, Span};

use crate::format;
use crate::source::{CallTree, FrameInfo, SortKey, Totals};
use crate::state::Pane;

use super::list::{counted_nothing, what_in_title};
use super::pane::{Position, draw_scrolled, with_position};
use super::rows::{draw_with_header, pad, row_style};
use super::theme::Theme;
use super::{BodyAreas, Screen, details, pane_block};

/// How a line of the tree reads after its branch lines: a frame by its function, its place
/// after it where it has a line number, shortened to the file's name.
fn line_text(part: &TreePart<FrameInfo>) -> String {
    part.text(|f| match f.location.as_deref() {
        Some(place) => format!("{} ({})", f.function, place.rsplit('/').next().unwrap_or(place)),
        None => f.function.clone(),
    })
}

/// What an opened line is called (the open list's title): a frame line by its frame; a line
/// of a frame's own blocks, of stacks without a caller, or of frames left out by the frame
/// line above it, with what the line is.
pub(crate) fn tree_line_label(tree: &CallTree, line: usize) -> String {
    let Some(part) = tree.lines.get(line).map(|l| &l.part) else { return String::new() };
    let frame_above = || {
        tree.lines[..line]
            .iter()
            .rev()
            .find(|l| matches!(l.part, TreePart::Frame(_)))
            .map(|l| line_text(&l.part))
            .unwrap_or_default()
    };
    match part {
        TreePart::Frame(_) => line_text(part),
        TreePart::AllocatedHere | TreePart::NoCaller => format!("{} {}", frame_above(), line_text(part)),
        TreePart::Elided(_) => format!("{} ({})", frame_above(), line_text(part)),
    }
}

pub(super) fn draw_list(frame: &mut Frame<'_>, body: &BodyAreas, screen: &Screen<'_>, tree: &CallTree) {
    let state = screen.state;
    let theme = screen.theme;
    let width = usize::from(body.list_rows.width);
    let what = what_in_title(state.what);
    let stacks = if tree.drawn < tree.stacks {
        format!(
            "the {} largest of {} stacks",
            format::count(tree.drawn as u64),
            format::count(tree.stacks as u64)
        )
    } else if tree.stacks == 1 {
        "1 stack".to_string()
    } else {
        format!("{} stacks", format::count(tree.stacks as u64))
    };
    let title = format!(" At {}{what} · {} · {stacks} ", format::duration(state.at_ns), tree.name());
    let focused = state.focus == Pane::List;
    let shown = usize::from(body.list_rows.height);
    let position = Position::Row { selected: state.tree_cursor.selected, len: tree.lines.len(), shown };
    frame.render_widget(with_position(pane_block(title, focused, theme), position, theme), body.list);
    let by_blocks = state.sort == SortKey::Blocks;
    let mark = |name: &str, on: bool| if on { format!("{name}↓") } else { name.to_string() };
    let first = match tree.order {
        TreeOrder::TopDown => "outermost frame first",
        TreeOrder::BottomUp => "allocating frame first",
    };
    let header =
        format!("{:>9} {:>6} {:>5}  {first}", mark("bytes", !by_blocks), mark("blocks", by_blocks), "share");
    let mut lines = Vec::with_capacity(shown + 1);
    lines.push(Line::styled(pad(&header, width), theme.header));
    if tree.lines.is_empty() {
        let empty = format!("nothing {}", counted_nothing(state.what));
        lines.push(Line::styled(format::fit(&empty, width), theme.dim));
    }
    let visible = tree.lines.iter().enumerate().skip(state.tree_cursor.offset).take(shown);
    for (i, line) in visible {
        let numbers = format!(
            "{:>9} {:>6} {:>5}  ",
            format::bytes(line.bytes),
            format::compact_count(line.blocks),
            share(line, screen.totals, by_blocks),
        );
        let text = format!("{numbers}{}{}", line.prefix, line_text(&line.part));
        lines.push(Line::styled(
            pad(&text, width),
            row_style(i == state.tree_cursor.selected, focused, theme),
        ));
    }
    draw_with_header(frame, body.list_rows, lines);
}

/// A line's share of what is counted at T, by the ranking figure.
fn share(line: &CallTreeLine<FrameInfo>, totals: Totals, by_blocks: bool) -> String {
    if by_blocks {
        format::percent(line.blocks, totals.blocks)
    } else {
        format::percent(line.bytes, totals.bytes)
    }
}

/// The details pane's lines for the selected line of `tree` (and what the tree leaves out), in a
/// pane `width` columns wide.
pub(super) fn details<'a>(
    tree: &CallTree,
    selected: usize,
    totals: Totals,
    width: usize,
    theme: &Theme,
) -> Vec<Line<'a>> {
    let mut lines = match tree.lines.get(selected) {
        Some(line) => line_details(line, tree.order, totals, width, theme),
        None => vec![Line::styled("no line selected", theme.dim)],
    };
    if tree.drawn < tree.stacks {
        lines.push(Line::raw(""));
        let note = format!(
            "{} more stacks, {} · {}, are not in the tree",
            format::count((tree.stacks - tree.drawn) as u64),
            format::bytes(tree.left_out.bytes),
            format::blocks(tree.left_out.blocks)
        );
        lines.extend(
            format::wrap(&note, details::wrap_width(width)).into_iter().map(|l| Line::styled(l, theme.dim)),
        );
    }
    lines
}

fn line_details<'a>(
    line: &CallTreeLine<FrameInfo>,
    order: TreeOrder,
    totals: Totals,
    width: usize,
    theme: &Theme,
) -> Vec<Line<'a>> {
    // What the line holds, then its shares of what is counted at T.
    let figures = |what: &str| {
        [
            Line::from(vec![
                Span::raw(format!("{} · {}", format::bytes(line.bytes), format::blocks(line.blocks))),
                Span::styled(format!(" {what}"), theme.dim),
            ]),
            Line::styled(
                format!(
                    "{} of the bytes, {} of the blocks at T",
                    format::percent(line.bytes, totals.bytes),
                    format::percent(line.blocks, totals.blocks)
                ),
                theme.dim,
            ),
        ]
    };
    match &line.part {
        TreePart::Frame(frame) => {
            let mut lines = details::frame_lines(std::slice::from_ref(frame), width, theme);
            // The frame's number means nothing here: its function starts the line.
            if let Some(first) = lines.first_mut().filter(|l| l.spans.len() > 1) {
                first.spans.remove(0);
            }
            // Top down, the stacks through the frame; bottom up, those through it from the
            // allocating frame at the top of its branch.
            lines.extend(figures(match order {
                TreeOrder::TopDown => "below this frame",
                TreeOrder::BottomUp => "on this path",
            }));
            lines
        }
        TreePart::AllocatedHere => {
            let mut lines = vec![Line::styled("allocated by the frame above itself", theme.function)];
            lines.extend(figures("(its callees are its other branches)"));
            lines
        }
        TreePart::NoCaller => {
            let mut lines = vec![Line::styled("stacks that end at the frame above", theme.function)];
            lines.extend(figures("(its callers are its other branches)"));
            lines
        }
        TreePart::Elided(n) => {
            let mut lines = vec![
                Line::styled(format!("{n} frames left out"), theme.function),
                Line::styled("a run of frames with no branch keeps its first and last two", theme.dim),
            ];
            lines.extend(figures("below them"));
            lines
        }
    }
}

pub(super) fn draw_details(frame: &mut Frame<'_>, body: &BodyAreas, screen: &Screen<'_>, tree: &CallTree) {
    let state = screen.state;
    let theme = screen.theme;
    let focused = state.focus == Pane::Details;
    let width = usize::from(body.details_inner.width);
    let lines = details(tree, state.tree_cursor.selected, screen.totals, width, theme);
    let block = pane_block(" Details ", focused, theme);
    draw_scrolled(frame, (body.details, body.details_inner), block, lines, state.details_scroll, theme);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_note_on_stacks_left_out_wraps_to_the_pane() {
        let tree = CallTree {
            lines: Vec::new(),
            stack_keys: Vec::new(),
            order: TreeOrder::TopDown,
            stacks: 207,
            drawn: 200,
            left_out: Totals { bytes: 94, blocks: 7 },
        };
        let width = 30;
        let lines = details(&tree, 0, Totals { bytes: 1000, blocks: 20 }, width, &Theme::monochrome());
        let texts: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        assert!(texts.iter().all(|t| t.chars().count() <= width), "{texts:?}");
        let note = texts[2..].join(" ");
        assert_eq!(note, "7 more stacks, 94 B · 7 blocks, are not in the tree");
    }
}
