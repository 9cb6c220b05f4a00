//! The diff screen's two bottom lines: the status (both moments, the side the time keys move,
//! the filter, the totals on both sides, grouping and sort) and the key hints from the diff key
//! table.

use leakview_analyzer::Side;
use ratatui::Frame;
use ratatui::text::{Line, Span};

use crate::format;
use crate::keys::DIFF_KEYS;
use crate::source::{counted_name, side_index};
use crate::view::status_pieces::{draw_hints, filter_spans, grouping_and_sort, hints_of, mark_span};

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
        spans.extend(mark_span(screen.sides[side_index(side)].summary, state.at(side), theme));
    }
    if screen.updating {
        spans.push(Span::styled("  updating…", theme.warning));
    }
    spans.extend(filter_spans(&state.filter, theme));
    let (a, b) = (screen.table.totals_a.bytes, screen.table.totals_b.bytes);
    let change = (i128::from(b) - i128::from(a)).clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
    spans.extend([
        Span::styled(format!("  {} ", counted_name(screen.table.moment.what)), theme.dim),
        Span::raw(format!("{} → {} ({})", format::bytes(a), format::bytes(b), format::signed_bytes(change))),
    ]);
    spans.extend(grouping_and_sort(state.by.name(), state.sort.name(), theme));
    frame.render_widget(Line::from(spans), areas.status);
    draw_hints(frame, areas.hints, &hints_of(DIFF_KEYS, state.typing_filter()), theme);
}
