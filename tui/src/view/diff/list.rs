//! The diff list: every group present on either side, with its status, its change and its size
//! on each side, in the chosen order.

use leakview_analyzer::{DiffBy, DiffStatus, Selection};
use ratatui::Frame;
use ratatui::text::{Line, Span};

use crate::diff_state::DiffPane;
use crate::format;
use crate::source::DiffSort;
use crate::view::list::fitted_label;
use crate::view::pane::{Position, with_position};
use crate::view::rows::{draw_with_header, pad, row_style};
use crate::view::{BodyAreas, pane_block};

use super::{DiffScreen, status_style, status_text};

const STATUS: usize = 8;
const CHANGE: usize = 9;
const SIZE: usize = 8;
/// Columns before a row's label: the status and the three numbers.
#[cfg(test)]
pub(super) const LABEL_START: usize = STATUS + 1 + CHANGE + 1 + SIZE + 1 + SIZE + 2;

fn label_header(by: DiffBy) -> &'static str {
    match by {
        DiffBy::Stack => "top frame",
        DiffBy::Function => "function",
    }
}

/// ` 5 groups · 1 new 2 grew ` (statuses without groups are left out; the grouping is on the
/// status line), ` 5 groups of allocated blocks · …` when the diff counts other blocks than the
/// outstanding ones.
fn title(screen: &DiffScreen<'_>) -> String {
    let mut counts = [0u64; 5];
    for &i in screen.shown {
        let status = screen.table.rows[i].status;
        if let Some(at) = DiffStatus::ALL.iter().position(|&s| s == status) {
            counts[at] += 1;
        }
    }
    let mut title = match screen.shown.len() {
        1 => " 1 group".to_string(),
        n => format!(" {} groups", format::count(n as u64)),
    };
    let what = screen.table.moment.what;
    if what != Selection::Outstanding {
        title.push_str(&format!(" of {} blocks", what.name()));
    }
    let statuses: Vec<String> =
        DiffStatus::ALL.iter().zip(counts).filter(|(_, n)| *n > 0).map(|(s, n)| format!("{n} {s}")).collect();
    if !statuses.is_empty() {
        title.push_str(&format!(" · {}", statuses.join(" ")));
    }
    title.push(' ');
    title
}

pub(super) fn draw(frame: &mut Frame<'_>, body: &BodyAreas, screen: &DiffScreen<'_>) {
    let state = screen.state;
    let theme = screen.theme;
    let width = usize::from(body.list_rows.width);
    let focused = state.focus == DiffPane::List;
    let title = format::fit(&title(screen), usize::from(body.list.width.saturating_sub(2)));
    let shown = usize::from(body.list_rows.height);
    let position = Position::Row { selected: state.groups.selected, len: screen.shown.len(), shown };
    frame.render_widget(with_position(pane_block(title, focused, theme), position, theme), body.list);

    let sorted =
        |name: &str, key: DiffSort| if state.sort == key { format!("{name}↓") } else { name.to_string() };
    let header = format!(
        "{:<STATUS$} {:>CHANGE$} {:>SIZE$} {:>SIZE$}  {}",
        sorted("status", DiffSort::Status),
        sorted("change", DiffSort::Change),
        sorted("A", DiffSort::BytesA),
        sorted("B", DiffSort::BytesB),
        label_header(state.by)
    );
    let mut lines = Vec::with_capacity(usize::from(body.list_rows.height) + 1);
    lines.push(Line::styled(pad(&header, width), theme.header));
    if screen.shown.is_empty() {
        let empty = if state.shown_filter().is_empty() {
            "nothing outstanding on either side".to_string()
        } else {
            format!("no group matches \"{}\"", state.shown_filter())
        };
        lines.push(Line::styled(format::fit(&empty, width), theme.dim));
    }
    let visible =
        screen.shown.iter().enumerate().skip(state.groups.offset).take(usize::from(body.list_rows.height));
    for (i, &row) in visible {
        let row = &screen.table.rows[row];
        let numbers = format!(
            " {:>CHANGE$} {:>SIZE$} {:>SIZE$}  ",
            format::signed_bytes(row.change_bytes()),
            format::bytes(row.a.bytes),
            format::bytes(row.b.bytes),
        );
        let label_width = width.saturating_sub(STATUS + numbers.chars().count());
        let line_style = row_style(i == state.groups.selected, focused, theme);
        lines.push(
            Line::from(vec![
                Span::styled(pad(status_text(row.status), STATUS), status_style(row.status, theme)),
                Span::raw(numbers),
                Span::raw(pad(&fitted_label(&row.label, label_width), label_width)),
            ])
            .style(line_style),
        );
    }
    draw_with_header(frame, body.list_rows, lines);
}
