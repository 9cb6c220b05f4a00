//! The two bottom lines: the status (T, totals, grouping, sort, filter) and the key hints, which
//! come from the key table.

use ratatui::Frame;
use ratatui::text::{Line, Span};

use crate::format;
use crate::keys::{BROWSE_KEYS, Binding, FILTER_KEYS};

use super::theme::Theme;
use super::{Areas, Screen};

pub(super) fn draw(frame: &mut Frame<'_>, areas: &Areas, screen: &Screen<'_>) {
    let state = screen.state;
    let theme = screen.theme;
    let summary = screen.summary;
    let mut spans = vec![
        Span::styled(" T ", theme.cursor),
        Span::styled(format::duration(state.at_ns), theme.emphasis),
        Span::raw(format!(" {}", format::percent(state.at_ns, summary.duration_ns))),
        Span::styled("  live ", theme.dim),
        Span::raw(format::bytes(screen.totals.bytes)),
        Span::styled(" · ", theme.dim),
        Span::raw(format::blocks(screen.totals.blocks)),
    ];
    match &state.filter_input {
        Some((typed, _)) => {
            spans.push(Span::styled("  filter /", theme.key));
            spans.push(Span::styled(typed.clone(), theme.emphasis));
            spans.push(Span::styled("▏", theme.key));
        }
        None if !state.filter.is_empty() => {
            spans.push(Span::styled("  filter ", theme.dim));
            spans.push(Span::styled(format!("\"{}\"", state.filter), theme.emphasis));
        }
        None => {}
    }
    spans.extend([
        Span::styled("  by ", theme.dim),
        Span::raw(state.grouping.name()),
        Span::styled(", ", theme.dim),
        Span::raw(format!("{}↓", state.sort.name())),
    ]);
    frame.render_widget(Line::from(spans), areas.status);
    let table = if state.typing_filter() { FILTER_KEYS } else { BROWSE_KEYS };
    let mut hints: Vec<(&str, &str)> = table.iter().filter_map(|b: &Binding| b.hint).collect();
    if state.open.is_some() && !state.typing_filter() {
        hints.insert(1, ("Esc", "back"));
    }
    frame.render_widget(hint_line(&hints, usize::from(areas.hints.width), theme), areas.hints);
}

/// `key word` pairs separated by two spaces; when they do not fit, the ones after the first are
/// dropped in order until they do (the last two, help and quit, stay).
pub(super) fn hint_line<'a>(hints: &[(&'a str, &'a str)], width: usize, theme: &Theme) -> Line<'a> {
    let mut hints = hints.to_vec();
    let len = |h: &[(&str, &str)]| h.iter().map(|(k, w)| k.chars().count() + w.len() + 3).sum::<usize>();
    while len(&hints) > width && hints.len() > 3 {
        hints.remove(1);
    }
    let mut spans = Vec::with_capacity(hints.len() * 3);
    for (k, w) in hints {
        spans.push(Span::raw(" "));
        spans.push(Span::styled(k, theme.key));
        spans.push(Span::raw(format!(" {w} ")));
    }
    Line::from(spans)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_shrink_to_fit_but_keep_help_and_quit() {
        let hints = [("←→", "time"), ("p", "peak"), ("g", "group"), ("?", "help"), ("q", "quit")];
        let theme = Theme::monochrome();
        let wide = hint_line(&hints, 200, &theme).to_string();
        assert!(wide.contains("p peak") && wide.contains("q quit"));
        let narrow = hint_line(&hints, 30, &theme).to_string();
        assert!(!narrow.contains("p peak"), "{narrow}");
        assert!(narrow.contains("? help") && narrow.contains("q quit") && narrow.contains("←→ time"));
        assert!(narrow.chars().count() <= 30);
    }
}
