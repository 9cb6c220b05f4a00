//! The pieces both browsers' two bottom lines share: on the status line the filter (being
//! typed, or in force) and the grouping and sort; the key-hint line from a key table.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use crate::keys::{Binding, FILTER_KEYS};
use crate::source::Summary;
use crate::state::Filter;

use super::theme::Theme;

/// The filter as the status line shows it: what is being typed, with a cursor, or the filter in
/// force; nothing when there is none.
pub(super) fn filter_spans<'a>(filter: &Filter, theme: &Theme) -> Vec<Span<'a>> {
    match &filter.typing {
        Some((typed, _)) => vec![
            Span::styled("  filter /", theme.key),
            Span::styled(typed.clone(), theme.emphasis),
            Span::styled("▏", theme.key),
        ],
        None if !filter.in_force.is_empty() => vec![
            Span::styled("  filter ", theme.dim),
            Span::styled(format!("\"{}\"", filter.in_force), theme.emphasis),
        ],
        None => vec![],
    }
}

/// ` mark:LABEL` when `at_ns` is the moment of a mark of the trace `summary` describes (as
/// `leakview report --at` takes it); nothing otherwise.
pub(super) fn mark_span<'a>(summary: &Summary, at_ns: u64, theme: &Theme) -> Option<Span<'a>> {
    let mark = summary.marks.iter().find(|m| m.at_ns == at_ns)?;
    Some(Span::styled(format!(" mark:{}", mark.label), theme.mark))
}

/// `  by GROUPING, SORT↓`.
pub(super) fn grouping_and_sort<'a>(grouping: &'a str, sort: &str, theme: &Theme) -> [Span<'a>; 4] {
    [
        Span::styled("  by ", theme.dim),
        Span::raw(grouping),
        Span::styled(", ", theme.dim),
        Span::raw(format!("{sort}↓")),
    ]
}

/// The hints of the key table in use: `keys` while browsing, the filter keys while typing one.
pub(super) fn hints_of(keys: &'static [Binding], typing_filter: bool) -> Vec<(&'static str, &'static str)> {
    let table = if typing_filter { FILTER_KEYS } else { keys };
    table.iter().filter_map(|b| b.hint).collect()
}

/// Draws the key-hint line for `hints` in `area`.
pub(super) fn draw_hints(frame: &mut Frame<'_>, area: Rect, hints: &[(&str, &str)], theme: &Theme) {
    frame.render_widget(hint_line(hints, usize::from(area.width), theme), area);
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
    use crate::source::Mark;

    #[test]
    fn a_mark_is_named_only_at_its_moment() {
        let mark = |at_ns, label: &str| Mark { at_ns, label: label.to_string() };
        let summary = Summary { marks: vec![mark(10, "warmup"), mark(20, "warmup#2")], ..Summary::default() };
        let theme = Theme::monochrome();
        let at = |t| mark_span(&summary, t, &theme).map(|s| s.content.to_string());
        assert_eq!(at(10).as_deref(), Some(" mark:warmup"));
        assert_eq!(at(20).as_deref(), Some(" mark:warmup#2"));
        assert_eq!(at(15), None);
    }

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
