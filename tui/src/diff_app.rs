//! [`DiffApp`]: the diff browser. It turns key and mouse events into [`DiffState`] changes, asks
//! its [`Differ`] for the diff at the state's moments (right away, or on a worker thread while
//! the screen keeps answering), filters and sorts the answer, and draws.

use std::sync::Arc;

use leakview_analyzer::Side;
use ratatui::Frame;
use ratatui::crossterm::event::{KeyEvent, MouseEvent};

use crate::diff_state::{DiffContext, DiffPane, DiffState};
use crate::differ::Differ;
use crate::keys::{self, Action, DIFF_KEYS};
use crate::pointer::{Pointer, wheel_row_step, wheel_time_step};
use crate::source::{
    ComparisonSource, DiffDetails, DiffMoment, DiffSort, DiffTable, GroupKey, Selection, Totals, side_index,
};
use crate::state::Timespan;
use crate::view::diff::{self as diff_view, DiffAreas, DiffScreen, SideView};
use crate::view::theme::Theme;
use crate::view::{self, timeline::Timeline};

/// The list as last filtered and sorted, and what it was for.
#[derive(Default)]
struct Listed {
    /// (table moment, filter, sort) the list is for.
    for_: Option<(DiffMoment, String, DiffSort)>,
    /// Indices into the table's rows.
    rows: Vec<usize>,
    details_for: Option<(DiffMoment, GroupKey, Side)>,
    details: Option<DiffDetails>,
}

/// The diff browser over one comparison.
pub struct DiffApp {
    differ: Differ,
    state: DiffState,
    theme: Theme,
    /// The latest diff computed; for the state's moments unless an answer is awaited.
    table: DiffTable,
    listed: Listed,
    /// Each side's timeline levels, for the dots and the selection of `timeline_for`.
    levels: [Vec<u64>; 2],
    timeline_for: (usize, Selection),
    /// Each side's live totals at its T, and the T they are for.
    live: [(u64, Totals); 2],
    marks: [Vec<u64>; 2],
    areas: DiffAreas,
    areas_height: u16,
}

impl DiffApp {
    /// A browser showing `table` (computed on `source`), opening at its moments. Later diffs are
    /// computed on the caller's thread; see [`DiffApp::in_background`].
    pub fn new(source: Arc<ComparisonSource>, table: DiffTable, theme: Theme) -> Self {
        let state = DiffState::new(table.moment);
        let marks =
            [Side::A, Side::B].map(|side| source.summary(side).marks.iter().map(|m| m.at_ns).collect());
        let live = [Side::A, Side::B].map(|side| {
            let at = table.moment.at(side);
            (at, source.totals_at(side, at))
        });
        let mut app = DiffApp {
            differ: Differ::inline(source),
            state,
            theme,
            table,
            listed: Listed::default(),
            levels: [Vec::new(), Vec::new()],
            timeline_for: (0, Selection::default()),
            live,
            marks,
            areas: DiffAreas::default(),
            areas_height: 0,
        };
        app.refresh();
        app
    }

    /// A browser at `moment`, computing its first diff now.
    pub fn at(source: Arc<ComparisonSource>, moment: DiffMoment, theme: Theme) -> Self {
        let table = source.table(moment);
        Self::new(source, table, theme)
    }

    /// Computes later diffs on a worker thread: the screen keeps answering while a side is
    /// scrubbed, showing the last diff (and "updating…") until the new one is ready.
    pub fn in_background(mut self) -> Self {
        self.differ = Differ::in_background(self.differ.source().clone());
        self
    }

    pub fn state(&self) -> &DiffState {
        &self.state
    }

    pub fn source(&self) -> &ComparisonSource {
        self.differ.source()
    }

    /// The latest diff computed.
    pub fn table(&self) -> &DiffTable {
        &self.table
    }

    /// The rows listed (indices into [`DiffApp::table`]'s rows), in order.
    pub fn listed(&self) -> &[usize] {
        &self.listed.rows
    }

    pub fn should_quit(&self) -> bool {
        self.state.quit
    }

    /// Whether a diff is being computed in the background.
    pub fn busy(&self) -> bool {
        self.differ.busy()
    }

    fn context(&self) -> DiffContext<'_> {
        let span = |side: Side| {
            let summary = self.source().summary(side);
            Timespan {
                duration_ns: summary.duration_ns,
                peak_at_ns: summary.peak_at_ns,
                marks: &self.marks[side_index(side)],
            }
        };
        DiffContext {
            a: span(Side::A),
            b: span(Side::B),
            list_len: self.listed.rows.len(),
            details_len: self.details_lines(),
            help_overflow: view::help_overflow(DIFF_KEYS, self.areas_height),
        }
    }

    /// Applies an action and brings the data up to date.
    pub fn apply(&mut self, action: Action) {
        let ctx = self.context();
        let mut state = self.state.clone();
        state.apply(action, &ctx);
        self.state = state;
        self.refresh();
    }

    /// Handles a key press; other key events are ignored.
    pub fn handle_key(&mut self, event: KeyEvent) {
        if let Some(action) = keys::pressed_action(DIFF_KEYS, &event, self.state.typing_filter()) {
            self.apply(action);
        }
    }

    /// A click on a timeline moves that side's T (and chooses the side); a click on a list row
    /// selects it; the wheel over a timeline moves its T, elsewhere it scrolls.
    pub fn handle_mouse(&mut self, event: MouseEvent) {
        let body = self.areas.body;
        let timeline_side =
            |at| [Side::A, Side::B].into_iter().find(|&s| self.areas.timelines[side_index(s)].contains(at));
        match Pointer::of(&event) {
            Some(Pointer::Press(at)) => {
                let ctx = self.context();
                let mut state = self.state.clone();
                if let Some(side) = timeline_side(at) {
                    let inner = self.areas.timelines_inner[side_index(side)];
                    if inner.contains(at) {
                        state.click_timeline(side, at.x - inner.x, inner.width, &ctx);
                    } else {
                        state.choose_side(side);
                    }
                } else if let Some(row) = body.list_row_at(at) {
                    state.select_row(state.groups.offset + row, &ctx);
                } else if body.details.contains(at) {
                    state.focus = DiffPane::Details;
                } else if body.list.contains(at) {
                    state.focus = DiffPane::List;
                }
                self.state = state;
                self.refresh();
            }
            Some(Pointer::Wheel { at, up }) => {
                if let Some(side) = timeline_side(at) {
                    self.state.side = side;
                    self.apply(wheel_time_step(up));
                } else {
                    let pane = if body.details.contains(at) { DiffPane::Details } else { DiffPane::List };
                    let focus = std::mem::replace(&mut self.state.focus, pane);
                    self.apply(wheel_row_step(up));
                    self.state.focus = focus;
                }
            }
            None => {}
        }
    }

    /// Picks up a diff finished in the background; returns whether there was one (the screen
    /// then needs drawing).
    pub fn poll(&mut self) -> bool {
        match self.differ.poll() {
            Some(table) => {
                self.table = table;
                self.refresh();
                true
            }
            None => false,
        }
    }

    /// Asks for the diff at the state's moments if the table is for others, then filters, sorts
    /// and details what the table holds.
    pub fn refresh(&mut self) {
        let want = self.state.moment();
        if self.table.moment != want
            && let Some(table) = self.differ.request(want)
        {
            self.table = table;
        }
        for side in [Side::A, Side::B] {
            let at = self.state.at(side);
            if self.live[side_index(side)].0 != at {
                self.live[side_index(side)] = (at, self.source().totals_at(side, at));
            }
        }
        let list_for = (self.table.moment, self.state.shown_filter().to_string(), self.state.sort);
        if self.listed.for_.as_ref() != Some(&list_for) {
            self.listed.rows = self.table.shown(&list_for.1, list_for.2);
            self.listed.for_ = Some(list_for);
        }
        let keys: Vec<GroupKey> = self.listed.rows.iter().map(|&i| self.table.rows[i].key).collect();
        self.state.sync_groups(&keys);
        self.refresh_details();
    }

    fn refresh_details(&mut self) {
        let row = self.listed.rows.get(self.state.groups.selected).copied();
        let want = row.map(|i| (self.table.moment, self.table.rows[i].key, self.state.side));
        if want == self.listed.details_for {
            return;
        }
        self.listed.details = row.and_then(|i| self.source().details(&self.table, i, self.state.side));
        self.listed.details_for = want;
    }

    /// Lines of the details pane at its width (for bounding its scrolling).
    fn details_lines(&self) -> usize {
        let width = self.areas.body.details_inner.width;
        let lines = self
            .listed
            .details
            .as_ref()
            .map(|d| diff_view::details_lines(d, self.state.side, width, &self.theme));
        lines.map_or(0, |l| l.len())
    }

    /// Lays out the screen for `frame`, brings the data up to date for that size and draws it.
    pub fn draw(&mut self, frame: &mut Frame<'_>) {
        self.areas = DiffAreas::new(frame.area());
        self.areas_height = frame.area().height;
        (self.state.list_rows, self.state.details_rows) = self.areas.body.rows();
        self.refresh();
        let dots = Timeline::dots_for(self.areas.timelines_inner[0].width);
        let what = self.state.what;
        if (dots, what) != self.timeline_for {
            self.levels = [Side::A, Side::B].map(|side| self.source().timeline(side, dots, what));
            self.timeline_for = (dots, what);
        }
        let source = self.differ.source();
        let side_view = |side: Side| SideView {
            summary: source.summary(side),
            name: source.trace_name(side),
            levels: &self.levels[side_index(side)],
            live: self.live[side_index(side)].1,
        };
        let screen = DiffScreen {
            sides: [side_view(Side::A), side_view(Side::B)],
            one_trace: source.is_one_trace(),
            state: &self.state,
            theme: &self.theme,
            table: &self.table,
            shown: &self.listed.rows,
            details: self.listed.details.as_ref(),
            updating: self.table.moment != self.state.moment(),
        };
        diff_view::draw(frame, &screen);
    }
}
