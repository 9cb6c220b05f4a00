//! [`App`]: the browser over one data source. It turns key and mouse events into state changes,
//! asks the source for what the state selects (only when the selection changed), and draws.

use leakview_analyzer::TreeOrder;
use ratatui::Frame;
use ratatui::crossterm::event::{KeyEvent, MouseEvent};

use crate::keys::{self, Action};
use crate::pointer::{Pointer, wheel_row_step, wheel_time_step};
use crate::source::{
    AllocationPage, AllocationRow, CallTree, DataSource, FrameInfo, GroupDetails, GroupKey, GroupQuery,
    GroupRow, Grouping, Selection, StackVerdict, Totals, call_tree, resident_levels, stacks_allocations,
    tree_query,
};
use crate::state::{Context, Opened, Pane, ViewState};
use crate::suspicion::{Suspicion, Verdicts};
use crate::view::{self, Areas, Screen, theme::Theme, timeline::Timeline};

/// What the source answered for the current state; each part is asked again only when what it
/// depends on changed.
#[derive(Default)]
struct Shown {
    query: Option<GroupQuery>,
    groups: Vec<GroupRow>,
    /// What is counted at T, for the (moment, selection) it is for.
    totals_for: Option<(u64, Selection)>,
    totals: Totals,
    /// The call tree, for the stack query it was laid out for.
    tree_for: Option<(GroupQuery, TreeOrder)>,
    tree: CallTree,
    details_for: Option<(GroupQuery, GroupKey)>,
    details: Option<GroupDetails>,
    details_lines: usize,
    /// (query, what is open, offset, rows) the page was made for.
    page_for: Option<(GroupQuery, Opened, usize, usize)>,
    page: AllocationPage,
    /// The blocks of an open call-tree line, for the query and stack groups they are of.
    line_blocks_for: Option<(GroupQuery, Vec<GroupKey>)>,
    line_blocks: Vec<AllocationRow>,
    /// (tid, name) of each row of `page`.
    page_threads: Vec<(u32, Option<String>)>,
    stack_for: Option<crate::source::StackKey>,
    stack: Vec<FrameInfo>,
    /// The dots and the selection `levels` are for.
    timeline_for: (usize, Selection, bool),
    levels: Vec<u64>,
    /// The resident set size line for the same dots, where it is drawn (else empty).
    resident_levels: Vec<Option<u64>>,
    suspicion: Suspicion,
    /// The moment whose verdicts ranked `groups`, when they are ranked by suspicion.
    ranked_at: Option<u64>,
}

/// The browser: state, the data source and what it last answered.
pub struct App<S> {
    source: S,
    state: ViewState,
    theme: Theme,
    shown: Shown,
    areas: Areas,
    /// Height of the screen last drawn.
    areas_height: u16,
    mark_times: Vec<u64>,
    /// The trace is still being recorded (the title says so).
    recording: bool,
}

impl<S: DataSource> App<S> {
    pub fn new(source: S, theme: Theme) -> Self {
        let state = ViewState::new(source.summary().duration_ns);
        let mark_times = source.summary().mark_times();
        App {
            source,
            state,
            theme,
            shown: Shown::default(),
            areas: Areas::default(),
            areas_height: 0,
            mark_times,
            recording: false,
        }
    }

    /// Whether the trace is still being recorded: the title then says so instead of calling an
    /// unfinished trace cut short.
    pub fn set_recording(&mut self, recording: bool) {
        self.recording = recording;
    }

    /// Swaps in a newer load of the same trace (one still being recorded), keeping what the
    /// user looks at: T stays at its moment, or stays at the end if it was there; the selected
    /// group stays selected (by key), and an open group stays open if it is still in the list
    /// (an open line of the call tree, with those of its stacks still listed).
    pub fn replace_source(&mut self, source: S) {
        let at_end = self.state.at_ns >= self.source.summary().duration_ns;
        self.source = source;
        let summary = self.source.summary();
        self.mark_times = summary.mark_times();
        self.state.at_ns =
            if at_end { summary.duration_ns } else { self.state.at_ns.min(summary.duration_ns) };
        self.shown = Shown::default();
        let query = self.state.query();
        if let Some(Opened::TreeLine(keys)) = self.state.open.as_mut().map(|open| &mut open.opened) {
            let listed = self.source.groups(&tree_query(&query));
            keys.retain(|key| listed.iter().any(|g| g.key == *key));
        }
        self.refresh();
        let gone = match self.state.open.as_ref().map(|open| &open.opened) {
            Some(Opened::Group(key)) => !self.shown.groups.iter().any(|g| g.key == *key),
            Some(Opened::TreeLine(keys)) => keys.is_empty(),
            None => false,
        };
        if gone && let Some(open) = self.state.open.take() {
            self.state.focus = open.focus_before;
            self.refresh();
        }
    }

    pub fn state(&self) -> &ViewState {
        &self.state
    }

    pub fn source(&self) -> &S {
        &self.source
    }

    /// The leak-suspect verdicts kept for the moment last judged.
    pub fn suspicion(&self) -> &Suspicion {
        &self.shown.suspicion
    }

    pub fn should_quit(&self) -> bool {
        self.state.quit
    }

    fn context(&self) -> Context<'_> {
        let summary = self.source.summary();
        let open = self.state.open.is_some();
        let selected = self.shown.groups.get(self.state.groups.selected).map(|g| (g.key, g.label.as_str()));
        let tree = self.state.tree.is_some() && !open;
        let selected_tree_line = tree
            .then_some(self.state.tree_cursor.selected)
            .filter(|&line| line < self.shown.tree.lines.len())
            .map(|line| (self.shown.tree.line_stacks(line), view::tree_line_label(&self.shown.tree, line)));
        let (list_len, details_len) = if open {
            (self.shown.page.total as usize, self.stack_line_count() + 1)
        } else if tree {
            (self.shown.tree.lines.len(), self.tree_details_line_count())
        } else {
            (self.shown.groups.len(), self.shown.details_lines)
        };
        Context {
            duration_ns: summary.duration_ns,
            peak_at_ns: summary.peak_at_ns,
            marks: &self.mark_times,
            list_len,
            details_len,
            help_overflow: view::help_overflow(keys::BROWSE_KEYS, self.areas_height),
            selected_group: if open || tree { None } else { selected },
            selected_tree_line,
        }
    }

    fn stack_line_count(&self) -> usize {
        view::stack_line_count(&self.shown.stack, self.areas.body.details_inner.width)
    }

    fn tree_details_line_count(&self) -> usize {
        let width = self.areas.body.details_inner.width;
        view::tree_details_line_count(
            &self.shown.tree,
            self.state.tree_cursor.selected,
            self.shown.totals,
            width,
        )
    }

    /// Applies an action and brings the data up to date.
    pub fn apply(&mut self, action: Action) {
        let ctx = self.context();
        let mut state = self.state.clone();
        state.apply(action, &ctx);
        self.state = state;
        self.refresh();
    }

    /// Handles a key press; other key events (release, repeat on some terminals) are ignored.
    pub fn handle_key(&mut self, event: KeyEvent) {
        if let Some(action) = keys::pressed_action(keys::BROWSE_KEYS, &event, self.state.typing_filter()) {
            self.apply(action);
        }
    }

    /// A click on the timeline moves T; a click on a list row selects it; the wheel scrolls the
    /// pane under the pointer (over the timeline it moves T).
    pub fn handle_mouse(&mut self, event: MouseEvent) {
        let body = self.areas.body;
        match Pointer::of(&event) {
            Some(Pointer::Press(at)) => {
                let ctx = self.context();
                let mut state = self.state.clone();
                let timeline = self.areas.timeline_inner;
                if timeline.contains(at) {
                    state.click_timeline(at.x - timeline.x, timeline.width, &ctx);
                } else if let Some(row) = body.list_row_at(at) {
                    let cursor = match &state.open {
                        Some(open) => open.cursor,
                        None if state.tree.is_some() => state.tree_cursor,
                        None => state.groups,
                    };
                    state.select_row(cursor.offset + row, &ctx);
                } else if body.details.contains(at) {
                    state.focus = Pane::Details;
                } else if self.areas.timeline.contains(at) {
                    state.focus = Pane::Timeline;
                }
                self.state = state;
                self.refresh();
            }
            Some(Pointer::Wheel { at, up }) => {
                if self.areas.timeline.contains(at) {
                    self.apply(wheel_time_step(up));
                } else {
                    let pane = if body.details.contains(at) { Pane::Details } else { Pane::List };
                    let focus = std::mem::replace(&mut self.state.focus, pane);
                    self.apply(wheel_row_step(up));
                    self.state.focus = focus;
                }
            }
            None => {}
        }
    }

    /// Asks the source for whatever the state now selects and the last answers do not cover,
    /// apart from leak-suspect verdicts (see [`App::draw`]).
    pub fn refresh(&mut self) {
        self.refresh_judging(false);
    }

    /// [`App::refresh`]; with `judge`, also the verdicts of the moment if the list is sorted by
    /// suspicion. Judging is a pass over the whole trace, so it waits for a moment that is drawn
    /// (the runner applies every key already waiting before it draws).
    fn refresh_judging(&mut self, judge: bool) {
        let query = self.state.query();
        self.refresh_totals(&query);
        if let Some(order) = self.state.tree.filter(|_| self.state.open.is_none()) {
            self.refresh_tree(&query, order);
            return;
        }
        if let Some(Opened::TreeLine(keys)) = self.state.open.as_ref().map(|o| o.opened.clone()) {
            // The tree stays as it was; the line's blocks are listed.
            self.refresh_line_page(&query, &keys);
            self.state.sync_open(self.shown.page.total as usize);
            self.refresh_line_page(&query, &keys);
            self.refresh_stack();
            return;
        }
        let by_suspicion = Suspicion::wanted(&query);
        if by_suspicion && judge {
            self.shown.suspicion.judge_at(&self.source, query.at_ns);
        }
        let ranked_at = self.shown.suspicion.at(query.at_ns).filter(|_| by_suspicion).map(|_| query.at_ns);
        if self.shown.query.as_ref() != Some(&query) || self.shown.ranked_at != ranked_at {
            self.shown.groups = self.source.groups(&query);
            if let Some(verdicts) = self.shown.suspicion.at(query.at_ns).filter(|_| by_suspicion) {
                verdicts.rank(&mut self.shown.groups);
            }
            self.shown.ranked_at = ranked_at;
            self.shown.query = Some(query.clone());
        }
        let keys: Vec<GroupKey> = self.shown.groups.iter().map(|g| g.key).collect();
        self.state.sync_groups(&keys);
        self.refresh_details(&query);
        if let Some(Opened::Group(key)) = self.state.open.as_ref().map(|o| &o.opened) {
            let key = *key;
            self.refresh_page(&query, key);
            self.state.sync_open(self.shown.page.total as usize);
            self.refresh_page(&query, key);
            self.refresh_stack();
        }
    }

    fn refresh_totals(&mut self, query: &GroupQuery) {
        let want = (query.at_ns, query.what);
        if self.shown.totals_for != Some(want) {
            self.shown.totals = self.source.totals_at(query.at_ns, query.what);
            self.shown.totals_for = Some(want);
        }
    }

    fn refresh_tree(&mut self, query: &GroupQuery, order: TreeOrder) {
        let want = (tree_query(query), order);
        if self.shown.tree_for.as_ref() != Some(&want) {
            self.shown.tree = call_tree(&self.source, query, order);
            self.shown.tree_for = Some(want);
        }
        self.state.sync_tree(self.shown.tree.lines.len());
    }

    fn refresh_details(&mut self, query: &GroupQuery) {
        let want = self.state.selected_key.map(|k| (query.clone(), k));
        if want != self.shown.details_for {
            self.shown.details = want.as_ref().and_then(|(q, k)| self.source.group_details(q, *k));
            self.shown.details_for = want;
        }
        // The verdict may have become known since (judged when drawing).
        let verdict = self.selected_verdict();
        let width = self.areas.body.details_inner.width;
        self.shown.details_lines = self
            .shown
            .details
            .as_ref()
            .map(|d| view::details_line_count(d, verdict, width, &self.theme))
            .unwrap_or(0);
    }

    /// The verdict on the selected group, when grouped by stack and known for the moment shown.
    fn selected_verdict(&self) -> Option<&StackVerdict> {
        let key = self.state.selected_key?;
        self.verdicts()?.of(key)
    }

    /// The verdicts on the stack groups, when known for the moment shown and the list shows
    /// outstanding blocks.
    fn verdicts(&self) -> Option<Verdicts<'_>> {
        if self.state.grouping != Grouping::Stack || self.state.what != Selection::Outstanding {
            return None;
        }
        self.shown.suspicion.at(self.state.at_ns)
    }

    fn refresh_page(&mut self, query: &GroupQuery, key: GroupKey) {
        let offset = self.state.open.as_ref().map(|o| o.cursor.offset).unwrap_or(0);
        let rows = self.state.list_rows;
        let want = (query.clone(), Opened::Group(key), offset, rows);
        if self.shown.page_for.as_ref() == Some(&want) {
            return;
        }
        self.shown.page = self.source.allocations(query, key, offset, rows);
        self.note_page_threads();
        self.shown.page_for = Some(want);
    }

    /// [`App::refresh_page`] for an open call-tree line: the page of the blocks of its stack
    /// groups `keys` (gathered once per query).
    fn refresh_line_page(&mut self, query: &GroupQuery, keys: &[GroupKey]) {
        let offset = self.state.open.as_ref().map(|o| o.cursor.offset).unwrap_or(0);
        let rows = self.state.list_rows;
        let want = (query.clone(), Opened::TreeLine(keys.to_vec()), offset, rows);
        if self.shown.page_for.as_ref() == Some(&want) {
            return;
        }
        let blocks_for = (query.clone(), keys.to_vec());
        if self.shown.line_blocks_for.as_ref() != Some(&blocks_for) {
            self.shown.line_blocks = stacks_allocations(&self.source, query, keys);
            self.shown.line_blocks_for = Some(blocks_for);
        }
        let blocks = &self.shown.line_blocks;
        self.shown.page = AllocationPage {
            total: blocks.len() as u64,
            rows: blocks.iter().skip(offset).take(rows).cloned().collect(),
        };
        self.note_page_threads();
        self.shown.page_for = Some(want);
    }

    /// The thread of each row of the page, with its name.
    fn note_page_threads(&mut self) {
        self.shown.page_threads =
            self.shown.page.rows.iter().map(|r| (r.tid, self.source.thread_name(r.tid))).collect();
    }

    fn refresh_stack(&mut self) {
        let Some(open) = &self.state.open else { return };
        let row =
            open.cursor.selected.checked_sub(open.cursor.offset).and_then(|i| self.shown.page.rows.get(i));
        let want = row.map(|r| r.stack);
        if want != self.shown.stack_for {
            self.shown.stack = want.map(|s| self.source.stack_frames(s)).unwrap_or_default();
            self.shown.stack_for = want;
        }
    }

    /// Asks for the timeline's levels (and the resident set size line over them) when the
    /// timeline's width or what it counts changed.
    fn refresh_timeline(&mut self) {
        let dots = Timeline::dots_for(self.areas.timeline_inner.width);
        let what = self.state.what;
        let asked = self.state.chart_resident;
        if (dots, what, asked) == self.shown.timeline_for {
            return;
        }
        self.shown.levels = self.source.timeline(dots, what);
        let duration_ns = self.source.summary().duration_ns;
        self.shown.resident_levels = match self.source.resident() {
            Some(resident) if Timeline::charts_resident(what, asked) => {
                resident_levels(resident, duration_ns, dots)
            }
            _ => Vec::new(),
        };
        self.shown.timeline_for = (dots, what, asked);
    }

    /// Lays out the screen for `frame`, brings the data up to date for that size (judging the
    /// moment's leak suspects if the list is sorted by suspicion) and draws it.
    pub fn draw(&mut self, frame: &mut Frame<'_>) {
        self.areas = Areas::new(frame.area());
        self.areas_height = frame.area().height;
        (self.state.list_rows, self.state.details_rows) = self.areas.body.rows();
        self.refresh_judging(true);
        self.refresh_timeline();
        let screen = Screen {
            summary: self.source.summary(),
            state: &self.state,
            theme: &self.theme,
            levels: &self.shown.levels,
            resident: self.source.resident(),
            resident_levels: &self.shown.resident_levels,
            totals: self.shown.totals,
            groups: &self.shown.groups,
            details: self.shown.details.as_ref(),
            tree: (self.state.tree.is_some() && self.state.open.is_none()).then_some(&self.shown.tree),
            allocations: &self.shown.page,
            allocation_threads: &self.shown.page_threads,
            stack: &self.shown.stack,
            verdicts: self.verdicts(),
            selected_verdict: self.selected_verdict(),
            no_verdicts: self.shown.suspicion.unavailable_at(self.state.at_ns),
            recording: self.recording,
        };
        view::draw(frame, &screen);
    }
}
