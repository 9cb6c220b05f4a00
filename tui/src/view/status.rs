//! The two bottom lines: the status (T, the totals of what is counted, grouping or call tree,
//! sort, filter) and the key hints, which come from the key table.

use ratatui::Frame;
use ratatui::text::{Line, Span};

use crate::format;
use crate::keys::BROWSE_KEYS;
use crate::source::{Grouping, Selection, SortKey, counted_name, tree_name};

use super::status_pieces::{draw_hints, filter_spans, grouping_and_sort, hints_of, mark_span};
use super::{Areas, Screen};

pub(super) fn draw(frame: &mut Frame<'_>, areas: &Areas, screen: &Screen<'_>) {
    let state = screen.state;
    let theme = screen.theme;
    let summary = screen.summary;
    let mut spans = vec![
        Span::styled(" T ", theme.cursor),
        Span::styled(format::duration(state.at_ns), theme.emphasis),
        Span::raw(format!(" {}", format::percent(state.at_ns, summary.duration_ns))),
    ];
    spans.extend(mark_span(summary, state.at_ns, theme));
    spans.extend([
        Span::styled(format!("  {} ", counted_name(state.what)), theme.dim),
        Span::raw(format::bytes(screen.totals.bytes)),
        Span::styled(" · ", theme.dim),
        Span::raw(format::blocks(screen.totals.blocks)),
    ]);
    spans.extend(filter_spans(&state.filter, theme));
    if let Some(order) = state.tree {
        // (Also while a line of the tree is open: Esc goes back to the tree.) The tree ranks by
        // blocks when the list is sorted by blocks, else by bytes.
        let sort = if state.sort == SortKey::Blocks { SortKey::Blocks } else { SortKey::Bytes };
        spans.extend([
            Span::styled(format!("  {}", tree_name(order)), theme.dim),
            Span::styled(", ", theme.dim),
            Span::raw(format!("{}↓", sort.name())),
        ]);
        frame.render_widget(Line::from(spans), areas.status);
    } else {
        draw_grouped_status(frame, areas, screen, spans);
    }
    let mut hints = hints_of(BROWSE_KEYS, state.typing_filter());
    if (state.open.is_some() || screen.tree.is_some()) && !state.typing_filter() {
        // Enter opens a group or a line of the tree; with one open, nothing more opens. Esc goes
        // back (to the groups, or from an open list to where it was opened): the first hint, so
        // that a narrow screen keeps it.
        if state.open.is_some() {
            hints.retain(|&(key, _)| key != "Enter");
        }
        hints.insert(0, ("Esc", "back"));
    }
    draw_hints(frame, areas.hints, &hints, theme);
}

/// The rest of the status line for the groups: the grouping and sort, and why the sort asked
/// for is not the one in force where it is not.
fn draw_grouped_status<'a>(
    frame: &mut Frame<'_>,
    areas: &Areas,
    screen: &Screen<'a>,
    mut spans: Vec<Span<'a>>,
) {
    let (state, theme) = (screen.state, screen.theme);
    // Suspicion ranks stack groups only; other groupings, or a source without verdicts, keep
    // bytes order, and the status says so.
    let note = match (state.sort, state.grouping) {
        (SortKey::Suspicion, _) if state.what != Selection::Outstanding => {
            Some("  suspicion: outstanding only")
        }
        (SortKey::Suspicion, Grouping::Stack) if screen.no_verdicts => Some("  no verdicts for this trace"),
        (SortKey::Suspicion, Grouping::Stack) => None,
        (SortKey::Suspicion, _) => Some("  suspicion: stacks only"),
        _ => None,
    };
    let sort = if note.is_some() { SortKey::Bytes } else { state.sort };
    spans.extend(grouping_and_sort(state.grouping.name(), sort.name(), theme));
    spans.extend(note.map(|n| Span::styled(n, theme.dim)));
    frame.render_widget(Line::from(spans), areas.status);
}
