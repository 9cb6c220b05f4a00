//! The bordered panes both browsers are made of: the pane's block (its border highlighted when
//! focused), the split of the body into the list and details panes, and a pane of scrolled text.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::Style;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph};

use super::theme::Theme;

/// A bordered pane; the focused one has a highlighted border.
pub(crate) fn pane_block<'a>(title: impl Into<Line<'a>>, focused: bool, theme: &Theme) -> Block<'a> {
    let style: Style = if focused { theme.border_focused } else { theme.border };
    Block::new().borders(Borders::ALL).border_style(style).title(title)
}

/// The drawing area of a pane inside its border.
pub(crate) fn inner(pane: Rect) -> Rect {
    Block::new().borders(Borders::ALL).inner(pane)
}

/// Where the body of a screen is: the list pane on the left, the details pane on the right.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BodyAreas {
    pub list: Rect,
    /// The list's rows (inside the border, below the column header).
    pub list_rows: Rect,
    pub details: Rect,
    pub details_inner: Rect,
}

impl BodyAreas {
    /// Splits `body` into the list pane, `list_share` percent wide, and the details pane.
    pub fn split(body: Rect, list_share: u16) -> Self {
        let [list, details] =
            Layout::horizontal([Constraint::Percentage(list_share), Constraint::Fill(1)]).areas(body);
        let list_inner = inner(list);
        let list_rows = Rect {
            y: list_inner.y.saturating_add(1),
            height: list_inner.height.saturating_sub(1),
            ..list_inner
        };
        BodyAreas { list, list_rows, details, details_inner: inner(details) }
    }

    /// The row of the list (counted from the first row shown) at `at`, if `at` is on one.
    pub fn list_row_at(&self, at: Position) -> Option<usize> {
        self.list_rows.contains(at).then(|| usize::from(at.y - self.list_rows.y))
    }

    /// Rows the list pane shows and lines the details pane shows (at least one each).
    pub fn rows(&self) -> (usize, usize) {
        (usize::from(self.list_rows.height).max(1), usize::from(self.details_inner.height).max(1))
    }
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
