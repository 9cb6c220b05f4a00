//! The `?` overlay: every row of the key tables, with its keys and what it does.

use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use crate::keys::{Binding, FILTER_KEYS};
use crate::state::HelpOverlay;

use super::theme::Theme;

const KEY_COLUMN: usize = 13;

/// The overlay's lines, built from the key table `keys` and the filter keys.
pub fn help_lines<'a>(theme: &Theme, keys: &[Binding]) -> Vec<Line<'a>> {
    let row = |b: &Binding| {
        Line::from(vec![
            Span::styled(format!("{:<KEY_COLUMN$}", b.label), theme.key),
            Span::raw(b.description),
        ])
    };
    let mut lines: Vec<Line<'a>> = keys.iter().map(row).collect();
    lines.push(Line::raw(""));
    lines.push(Line::styled("While typing a filter (/)", theme.header));
    lines.extend(FILTER_KEYS.iter().map(row));
    lines.push(Line::styled(
        "Mouse: click a timeline to move T, a row to select it; wheel scrolls.",
        theme.dim,
    ));
    lines
}

/// Draws the overlay for the key table `keys` if `help` shows it, scrolled down as `help` says
/// when it does not fit.
pub(super) fn draw(frame: &mut Frame<'_>, theme: &Theme, help: &HelpOverlay, keys: &[Binding]) {
    if !help.shown {
        return;
    }
    let lines = help_lines(theme, keys);
    let width = lines.iter().map(Line::width).max().unwrap_or(0) as u16 + 4;
    let height = lines.len() as u16 + 2;
    let area = centered(frame.area(), width, height);
    frame.render_widget(Clear, area);
    let block =
        Block::new().borders(Borders::ALL).border_style(theme.border_focused).title(" Keys ").title_bottom(
            Line::from(if height > frame.area().height {
                " ↑↓ scroll · Esc closes "
            } else {
                " Esc or ? closes "
            })
            .right_aligned(),
        );
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let inner = Rect { x: inner.x + 1, width: inner.width.saturating_sub(1), ..inner };
    let scroll = u16::try_from(help.scroll).unwrap_or(u16::MAX);
    frame.render_widget(Paragraph::new(lines).scroll((scroll, 0)), inner);
}

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let [row] =
        Layout::vertical([Constraint::Length(height.min(area.height))]).flex(Flex::Center).areas(area);
    let [cell] =
        Layout::horizontal([Constraint::Length(width.min(area.width))]).flex(Flex::Center).areas(row);
    cell
}
