//! The diff browser's state and how actions change it. Pure, like [`crate::state`]: what the
//! state needs to know about the two traces comes in a [`DiffContext`].
//!
//! Each side has its own moment (T_A, T_B). The time keys move the moment of the chosen side
//! ([`DiffState::side`]); `a` / `b` choose it, and so does focusing a side's timeline (Tab, or a
//! click on it).

use leakview_analyzer::{DiffBy, Side};

use crate::keys::Action;
use crate::source::{DiffMoment, DiffSort, GroupKey, Selection, next_diff_by, next_selection};
use crate::state::{Filter, HelpOverlay, ListCursor, Timespan, moved_time, time_at_column};

/// The panes the focus moves between.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiffPane {
    TimelineA,
    TimelineB,
    List,
    Details,
}

impl DiffPane {
    fn next(self) -> Self {
        match self {
            DiffPane::TimelineA => DiffPane::TimelineB,
            DiffPane::TimelineB => DiffPane::List,
            DiffPane::List => DiffPane::Details,
            DiffPane::Details => DiffPane::TimelineA,
        }
    }

    fn prev(self) -> Self {
        self.next().next().next()
    }

    /// The timeline of `side`.
    pub fn timeline(side: Side) -> Self {
        match side {
            Side::A => DiffPane::TimelineA,
            Side::B => DiffPane::TimelineB,
        }
    }

    /// The side whose timeline this is.
    fn side(self) -> Option<Side> {
        match self {
            DiffPane::TimelineA => Some(Side::A),
            DiffPane::TimelineB => Some(Side::B),
            _ => None,
        }
    }
}

/// What an action may need to know about the data.
#[derive(Clone, Debug, Default)]
pub struct DiffContext<'a> {
    /// Side A's and side B's traces.
    pub a: Timespan<'a>,
    pub b: Timespan<'a>,
    /// Rows in the list shown.
    pub list_len: usize,
    /// Lines in the details pane.
    pub details_len: usize,
    /// Lines of the help overlay beyond what the screen shows.
    pub help_overflow: usize,
}

impl<'a> DiffContext<'a> {
    fn span(&self, side: Side) -> &Timespan<'a> {
        match side {
            Side::A => &self.a,
            Side::B => &self.b,
        }
    }
}

/// Everything about what the diff browser shows, apart from the data itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiffState {
    /// The moments compared, ns from the start of each side's trace.
    pub at_a_ns: u64,
    pub at_b_ns: u64,
    /// The side the time keys move.
    pub side: Side,
    pub by: DiffBy,
    /// Which blocks are compared: outstanding (the default), allocated or temporary.
    pub what: Selection,
    pub sort: DiffSort,
    pub filter: Filter,
    pub focus: DiffPane,
    pub help: HelpOverlay,
    pub groups: ListCursor,
    /// The selected group's key, to keep it selected when the list re-ranks.
    pub selected_key: Option<GroupKey>,
    pub details_scroll: usize,
    /// Rows the list pane shows and lines the details pane shows (set when drawing).
    pub list_rows: usize,
    pub details_rows: usize,
    pub quit: bool,
}

impl DiffState {
    /// The state a diff opens in: the given moments, grouped as given, side A chosen, the list
    /// focused, sorted by the size of the change.
    pub fn new(moment: DiffMoment) -> Self {
        DiffState {
            at_a_ns: moment.at_a_ns,
            at_b_ns: moment.at_b_ns,
            side: Side::A,
            by: moment.by,
            what: moment.what,
            sort: DiffSort::default(),
            filter: Filter::default(),
            focus: DiffPane::List,
            help: HelpOverlay::default(),
            groups: ListCursor::default(),
            selected_key: None,
            details_scroll: 0,
            list_rows: 10,
            details_rows: 10,
            quit: false,
        }
    }

    /// The moments and grouping the list is for.
    pub fn moment(&self) -> DiffMoment {
        DiffMoment { at_a_ns: self.at_a_ns, at_b_ns: self.at_b_ns, by: self.by, what: self.what }
    }

    /// The moment of `side`.
    pub fn at(&self, side: Side) -> u64 {
        self.moment().at(side)
    }

    fn set_at(&mut self, side: Side, at_ns: u64) {
        match side {
            Side::A => self.at_a_ns = at_ns,
            Side::B => self.at_b_ns = at_ns,
        }
    }

    /// The filter shown: the one being typed, else the one in force.
    pub fn shown_filter(&self) -> &str {
        self.filter.shown()
    }

    pub fn typing_filter(&self) -> bool {
        self.filter.is_typing()
    }

    /// Chooses `side` for the time keys and focuses its timeline.
    pub fn choose_side(&mut self, side: Side) {
        self.side = side;
        self.focus = DiffPane::timeline(side);
    }

    /// Chooses `side` and moves its T to the time under column `column` of its timeline,
    /// `width` columns wide.
    pub fn click_timeline(&mut self, side: Side, column: u16, width: u16, ctx: &DiffContext<'_>) {
        self.choose_side(side);
        let duration_ns = ctx.span(side).duration_ns;
        self.set_at(side, time_at_column(column, width, duration_ns).min(duration_ns));
    }

    /// Applies `action`. The caller then brings the list up to date and calls
    /// [`DiffState::sync_groups`].
    pub fn apply(&mut self, action: Action, ctx: &DiffContext<'_>) {
        if self.help.scroll_by(action, self.list_rows, ctx.help_overflow) {
            return;
        }
        if let Some(at_ns) = moved_time(action, self.at(self.side), ctx.span(self.side)) {
            self.set_at(self.side, at_ns);
            return;
        }
        if self.filter.edit(action) {
            return;
        }
        match action {
            Action::SideA => self.choose_side(Side::A),
            Action::SideB => self.choose_side(Side::B),
            Action::Up => self.scroll(-1, ctx),
            Action::Down => self.scroll(1, ctx),
            Action::PageUp => self.scroll(-(self.page() as isize), ctx),
            Action::PageDown => self.scroll(self.page() as isize, ctx),
            Action::Back => {
                if self.help.shown {
                    self.help.shown = false;
                } else {
                    self.filter.in_force.clear();
                }
            }
            Action::CycleGrouping => {
                self.by = next_diff_by(self.by);
                self.selected_key = None;
                self.groups = ListCursor::default();
                self.details_scroll = 0;
            }
            Action::CycleSort => self.sort = self.sort.next(),
            // The groups keep their keys: the selected one stays selected where it is listed.
            Action::CycleWhat => self.what = next_selection(self.what),
            Action::StartFilter => self.help.shown = false,
            Action::FocusNext => self.focus_on(self.focus.next()),
            Action::FocusPrev => self.focus_on(self.focus.prev()),
            Action::ToggleHelp => self.help.toggle(),
            Action::Quit => self.quit = true,
            _ => {}
        }
    }

    /// Focuses `pane`; a side's timeline also chooses that side.
    fn focus_on(&mut self, pane: DiffPane) {
        self.focus = pane;
        if let Some(side) = pane.side() {
            self.side = side;
        }
    }

    fn page(&self) -> usize {
        match self.focus {
            DiffPane::Details => self.details_rows.max(1),
            _ => self.list_rows.max(1),
        }
    }

    /// Scrolls the focused pane: the details pane scrolls its lines, the others move the list's
    /// selection.
    pub fn scroll(&mut self, delta: isize, ctx: &DiffContext<'_>) {
        if self.focus == DiffPane::Details {
            let max = ctx.details_len.saturating_sub(self.details_rows);
            self.details_scroll = self.details_scroll.saturating_add_signed(delta).min(max);
        } else {
            self.groups.move_by(delta, ctx.list_len, self.list_rows);
            self.selected_key = None;
            self.details_scroll = 0;
        }
    }

    /// Selects row `row` of the list (a mouse click).
    pub fn select_row(&mut self, row: usize, ctx: &DiffContext<'_>) {
        self.focus = DiffPane::List;
        if row < ctx.list_len {
            let delta = row as isize - self.groups.selected as isize;
            self.scroll(delta, ctx);
        }
    }

    /// After the list was recomputed (`keys` in display order): keeps the selected group
    /// selected if it is still listed, else keeps the row index; scrolls it into view.
    pub fn sync_groups(&mut self, keys: &[GroupKey]) {
        self.selected_key = self.groups.follow(self.selected_key, keys, self.list_rows);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MARKS_A: &[u64] = &[100, 500];
    const MARKS_B: &[u64] = &[3_000];

    fn ctx(list_len: usize) -> DiffContext<'static> {
        DiffContext {
            a: Timespan { duration_ns: 1_000, peak_at_ns: 420, marks: MARKS_A },
            b: Timespan { duration_ns: 4_000, peak_at_ns: 3_900, marks: MARKS_B },
            list_len,
            details_len: 30,
            help_overflow: 3,
        }
    }

    fn start() -> DiffState {
        DiffState::new(DiffMoment {
            at_a_ns: 1_000,
            at_b_ns: 4_000,
            by: DiffBy::Stack,
            what: Selection::Outstanding,
        })
    }

    #[test]
    fn time_keys_move_only_the_chosen_side_within_its_trace() {
        let c = ctx(3);
        let mut s = start();
        assert_eq!(s.side, Side::A);
        s.apply(Action::StepBack, &c);
        assert_eq!((s.at_a_ns, s.at_b_ns), (995, 4_000), "A steps by its own length / 200");
        s.apply(Action::SideB, &c);
        assert_eq!((s.side, s.focus), (Side::B, DiffPane::TimelineB));
        s.apply(Action::StepBack, &c);
        s.apply(Action::JumpBack, &c);
        assert_eq!((s.at_a_ns, s.at_b_ns), (995, 4_000 - 20 - 200));
        s.apply(Action::GoPeak, &c);
        assert_eq!(s.at_b_ns, 3_900, "B's own peak");
        s.apply(Action::StepForward, &c);
        s.apply(Action::JumpForward, &c);
        assert_eq!(s.at_b_ns, 4_000, "clamped at B's end");
        s.apply(Action::SideA, &c);
        s.apply(Action::GoStart, &c);
        s.apply(Action::StepBack, &c);
        assert_eq!((s.at_a_ns, s.at_b_ns), (0, 4_000), "clamped at A's start");
        s.apply(Action::GoEnd, &c);
        assert_eq!(s.at_a_ns, 1_000);
    }

    #[test]
    fn marks_are_each_sides_own() {
        let c = ctx(3);
        let mut s = start();
        s.apply(Action::GoStart, &c);
        s.apply(Action::NextMark, &c);
        s.apply(Action::NextMark, &c);
        assert_eq!(s.at_a_ns, 500);
        s.apply(Action::NextMark, &c);
        assert_eq!(s.at_a_ns, 500, "no mark after A's last");
        s.apply(Action::SideB, &c);
        s.apply(Action::PrevMark, &c);
        assert_eq!((s.at_a_ns, s.at_b_ns), (500, 3_000));
    }

    #[test]
    fn focus_cycles_through_both_timelines_and_they_choose_the_side() {
        let c = ctx(3);
        let mut s = start();
        assert_eq!(s.focus, DiffPane::List);
        s.apply(Action::FocusNext, &c);
        s.apply(Action::FocusNext, &c);
        assert_eq!((s.focus, s.side), (DiffPane::TimelineA, Side::A));
        s.apply(Action::FocusNext, &c);
        assert_eq!((s.focus, s.side), (DiffPane::TimelineB, Side::B));
        s.apply(Action::FocusNext, &c);
        assert_eq!((s.focus, s.side), (DiffPane::List, Side::B), "the side stays when leaving");
        s.apply(Action::FocusPrev, &c);
        s.apply(Action::FocusPrev, &c);
        assert_eq!((s.focus, s.side), (DiffPane::TimelineA, Side::A));
        // Up and down still move the list while a timeline is focused.
        s.apply(Action::Down, &c);
        assert_eq!(s.groups.selected, 1);
    }

    #[test]
    fn clicking_a_timeline_chooses_its_side_and_moves_its_t() {
        let c = ctx(3);
        let mut s = start();
        s.click_timeline(Side::B, 0, 80, &c);
        assert_eq!((s.side, s.at_a_ns, s.at_b_ns), (Side::B, 1_000, 0));
        s.click_timeline(Side::A, 79, 80, &c);
        assert_eq!((s.side, s.at_a_ns, s.focus), (Side::A, 1_000, DiffPane::TimelineA));
        s.click_timeline(Side::A, 40, 80, &c);
        assert_eq!(s.at_a_ns, 506);
    }

    #[test]
    fn list_selection_follows_its_group_and_pages() {
        let c = ctx(25);
        let mut s = start();
        s.list_rows = 10;
        s.sync_groups(&(0..25).map(GroupKey).collect::<Vec<_>>());
        s.apply(Action::PageDown, &c);
        assert_eq!(s.groups.selected, 10);
        s.sync_groups(&(0..25).map(GroupKey).collect::<Vec<_>>());
        assert_eq!(s.selected_key, Some(GroupKey(10)));
        // The group moves to the top when the list re-ranks at another moment.
        s.sync_groups(&[GroupKey(10), GroupKey(1)]);
        assert_eq!((s.groups.selected, s.selected_key), (0, Some(GroupKey(10))));
        s.sync_groups(&[GroupKey(1)]);
        assert_eq!(s.selected_key, Some(GroupKey(1)), "gone: the row index stays, clamped");
        s.sync_groups(&[]);
        assert_eq!(s.selected_key, None);
    }

    #[test]
    fn details_scroll_is_bounded_and_resets_on_a_new_selection() {
        let c = ctx(3);
        let mut s = start();
        s.details_rows = 10;
        s.focus = DiffPane::Details;
        for _ in 0..4 {
            s.apply(Action::PageDown, &c);
        }
        assert_eq!(s.details_scroll, 20, "30 lines, 10 shown");
        s.focus = DiffPane::List;
        s.apply(Action::Down, &c);
        assert_eq!(s.details_scroll, 0);
    }

    #[test]
    fn filter_sort_grouping_help_and_quit() {
        let c = ctx(3);
        let mut s = start();
        s.apply(Action::StartFilter, &c);
        for ch in "leak".chars() {
            s.apply(Action::FilterChar(ch), &c);
        }
        assert_eq!((s.shown_filter(), s.filter.in_force.as_str()), ("leak", ""));
        s.apply(Action::FilterAccept, &c);
        assert_eq!((s.filter.in_force.as_str(), s.typing_filter()), ("leak", false));
        s.apply(Action::StartFilter, &c);
        s.apply(Action::FilterBackspace, &c);
        s.apply(Action::FilterCancel, &c);
        assert_eq!(s.filter.in_force, "leak");
        s.apply(Action::ToggleHelp, &c);
        s.apply(Action::PageDown, &c);
        assert_eq!((s.help.scroll, s.groups.selected), (3, 0), "help scrolls, bounded");
        s.apply(Action::Back, &c);
        assert!(!s.help.shown && s.filter.in_force == "leak", "Esc closes help first");
        s.apply(Action::Back, &c);
        assert_eq!(s.filter.in_force, "");
        s.apply(Action::CycleSort, &c);
        assert_eq!(s.sort, DiffSort::BytesA);
        s.apply(Action::Down, &c);
        s.apply(Action::CycleGrouping, &c);
        assert_eq!((s.moment().by, s.groups.selected), (DiffBy::Function, 0));
        s.apply(Action::Open, &c);
        assert_eq!(s.focus, DiffPane::List, "no drill-down in the diff");
        s.apply(Action::Quit, &c);
        assert!(s.quit);
    }
}
