//! The left pane: the ranked groups outstanding at T, or an open group's allocations.

use ratatui::Frame;
use ratatui::text::{Line, Span};

use crate::format;
use crate::source::{Grouping, SortKey};
use crate::state::{OpenGroup, Pane};

use super::rows::{draw_with_header, pad, row_style};
use super::{BodyAreas, Screen, pane_block};

fn label_header(grouping: Grouping) -> &'static str {
    match grouping {
        Grouping::Stack => "top frame",
        Grouping::Function => "function",
        Grouping::Size => "size",
    }
}

pub(super) fn draw_groups(frame: &mut Frame<'_>, body: &BodyAreas, screen: &Screen<'_>) {
    let state = screen.state;
    let theme = screen.theme;
    let width = usize::from(body.list_rows.width);
    let title = format!(
        " At {} · by {} · {} ",
        format::duration(state.at_ns),
        state.grouping.name(),
        match screen.groups.len() {
            1 => "1 group".to_string(),
            n => format!("{} groups", format::count(n as u64)),
        }
    );
    let focused = state.focus == Pane::List;
    frame.render_widget(pane_block(title, focused, theme), body.list);
    let mut lines = Vec::with_capacity(usize::from(body.list_rows.height) + 1);
    let sort_mark = |name: &str, key: SortKey| {
        if state.sort == key { format!("{name}↓") } else { name.to_string() }
    };
    let header = format!(
        "{:>9} {:>6} {:>5}  {}",
        sort_mark("bytes", SortKey::Bytes),
        sort_mark("blocks", SortKey::Blocks),
        "share",
        if state.sort == SortKey::Newest {
            format!("{} (newest first)", label_header(state.grouping))
        } else {
            label_header(state.grouping).to_string()
        }
    );
    lines.push(Line::styled(pad(&header, width), theme.header));
    if screen.groups.is_empty() {
        let empty = if state.query().filter.is_empty() {
            "nothing outstanding at T".to_string()
        } else {
            format!("no outstanding stack matches \"{}\"", state.query().filter)
        };
        lines.push(Line::styled(format::fit(&empty, width), theme.dim));
    }
    let visible =
        screen.groups.iter().enumerate().skip(state.groups.offset).take(usize::from(body.list_rows.height));
    for (i, row) in visible {
        let text = format!(
            "{:>9} {:>6} {:>5}  {}",
            format::bytes(row.totals.bytes),
            format::compact_count(row.totals.blocks),
            format::percent(row.totals.bytes, screen.totals.bytes),
            row.label
        );
        lines.push(Line::styled(pad(&text, width), row_style(i == state.groups.selected, focused, theme)));
    }
    draw_with_header(frame, body.list_rows, lines);
}

pub(super) fn draw_allocations(
    frame: &mut Frame<'_>,
    body: &BodyAreas,
    screen: &Screen<'_>,
    open: &OpenGroup,
) {
    let state = screen.state;
    let theme = screen.theme;
    let width = usize::from(body.list_rows.width);
    let page = screen.allocations;
    let title = Line::from(vec![
        Span::raw(" "),
        Span::styled(format::fit(&open.label, 30), theme.function),
        Span::raw(format!(" · {} at {} ", format::blocks(page.total), format::duration(state.at_ns))),
    ]);
    let focused = state.focus == Pane::List;
    frame.render_widget(pane_block(title, focused, theme), body.list);
    let mut lines = Vec::with_capacity(usize::from(body.list_rows.height) + 1);
    lines.push(Line::styled(
        pad(&format!("{:<14} {:>8} {:>8}  thread", "address", "size", "time"), width),
        theme.header,
    ));
    if page.rows.is_empty() {
        lines.push(Line::styled(format::fit("nothing of this group is outstanding at T", width), theme.dim));
    }
    for (i, (row, (tid, name))) in page.rows.iter().zip(screen.allocation_threads).enumerate() {
        let thread = name.clone().unwrap_or_else(|| tid.to_string());
        let text = format!(
            "{:<14} {:>8} {:>8}  {}",
            format::address(row.address),
            format::bytes(row.size),
            format::duration(row.at_ns),
            thread
        );
        let selected = open.cursor.offset + i == open.cursor.selected;
        lines.push(Line::styled(pad(&text, width), row_style(selected, focused, theme)));
    }
    draw_with_header(frame, body.list_rows, lines);
}
