//! The bordered panes both browsers are made of: the pane's block (its border highlighted when
//! focused), a pane of scrolled text and the details pane of the selected group.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph};

use super::layout::BodyAreas;
use super::theme::Theme;

/// A bordered pane; the focused one has a highlighted border.
pub(crate) fn pane_block<'a>(title: impl Into<Line<'a>>, focused: bool, theme: &Theme) -> Block<'a> {
    let style: Style = if focused { theme.border_focused } else { theme.border };
    Block::new().borders(Borders::ALL).border_style(style).title(title)
}

/// Draws a pane of text in `pane` under `block`, scrolled down by `scroll` lines (`inner` is the
/// pane's area inside its border).
pub(crate) fn draw_scrolled(
    frame: &mut Frame<'_>,
    (pane, inner): (Rect, Rect),
    block: Block<'_>,
    lines: Vec<Line<'_>>,
    scroll: usize,
) {
    frame.render_widget(block, pane);
    let scroll = u16::try_from(scroll).unwrap_or(u16::MAX);
    frame.render_widget(Paragraph::new(lines).scroll((scroll, 0)), inner);
}

/// Draws the details pane of `body`: `lines` about the selected group scrolled by `scroll`, or
/// word that no group is selected.
pub(crate) fn draw_group_details(
    frame: &mut Frame<'_>,
    body: &BodyAreas,
    focused: bool,
    lines: Option<Vec<Line<'_>>>,
    scroll: usize,
    theme: &Theme,
) {
    let block = pane_block(" Details ", focused, theme);
    let lines = lines.unwrap_or_else(|| vec![Line::styled("no group selected", theme.dim)]);
    draw_scrolled(frame, (body.details, body.details_inner), block, lines, scroll);
}
