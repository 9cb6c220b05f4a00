//! [`Analysis`]: a loaded trace and every query on it. One value serves the CLI, the TUI and the
//! tests; it is `Send + Sync`, and its caches fill in behind `&self`.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use leakview_format::TraceReader;
use rayon::prelude::*;

use crate::alike::ShownStackId;
use crate::error::{LoadError, WhenError};
use crate::frames::{FrameCache, Frames};
use crate::group::{self, Group, GroupBy, Grouping, ScratchPool, Snapshot};
use crate::heap_scan::{HeapScan, ScanFound};
use crate::index::TimeIndex;
use crate::lifetimes::{LifetimeStore, LiveBlock};
use crate::load::{self, Loaded};
use crate::model::{Block, BlockId, LiveTotals, Mark, StackId, Summary, ThreadIndex, ThreadInfo, Totals};
use crate::progress::Progress;
use crate::reachability::{LeakKindSet, LeakKinds};
use crate::resident::ResidentMemory;
use crate::selection::{self, Selection, TemporaryBlocks};
use crate::stacks::StackTable;
use crate::symbolize::{ModuleInfo, SymbolizeOptions, Symbolizer};
use crate::timeline::Timeline;
use crate::when::When;
use crate::window::AllocWindow;

/// Snapshots at least this large have their bytes summed in parallel.
const PARALLEL_SUM: usize = 64 * 1024;

/// Settings of a load.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Where the symbolizer looks for separate debug information.
    pub symbolize: SymbolizeOptions,
}

/// A loaded, indexed trace. See the crate docs for an example.
pub struct Analysis {
    summary: Summary,
    store: Arc<LifetimeStore>,
    /// Buffers reused by one query after another.
    scratch: Arc<ScratchPool>,
    index: TimeIndex,
    timeline: Timeline,
    stacks: StackTable,
    threads: Vec<ThreadInfo>,
    marks: Vec<Mark>,
    modules: Vec<ModuleInfo>,
    resident: ResidentMemory,
    frames: FrameCache,
    /// Which blocks are temporary, found on first use.
    temporary: OnceLock<TemporaryBlocks>,
    heap_scan: ScanFound,
    /// The leak kinds of the blocks outstanding at the end, found on first use.
    leak_kinds: OnceLock<Option<LeakKinds>>,
}

impl std::fmt::Debug for Analysis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analysis").field("summary", &self.summary).finish_non_exhaustive()
    }
}

impl Analysis {
    /// Maps, decodes, matches and indexes the trace at `path`. A damaged or incomplete trace
    /// loads what is readable ([`Summary::complete`] is then false); only a file that cannot be
    /// opened or is not a trace is an error.
    pub fn open(path: &Path, options: &LoadOptions, progress: &dyn Progress) -> Result<Self, LoadError> {
        let reader = TraceReader::open(path)?;
        Self::from_reader(&reader, options, progress)
    }

    /// Loads from an open reader (e.g. [`TraceReader::from_bytes`]).
    pub fn from_reader(
        reader: &TraceReader,
        options: &LoadOptions,
        progress: &dyn Progress,
    ) -> Result<Self, LoadError> {
        let Loaded { summary, store, index, timeline, stacks, threads, marks, modules, resident, heap_scan } =
            load::load(reader, progress)?;
        let frames = FrameCache::new(Symbolizer::new(modules.clone(), options.symbolize.clone()));
        Ok(Analysis {
            summary,
            store: Arc::new(store),
            scratch: Arc::default(),
            index,
            timeline,
            stacks,
            threads,
            marks,
            modules,
            resident,
            frames,
            temporary: OnceLock::new(),
            heap_scan,
            leak_kinds: OnceLock::new(),
        })
    }

    /// What the trace is and holds.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// Heap totals over the whole trace.
    pub fn totals(&self) -> &Totals {
        &self.summary.totals
    }

    /// Length of the trace (ns); every moment lies in `0..=duration_ns()`.
    pub fn duration_ns(&self) -> u64 {
        self.summary.duration_ns
    }

    /// Live bytes over time, for charts.
    pub fn timeline(&self) -> &Timeline {
        &self.timeline
    }

    /// What `what` counts over the trace, for a chart of `slices` equal slices: outstanding
    /// bytes, the most at any moment of each slice (from the [`Timeline`]); bytes allocated, or
    /// in temporary blocks, by each slice's end (they only grow, so their chart is cumulative).
    pub fn bytes_over_time(&self, what: Selection, slices: usize) -> Vec<u64> {
        let duration = self.summary.duration_ns;
        match what {
            Selection::Outstanding => {
                let points = self.timeline.downsample(slices);
                if points.is_empty() {
                    return vec![0; slices];
                }
                // Fewer points than slices (a short trace): each slice shows the point covering it.
                (0..slices).map(|i| points[i * points.len() / slices].max_live_bytes).collect()
            }
            Selection::Allocated => crate::over_time::cumulative_bytes(&self.store, None, duration, slices),
            Selection::Temporary => crate::over_time::cumulative_bytes(
                &self.store,
                Some(self.temporary_blocks()),
                duration,
                slices,
            ),
        }
    }

    /// Blocks and bytes outstanding at `t` (exact; cost proportional to the events near `t`).
    pub fn live_at(&self, t: u64) -> LiveTotals {
        self.index.totals_at(&self.store, t)
    }

    /// Marks in time order, each with its occurrence number among marks of the same label.
    pub fn marks(&self) -> &[Mark] {
        &self.marks
    }

    /// The process's resident set size as the recorder sampled it (empty for traces written
    /// before format 2.1).
    pub fn resident_memory(&self) -> &ResidentMemory {
        &self.resident
    }

    /// The trace's threads; [`ThreadIndex`] indexes this.
    pub fn threads(&self) -> &[ThreadInfo] {
        &self.threads
    }

    pub fn thread(&self, index: ThreadIndex) -> Option<&ThreadInfo> {
        self.threads.get(index.0 as usize)
    }

    /// Modules loaded during the trace.
    pub fn modules(&self) -> &[ModuleInfo] {
        &self.modules
    }

    /// Resolves a parsed moment to ns since the start.
    pub fn resolve(&self, when: &When) -> Result<u64, WhenError> {
        when.resolve(self.summary.duration_ns, self.summary.totals.peak_at_ns, &self.marks)
    }

    /// Parses and resolves a `WHEN` string (`end`, `peak`, `40%`, `1.5s`, `mark:LABEL#2`, ...).
    pub fn resolve_when(&self, text: &str) -> Result<u64, WhenError> {
        self.resolve(&When::parse(text)?)
    }

    /// The blocks outstanding at `t`: allocated at or before `t` and not freed by `t`. Costs work
    /// proportional to the events near `t` plus the answer's size.
    pub fn outstanding_at(&self, t: u64) -> Snapshot {
        self.snapshot_of(t, self.index.live_at(&self.store, t))
    }

    /// A snapshot of `blocks` at `t`, with their totals.
    fn snapshot_of(&self, t: u64, blocks: Vec<LiveBlock>) -> Snapshot {
        let size = |b: &LiveBlock| self.store.full_size(b.id, b.size32);
        let bytes = if blocks.len() >= PARALLEL_SUM {
            blocks.par_iter().map(size).sum()
        } else {
            blocks.iter().map(size).sum()
        };
        Snapshot {
            at_ns: t,
            totals: LiveTotals { blocks: blocks.len() as u64, bytes },
            blocks: Arc::new(blocks),
        }
    }

    /// [`Analysis::outstanding_at`] narrowed to the blocks allocated within `window`.
    pub fn outstanding_in(&self, t: u64, window: &AllocWindow) -> Snapshot {
        let snapshot = self.outstanding_at(t);
        if window.is_all() {
            return snapshot;
        }
        let ids = self.window_ids(window);
        let all = &snapshot.blocks;
        let from = all.partition_point(|b| b.id < ids.start);
        let to = all.partition_point(|b| b.id < ids.end).max(from);
        let inside = &all[from..to];
        let bytes = inside.iter().map(|b| self.store.full_size(b.id, b.size32)).sum();
        Snapshot {
            at_ns: t,
            totals: LiveTotals { blocks: inside.len() as u64, bytes },
            blocks: Arc::new(inside.to_vec()),
        }
    }

    /// The ids of the blocks allocated within `window` (ids are in allocation order, so the
    /// window is one run of them).
    fn window_ids(&self, window: &AllocWindow) -> std::ops::Range<u32> {
        let allocated_before = |ns: u64| if ns == 0 { 0 } else { self.store.allocated_by(ns - 1) as u32 };
        let first = window.after.as_ref().map_or(0, |a| allocated_before(a.ns));
        let end = window.before.as_ref().map_or(u32::MAX, |b| allocated_before(b.ns));
        first..end.max(first)
    }

    /// The ids of the blocks allocated at or before `t` within `window`.
    fn allocated_ids(&self, t: u64, window: &AllocWindow) -> std::ops::Range<u32> {
        let ids = self.window_ids(window);
        let by_t = self.store.allocated_by(t) as u32;
        ids.start.min(by_t)..ids.end.min(by_t)
    }

    /// The blocks `selection` picks at `t` among those allocated within `window`: outstanding
    /// at `t` ([`Analysis::outstanding_in`]), allocated at or before `t` whether freed or not,
    /// or those of them that are temporary (freed by `t`, before their thread allocated again).
    /// The snapshot's totals are the picked blocks'.
    pub fn select(&self, t: u64, window: &AllocWindow, selection: Selection) -> Snapshot {
        let temporary = match selection {
            Selection::Outstanding => return self.outstanding_in(t, window),
            Selection::Allocated => None,
            Selection::Temporary => Some(self.temporary_blocks()),
        };
        let ids = self.allocated_ids(t, window);
        self.snapshot_of(t, selection::allocated_blocks(&self.store, ids, t, temporary))
    }

    /// The heap scan the recorder took at exit (`leakview record --leak-kinds`), if the trace
    /// holds a complete one.
    pub fn heap_scan(&self) -> Option<&HeapScan> {
        match &self.heap_scan {
            ScanFound::Complete(scan) => Some(scan),
            _ => None,
        }
    }

    /// Whether the trace holds a heap scan's events but not its end: the scan was interrupted,
    /// and no leak kinds are known.
    pub fn heap_scan_interrupted(&self) -> bool {
        matches!(self.heap_scan, ScanFound::Interrupted)
    }

    /// The leak kind (definitely lost, ..., see [`crate::reachability`]) of every block
    /// outstanding at the end of the trace; `None` without a complete heap scan. Worked out on
    /// first use (a search over the blocks live at the scan and the scanned words).
    pub fn leak_kinds(&self) -> Option<&LeakKinds> {
        self.leak_kinds
            .get_or_init(|| {
                let scan = self.heap_scan()?;
                let end = self.summary.duration_ns;
                let scan_ns = scan.at_ns().min(end);
                let at_scan = self.index.live_at(&self.store, scan_ns);
                let at_end = self.index.live_at(&self.store, end);
                Some(LeakKinds::find(&self.store, scan, scan_ns, &at_scan, &at_end))
            })
            .as_ref()
    }

    /// Those blocks of `snapshot` that were outstanding at the end of the trace with a leak kind
    /// in `kinds` (none without a complete heap scan).
    pub fn of_leak_kinds(&self, snapshot: &Snapshot, kinds: LeakKindSet) -> Snapshot {
        let blocks = match self.leak_kinds() {
            Some(found) => found.select(&snapshot.blocks, kinds),
            None => Vec::new(),
        };
        self.snapshot_of(snapshot.at_ns, blocks)
    }

    /// How many blocks of the whole trace are temporary (see [`Selection::Temporary`]).
    pub fn temporary_count(&self) -> u64 {
        self.temporary_blocks().count()
    }

    /// Whether block `id` is temporary (see [`Selection::Temporary`]): freed before its thread
    /// allocated again. It counts as temporary at the moments from its free on.
    pub fn is_temporary(&self, id: BlockId) -> bool {
        self.temporary_blocks().contains(id.0)
    }

    fn temporary_blocks(&self) -> &TemporaryBlocks {
        self.temporary.get_or_init(|| TemporaryBlocks::find(&self.store))
    }

    /// How many blocks were allocated at or before `t` within `window`, freed or not.
    pub fn allocated_count(&self, t: u64, window: &AllocWindow) -> u64 {
        self.allocated_ids(t, window).len() as u64
    }

    /// The stacks holding blocks outstanding at `t`, ranked by how much they look like leaks
    /// (see [`crate::suspects`]); stacks that read the same (see [`ShownStackId`]) are one
    /// suspect, judged on all their blocks. This symbolizes every stack holding blocks at `t`.
    pub fn suspects(&self, t: u64) -> Vec<crate::suspects::Suspect> {
        self.suspects_in(t, &AllocWindow::all())
    }

    /// [`Analysis::suspects`] among the blocks allocated within `window` (the evidence about
    /// each suspect still counts all its blocks).
    pub fn suspects_in(&self, t: u64, window: &AllocWindow) -> Vec<crate::suspects::Suspect> {
        self.suspects_in_with_progress(t, window, &crate::progress::NoProgress)
    }

    /// [`Analysis::suspects_in`], reporting symbolization progress.
    pub fn suspects_in_with_progress(
        &self,
        t: u64,
        window: &AllocWindow,
        progress: &dyn Progress,
    ) -> Vec<crate::suspects::Suspect> {
        crate::suspects::rank(&self.store, &self.outstanding_in(t, window), &|stacks| {
            self.shown_stack_ids(stacks, progress)
        })
    }

    /// Every block of the trace (freed or not), in allocation order.
    pub fn block_count(&self) -> usize {
        self.store.len()
    }

    pub fn block(&self, id: BlockId) -> Option<Block> {
        self.store.block(id.0)
    }

    /// The blocks of a snapshot, in allocation order.
    pub fn blocks<'a>(&'a self, snapshot: &'a Snapshot) -> impl Iterator<Item = Block> + 'a {
        snapshot.block_ids().filter_map(|id| self.store.block(id.0))
    }

    /// Groups a snapshot, ranked by bytes. Grouping by function symbolizes the snapshot's stacks
    /// first (see [`Analysis::group_with_progress`] to watch that).
    pub fn group(&self, snapshot: &Snapshot, by: GroupBy) -> Grouping {
        self.group_with_progress(snapshot, by, &crate::progress::NoProgress)
    }

    /// [`Analysis::group`], reporting symbolization progress.
    pub fn group_with_progress(&self, snapshot: &Snapshot, by: GroupBy, progress: &dyn Progress) -> Grouping {
        match by {
            GroupBy::Function => {
                let stacks: Vec<StackId> = {
                    let mut s: Vec<u32> =
                        snapshot.blocks.iter().map(|b| self.store.site_by_id(b.site).stack).collect();
                    s.sort_unstable();
                    s.dedup();
                    s.into_iter().map(StackId).collect()
                };
                self.prepare_symbols(&stacks, progress);
                group::group_by_function(&self.store, &self.scratch, snapshot, &|s| {
                    self.stack_frames(StackId(s))
                })
            }
            other => group::group_simple(&self.store, &self.scratch, snapshot, other),
        }
    }

    /// Groups a snapshot as the reports show it, ranked by bytes: [`Analysis::group`], except
    /// that grouped by stack, stacks that read the same once symbolized and trimmed (see
    /// [`ShownStackId`]) are one group, ranked by their summed figures, whose
    /// [`Group::stacks`](crate::Group::stacks) lists each of them, most bytes first. This
    /// symbolizes every stack of the snapshot.
    pub fn group_merged(&self, snapshot: &Snapshot, by: GroupBy) -> Grouping {
        self.group_merged_with_progress(snapshot, by, &crate::progress::NoProgress)
    }

    /// [`Analysis::group_merged`], reporting symbolization progress.
    pub fn group_merged_with_progress(
        &self,
        snapshot: &Snapshot,
        by: GroupBy,
        progress: &dyn Progress,
    ) -> Grouping {
        let grouping = self.group_with_progress(snapshot, by, progress);
        group::merge_alike(grouping, &|stacks| self.shown_stack_ids(stacks, progress))
    }

    /// What each of `stacks` shows, as ids: stacks with the same id read the same frame by frame
    /// once trimmed (function, file, line, inlined flag and module; by module offset where the
    /// file or line is unknown). Symbolizes what is missing, in bulk.
    pub fn shown_stack_ids(&self, stacks: &[StackId], progress: &dyn Progress) -> Vec<ShownStackId> {
        let ids: Vec<u32> = stacks.iter().map(|s| s.0).collect();
        self.frames.shown_ids(&self.stacks, &ids, progress)
    }

    /// Symbolizes every address of `stacks` that is not cached yet, in bulk (much faster than
    /// one stack at a time).
    pub fn prepare_symbols(&self, stacks: &[StackId], progress: &dyn Progress) {
        let ids: Vec<u32> = stacks.iter().map(|s| s.0).collect();
        self.frames.prepare(&self.stacks, &ids, progress);
    }

    /// The symbolized frames of `stack`, innermost first, with the allocator's and leakview's own
    /// frames trimmed from the top. Inlined functions appear as frames of their own.
    pub fn stack_frames(&self, stack: StackId) -> Frames {
        self.frames.frames(&self.stacks, stack.0).1
    }

    /// [`Analysis::stack_frames`] without trimming.
    pub fn stack_frames_untrimmed(&self, stack: StackId) -> Frames {
        self.frames.frames(&self.stacks, stack.0).0
    }

    /// The recorded return addresses of `stack`, innermost first.
    pub fn stack_addresses(&self, stack: StackId) -> Vec<u64> {
        self.stacks.addresses(stack.0)
    }

    /// Whether any frame of any of the group's stacks contains `needle` (ASCII case-insensitive)
    /// in its function, file or module.
    pub fn group_matches(&self, group: &Group, needle: &str) -> bool {
        if needle.is_empty() {
            return true;
        }
        let needle = needle.to_ascii_lowercase();
        let hit =
            |text: &Option<String>| text.as_ref().is_some_and(|t| t.to_ascii_lowercase().contains(&needle));
        if let Some(frame) = &group.frame
            && (hit(&frame.function) || hit(&frame.file) || hit(&frame.module))
        {
            return true;
        }
        group.stacks.iter().any(|&s| {
            self.stack_frames(s).iter().any(|f| {
                hit(&f.function)
                    || hit(&f.file)
                    || hit(&f.module)
                    || f.display_name().to_ascii_lowercase().contains(&needle)
            })
        })
    }

    /// Indices into `grouping.groups` of the groups that [`Analysis::group_matches`] `needle`.
    pub fn filter_groups(&self, grouping: &Grouping, needle: &str) -> Vec<usize> {
        grouping.iter().enumerate().filter(|(_, g)| self.group_matches(g, needle)).map(|(i, _)| i).collect()
    }

    /// Memory held by the analysis' core tables, in bytes (lifetimes, sites, checkpoints,
    /// stacks), for benchmarks.
    pub fn index_bytes(&self) -> u64 {
        (self.store.heap_bytes() + self.index.heap_bytes() + self.stacks.len() * 16) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn analysis_can_be_shared_between_threads() {
        assert_send_sync::<Analysis>();
    }
}
