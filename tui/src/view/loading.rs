//! The screen shown while a trace loads: what is being done and how far along it is.

use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Gauge, Paragraph};

use super::theme::Theme;

/// How far loading is; `total == 0` when the amount of work is not known yet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadProgress {
    pub stage: String,
    pub done: u64,
    pub total: u64,
}

const SPINNER: [char; 4] = ['|', '/', '-', '\\'];

/// Draws the loading screen for `path`; `tick` turns the spinner.
pub fn draw(frame: &mut Frame<'_>, path: &str, progress: &LoadProgress, tick: usize, theme: &Theme) {
    let [area] = Layout::vertical([Constraint::Length(6)]).flex(Flex::Center).areas(frame.area());
    let [area] = Layout::horizontal([Constraint::Max(70)]).flex(Flex::Center).areas(area);
    let block = Block::new().borders(Borders::ALL).border_style(theme.border_focused).title(" leakview ");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [text, gauge] = Layout::vertical([Constraint::Length(2), Constraint::Length(1)]).areas(inner);
    let spinner = SPINNER[tick % SPINNER.len()];
    let stage = if progress.stage.is_empty() { "opening" } else { progress.stage.as_str() };
    frame.render_widget(
        Paragraph::new(vec![
            Line::styled(format!("Loading {path}"), theme.emphasis),
            Line::from(format!("{spinner} {stage}…")),
        ]),
        text,
    );
    if progress.total > 0 {
        let ratio = (progress.done as f64 / progress.total as f64).clamp(0.0, 1.0);
        frame.render_widget(Gauge::default().gauge_style(theme.bar).ratio(ratio), gauge);
    }
}
