//! [`Suspicion`]: the leak-suspect verdicts of the moment looked at, as the browser keeps them.
//! Judging the stacks is a pass over the whole trace, so the verdicts are asked of the source
//! only while they are wanted (stack groups of outstanding blocks sorted by suspicion) and only
//! once per moment; the details pane shows a verdict whenever the ones kept are for the moment
//! and the outstanding blocks shown.

use std::collections::HashMap;

use crate::source::{DataSource, GroupKey, GroupQuery, GroupRow, Grouping, Selection, SortKey, StackVerdict};

/// The verdicts for one moment.
#[derive(Debug, Default)]
pub struct Suspicion {
    /// The moment the verdicts are for; `None` before the first are asked for.
    at_ns: Option<u64>,
    /// `None`: the source cannot judge.
    verdicts: Option<Vec<StackVerdict>>,
    /// Position of each stack group in the source's ranking.
    rank: HashMap<GroupKey, usize>,
    /// How many times the source was asked.
    asked: u64,
}

impl Suspicion {
    /// Whether the list `query` asks for needs the verdicts: stack groups of outstanding blocks
    /// (verdicts judge leaks), sorted by suspicion.
    pub fn wanted(query: &GroupQuery) -> bool {
        query.grouping == Grouping::Stack
            && query.sort == SortKey::Suspicion
            && query.what == Selection::Outstanding
    }

    /// Makes sure the verdicts are those for `at_ns`, asking `source` if they are not.
    pub fn judge_at(&mut self, source: &impl DataSource, at_ns: u64) {
        if self.at_ns == Some(at_ns) {
            return;
        }
        self.asked += 1;
        self.verdicts = source.suspects(at_ns);
        self.rank = self.verdicts.iter().flatten().enumerate().map(|(i, v)| (v.key, i)).collect();
        self.at_ns = Some(at_ns);
    }

    /// The verdicts, if they are for `at_ns` and the source could judge.
    pub fn at(&self, at_ns: u64) -> Option<Verdicts<'_>> {
        match (&self.verdicts, self.at_ns == Some(at_ns)) {
            (Some(_), true) => Some(Verdicts(self)),
            _ => None,
        }
    }

    /// Whether the verdicts for `at_ns` were asked for and the source could not judge.
    pub fn unavailable_at(&self, at_ns: u64) -> bool {
        self.at_ns == Some(at_ns) && self.verdicts.is_none()
    }

    /// How many times the source was asked for verdicts.
    pub fn times_asked(&self) -> u64 {
        self.asked
    }
}

/// Verdicts known for the moment shown.
#[derive(Clone, Copy, Debug)]
pub struct Verdicts<'a>(&'a Suspicion);

impl<'a> Verdicts<'a> {
    /// The verdict on stack group `key`.
    pub fn of(self, key: GroupKey) -> Option<&'a StackVerdict> {
        let i = *self.0.rank.get(&key)?;
        self.0.verdicts.as_ref()?.get(i)
    }

    /// Orders stack-group `rows` as the verdicts rank them (by verdict, then bytes); rows
    /// without a verdict go last, in the order they had.
    pub fn rank(self, rows: &mut [GroupRow]) {
        rows.sort_by_key(|row| self.0.rank.get(&row.key).copied().unwrap_or(usize::MAX));
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::collections::HashMap;

    use super::*;
    use crate::keys::Action;
    use crate::source::{
        AllocationPage, FrameInfo, GroupDetails, GroupQuery, MemoryAllocation, MemorySource, Selection,
        StackKey, Summary, Totals,
    };
    use crate::{App, Theme};

    /// A source that counts how often it is asked for verdicts.
    struct Counting {
        inner: MemorySource,
        asked: Cell<u64>,
    }

    impl DataSource for Counting {
        fn summary(&self) -> &Summary {
            self.inner.summary()
        }
        fn timeline(&self, buckets: usize, what: Selection) -> Vec<u64> {
            self.inner.timeline(buckets, what)
        }
        fn totals_at(&self, at_ns: u64, what: Selection) -> Totals {
            self.inner.totals_at(at_ns, what)
        }
        fn groups(&self, query: &GroupQuery) -> Vec<GroupRow> {
            self.inner.groups(query)
        }
        fn group_details(&self, query: &GroupQuery, key: GroupKey) -> Option<GroupDetails> {
            self.inner.group_details(query, key)
        }
        fn allocations(
            &self,
            query: &GroupQuery,
            key: GroupKey,
            offset: usize,
            limit: usize,
        ) -> AllocationPage {
            self.inner.allocations(query, key, offset, limit)
        }
        fn stack_frames(&self, stack: StackKey) -> Vec<FrameInfo> {
            self.inner.stack_frames(stack)
        }
        fn thread_name(&self, tid: u32) -> Option<String> {
            self.inner.thread_name(tid)
        }
        fn suspects(&self, at_ns: u64) -> Option<Vec<StackVerdict>> {
            self.asked.set(self.asked.get() + 1);
            self.inner.suspects(at_ns)
        }
    }

    fn frame(name: &str) -> FrameInfo {
        FrameInfo { function: name.into(), location: None, module: None, inlined: false }
    }

    /// Stack 0 leaks one block every 10 ns; stack 1 allocates more bytes in one burst.
    fn app() -> App<Counting> {
        let mut allocations: Vec<MemoryAllocation> = (0..100)
            .map(|i| MemoryAllocation {
                address: i,
                size: 8,
                alloc_ns: i * 10,
                free_ns: None,
                tid: 1,
                stack: 0,
            })
            .collect();
        allocations.extend((0..10).map(|i| MemoryAllocation {
            address: 1_000 + i,
            size: 4_096,
            alloc_ns: 5 + i,
            free_ns: None,
            tid: 1,
            stack: 1,
        }));
        let stacks = vec![vec![frame("leak")], vec![frame("burst")]];
        let inner = MemorySource::new("t", 1_000, stacks, allocations, vec![], HashMap::new());
        let mut app = App::new(Counting { inner, asked: Cell::new(0) }, Theme::monochrome());
        app.refresh();
        app
    }

    fn asked(app: &App<Counting>) -> u64 {
        app.source().asked.get()
    }

    /// Applies `action` and draws, as the runner does when no other key is waiting.
    fn step(app: &mut App<Counting>, action: Action) {
        app.apply(action);
        let mut terminal =
            ratatui::Terminal::new(ratatui::backend::TestBackend::new(80, 24)).expect("terminal");
        terminal.draw(|f| app.draw(f)).expect("draws");
    }

    #[test]
    fn verdicts_are_asked_for_once_per_moment_and_only_when_sorting_by_suspicion() {
        let mut app = app();
        for action in [Action::StepBack, Action::JumpBack, Action::Down, Action::GoPeak, Action::GoEnd] {
            step(&mut app, action);
        }
        step(&mut app, Action::CycleSort);
        step(&mut app, Action::CycleSort);
        step(&mut app, Action::StepBack);
        assert_eq!(asked(&app), 0, "scrubbing sorted by bytes, blocks or newest never judges");
        app.apply(Action::CycleSort);
        assert_eq!(asked(&app), 0, "not judged before the moment is drawn");
        step(&mut app, Action::Down);
        assert_eq!(app.state().sort, SortKey::Suspicion);
        assert_eq!(asked(&app), 1);
        for _ in 0..10 {
            app.apply(Action::StepBack);
        }
        step(&mut app, Action::StepForward);
        assert_eq!(asked(&app), 2, "keys applied before one draw judge one moment");
        step(&mut app, Action::Down);
        step(&mut app, Action::Up);
        assert_eq!(asked(&app), 2, "same moment: the kept verdicts serve");
        step(&mut app, Action::StepBack);
        assert_eq!(asked(&app), 3, "a new moment while sorted by suspicion is judged");
        step(&mut app, Action::CycleSort);
        for _ in 0..20 {
            step(&mut app, Action::StepBack);
        }
        step(&mut app, Action::GoEnd);
        assert_eq!(asked(&app), 3, "scrubbing sorted by bytes does not judge again");
        step(&mut app, Action::CycleGrouping);
        for _ in 0..3 {
            step(&mut app, Action::CycleSort);
        }
        step(&mut app, Action::StepBack);
        assert_eq!(app.state().sort, SortKey::Suspicion);
        assert_eq!(asked(&app), 3, "grouped by function, suspicion does not apply");
        assert_eq!(app.suspicion().times_asked(), asked(&app));
    }

    #[test]
    fn suspicion_ranks_the_growing_stack_before_the_bigger_burst() {
        let mut app = app();
        let keys = |app: &App<Counting>| {
            app.source().groups(&app.state().query()).iter().map(|g| g.key).collect::<Vec<_>>()
        };
        assert_eq!(keys(&app), [GroupKey(1), GroupKey(0)], "bytes order: the burst first");
        for _ in 0..3 {
            step(&mut app, Action::CycleSort);
        }
        let verdicts = app.suspicion().at(1_000).expect("judged at the end");
        assert_eq!(verdicts.of(GroupKey(0)).map(|v| v.verdict), Some(crate::source::Verdict::Growing));
        assert_eq!(verdicts.of(GroupKey(1)).map(|v| v.verdict), Some(crate::source::Verdict::NeverFreed));
        let mut rows = app.source().groups(&app.state().query());
        verdicts.rank(&mut rows);
        assert_eq!(rows.iter().map(|g| g.key).collect::<Vec<_>>(), [GroupKey(0), GroupKey(1)]);
        assert!(app.suspicion().at(990).is_none(), "kept for one moment only");
    }
}
