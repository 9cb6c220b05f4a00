//! The diff's details pane: the selected group's status, its numbers on both sides and the
//! symbolized stack of the chosen side (or of the other side when the group is not there).

use leakview_analyzer::Side;
use ratatui::Frame;
use ratatui::text::{Line, Span};

use crate::diff_state::DiffPane;
use crate::format;
use crate::source::{DiffDetails, Totals};
use crate::view::BodyAreas;
use crate::view::details::frame_lines;
use crate::view::pane::draw_group_details;
use crate::view::theme::Theme;

use super::{DiffScreen, side_name, status_style, status_text};

fn side_line<'a>(side: Side, totals: Totals, theme: &Theme) -> Line<'a> {
    Line::from(vec![
        Span::styled(format!("{} ", side_name(side)), theme.emphasis),
        Span::raw(format!("{} · {}", format::bytes(totals.bytes), format::blocks(totals.blocks))),
    ])
}

/// The details pane's lines for one group, with the stack of `chosen`'s side when it has one, for
/// a pane `width` columns wide.
pub fn details_lines<'a>(d: &DiffDetails, chosen: Side, width: u16, theme: &Theme) -> Vec<Line<'a>> {
    let mut lines = vec![
        Line::styled(d.label.clone(), theme.function),
        Line::from(vec![
            Span::styled(status_text(d.status), status_style(d.status, theme)),
            Span::raw(format!("  {}", format::signed_bytes(d.change_bytes()))),
        ]),
        side_line(Side::A, d.a, theme),
        side_line(Side::B, d.b, theme),
    ];
    let side = side_name(d.frames_side);
    let stacks = match d.frames_side {
        Side::A => d.stacks_a,
        Side::B => d.stacks_b,
    };
    let heading = match (d.frames_side == chosen, stacks > 1) {
        (true, false) => format!("stack in {side}"),
        (true, true) => format!("heaviest of {stacks} stacks in {side}"),
        (false, _) => format!("stack in {side} (none in {})", side_name(chosen)),
    };
    lines.push(Line::styled(heading, theme.header));
    lines.extend(frame_lines(&d.frames, usize::from(width), theme));
    lines
}

pub(super) fn draw(frame: &mut Frame<'_>, body: &BodyAreas, screen: &DiffScreen<'_>) {
    let state = screen.state;
    let width = body.details_inner.width;
    let lines = screen.details.map(|d| details_lines(d, state.side, width, screen.theme));
    let focused = state.focus == DiffPane::Details;
    draw_group_details(frame, body, focused, lines, state.details_scroll, screen.theme);
}
