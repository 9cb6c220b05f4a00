//! The browser's state and how actions change it. Pure: no terminal, no trace; what the state
//! needs to know about the data (duration, peak, marks, list lengths) comes in a [`Context`].
//!
//! The pieces the diff browser's state shares live in the submodules: the list cursor, the
//! filter, the help overlay and time on a timeline.

mod cursor;
mod filter;
mod help;
mod time;

pub use cursor::ListCursor;
pub use filter::Filter;
pub use help::HelpOverlay;
pub use time::{JUMP_STEPS, STEPS_PER_TRACE, Timespan, column_of, moved_time, slice_of, time_at_column};

use leakview_analyzer::TreeOrder;

use crate::keys::Action;
use crate::source::{GroupKey, GroupQuery, Grouping, Selection, SortKey, next_selection};

/// The panes the focus moves between. While a group is open, `List` is its allocation list and
/// `Details` the selected allocation's stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pane {
    Timeline,
    List,
    Details,
}

impl Pane {
    fn next(self) -> Self {
        match self {
            Pane::Timeline => Pane::List,
            Pane::List => Pane::Details,
            Pane::Details => Pane::Timeline,
        }
    }

    fn prev(self) -> Self {
        self.next().next()
    }
}

/// What an open list holds the blocks of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Opened {
    /// A group of the list.
    Group(GroupKey),
    /// A line of the call tree: the stack groups it counts.
    TreeLine(Vec<GroupKey>),
}

/// An opened group (or call-tree line): its allocations are listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenGroup {
    pub opened: Opened,
    pub label: String,
    pub cursor: ListCursor,
    /// Lines the stack pane is scrolled by.
    pub stack_scroll: usize,
    /// Where the group list was, to return to.
    pub focus_before: Pane,
}

/// What an action may need to know about the data.
#[derive(Clone, Debug, Default)]
pub struct Context<'a> {
    pub duration_ns: u64,
    pub peak_at_ns: u64,
    /// Mark times, ascending.
    pub marks: &'a [u64],
    /// Rows in the list being shown (groups, or the open group's allocations).
    pub list_len: usize,
    /// Lines in the details pane (group details, or the allocation's stack).
    pub details_len: usize,
    /// Lines of the help overlay beyond what the screen shows.
    pub help_overflow: usize,
    /// The key of the selected group, if any.
    pub selected_group: Option<(GroupKey, &'a str)>,
    /// The stack groups the selected call-tree line counts, and its label, if a tree is shown.
    pub selected_tree_line: Option<(Vec<GroupKey>, String)>,
}

/// Everything about what the browser shows, apart from the data itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViewState {
    /// The moment looked at, ns from the start.
    pub at_ns: u64,
    /// Which blocks are counted at T: outstanding (the default), allocated or temporary.
    pub what: Selection,
    pub grouping: Grouping,
    pub sort: SortKey,
    pub filter: Filter,
    pub focus: Pane,
    pub help: HelpOverlay,
    pub groups: ListCursor,
    /// The selected group's key, to keep it selected when the list re-ranks.
    pub selected_key: Option<GroupKey>,
    pub details_scroll: usize,
    pub open: Option<OpenGroup>,
    /// The list shows the call tree of the largest stacks at T, top down or bottom up, instead
    /// of the groups (`t`).
    pub tree: Option<TreeOrder>,
    /// The selected line of the call tree.
    pub tree_cursor: ListCursor,
    /// The timeline draws the resident set size line over the live heap (`r`).
    pub chart_resident: bool,
    /// Rows the list pane shows and lines the details pane shows (set when drawing).
    pub list_rows: usize,
    pub details_rows: usize,
    pub quit: bool,
}

impl ViewState {
    /// The state a trace opens in: T at its end, grouped by stack, sorted by bytes.
    pub fn new(duration_ns: u64) -> Self {
        ViewState {
            at_ns: duration_ns,
            what: Selection::default(),
            grouping: Grouping::default(),
            sort: SortKey::default(),
            filter: Filter::default(),
            focus: Pane::List,
            help: HelpOverlay::default(),
            groups: ListCursor::default(),
            selected_key: None,
            details_scroll: 0,
            open: None,
            tree: None,
            tree_cursor: ListCursor::default(),
            chart_resident: false,
            list_rows: 10,
            details_rows: 10,
            quit: false,
        }
    }

    /// The query the group list answers.
    pub fn query(&self) -> GroupQuery {
        let filter = self.filter.shown().to_string();
        GroupQuery { at_ns: self.at_ns, grouping: self.grouping, sort: self.sort, filter, what: self.what }
    }

    pub fn typing_filter(&self) -> bool {
        self.filter.is_typing()
    }

    /// Moves T to the time under column `column` of a timeline `width` columns wide.
    pub fn click_timeline(&mut self, column: u16, width: u16, ctx: &Context<'_>) {
        self.at_ns = time_at_column(column, width, ctx.duration_ns).min(ctx.duration_ns);
    }

    /// Applies `action`. Changes to the data shown (T, selection, grouping, sort, filter) are
    /// picked up by the caller, which then calls [`ViewState::sync_groups`].
    pub fn apply(&mut self, action: Action, ctx: &Context<'_>) {
        if self.help.scroll_by(action, self.list_rows, ctx.help_overflow) {
            return;
        }
        let span = Timespan { duration_ns: ctx.duration_ns, peak_at_ns: ctx.peak_at_ns, marks: ctx.marks };
        if let Some(at_ns) = moved_time(action, self.at_ns, &span) {
            self.at_ns = at_ns;
            return;
        }
        if self.filter.edit(action) {
            return;
        }
        match action {
            Action::Up => self.scroll(-1, ctx),
            Action::Down => self.scroll(1, ctx),
            Action::PageUp => self.scroll(-(self.page() as isize), ctx),
            Action::PageDown => self.scroll(self.page() as isize, ctx),
            Action::Open => self.open_selected(ctx),
            Action::Back => self.back(),
            // From the tree (or a line of it opened), `g` goes back to the groups as they were.
            Action::CycleGrouping if self.tree.is_some() => {
                if let Some(open) = self.open.take() {
                    self.focus = open.focus_before;
                }
                self.tree = None;
            }
            Action::CycleGrouping => {
                self.grouping = self.grouping.next();
                self.open = None;
                self.selected_key = None;
                self.groups = ListCursor::default();
            }
            Action::CycleSort => self.sort = self.sort.next(),
            Action::CycleWhat => {
                // The groups keep their keys, so the selected group (and an open one) stays
                // where it is listed; an open group's allocations are a new list.
                self.what = next_selection(self.what);
                if let Some(open) = &mut self.open {
                    open.cursor = ListCursor::default();
                    open.stack_scroll = 0;
                }
            }
            Action::ToggleTree if self.open.is_none() => {
                // Top down, then bottom up, then the groups again.
                self.tree = match self.tree {
                    None => Some(TreeOrder::TopDown),
                    Some(TreeOrder::TopDown) => Some(TreeOrder::BottomUp),
                    Some(TreeOrder::BottomUp) => None,
                };
                self.tree_cursor = ListCursor::default();
                self.details_scroll = 0;
            }
            Action::ToggleResident => self.chart_resident = !self.chart_resident,
            Action::StartFilter => self.help.shown = false,
            Action::FocusNext => self.focus = self.focus.next(),
            Action::FocusPrev => self.focus = self.focus.prev(),
            Action::ToggleHelp => self.help.toggle(),
            Action::Quit => self.quit = true,
            _ => {}
        }
    }

    fn page(&self) -> usize {
        match self.focus {
            Pane::Details => self.details_rows.max(1),
            _ => self.list_rows.max(1),
        }
    }

    /// Scrolls the focused pane: the details pane scrolls its lines, the others move the list's
    /// selection.
    pub fn scroll(&mut self, delta: isize, ctx: &Context<'_>) {
        let details_max = ctx.details_len.saturating_sub(self.details_rows);
        match (&mut self.open, self.focus) {
            (Some(open), Pane::Details) => {
                open.stack_scroll = open.stack_scroll.saturating_add_signed(delta).min(details_max);
            }
            (None, Pane::Details) => {
                self.details_scroll = self.details_scroll.saturating_add_signed(delta).min(details_max);
            }
            (Some(open), _) => {
                open.cursor.move_by(delta, ctx.list_len, self.list_rows);
                open.stack_scroll = 0;
            }
            (None, _) if self.tree.is_some() => {
                self.tree_cursor.move_by(delta, ctx.list_len, self.list_rows);
                self.details_scroll = 0;
            }
            (None, _) => {
                self.groups.move_by(delta, ctx.list_len, self.list_rows);
                self.selected_key = None;
                self.details_scroll = 0;
            }
        }
    }

    /// Selects row `row` of the list shown (a mouse click).
    pub fn select_row(&mut self, row: usize, ctx: &Context<'_>) {
        let cursor = match &mut self.open {
            Some(open) => &mut open.cursor,
            None if self.tree.is_some() => &mut self.tree_cursor,
            None => &mut self.groups,
        };
        let delta = row as isize - cursor.selected as isize;
        self.focus = Pane::List;
        if row < ctx.list_len {
            self.scroll(delta, ctx);
        }
    }

    /// Opens the selected group, or the selected line of the call tree (Esc goes back to it).
    fn open_selected(&mut self, ctx: &Context<'_>) {
        if self.open.is_some() {
            return;
        }
        let (opened, label) = if self.tree.is_some() {
            match &ctx.selected_tree_line {
                Some((keys, label)) => (Opened::TreeLine(keys.clone()), label.clone()),
                None => return,
            }
        } else {
            match ctx.selected_group {
                Some((key, label)) => (Opened::Group(key), label.to_string()),
                None => return,
            }
        };
        self.open = Some(OpenGroup {
            opened,
            label,
            cursor: ListCursor::default(),
            stack_scroll: 0,
            focus_before: self.focus,
        });
        self.focus = Pane::List;
    }

    fn back(&mut self) {
        if self.help.shown {
            self.help.shown = false;
        } else if let Some(open) = self.open.take() {
            self.focus = open.focus_before;
        } else if self.tree.is_some() {
            self.tree = None;
        } else if !self.filter.in_force.is_empty() {
            self.filter.in_force.clear();
        }
    }

    /// After the group list was recomputed (`keys` in display order): keeps the selected group
    /// selected if it is still listed, else keeps the row index; scrolls it into view.
    pub fn sync_groups(&mut self, keys: &[GroupKey]) {
        self.selected_key = self.groups.follow(self.selected_key, keys, self.list_rows);
    }

    /// After the call tree was laid out anew (`len` lines): keeps the cursor within it.
    pub fn sync_tree(&mut self, len: usize) {
        self.tree_cursor.keep_visible(len, self.list_rows);
    }

    /// After an open group's allocations were counted: keeps the cursor within them.
    pub fn sync_open(&mut self, len: usize) {
        let rows = self.list_rows;
        if let Some(open) = &mut self.open {
            open.cursor.keep_visible(len, rows);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(list_len: usize) -> Context<'static> {
        Context {
            duration_ns: 1_000,
            peak_at_ns: 420,
            marks: &[100, 500, 900],
            list_len,
            details_len: 30,
            help_overflow: 4,
            selected_group: Some((GroupKey(7), "leak")),
            selected_tree_line: None,
        }
    }

    #[test]
    fn opens_at_the_end_and_steps_within_the_trace() {
        let c = ctx(3);
        let mut s = ViewState::new(1_000);
        assert_eq!(s.at_ns, 1_000);
        s.apply(Action::StepForward, &c);
        assert_eq!(s.at_ns, 1_000, "clamped at the end");
        s.apply(Action::StepBack, &c);
        assert_eq!(s.at_ns, 995);
        s.apply(Action::JumpBack, &c);
        assert_eq!(s.at_ns, 945);
        s.apply(Action::GoStart, &c);
        s.apply(Action::StepBack, &c);
        assert_eq!(s.at_ns, 0, "clamped at the start");
        s.apply(Action::GoPeak, &c);
        assert_eq!(s.at_ns, 420);
        s.apply(Action::GoEnd, &c);
        assert_eq!(s.at_ns, 1_000);
    }

    #[test]
    fn marks_are_visited_in_both_directions() {
        let c = ctx(3);
        let mut s = ViewState::new(1_000);
        s.apply(Action::GoStart, &c);
        s.apply(Action::NextMark, &c);
        assert_eq!(s.at_ns, 100);
        s.apply(Action::NextMark, &c);
        assert_eq!(s.at_ns, 500);
        s.apply(Action::PrevMark, &c);
        assert_eq!(s.at_ns, 100);
        s.apply(Action::PrevMark, &c);
        assert_eq!(s.at_ns, 100, "no mark before the first");
    }

    #[test]
    fn selection_moves_within_the_list_and_pages() {
        let c = ctx(25);
        let mut s = ViewState::new(1_000);
        s.list_rows = 10;
        s.apply(Action::Up, &c);
        assert_eq!(s.groups.selected, 0);
        s.apply(Action::PageDown, &c);
        assert_eq!((s.groups.selected, s.groups.offset), (10, 1));
        s.apply(Action::PageDown, &c);
        s.apply(Action::PageDown, &c);
        assert_eq!((s.groups.selected, s.groups.offset), (24, 15));
        s.apply(Action::PageUp, &c);
        assert_eq!(s.groups.selected, 14);
    }

    #[test]
    fn selected_group_stays_selected_when_the_list_reranks() {
        let mut s = ViewState::new(1_000);
        s.sync_groups(&[GroupKey(1), GroupKey(2), GroupKey(3)]);
        s.apply(Action::Down, &ctx(3));
        s.sync_groups(&[GroupKey(1), GroupKey(2), GroupKey(3)]);
        assert_eq!(s.selected_key, Some(GroupKey(2)));
        s.sync_groups(&[GroupKey(2), GroupKey(3), GroupKey(1)]);
        assert_eq!(s.groups.selected, 0);
        s.sync_groups(&[GroupKey(3)]);
        assert_eq!((s.groups.selected, s.selected_key), (0, Some(GroupKey(3))));
        s.sync_groups(&[]);
        assert_eq!(s.selected_key, None);
    }

    #[test]
    fn open_and_back_form_a_stack_with_help_and_filter() {
        let c = ctx(3);
        let mut s = ViewState::new(1_000);
        s.focus = Pane::Timeline;
        s.apply(Action::Open, &c);
        assert_eq!(s.open.as_ref().map(|o| &o.opened), Some(&Opened::Group(GroupKey(7))));
        assert_eq!(s.focus, Pane::List);
        s.filter.in_force = "x".into();
        s.apply(Action::ToggleHelp, &c);
        s.apply(Action::Back, &c);
        assert!(!s.help.shown && s.open.is_some(), "Esc closes help first");
        s.apply(Action::Back, &c);
        assert!(s.open.is_none());
        assert_eq!(s.focus, Pane::Timeline, "focus returns");
        s.apply(Action::Back, &c);
        assert_eq!(s.filter.in_force, "");
    }

    #[test]
    fn filter_typing_is_live_and_cancellable() {
        let c = ctx(3);
        let mut s = ViewState::new(1_000);
        s.filter.in_force = "old".into();
        s.apply(Action::StartFilter, &c);
        s.apply(Action::FilterBackspace, &c);
        s.apply(Action::FilterBackspace, &c);
        s.apply(Action::FilterBackspace, &c);
        s.apply(Action::FilterChar('n'), &c);
        assert_eq!(s.query().filter, "n");
        s.apply(Action::FilterCancel, &c);
        assert_eq!(s.query().filter, "old");
        s.apply(Action::StartFilter, &c);
        s.apply(Action::FilterChar('!'), &c);
        s.apply(Action::FilterAccept, &c);
        assert_eq!((s.filter.in_force.as_str(), s.typing_filter()), ("old!", false));
    }

    #[test]
    fn grouping_and_sort_cycle_back_to_the_start() {
        let c = ctx(3);
        let mut s = ViewState::new(1_000);
        let start = (s.grouping, s.sort);
        let mut groupings = Vec::new();
        for _ in 0..4 {
            s.apply(Action::CycleGrouping, &c);
            groupings.push(s.query().grouping);
        }
        assert_eq!(groupings, [Grouping::Function, Grouping::Size, Grouping::Thread, Grouping::Stack]);
        let mut sorts = Vec::new();
        for _ in 0..4 {
            s.apply(Action::CycleSort, &c);
            sorts.push(s.sort);
        }
        assert_eq!(sorts, [SortKey::Blocks, SortKey::Newest, SortKey::Suspicion, SortKey::Bytes]);
        assert_eq!((s.grouping, s.sort), start);
        s.apply(Action::CycleGrouping, &c);
        assert_eq!(s.query().grouping, Grouping::Function);
    }

    #[test]
    fn an_open_thread_group_is_browsed_like_any_group_until_the_grouping_changes() {
        let mut s = ViewState::new(1_000);
        for _ in 0..3 {
            s.apply(Action::CycleGrouping, &ctx(3));
        }
        assert_eq!(s.grouping, Grouping::Thread);
        let thread = Context { selected_group: Some((GroupKey(2), "worker-0 (573)")), ..ctx(3) };
        s.apply(Action::Down, &thread);
        s.apply(Action::Open, &thread);
        let open = s.open.as_ref().map(|o| (&o.opened, o.label.as_str()));
        assert_eq!(open, Some((&Opened::Group(GroupKey(2)), "worker-0 (573)")));
        // Its allocations scroll, T moves and the sort changes with the group kept open.
        let allocations = Context { list_len: 40, selected_group: None, ..ctx(40) };
        s.apply(Action::Down, &allocations);
        s.apply(Action::StepBack, &allocations);
        s.apply(Action::CycleSort, &allocations);
        assert_eq!(s.open.as_ref().map(|o| o.cursor.selected), Some(1));
        assert_eq!((s.at_ns, s.sort, s.query().grouping), (995, SortKey::Blocks, Grouping::Thread));
        // `g` goes on to stack groups and closes the thread group, back at the top of the list.
        s.apply(Action::CycleGrouping, &allocations);
        assert_eq!((s.grouping, s.open.is_none(), s.groups.selected), (Grouping::Stack, true, 0));
    }

    #[test]
    fn t_shows_the_call_tree_and_g_or_esc_go_back_to_the_groups_as_they_were() {
        let mut s = ViewState::new(1_000);
        let c = ctx(3);
        s.apply(Action::CycleGrouping, &c);
        assert_eq!(s.grouping, Grouping::Function);
        s.apply(Action::ToggleTree, &c);
        assert_eq!(s.tree, Some(TreeOrder::TopDown));
        // The tree's own cursor moves over its lines; with no line selected (an empty tree),
        // Enter opens nothing, not the selected group either.
        let lines = Context { selected_group: None, ..ctx(12) };
        s.apply(Action::Down, &lines);
        s.apply(Action::Down, &lines);
        assert_eq!((s.tree_cursor.selected, s.groups.selected), (2, 0));
        s.apply(Action::Open, &c);
        assert!(s.open.is_none());
        s.sync_tree(1);
        assert_eq!(s.tree_cursor.selected, 0, "kept within a shorter tree");
        // `t` again turns the tree bottom up, from its top; a third time goes back to the groups.
        s.apply(Action::ToggleTree, &c);
        assert_eq!((s.tree, s.tree_cursor.selected), (Some(TreeOrder::BottomUp), 0));
        s.apply(Action::ToggleTree, &c);
        assert_eq!((s.tree, s.grouping), (None, Grouping::Function));
        // `g` leaves the tree without moving on to the next grouping; `t` again starts at the top.
        s.apply(Action::ToggleTree, &c);
        s.apply(Action::Down, &lines);
        s.apply(Action::CycleGrouping, &c);
        assert_eq!((s.tree, s.grouping), (None, Grouping::Function));
        s.apply(Action::ToggleTree, &c);
        assert_eq!((s.tree, s.tree_cursor.selected), (Some(TreeOrder::TopDown), 0));
        s.apply(Action::ToggleTree, &c);
        s.apply(Action::Back, &c);
        assert_eq!(s.tree, None, "Esc leaves the bottom-up tree too");
        // With a group open, `t` does nothing.
        s.apply(Action::Open, &c);
        s.apply(Action::ToggleTree, &c);
        assert!(s.open.is_some() && s.tree.is_none());
    }

    #[test]
    fn enter_opens_a_tree_line_and_esc_goes_back_to_the_tree_where_it_was() {
        let mut s = ViewState::new(1_000);
        s.apply(Action::ToggleTree, &ctx(3));
        let line = (vec![GroupKey(4), GroupKey(9)], "worker_main (leaky.c:163)".to_string());
        let tree = Context { selected_group: None, selected_tree_line: Some(line), ..ctx(12) };
        s.apply(Action::Down, &tree);
        s.apply(Action::Open, &tree);
        let open = s.open.as_ref().map(|o| (&o.opened, o.label.as_str()));
        assert_eq!(
            open,
            Some((&Opened::TreeLine(vec![GroupKey(4), GroupKey(9)]), "worker_main (leaky.c:163)"))
        );
        // Its blocks scroll; `t` does nothing while it is open; Esc goes back to the same line.
        let blocks = Context { selected_tree_line: None, ..ctx(40) };
        s.apply(Action::Down, &blocks);
        s.apply(Action::ToggleTree, &blocks);
        assert_eq!((s.open.as_ref().map(|o| o.cursor.selected), s.tree), (Some(1), Some(TreeOrder::TopDown)));
        s.apply(Action::Back, &blocks);
        assert_eq!((s.open.is_none(), s.tree, s.tree_cursor.selected), (true, Some(TreeOrder::TopDown), 1));
        // `g` from an open line goes back to the groups, where the list was.
        s.apply(Action::Open, &tree);
        s.apply(Action::CycleGrouping, &blocks);
        assert_eq!((s.open.is_none(), s.tree, s.grouping), (true, None, Grouping::Stack));
    }

    #[test]
    fn w_cycles_what_is_counted_and_keeps_the_selected_and_open_group() {
        let mut s = ViewState::new(1_000);
        let c = ctx(3);
        s.sync_groups(&[GroupKey(1), GroupKey(7), GroupKey(3)]);
        s.apply(Action::Down, &c);
        s.sync_groups(&[GroupKey(1), GroupKey(7), GroupKey(3)]);
        s.apply(Action::Open, &c);
        let allocations = Context { list_len: 40, selected_group: None, ..ctx(40) };
        s.apply(Action::Down, &allocations);
        assert_eq!(s.open.as_ref().map(|o| o.cursor.selected), Some(1));
        let mut seen = Vec::new();
        for _ in 0..3 {
            s.apply(Action::CycleWhat, &allocations);
            seen.push(s.query().what);
        }
        assert_eq!(seen, [Selection::Allocated, Selection::Temporary, Selection::Outstanding]);
        // The group stays open, its allocation list starts again from the top.
        assert_eq!(
            s.open.as_ref().map(|o| (&o.opened, o.cursor.selected)),
            Some((&Opened::Group(GroupKey(7)), 0))
        );
        s.apply(Action::Back, &allocations);
        s.apply(Action::CycleWhat, &c);
        s.sync_groups(&[GroupKey(3), GroupKey(7)]);
        assert_eq!((s.selected_key, s.groups.selected), (Some(GroupKey(7)), 1), "still selected, re-ranked");
    }

    #[test]
    fn help_scrolls_while_open_and_leaves_the_list_alone() {
        let c = ctx(3);
        let mut s = ViewState::new(1_000);
        s.apply(Action::ToggleHelp, &c);
        s.apply(Action::PageDown, &c);
        assert_eq!((s.help.scroll, s.groups.selected), (4, 0));
        s.apply(Action::Up, &c);
        assert_eq!(s.help.scroll, 3);
        s.apply(Action::ToggleHelp, &c);
        s.apply(Action::ToggleHelp, &c);
        assert_eq!(s.help.scroll, 0);
    }

    #[test]
    fn focus_cycles_and_details_scroll_is_bounded() {
        let c = ctx(3);
        let mut s = ViewState::new(1_000);
        s.details_rows = 10;
        s.apply(Action::FocusNext, &c);
        assert_eq!(s.focus, Pane::Details);
        s.apply(Action::PageDown, &c);
        s.apply(Action::PageDown, &c);
        s.apply(Action::PageDown, &c);
        assert_eq!(s.details_scroll, 20, "30 lines, 10 shown");
        s.apply(Action::FocusPrev, &c);
        assert_eq!(s.focus, Pane::List);
    }

    #[test]
    fn a_click_on_the_timeline_moves_t() {
        let mut s = ViewState::new(1_000);
        s.click_timeline(0, 80, &ctx(0));
        assert_eq!(s.at_ns, 0);
    }
}
