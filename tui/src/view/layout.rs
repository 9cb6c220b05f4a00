//! Where things are on both browsers' screens: the rows from the title line down to the key
//! hints, and the body split into the list and details panes. The areas also tell what a mouse
//! event points at.

use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::widgets::{Block, Borders};

/// The rows of a screen, top to bottom: the title line, `N` timelines, the body, the status
/// line and the key-hint line.
pub(crate) struct ScreenRows<const N: usize> {
    pub title: Rect,
    pub timelines: [Rect; N],
    pub body: Rect,
    pub status: Rect,
    pub hints: Rect,
}

impl<const N: usize> ScreenRows<N> {
    /// Splits `area` into rows, each timeline `timeline_height` lines high and the body taking
    /// what is left (five lines at least).
    pub fn split(area: Rect, timeline_height: u16) -> Self {
        let mut constraints = vec![Constraint::Length(1)];
        constraints.extend([Constraint::Length(timeline_height); N]);
        constraints.extend([Constraint::Min(5), Constraint::Length(1), Constraint::Length(1)]);
        let rows = Layout::vertical(constraints).split(area);
        ScreenRows {
            title: rows[0],
            timelines: std::array::from_fn(|i| rows[1 + i]),
            body: rows[N + 1],
            status: rows[N + 2],
            hints: rows[N + 3],
        }
    }
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
