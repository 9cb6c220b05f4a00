//! The right pane: the selected group's details (stack, size histogram, times, threads, and the
//! leak-suspect verdict on a stack group when known), or the stack of the selected allocation of
//! an open group.

use ratatui::Frame;
use ratatui::text::{Line, Span};

use crate::format;
use crate::source::{FrameInfo, GroupDetails, StackVerdict, Verdict};
use crate::state::{OpenGroup, Pane};

use super::pane::{draw_group_details, draw_scrolled};
use super::theme::Theme;
use super::{BodyAreas, Screen, pane_block};

/// Lines showing `frames`, innermost first: the function, then its place (file:line · module).
pub fn frame_lines<'a>(frames: &[FrameInfo], theme: &Theme) -> Vec<Line<'a>> {
    let mut lines = Vec::with_capacity(frames.len() * 2);
    if frames.is_empty() {
        lines.push(Line::styled("(no stack recorded)", theme.dim));
    }
    for (i, f) in frames.iter().enumerate() {
        let mut head = vec![
            Span::styled(format!("{i:>2} "), theme.dim),
            Span::styled(f.function.clone(), theme.function),
        ];
        if f.inlined {
            head.push(Span::styled(" (inlined)", theme.dim));
        }
        lines.push(Line::from(head));
        // A frame without symbols is already named `module+0xOFFSET`.
        let module = f.module.as_deref().filter(|m| !f.function.starts_with(&format!("{m}+")));
        let place: Vec<&str> = [f.location.as_deref(), module].into_iter().flatten().collect();
        if !place.is_empty() {
            lines.push(Line::styled(format!("   {}", place.join(" · ")), theme.dim));
        }
    }
    lines
}

/// The verdict on a stack and its evidence, wrapped to `width`.
fn verdict_lines<'a>(v: &StackVerdict, width: usize, theme: &Theme) -> Vec<Line<'a>> {
    let style = match v.verdict {
        Verdict::Growing | Verdict::Outlived => theme.warning,
        Verdict::NeverFreed => theme.emphasis,
        Verdict::InUse => theme.function.patch(theme.dim),
    };
    let mut lines =
        vec![Line::from(vec![Span::styled("verdict ", theme.dim), Span::styled(v.verdict.name(), style)])];
    // Narrower than this the pane is not drawn readably anyway (and before the first draw the
    // width is not known).
    let width = if width < 20 { 40 } else { width };
    lines.extend(format::wrap(&v.evidence, width).into_iter().map(|l| Line::styled(l, theme.dim)));
    lines
}

/// Lines of the details pane for one group, with the leak-suspect `verdict` on it when known;
/// `width` sizes the histogram bars and wraps the verdict's evidence.
pub fn group_lines<'a>(
    d: &GroupDetails,
    verdict: Option<&StackVerdict>,
    width: usize,
    theme: &Theme,
) -> Vec<Line<'a>> {
    let mut lines = vec![
        Line::styled(d.label.clone(), theme.function),
        Line::from(format!(
            "{} · {}{}",
            format::bytes(d.totals.bytes),
            format::blocks(d.totals.blocks),
            if d.stacks > 1 { format!(" · {} stacks", format::count(d.stacks)) } else { String::new() }
        )),
        Line::from(vec![
            Span::styled("allocated ", theme.dim),
            Span::raw(format::duration(d.first_alloc_ns)),
            Span::styled(" .. ", theme.dim),
            Span::raw(format::duration(d.last_alloc_ns)),
        ]),
    ];
    if let Some(v) = verdict {
        lines.extend(verdict_lines(v, width, theme));
    }
    let threads: Vec<String> = d
        .threads
        .iter()
        .map(|t| match &t.name {
            Some(name) => format!("{name} ({}) ×{}", t.tid, format::count(t.blocks)),
            None => format!("tid {} ×{}", t.tid, format::count(t.blocks)),
        })
        .collect();
    lines.push(Line::from(vec![Span::styled("threads ", theme.dim), Span::raw(threads.join(", "))]));
    lines.push(Line::styled("sizes", theme.header));
    let labels: Vec<String> = d.histogram.iter().map(|b| format!("≥{}", format::bytes(b.min_size))).collect();
    let label_width = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let most = d.histogram.iter().map(|b| b.blocks).max().unwrap_or(1).max(1);
    for (bucket, label) in d.histogram.iter().zip(&labels) {
        let count = format::compact_count(bucket.blocks);
        let room = width.saturating_sub(label_width + count.len() + 3).max(1);
        let bar = ((u128::from(bucket.blocks) * room as u128).div_ceil(u128::from(most)) as usize).max(1);
        lines.push(Line::from(vec![
            Span::raw(format!("{label:>label_width$} ")),
            Span::styled("█".repeat(bar), theme.bar),
            Span::raw(format!(" {count}")),
        ]));
    }
    lines.push(Line::styled(if d.stacks > 1 { "heaviest stack" } else { "stack" }, theme.header));
    lines.extend(frame_lines(&d.frames, theme));
    lines
}

pub(super) fn draw_group(frame: &mut Frame<'_>, body: &BodyAreas, screen: &Screen<'_>) {
    let state = screen.state;
    let width = usize::from(body.details_inner.width);
    let lines = screen.details.map(|d| group_lines(d, screen.selected_verdict, width, screen.theme));
    let focused = state.focus == Pane::Details;
    draw_group_details(frame, body, focused, lines, state.details_scroll, screen.theme);
}

pub(super) fn draw_stack(frame: &mut Frame<'_>, body: &BodyAreas, screen: &Screen<'_>, open: &OpenGroup) {
    let focused = screen.state.focus == Pane::Details;
    let selected =
        open.cursor.selected.checked_sub(open.cursor.offset).and_then(|i| screen.allocations.rows.get(i));
    let title = match selected {
        Some(row) => format!(" Stack of {} ", format::address(row.address)),
        None => " Stack ".to_string(),
    };
    let block = pane_block(title, focused, screen.theme);
    let theme = screen.theme;
    let lines = match selected {
        Some(row) => {
            let index = open.cursor.selected - open.cursor.offset;
            let thread = match screen.allocation_threads.get(index) {
                Some((tid, Some(name))) => format!("{name} ({tid})"),
                Some((tid, None)) => format!("thread {tid}"),
                None => String::new(),
            };
            let mut lines = vec![Line::from(vec![
                Span::raw(format::bytes(row.size)),
                Span::styled(" at ", theme.dim),
                Span::raw(format::duration(row.at_ns)),
                Span::styled(" by ", theme.dim),
                Span::raw(thread),
            ])];
            lines.extend(frame_lines(screen.stack, theme));
            lines
        }
        None => vec![Line::styled("no allocation selected", theme.dim)],
    };
    draw_scrolled(frame, (body.details, body.details_inner), block, lines, open.stack_scroll);
}
