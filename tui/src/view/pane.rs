//! The bordered panes both browsers are made of: the pane's block (its border highlighted when
//! focused), a pane of scrolled text and the details pane of the selected group.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph};

use crate::format;

use super::layout::BodyAreas;
use super::theme::Theme;

/// A bordered pane; the focused one has a highlighted border.
pub(crate) fn pane_block<'a>(title: impl Into<Line<'a>>, focused: bool, theme: &Theme) -> Block<'a> {
    let style: Style = if focused { theme.border_focused } else { theme.border };
    Block::new().borders(Borders::ALL).border_style(style).title(title)
}

/// Where a list or a text is, on the bottom border of its pane, when it does not fit: ` 12/340 `
/// (the selected row of a list and its length), or ` ↓ 10-29/66 ` (the lines of a text shown;
/// `↑`, `↓` or `↕` says which way there is more).
pub(crate) fn position_title<'a>(position: Position, style: Style) -> Option<Line<'a>> {
    let text = match position {
        Position::Row { selected, len, shown } if len > shown => {
            format!(" {}/{} ", format::count(selected as u64 + 1), format::count(len as u64))
        }
        Position::Lines { first, len, shown } if len > shown => {
            let last = (first + shown).min(len);
            let more = match (first > 0, last < len) {
                (true, true) => "↕",
                (true, false) => "↑",
                _ => "↓",
            };
            format!(" {more} {}-{}/{} ", first + 1, last, len)
        }
        _ => return None,
    };
    Some(Line::styled(text, style).right_aligned())
}

/// What [`position_title`] tells.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Position {
    /// The `selected` row of a list of `len` rows, of which `shown` fit.
    Row { selected: usize, len: usize, shown: usize },
    /// Lines from `first` on of a text of `len` lines, of which `shown` fit.
    Lines { first: usize, len: usize, shown: usize },
}

/// `block` with the position of its list or text on its bottom border, when it does not fit.
pub(crate) fn with_position<'a>(block: Block<'a>, position: Position, theme: &Theme) -> Block<'a> {
    match position_title(position, theme.dim) {
        Some(title) => block.title_bottom(title),
        None => block,
    }
}

/// Draws a pane of text in `pane` under `block`, scrolled down by `scroll` lines (`inner` is the
/// pane's area inside its border); the bottom border says which lines are shown when not all.
pub(crate) fn draw_scrolled(
    frame: &mut Frame<'_>,
    (pane, inner): (Rect, Rect),
    block: Block<'_>,
    lines: Vec<Line<'_>>,
    scroll: usize,
    theme: &Theme,
) {
    let position = Position::Lines { first: scroll, len: lines.len(), shown: usize::from(inner.height) };
    frame.render_widget(with_position(block, position, theme), pane);
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
    draw_scrolled(frame, (body.details, body.details_inner), block, lines, scroll, theme);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn title(position: Position) -> Option<String> {
        position_title(position, Style::new()).map(|l| l.to_string())
    }

    #[test]
    fn the_position_is_told_only_when_not_everything_fits() {
        assert_eq!(title(Position::Row { selected: 0, len: 5, shown: 5 }), None);
        assert_eq!(
            title(Position::Row { selected: 11, len: 6390, shown: 20 }).as_deref(),
            Some(" 12/6,390 ")
        );
        assert_eq!(title(Position::Lines { first: 0, len: 8, shown: 8 }), None);
        assert_eq!(title(Position::Lines { first: 0, len: 66, shown: 20 }).as_deref(), Some(" ↓ 1-20/66 "));
        assert_eq!(title(Position::Lines { first: 10, len: 66, shown: 20 }).as_deref(), Some(" ↕ 11-30/66 "));
        assert_eq!(title(Position::Lines { first: 46, len: 66, shown: 20 }).as_deref(), Some(" ↑ 47-66/66 "));
    }
}
