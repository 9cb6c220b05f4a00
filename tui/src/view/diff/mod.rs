//! Drawing the diff browser: two traces (or two moments of one) side by side in time.
//!
//! Screen, top to bottom: title line, side A's timeline, side B's timeline (each with its own
//! cursor at its T and its peak marked; the side the time keys move is marked `▶`), the body
//! (the diff list on the left, the selected group's details on the right), status line, key
//! hints; the help overlay draws over everything.

mod details;
mod list;
mod status;

use leakview_analyzer::{DiffStatus, Side};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};

use crate::diff_state::{DiffPane, DiffState};
use crate::format;
use crate::keys::DIFF_KEYS;
use crate::source::{DiffDetails, DiffTable, Summary, Totals, side_index};

use super::layout::{BodyAreas, ScreenRows, inner};
use super::theme::Theme;
use super::timeline::Timeline;
use super::{help, pane_block};

pub use details::details_lines;

/// Where each part of the diff screen is; also used to find what a mouse event points at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiffAreas {
    pub title: Rect,
    /// Side A's and side B's timelines, and their drawing areas inside the borders.
    pub timelines: [Rect; 2],
    pub timelines_inner: [Rect; 2],
    /// The list and details panes.
    pub body: BodyAreas,
    pub status: Rect,
    pub hints: Rect,
}

impl DiffAreas {
    pub fn new(area: Rect) -> Self {
        let rows = ScreenRows::<2>::split(area, (area.height / 5).clamp(6, 10));
        // The list needs room for four number columns and a name (about 45 columns: a wrapper's
        // name and the caller that tells its rows apart); the details pane gets the rest.
        let list_share = match area.width {
            160.. => 55,
            100.. => 60,
            _ => 68,
        };
        DiffAreas {
            title: rows.title,
            timelines: rows.timelines,
            timelines_inner: rows.timelines.map(inner),
            body: BodyAreas::split(rows.body, list_share),
            status: rows.status,
            hints: rows.hints,
        }
    }
}

/// One side as the screen shows it.
pub struct SideView<'a> {
    pub summary: &'a Summary,
    /// The trace's file name.
    pub name: &'a str,
    /// Timeline levels for the timeline's inner width.
    pub levels: &'a [u64],
    /// Outstanding at the side's T.
    pub live: Totals,
}

/// Everything one frame of the diff browser shows.
pub struct DiffScreen<'a> {
    /// Side A, then side B.
    pub sides: [SideView<'a>; 2],
    /// Both sides are one trace (two moments of it).
    pub one_trace: bool,
    pub state: &'a DiffState,
    pub theme: &'a Theme,
    /// The latest diff computed (for the state's moments, unless `updating`).
    pub table: &'a DiffTable,
    /// Indices into `table.rows` of the rows listed, in order.
    pub shown: &'a [usize],
    pub details: Option<&'a DiffDetails>,
    /// The diff at the state's moments is being computed.
    pub updating: bool,
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::A => "A",
        Side::B => "B",
    }
}

/// A status as listed: a marker that reads without colour, then its name.
pub fn status_text(status: DiffStatus) -> &'static str {
    match status {
        DiffStatus::New => "+ new",
        DiffStatus::Fixed => "- fixed",
        DiffStatus::Grew => "↑ grew",
        DiffStatus::Shrank => "↓ shrank",
        DiffStatus::Same => "= same",
    }
}

pub fn status_style(status: DiffStatus, theme: &Theme) -> Style {
    match status {
        DiffStatus::New => theme.new,
        DiffStatus::Fixed => theme.fixed,
        DiffStatus::Grew => theme.grew,
        DiffStatus::Shrank => theme.shrank,
        DiffStatus::Same => theme.same,
    }
}

/// Draws the whole diff screen.
pub fn draw(frame: &mut Frame<'_>, screen: &DiffScreen<'_>) {
    let areas = DiffAreas::new(frame.area());
    let state = screen.state;
    let theme = screen.theme;
    frame.render_widget(title_line(screen, areas.title.width), areas.title);
    for side in [Side::A, Side::B] {
        draw_timeline(frame, &areas, screen, side);
    }
    list::draw(frame, &areas.body, screen);
    details::draw(frame, &areas.body, screen);
    status::draw(frame, &areas, screen);
    help::draw(frame, theme, &state.help, DIFF_KEYS);
}

/// The title line `width` columns wide; long command lines are cut so that a cut-short
/// warning stays in view.
fn title_line<'a>(screen: &DiffScreen<'a>, width: u16) -> Line<'a> {
    let theme = screen.theme;
    let [a, b] = &screen.sides;
    let mut spans = vec![Span::styled(" leakview ", theme.title), Span::styled(" diff  ", theme.emphasis)];
    if screen.one_trace {
        spans.push(Span::styled(a.name.to_string(), theme.emphasis));
        spans.push(Span::styled(" at two moments", theme.dim));
    } else {
        spans.push(Span::styled(a.name.to_string(), theme.emphasis));
        spans.push(Span::styled(" → ", theme.dim));
        spans.push(Span::styled(b.name.to_string(), theme.emphasis));
    }
    let titles = if a.summary.title == b.summary.title || screen.one_trace {
        b.summary.title.clone()
    } else {
        format!("{} → {}", a.summary.title, b.summary.title)
    };
    let command = spans.len();
    spans.push(Span::styled(format!("  {titles}"), theme.dim));
    let cut = [a, b].iter().any(|s| !s.summary.complete);
    if cut {
        spans.push(Span::styled("  trace cut short", theme.warning));
    }
    super::fit_span(spans, command, width)
}

fn draw_timeline(frame: &mut Frame<'_>, areas: &DiffAreas, screen: &DiffScreen<'_>, side: Side) {
    let state = screen.state;
    let theme = screen.theme;
    let view = &screen.sides[side_index(side)];
    let at_ns = state.at(side);
    let chosen = state.side == side;
    let mut title = vec![
        Span::raw(" "),
        if chosen { Span::styled("▶", theme.cursor) } else { Span::raw(" ") },
        Span::styled(format!(" {} ", side_name(side)), theme.emphasis),
    ];
    if !screen.one_trace {
        title.push(Span::raw(format!("{} ", view.name)));
    }
    title.extend([
        Span::styled("· T ", theme.dim),
        Span::styled(format::duration(at_ns), theme.emphasis),
        Span::styled(format!(" {}", format::percent(at_ns, view.summary.duration_ns)), theme.dim),
        Span::styled(" · live ", theme.dim),
        Span::raw(format!("{} ", format::bytes(view.live.bytes))),
    ]);
    let focused = state.focus == DiffPane::timeline(side);
    frame.render_widget(pane_block(Line::from(title), focused, theme), areas.timelines[side_index(side)]);
    let marks = view.summary.mark_times();
    frame.render_widget(
        Timeline::of_trace(view.summary, state.what, view.levels, at_ns, &marks, theme),
        areas.timelines_inner[side_index(side)],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_140_columns_the_list_fits_a_wrapper_and_the_caller_that_tells_its_rows_apart() {
        // `libsqlite3.so.0+0xa7504 ← … ← sqlite3BtreeInsert`: 44 columns.
        for width in [140, 150, 159, 160, 200] {
            let areas = DiffAreas::new(Rect::new(0, 0, width, 40));
            let room = usize::from(areas.body.list_rows.width).saturating_sub(list::LABEL_START);
            assert!(room >= 44, "{width} columns: {room} for the label");
        }
    }
}
