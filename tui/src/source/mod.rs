//! What the browser needs from a trace, as a small trait ([`DataSource`]) and the plain types it
//! returns. Every time is in nanoseconds from the start of the trace. The browser never looks
//! at trace bytes: the analyzer-backed source and the in-memory source used by tests both
//! implement this trait.

pub(crate) mod alike;
mod analysis;
mod call_tree;
mod comparison;
mod memory;
mod memory_suspects;
mod resident;
mod scrub;

pub use analysis::{AnalysisSource, frame_info};
pub use call_tree::{CallTree, TREE_STACKS, call_tree, stacks_allocations, tree_name, tree_query};
pub use comparison::{
    ComparisonSource, DiffDetails, DiffMoment, DiffRow, DiffSort, DiffTable, next_diff_by, side_index,
};
pub use leakview_analyzer::{Selection, Verdict};
pub use memory::{MemoryAllocation, MemorySource, frame_matches, size_class, size_class_label};
pub use resident::{ResidentMemory, ResidentSample, resident_levels};

/// How the selected allocations are gathered into groups.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Grouping {
    /// One group per full call stack.
    #[default]
    Stack,
    /// One group per function: every function on a stack (outside the allocator) is credited
    /// with the stack's blocks, as `leakview report --group-by function` does.
    Function,
    /// One group per power-of-two size class.
    Size,
    /// One group per allocating thread, as `leakview report --group-by thread` does.
    Thread,
}

impl Grouping {
    /// The next grouping in the cycle the `g` key walks.
    pub fn next(self) -> Self {
        match self {
            Grouping::Stack => Grouping::Function,
            Grouping::Function => Grouping::Size,
            Grouping::Size => Grouping::Thread,
            Grouping::Thread => Grouping::Stack,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Grouping::Stack => "stack",
            Grouping::Function => "function",
            Grouping::Size => "size",
            Grouping::Thread => "thread",
        }
    }
}

/// The order of the group list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum SortKey {
    /// Most bytes first.
    #[default]
    Bytes,
    /// Most blocks first.
    Blocks,
    /// Most recently allocated first.
    Newest,
    /// Stack groups that look most like leaks first: by leak-suspect verdict, then bytes. The
    /// source answers it in bytes order; the browser ranks the rows by the verdicts of
    /// [`DataSource::suspects`]. Other groupings stay in bytes order.
    Suspicion,
}

impl SortKey {
    /// The next sort in the cycle the `s` key walks.
    pub fn next(self) -> Self {
        match self {
            SortKey::Bytes => SortKey::Blocks,
            SortKey::Blocks => SortKey::Newest,
            SortKey::Newest => SortKey::Suspicion,
            SortKey::Suspicion => SortKey::Bytes,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SortKey::Bytes => "bytes",
            SortKey::Blocks => "blocks",
            SortKey::Newest => "newest",
            SortKey::Suspicion => "suspicion",
        }
    }
}

/// The next selection in the cycle the `w` key walks: outstanding, allocated, temporary.
pub fn next_selection(what: Selection) -> Selection {
    match what {
        Selection::Outstanding => Selection::Allocated,
        Selection::Allocated => Selection::Temporary,
        Selection::Temporary => Selection::Outstanding,
    }
}

/// How the browser says which blocks it counts at T: `live` for outstanding blocks, else the
/// selection's name.
pub fn counted_name(what: Selection) -> &'static str {
    match what {
        Selection::Outstanding => "live",
        other => other.name(),
    }
}

/// Which groups to list: the blocks `what` selects at `at_ns` (by default those outstanding),
/// gathered by `grouping`, restricted to stacks with a frame containing `filter` (function,
/// file or module; empty = all), in `sort` order.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct GroupQuery {
    pub at_ns: u64,
    pub grouping: Grouping,
    pub sort: SortKey,
    pub filter: String,
    pub what: Selection,
}

/// Identifies a group within one grouping; its meaning belongs to the source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupKey(pub u64);

/// Identifies a call stack; its meaning belongs to the source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StackKey(pub u64);

/// Bytes and blocks (outstanding, or whatever a query selects).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Totals {
    pub bytes: u64,
    pub blocks: u64,
}

/// A user-placed mark.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mark {
    pub at_ns: u64,
    pub label: String,
}

/// Facts about the whole trace.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Summary {
    /// What was recorded (command line or executable), for the title bar.
    pub title: String,
    pub pid: u32,
    /// Time from the start to the last event (or the recorded end).
    pub duration_ns: u64,
    /// Events in the trace.
    pub events: u64,
    /// When the live bytes were highest, and how high.
    pub peak_at_ns: u64,
    pub peak: Totals,
    /// Outstanding at the end of the trace.
    pub at_end: Totals,
    /// Marks in time order.
    pub marks: Vec<Mark>,
    /// False when the trace was cut short (crash, kill, full disk).
    pub complete: bool,
}

impl Summary {
    /// The times of the marks, in order.
    pub fn mark_times(&self) -> Vec<u64> {
        self.marks.iter().map(|m| m.at_ns).collect()
    }
}

/// One row of the group list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupRow {
    pub key: GroupKey,
    pub totals: Totals,
    /// Time of the most recent selected allocation of the group.
    pub newest_ns: u64,
    /// What names the group: the top frame, a function, a size class or a thread
    /// ([`crate::format::thread`]).
    pub label: String,
    /// For a function: how near the allocations it is on their stacks (0: the innermost
    /// function of one of them), so that functions tied in the ranking come innermost first
    /// (`handle_request`, `worker_main`, `start_thread`); 0 for other groupings.
    pub depth: u32,
}

/// One symbolized frame, ready to show.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FrameInfo {
    /// Function name, or `module+0xOFFSET`, or the address.
    pub function: String,
    /// `file:line` when known.
    pub location: Option<String>,
    /// File name of the module when known.
    pub module: Option<String>,
    /// This frame was inlined into the next one.
    pub inlined: bool,
}

/// A bucket of the size histogram: blocks of at least `min_size` bytes (and less than the next
/// bucket's `min_size`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SizeBucket {
    pub min_size: u64,
    pub blocks: u64,
}

/// A thread that allocated blocks of a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThreadShare {
    pub tid: u32,
    pub name: Option<String>,
    pub blocks: u64,
}

/// How many moments a group's history samples: the ends of this many equal slices of the trace.
pub const HISTORY_POINTS: usize = 100;

/// Builds a group's history: how many bytes of its blocks were outstanding at each of the ends
/// of [`HISTORY_POINTS`] equal slices of a trace (the last is the end of the trace).
pub struct HistoryBuilder {
    moments: Vec<u64>,
    /// Changes of the level from each moment on (wrapping: the sums are exact).
    changes: Vec<u64>,
}

impl HistoryBuilder {
    pub fn new(duration_ns: u64) -> Self {
        let points = HISTORY_POINTS as u128;
        let moments = (1..=points).map(|k| (u128::from(duration_ns) * k / points) as u64).collect();
        HistoryBuilder { moments, changes: vec![0; HISTORY_POINTS + 1] }
    }

    /// Adds a block of `size` bytes allocated at `alloc_ns` and freed at `free_ns` (`None`:
    /// never): it counts at each moment at or after its allocation and before its free, the rule
    /// of "outstanding at T".
    pub fn add(&mut self, alloc_ns: u64, free_ns: Option<u64>, size: u64) {
        let from = self.moments.partition_point(|&t| t < alloc_ns);
        let to = free_ns.map_or(HISTORY_POINTS, |f| self.moments.partition_point(|&t| t < f));
        if from < to {
            self.changes[from] = self.changes[from].wrapping_add(size);
            self.changes[to] = self.changes[to].wrapping_sub(size);
        }
    }

    /// The moment of the history that shows `at_ns`: the first at or after it.
    pub fn point_at(&self, at_ns: u64) -> usize {
        self.moments.partition_point(|&t| t < at_ns).min(HISTORY_POINTS - 1)
    }

    /// Adds a history built over the same trace.
    pub fn add_history(&mut self, history: &[u64]) {
        let mut before = 0u64;
        for (k, &level) in history.iter().enumerate().take(HISTORY_POINTS) {
            self.changes[k] = self.changes[k].wrapping_add(level.wrapping_sub(before));
            before = level;
        }
        self.changes[HISTORY_POINTS] = self.changes[HISTORY_POINTS].wrapping_sub(before);
    }

    /// The level at each moment.
    pub fn finish(self) -> Vec<u64> {
        let mut level = 0u64;
        self.changes[..HISTORY_POINTS]
            .iter()
            .map(|&change| {
                level = level.wrapping_add(change);
                level
            })
            .collect()
    }
}

/// Everything the details pane shows about one group at one moment.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct GroupDetails {
    pub label: String,
    pub totals: Totals,
    /// Distinct stacks in the group (1 when grouped by stack).
    pub stacks: u64,
    /// When grouped by stack: the recorded stacks (call sites, e.g. two return addresses on one
    /// source line) whose frames read as this group's; 0 when the source does not say.
    pub call_sites: u64,
    /// Frames of the group's heaviest stack, innermost first.
    pub frames: Vec<FrameInfo>,
    pub histogram: Vec<SizeBucket>,
    pub first_alloc_ns: u64,
    pub last_alloc_ns: u64,
    /// Threads, most blocks first.
    pub threads: Vec<ThreadShare>,
    /// When grouped by stack: the `leak:` line that would suppress the group in `leakview
    /// check` (`None` where no line can name it alone, or the source does not say).
    pub suppression: Option<String>,
    /// How many bytes of the group were outstanding at each of [`HistoryBuilder`]'s moments
    /// over the whole trace, whatever T is: the blocks of the group's stacks (those it holds at
    /// T), of its size class or thread for those groups; empty where the source does not say.
    pub history: Vec<u64>,
    /// The point of `history` that shows T.
    pub history_at: usize,
}

/// One selected allocation of a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllocationRow {
    pub address: u64,
    pub size: u64,
    pub at_ns: u64,
    pub tid: u32,
    pub stack: StackKey,
}

/// The leak-suspect verdict on one stack holding outstanding blocks at a moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StackVerdict {
    /// The stack's group key when grouped by stack.
    pub key: GroupKey,
    pub verdict: Verdict,
    /// One line of evidence for the verdict.
    pub evidence: String,
}

/// A page of a group's selected allocations.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AllocationPage {
    /// All allocations of the group (not only this page).
    pub total: u64,
    /// Rows `offset..offset + rows.len()`, in [`allocation_order`].
    pub rows: Vec<AllocationRow>,
}

/// How an open group's allocations are ordered under `sort`: biggest first for bytes (and
/// suspicion, whose groups rank by bytes within a verdict), newest first for newest, and in
/// allocation order for blocks (each is one block); ties in allocation order. The key of an
/// allocation of `size` bytes made at `at_ns` at `address`: smaller keys come first.
pub fn allocation_order(sort: SortKey, size: u64, at_ns: u64, address: u64) -> (u64, u64, u64) {
    match sort {
        SortKey::Bytes | SortKey::Suspicion => (u64::MAX - size, at_ns, address),
        SortKey::Newest => (u64::MAX - at_ns, address, 0),
        SortKey::Blocks => (at_ns, address, 0),
    }
}

/// What the browser asks of a trace. Implementations answer from an index, so each call costs
/// work proportional to what it returns and to the events near `at_ns`, not to the whole trace.
pub trait DataSource {
    fn summary(&self) -> &Summary;

    /// What `what` counts in each of `buckets` equal slices of the trace: the most outstanding
    /// bytes at any moment of the slice, or the bytes allocated (or in temporary blocks) by its
    /// end, which only grow.
    fn timeline(&self, buckets: usize, what: Selection) -> Vec<u64>;

    /// The blocks `what` selects at `at_ns` (no filter).
    fn totals_at(&self, at_ns: u64, what: Selection) -> Totals;

    /// The groups `query` selects, in its order.
    fn groups(&self, query: &GroupQuery) -> Vec<GroupRow>;

    /// Details of group `key` under `query`; `None` if `query` selects none of its blocks.
    fn group_details(&self, query: &GroupQuery, key: GroupKey) -> Option<GroupDetails>;

    /// Up to `limit` of group `key`'s allocations that `query` selects, from the `offset`-th on.
    fn allocations(&self, query: &GroupQuery, key: GroupKey, offset: usize, limit: usize) -> AllocationPage;

    /// The frames of a stack, innermost first.
    fn stack_frames(&self, stack: StackKey) -> Vec<FrameInfo>;

    /// The name of thread `tid`, if it was named.
    fn thread_name(&self, tid: u32) -> Option<String>;

    /// The verdicts on the stacks holding blocks outstanding at `at_ns` (no filter), most
    /// suspect first (by verdict, then bytes); `None` when the source cannot judge. Unlike the
    /// other answers this is a pass over the whole trace: callers keep it per moment.
    fn suspects(&self, at_ns: u64) -> Option<Vec<StackVerdict>> {
        let _ = at_ns;
        None
    }

    /// The process's resident set size as the recorder sampled it, in time order; `None` when
    /// the trace has no samples (recorded before format 2.1) or the source does not say.
    fn resident(&self) -> Option<&ResidentMemory> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_history_counts_a_block_from_its_allocation_until_its_free() {
        let mut h = HistoryBuilder::new(1_000);
        // Moments at 10, 20, ..., 1000.
        h.add(0, Some(15), 5); // at 10
        h.add(10, Some(30), 7); // at 10 and 20 (freed at 30: not outstanding at 30)
        h.add(995, None, 100); // at 1000
        h.add(11, Some(19), 1_000); // between two moments: never seen
        assert_eq!(h.point_at(0), 0);
        assert_eq!((h.point_at(20), h.point_at(21), h.point_at(5_000)), (1, 2, 99));
        let levels = h.finish();
        assert_eq!(levels.len(), HISTORY_POINTS);
        assert_eq!(&levels[..4], &[12, 7, 0, 0]);
        assert_eq!(levels[99], 100);
        assert_eq!(levels.iter().filter(|&&l| l > 0).count(), 3);
        let mut sum = HistoryBuilder::new(1_000);
        sum.add_history(&levels);
        sum.add_history(&levels);
        sum.add(500, None, 1);
        let doubled = sum.finish();
        assert_eq!((doubled[0], doubled[1], doubled[49], doubled[98], doubled[99]), (24, 14, 1, 1, 201));
    }
}
