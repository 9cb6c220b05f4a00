//! The diff screen's two bottom lines: the status (both moments, the side the time keys move,
//! the filter, the totals on both sides, grouping and sort) and the key hints from the diff key
//! table.

use leakview_analyzer::Side;
use ratatui::Frame;
use ratatui::text::{Line, Span};

use crate::format;
use crate::keys::{Binding, DIFF_KEYS, FILTER_KEYS};
use crate::view::status::hint_line;

use super::{DiffAreas, DiffScreen, side_name};

pub(super) fn draw(frame: &mut Frame<'_>, areas: &DiffAreas, screen: &DiffScreen<'_>) {
    let state = screen.state;
    let theme = screen.theme;
    let mut spans = vec![];
    for side in [Side::A, Side::B] {
        let chosen = state.side == side;
        let name = if chosen { format!("▶{}", side_name(side)) } else { format!(" {}", side_name(side)) };
        spans.push(Span::raw(" "));
        spans.push(Span::styled(name, if chosen { theme.cursor } else { theme.emphasis }));
        spans.push(Span::raw(format!(" {}", format::duration(state.at(side)))));
    }
    if screen.updating {
        spans.push(Span::styled("  updating…", theme.warning));
    }
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
    let (a, b) = (screen.table.totals_a.bytes, screen.table.totals_b.bytes);
    let change = (i128::from(b) - i128::from(a)).clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
    spans.extend([
        Span::styled("  live ", theme.dim),
        Span::raw(format!("{} → {} ({})", format::bytes(a), format::bytes(b), format::signed_bytes(change))),
        Span::styled("  by ", theme.dim),
        Span::raw(state.by.name()),
        Span::styled(", ", theme.dim),
        Span::raw(format!("{}↓", state.sort.name())),
    ]);
    frame.render_widget(Line::from(spans), areas.status);
    let table = if state.typing_filter() { FILTER_KEYS } else { DIFF_KEYS };
    let hints: Vec<(&str, &str)> = table.iter().filter_map(|b: &Binding| b.hint).collect();
    frame.render_widget(hint_line(&hints, usize::from(areas.hints.width), theme), areas.hints);
}
