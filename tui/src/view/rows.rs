//! The rows of a list pane, as both browsers draw them: each padded to the pane's width, the
//! selected one highlighted, the column header on the line above the rows.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::Line;
use ratatui::widgets::Paragraph;

use crate::format;

use super::theme::Theme;

/// Pads or cuts `text` to exactly `width` characters.
pub(crate) fn pad(text: &str, width: usize) -> String {
    let cut = format::fit(text, width);
    let len = cut.chars().count();
    format!("{cut}{}", " ".repeat(width.saturating_sub(len)))
}

/// The style of a row: plain, or highlighted when selected (less so while the pane is not
/// focused).
pub(crate) fn row_style(selected: bool, focused: bool, theme: &Theme) -> Style {
    if !selected {
        Style::new()
    } else if focused {
        theme.selected
    } else {
        theme.selected_unfocused
    }
}

/// Draws `lines` (the column header, then the rows) so that the rows fill `list_rows` and the
/// header sits on the line above them.
pub(crate) fn draw_with_header(frame: &mut Frame<'_>, list_rows: Rect, lines: Vec<Line<'_>>) {
    let area = Rect { y: list_rows.y - 1, height: list_rows.height + 1, ..list_rows };
    frame.render_widget(Paragraph::new(lines), area);
}
