//! Drawing: turns the state and the data it selects into a screen. Nothing here changes state.
//!
//! Screen, top to bottom: title line, timeline, body (list on the left, details on the right),
//! status line, key-hint line; the help overlay draws over everything.

mod details;
pub mod diff;
mod help;
mod layout;
pub(crate) mod list;
pub mod loading;
pub(crate) mod pane;
mod rows;
mod status;
mod status_pieces;
pub mod theme;
pub mod timeline;
mod tree;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};

use crate::format;
use crate::source::{
    AllocationPage, CallTree, FrameInfo, GroupDetails, GroupRow, ResidentMemory, StackVerdict, Summary,
    Totals,
};
use crate::state::{Pane, ViewState};
use crate::suspicion::Verdicts;

pub use layout::BodyAreas;
use layout::{ScreenRows, inner};
pub(crate) use pane::pane_block;
use theme::Theme;
use timeline::Timeline;
pub(crate) use tree::tree_line_label;

/// Where each part of the screen is; also used to find what a mouse event points at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Areas {
    pub title: Rect,
    pub timeline: Rect,
    /// The timeline's drawing area inside its border.
    pub timeline_inner: Rect,
    /// The list and details panes.
    pub body: BodyAreas,
    pub status: Rect,
    pub hints: Rect,
}

impl Areas {
    pub fn new(area: Rect) -> Self {
        let rows = ScreenRows::<1>::split(area, (area.height / 3).clamp(7, 14));
        let [timeline] = rows.timelines;
        let list_share = if area.width >= 140 { 50 } else { 55 };
        Areas {
            title: rows.title,
            timeline,
            timeline_inner: inner(timeline),
            body: BodyAreas::split(rows.body, list_share),
            status: rows.status,
            hints: rows.hints,
        }
    }
}

/// Everything one frame shows.
pub struct Screen<'a> {
    pub summary: &'a Summary,
    pub state: &'a ViewState,
    pub theme: &'a Theme,
    /// Timeline levels for the timeline's inner width.
    pub levels: &'a [u64],
    /// The resident set size samples, when the trace has any.
    pub resident: Option<&'a ResidentMemory>,
    /// The resident set size line for the timeline's dots; empty when it is not drawn.
    pub resident_levels: &'a [Option<u64>],
    /// What is counted at T (outstanding, allocated or temporary; unfiltered).
    pub totals: Totals,
    pub groups: &'a [GroupRow],
    pub details: Option<&'a GroupDetails>,
    /// The call tree, when the list shows it (`t`).
    pub tree: Option<&'a CallTree>,
    /// The open group's visible allocations, their thread labels and the selected one's stack.
    pub allocations: &'a AllocationPage,
    /// (tid, name) of each allocation's thread.
    pub allocation_threads: &'a [(u32, Option<String>)],
    pub stack: &'a [FrameInfo],
    /// The leak-suspect verdicts on the stack groups, when grouped by stack and known for T.
    pub verdicts: Option<Verdicts<'a>>,
    /// The verdict on the selected group, when known.
    pub selected_verdict: Option<&'a StackVerdict>,
    /// The source was asked for verdicts at T and cannot judge.
    pub no_verdicts: bool,
    /// The trace is still being recorded (and is loaded again as it grows).
    pub recording: bool,
}

/// Draws the whole screen.
pub fn draw(frame: &mut Frame<'_>, screen: &Screen<'_>) {
    let areas = Areas::new(frame.area());
    let theme = screen.theme;
    let state = screen.state;
    frame.render_widget(title_line(screen, areas.title.width), areas.title);

    let mark_times = screen.summary.mark_times();
    let charted = Timeline::charts_resident(state.what, state.chart_resident);
    let timeline_title = Timeline::title_line(state.what, screen.resident, state.at_ns, charted, theme);
    let timeline_block = pane_block(timeline_title, state.focus == Pane::Timeline, theme);
    frame.render_widget(timeline_block, areas.timeline);
    frame.render_widget(
        Timeline::of_trace(screen.summary, state.what, screen.levels, state.at_ns, &mark_times, theme)
            .with_resident(screen.resident_levels),
        areas.timeline_inner,
    );

    match (&state.open, screen.tree) {
        (None, Some(call_tree)) => {
            tree::draw_list(frame, &areas.body, screen, call_tree);
            tree::draw_details(frame, &areas.body, screen, call_tree);
        }
        (None, None) => {
            list::draw_groups(frame, &areas.body, screen);
            details::draw_group(frame, &areas.body, screen);
        }
        (Some(open), _) => {
            list::draw_allocations(frame, &areas.body, screen, open);
            details::draw_stack(frame, &areas.body, screen, open);
        }
    }
    status::draw(frame, &areas, screen);
    help::draw(frame, theme, &state.help, crate::keys::BROWSE_KEYS);
}

/// The title line `width` columns wide; a long command line is cut so that what follows it (the
/// pid, the length and a cut-short warning) stays in view.
fn title_line<'a>(screen: &Screen<'a>, width: u16) -> Line<'a> {
    let s = screen.summary;
    let theme = screen.theme;
    let mut spans = vec![Span::styled(" leakview ", theme.title), Span::raw(" ")];
    let command = spans.len();
    spans.push(Span::styled(s.title.clone(), theme.emphasis));
    if s.pid != 0 {
        spans.push(Span::styled(format!("  pid {}", s.pid), theme.dim));
    }
    spans.push(Span::styled(
        format!("  {} · {} events", format::duration(s.duration_ns), format::count(s.events)),
        theme.dim,
    ));
    if screen.recording {
        spans.push(Span::styled("  ● recording", theme.emphasis));
    } else if !s.complete {
        spans.push(Span::styled("  trace cut short", theme.warning));
    }
    fit_span(spans, command, width)
}

/// `spans` as one line at most `width` columns wide: the span at `flexible` is cut (with `…`)
/// as far as needed, down to nothing; the others are kept whole when they fit.
pub(crate) fn fit_span(mut spans: Vec<Span<'_>>, flexible: usize, width: u16) -> Line<'_> {
    let others: usize =
        spans.iter().enumerate().filter(|(i, _)| *i != flexible).map(|(_, s)| s.width()).sum();
    if let Some(span) = spans.get_mut(flexible) {
        let room = usize::from(width).saturating_sub(others);
        if span.width() > room {
            span.content = format::fit(&span.content, room).into();
        }
    }
    Line::from(spans)
}

/// Lines of the help overlay for the key table `keys` (for bounding its scrolling).
pub fn help_line_count(keys: &[crate::keys::Binding]) -> usize {
    help::help_lines(&Theme::monochrome(), keys).len()
}

/// Lines of the help overlay for the key table `keys` beyond what a screen `screen_height`
/// lines high shows (for bounding its scrolling).
pub fn help_overflow(keys: &[crate::keys::Binding], screen_height: u16) -> usize {
    // The overlay has a border above and below.
    (help_line_count(keys) + 2).saturating_sub(usize::from(screen_height))
}

/// Lines the stack pane `width` columns wide has for `frames` (for bounding its scrolling).
pub fn stack_line_count(frames: &[FrameInfo], width: u16) -> usize {
    details::frame_lines(frames, usize::from(width), &Theme::monochrome()).len()
}

/// Lines the details pane `width` columns wide has for the selected line of `tree` (for bounding
/// its scrolling).
pub fn tree_details_line_count(tree: &CallTree, selected: usize, totals: Totals, width: u16) -> usize {
    tree::details(tree, selected, totals, usize::from(width), &Theme::monochrome()).len()
}

/// Lines the details pane `width` columns wide has for `details` and the group's `verdict` (for
/// bounding its scrolling).
pub fn details_line_count(
    details: &GroupDetails,
    verdict: Option<&StackVerdict>,
    width: u16,
    theme: &Theme,
) -> usize {
    details::group_lines(details, verdict, usize::from(width), theme).len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_command_is_cut_so_that_what_follows_it_stays_in_view() {
        let spans = vec![
            Span::raw(" leakview  "),
            Span::raw("jq map(select(.score > 0.5)) | length big.json"),
            Span::raw("  335.48ms"),
            Span::raw("  trace cut short"),
        ];
        let line = fit_span(spans.clone(), 1, 50).to_string();
        assert_eq!(line.chars().count(), 50, "{line}");
        assert!(
            line.starts_with(" leakview  jq map(") && line.ends_with("…  335.48ms  trace cut short"),
            "{line}"
        );
        assert_eq!(fit_span(spans.clone(), 1, 200).to_string(), Line::from(spans).to_string(), "fits: kept");
    }
}
