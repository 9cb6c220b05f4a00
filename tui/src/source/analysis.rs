//! [`AnalysisSource`]: the browser's data source over the analyzer's [`Analysis`] of a trace.
//!
//! Scrubbing asks "what is outstanding at T, grouped" many times a second. Regrouping every
//! outstanding block at each step costs time proportional to the live heap (too slow for tens of
//! millions of events), so the source keeps per-stack aggregates for the current T and moves
//! them with the events between two moments ([`super::scrub`]); so it does for the other
//! selections a query may ask for (every block allocated by T, or the temporary ones).
//! Function, size and thread groups are rolled up from those per-stack aggregates with the
//! analyzer's rules (a block counts once for every function on its trimmed stack; power-of-two
//! size classes; the allocating thread). Only the details of size and thread groups, their
//! newest allocations and the allocation lists of an opened group walk the analyzer's snapshot
//! of the moment.
//!
//! A group's history (its outstanding bytes over the whole trace) is built from the blocks of
//! its stacks (of its size class or thread, for those groups) when its details are first asked
//! for, and kept while the group's stacks stay the same; stacks with many blocks keep their own
//! history for stack and function groups.
//!
//! Grouped by stack, stacks that read the same once symbolized and trimmed (two return
//! addresses on one source line; see [`analyzer::ShownStackId`]) are one row, as in `leakview
//! report`: when a stack's symbols are first known, it is mapped to a canonical dense stack
//! (the first of its look seen), and rows sum the per-stack aggregates of the stacks of one
//! canonical stack. The row's key is the canonical stack's id.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use leakview_analyzer as analyzer;
use leakview_analyzer::{
    AllocWindow, Analysis, Block, IntMap, IntSet, LoadOptions, Selection, ShownStackId, StackId, size_class,
};

use super::alike;
use super::scrub::{Agg, CLASS_KEY_BITS, Live, ScrubIndex, THREAD_KEY_BITS};
use super::{
    AllocationPage, AllocationRow, DataSource, FrameInfo, GroupDetails, GroupKey, GroupQuery, GroupRow,
    Grouping, HistoryBuilder, Mark, ResidentMemory, SizeBucket, SortKey, StackKey, StackVerdict, Summary,
    ThreadShare, Totals,
};
use crate::format;
use crate::runner::ProgressFn;
use crate::view::loading::LoadProgress;

/// Per-stack facts computed once, when a stack is first counted.
#[derive(Clone)]
struct StackFacts {
    /// Display name of the top (trimmed) frame.
    label: String,
    /// Function ids on the trimmed stack, each once.
    functions: Box<[u32]>,
    /// The top frame's source file (its name only) and line, if known.
    place: Option<String>,
}

/// What the source has computed for the moment and the filter looked at last.
#[derive(Default)]
struct Scrub {
    live: Live,
    facts: Vec<Option<StackFacts>>,
    /// Each dense stack's canonical dense stack: the first seen of those that read the same
    /// ([`NO_CANONICAL`] until its symbols are known).
    canonical: Vec<u32>,
    /// The canonical dense stack of each look.
    canonical_of: HashMap<ShownStackId, u32>,
    functions: alike::FunctionIds,
    /// Which stacks match `filter` (computed lazily per stack).
    filter: String,
    matches: Vec<Option<bool>>,
    /// The opened group's selected block ids, for the query and group they were listed for.
    members_for: Option<(GroupQuery, GroupKey)>,
    members: Arc<Vec<u32>>,
    /// The history of the group whose details were shown last.
    last_history: Option<GroupHistory>,
    /// Histories of stacks with many blocks, kept once built.
    stack_histories: IntMap<u32, Arc<Vec<u64>>>,
}

/// A group's history, with the group and its stacks it was built for.
struct GroupHistory {
    group: (Grouping, GroupKey),
    stacks: Vec<u32>,
    levels: Arc<Vec<u64>>,
}

/// Stacks with at least this many blocks keep their history once built: a group's history is
/// the sum of its stacks', and walking these again for each group they are in would take a
/// noticeable moment.
const KEPT_HISTORY_BLOCKS: usize = 4096;

/// A [`DataSource`] over an analyzed trace.
pub struct AnalysisSource {
    analysis: Analysis,
    summary: Summary,
    index: ScrubIndex,
    scrub: Mutex<Scrub>,
}

/// A stack whose canonical stack is not known yet.
const NO_CANONICAL: u32 = u32::MAX;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The last two components of a source path (`src/leaky.c`), enough to recognise it in a
/// narrow pane.
fn short_path(path: &str) -> String {
    let parts: Vec<&str> = path.rsplit('/').take(2).collect();
    parts.into_iter().rev().collect::<Vec<_>>().join("/")
}

/// A frame as the browser shows it.
pub fn frame_info(frame: &analyzer::Frame) -> FrameInfo {
    FrameInfo {
        function: frame.display_name(),
        location: frame.file.as_deref().map(|file| match frame.line {
            Some(line) => format!("{}:{line}", short_path(file)),
            None => short_path(file),
        }),
        module: frame.module.as_deref().map(|m| m.rsplit('/').next().unwrap_or(m).to_string()),
        inlined: frame.inlined,
    }
}

fn size_class_label(class: u8) -> String {
    let (low, high) = analyzer::size_class_bounds(class);
    // As `report --group-by size-class` shows them.
    analyzer::report::units::size_range(low, high)
}

impl AnalysisSource {
    /// Loads the trace at `path`, reporting progress to `progress`.
    pub fn open(path: &Path, progress: ProgressFn<'_>) -> Result<Self, analyzer::LoadError> {
        let reporter = LoadReporter::new(progress, "");
        let analysis = Analysis::open(path, &LoadOptions::default(), &reporter)?;
        progress(LoadProgress { stage: "indexing for scrubbing".into(), done: 0, total: 0 });
        Ok(Self::new(analysis))
    }

    pub fn new(analysis: Analysis) -> Self {
        let summary = summary_of(&analysis);
        let index = ScrubIndex::build(&analysis);
        let scrub = Scrub {
            facts: vec![None; index.stack_count()],
            canonical: vec![NO_CANONICAL; index.stack_count()],
            ..Scrub::default()
        };
        AnalysisSource { analysis, summary, index, scrub: Mutex::new(scrub) }
    }

    pub fn analysis(&self) -> &Analysis {
        &self.analysis
    }

    /// Moves the aggregates to the query's moment and selection, then makes sure every counted
    /// stack has its facts (symbolizing new stacks in bulk) and, for the query's filter, its
    /// match.
    fn prepare(&self, scrub: &mut Scrub, query: &GroupQuery) {
        let filter = query.filter.as_str();
        scrub.live.move_to(&self.index, &self.analysis, query.at_ns, query.what);
        let missing: Vec<u32> = (0..self.index.stack_count() as u32)
            .filter(|&d| scrub.live.per_stack[d as usize].blocks > 0 && scrub.facts[d as usize].is_none())
            .collect();
        if !missing.is_empty() {
            // Symbolizes the new stacks in bulk.
            self.find_canonical(scrub, &missing);
            for d in missing {
                let frames = self.analysis.stack_frames(self.index.stack(d));
                let functions = scrub.functions.of_frames(&frames);
                let label =
                    frames.first().map(|f| f.display_name()).unwrap_or_else(|| "(no stack)".to_string());
                let place = frames.first().and_then(alike::place_of);
                scrub.facts[d as usize] = Some(StackFacts { label, functions: functions.into(), place });
            }
        }
        if scrub.filter != filter {
            scrub.filter = filter.to_string();
            scrub.matches = vec![None; self.index.stack_count()];
        }
        if !filter.is_empty() {
            let needle = filter.to_ascii_lowercase();
            for d in 0..self.index.stack_count() {
                if scrub.live.per_stack[d].blocks > 0 && scrub.matches[d].is_none() {
                    let frames = self.analysis.stack_frames(self.index.stack(d as u32));
                    scrub.matches[d] = Some(frames.iter().any(|f| f.contains_text(&needle)));
                }
            }
        }
    }

    /// Maps each of the dense stacks `stacks` that has no canonical stack yet to its own, the
    /// first stack seen of those that read the same (symbolizing what is missing in bulk).
    fn find_canonical(&self, scrub: &mut Scrub, stacks: &[u32]) {
        let missing: Vec<u32> = stacks
            .iter()
            .copied()
            .filter(|&d| scrub.canonical.get(d as usize) == Some(&NO_CANONICAL))
            .collect();
        if missing.is_empty() {
            return;
        }
        let ids: Vec<StackId> = missing.iter().map(|&d| self.index.stack(d)).collect();
        let shown = self.analysis.shown_stack_ids(&ids, &analyzer::NoProgress);
        for (d, look) in missing.into_iter().zip(shown) {
            scrub.canonical[d as usize] = *scrub.canonical_of.entry(look).or_insert(d);
        }
    }

    /// The canonical dense stack of dense stack `d` (itself until its symbols are known).
    fn canonical(scrub: &Scrub, d: u32) -> u32 {
        scrub.canonical.get(d as usize).copied().filter(|&c| c != NO_CANONICAL).unwrap_or(d)
    }

    /// The key of the stack group of dense stack `d`: its canonical stack's id.
    fn stack_group_key(&self, scrub: &Scrub, d: u32) -> GroupKey {
        GroupKey(u64::from(self.index.stack(Self::canonical(scrub, d)).0))
    }

    /// Counted stacks that pass the filter.
    fn shown_stacks(&self, scrub: &Scrub) -> Vec<u32> {
        (0..self.index.stack_count() as u32)
            .filter(|&d| {
                scrub.live.per_stack[d as usize].blocks > 0
                    && (scrub.filter.is_empty() || scrub.matches[d as usize] == Some(true))
            })
            .collect()
    }

    /// The shown stacks that belong to group `key` (those with blocks of the size class or the
    /// thread for a size or thread group).
    fn group_stacks(&self, scrub: &Scrub, grouping: Grouping, key: GroupKey) -> Vec<u32> {
        let shown = self.shown_stacks(scrub);
        match grouping {
            Grouping::Stack => shown.into_iter().filter(|&d| self.stack_group_key(scrub, d) == key).collect(),
            Grouping::Function => shown
                .into_iter()
                .filter(|&d| {
                    scrub.facts[d as usize]
                        .as_ref()
                        .is_some_and(|f| f.functions.iter().any(|&id| u64::from(id) == key.0))
                })
                .collect(),
            Grouping::Size => shown
                .into_iter()
                .filter(|&d| scrub.live.per_class.contains_key(&(u64::from(d) << CLASS_KEY_BITS | key.0)))
                .collect(),
            Grouping::Thread => shown
                .into_iter()
                .filter(|&d| scrub.live.per_thread.contains_key(&(u64::from(d) << THREAD_KEY_BITS | key.0)))
                .collect(),
        }
    }

    /// The time of the newest block `what` counts at `at_ns` of each group `group_of` puts the
    /// blocks of the `shown` stacks in (a walk of the analyzer's snapshot of the moment).
    fn newest_by(
        &self,
        shown: &IntSet<u32>,
        (at_ns, what): (u64, Selection),
        group_of: impl Fn(&Block) -> u64,
    ) -> IntMap<u64, u64> {
        let mut newest: IntMap<u64, u64> = IntMap::default();
        let snapshot = self.analysis.select(at_ns, &AllocWindow::all(), what);
        for b in self.analysis.blocks(&snapshot) {
            if self.index.dense(b.stack).is_some_and(|d| shown.contains(&d)) {
                let n = newest.entry(group_of(&b)).or_default();
                *n = (*n).max(b.alloc_ns);
            }
        }
        newest
    }

    /// Rows of a grouping whose counted totals are kept per (stack, key) — `per` maps
    /// `stack << key_bits | key` to them — summed over the shown stacks into one row per key.
    /// `key_of` gives a block's key, for each group's newest allocation when `newest_at` asks
    /// for them (at that moment, of that selection).
    fn rows_by_key(
        &self,
        per: &IntMap<u64, Agg>,
        key_bits: u32,
        shown: &IntSet<u32>,
        newest_at: Option<(u64, Selection)>,
        key_of: impl Fn(&Block) -> u64,
        label: impl Fn(u64) -> String,
    ) -> Vec<GroupRow> {
        let mut by_key: IntMap<u64, Agg> = IntMap::default();
        for (k, agg) in per {
            if shown.contains(&((k >> key_bits) as u32)) {
                let entry = by_key.entry(k & ((1 << key_bits) - 1)).or_default();
                entry.bytes += agg.bytes;
                entry.blocks += agg.blocks;
            }
        }
        let newest_by_key = match newest_at {
            Some(at_ns) => self.newest_by(shown, at_ns, key_of),
            None => IntMap::default(),
        };
        by_key
            .into_iter()
            .map(|(key, a)| GroupRow {
                depth: 0,
                key: GroupKey(key),
                totals: Totals { bytes: a.bytes, blocks: a.blocks },
                newest_ns: newest_by_key.get(&key).copied().unwrap_or(0),
                label: label(key),
            })
            .collect()
    }

    fn newest_of(&self, stacks: &[u32], query: &GroupQuery) -> u64 {
        stacks
            .iter()
            .filter_map(|&d| self.index.span(&self.analysis, d, query.at_ns, query.what))
            .map(|(_, last)| last)
            .max()
            .unwrap_or(0)
    }

    fn tid_of(&self, thread: analyzer::ThreadIndex) -> u32 {
        self.analysis.thread(thread).map(|t| t.tid).unwrap_or(thread.0)
    }

    /// How a thread group is named: the thread's name and tid ([`format::thread`]).
    fn thread_label(&self, thread: analyzer::ThreadIndex) -> String {
        let name = self.analysis.thread(thread).and_then(|t| t.name.as_deref());
        format::thread(self.tid_of(thread), name)
    }

    /// Blocks `query` selects that belong to group `key`, in allocation order.
    fn members(&self, scrub: &Scrub, query: &GroupQuery, key: GroupKey) -> Vec<Block> {
        let stacks: IntSet<u32> = self.group_stacks(scrub, query.grouping, key).into_iter().collect();
        let snapshot = self.analysis.select(query.at_ns, &AllocWindow::all(), query.what);
        self.analysis
            .blocks(&snapshot)
            .filter(|b| self.index.dense(b.stack).is_some_and(|d| stacks.contains(&d)))
            .filter(|b| match query.grouping {
                Grouping::Size => u64::from(size_class(b.size)) == key.0,
                Grouping::Thread => u64::from(b.thread.0) == key.0,
                Grouping::Stack | Grouping::Function => true,
            })
            .collect()
    }

    fn threads(&self, counts: IntMap<u32, u64>) -> Vec<ThreadShare> {
        let mut threads: Vec<ThreadShare> = counts
            .into_iter()
            .map(|(index, blocks)| {
                let info = self.analysis.thread(analyzer::ThreadIndex(index));
                ThreadShare {
                    tid: info.map(|t| t.tid).unwrap_or(index),
                    name: info.and_then(|t| t.name.clone()),
                    blocks,
                }
            })
            .collect();
        threads.sort_by(|a, b| b.blocks.cmp(&a.blocks).then(a.tid.cmp(&b.tid)));
        threads
    }

    fn histogram(counts: IntMap<u8, u64>) -> Vec<SizeBucket> {
        let mut histogram: Vec<SizeBucket> = counts
            .into_iter()
            .map(|(class, blocks)| SizeBucket { min_size: analyzer::size_class_bounds(class).0, blocks })
            .collect();
        histogram.sort_by_key(|b| b.min_size);
        histogram
    }

    fn frames_of(&self, stack: StackId) -> Vec<FrameInfo> {
        self.analysis.stack_frames(stack).iter().map(frame_info).collect()
    }

    /// Details of a stack or function group, from the per-stack aggregates.
    fn rolled_up_details(&self, scrub: &Scrub, query: &GroupQuery, key: GroupKey) -> Option<GroupDetails> {
        let stacks = self.group_stacks(scrub, query.grouping, key);
        if stacks.is_empty() {
            return None;
        }
        let member: IntSet<u32> = stacks.iter().copied().collect();
        let mut totals = Agg::default();
        for &d in &stacks {
            let a = scrub.live.per_stack[d as usize];
            totals.bytes += a.bytes;
            totals.blocks += a.blocks;
        }
        let heaviest = stacks.iter().copied().max_by(|&a, &b| {
            let (x, y) = (scrub.live.per_stack[a as usize], scrub.live.per_stack[b as usize]);
            x.bytes.cmp(&y.bytes).then(b.cmp(&a))
        })?;
        let mut classes: IntMap<u8, u64> = IntMap::default();
        for (k, agg) in &scrub.live.per_class {
            if member.contains(&((k >> CLASS_KEY_BITS) as u32)) {
                *classes.entry(*k as u8).or_default() += agg.blocks;
            }
        }
        let mut threads: IntMap<u32, u64> = IntMap::default();
        for (k, agg) in &scrub.live.per_thread {
            if member.contains(&((k >> THREAD_KEY_BITS) as u32)) {
                *threads.entry(*k as u32).or_default() += agg.blocks;
            }
        }
        let spans: Vec<(u64, u64)> = stacks
            .iter()
            .filter_map(|&d| self.index.span(&self.analysis, d, query.at_ns, query.what))
            .collect();
        let label = match query.grouping {
            Grouping::Function => scrub.functions.name(key.0 as u32).map(str::to_string),
            _ => scrub.facts[heaviest as usize].as_ref().map(|f| f.label.clone()),
        };
        // A stack group's stacks read the same: it is one stack, from several call sites.
        let (distinct, call_sites) = match query.grouping {
            Grouping::Stack => (1, stacks.len() as u64),
            _ => (stacks.len() as u64, 0),
        };
        // A suppression answers `leakview check`, which looks at outstanding blocks.
        let suppression = match query.grouping {
            Grouping::Stack if query.what == Selection::Outstanding => {
                analyzer::suppression_line(&self.analysis.stack_frames(self.index.stack(heaviest)))
            }
            _ => None,
        };
        Some(GroupDetails {
            label: label.unwrap_or_default(),
            totals: Totals { bytes: totals.bytes, blocks: totals.blocks },
            stacks: distinct,
            call_sites,
            suppression,
            frames: self.frames_of(self.index.stack(heaviest)),
            histogram: Self::histogram(classes),
            history: Vec::new(),
            history_at: 0,
            first_alloc_ns: spans.iter().map(|s| s.0).min().unwrap_or(0),
            last_alloc_ns: spans.iter().map(|s| s.1).max().unwrap_or(0),
            threads: self.threads(threads),
        })
    }

    /// The history of `group`, whose blocks are on dense stacks `stacks`: its bytes outstanding
    /// at each moment of a [`HistoryBuilder`] over the whole trace. A stack or function group
    /// holds every block of its stacks; a size or thread group those of its size class or
    /// thread.
    fn history_of(&self, scrub: &mut Scrub, group: (Grouping, GroupKey), stacks: &[u32]) -> Arc<Vec<u64>> {
        if let Some(last) = &scrub.last_history
            && last.group == group
            && last.stacks == stacks
        {
            return last.levels.clone();
        }
        let duration = self.summary.duration_ns;
        let mut history = HistoryBuilder::new(duration);
        let (grouping, GroupKey(key)) = group;
        for &d in stacks {
            let ids = self.index.stack_blocks(d);
            let in_group = |b: &Block| match grouping {
                Grouping::Size => u64::from(size_class(b.size)) == key,
                Grouping::Thread => u64::from(b.thread.0) == key,
                Grouping::Stack | Grouping::Function => true,
            };
            if ids.len() < KEPT_HISTORY_BLOCKS || matches!(grouping, Grouping::Size | Grouping::Thread) {
                self.add_blocks(&mut history, ids, in_group);
                continue;
            }
            let kept = scrub.stack_histories.entry(d).or_insert_with(|| {
                let mut own = HistoryBuilder::new(duration);
                self.add_blocks(&mut own, ids, in_group);
                Arc::new(own.finish())
            });
            history.add_history(kept);
        }
        let levels = Arc::new(history.finish());
        scrub.last_history = Some(GroupHistory { group, stacks: stacks.to_vec(), levels: levels.clone() });
        levels
    }

    /// Adds the blocks of `ids` that are `in_group` to `history`.
    fn add_blocks(&self, history: &mut HistoryBuilder, ids: &[u32], in_group: impl Fn(&Block) -> bool) {
        for &id in ids {
            if let Some(b) = self.analysis.block(analyzer::BlockId(id))
                && in_group(&b)
            {
                history.add(b.alloc_ns, b.free_ns, b.size);
            }
        }
    }

    /// Details of a size or thread group, from the blocks selected at the moment (the
    /// per-stack aggregates hold neither a thread's sizes nor its allocation times).
    fn walked_details(&self, scrub: &Scrub, query: &GroupQuery, key: GroupKey) -> Option<GroupDetails> {
        let blocks = self.members(scrub, query, key);
        let first = blocks.first()?;
        let mut stack_bytes: IntMap<StackId, u64> = IntMap::default();
        let mut threads: IntMap<u32, u64> = IntMap::default();
        let mut classes: IntMap<u8, u64> = IntMap::default();
        let mut totals = Agg::default();
        for b in &blocks {
            totals.bytes += b.size;
            totals.blocks += 1;
            *stack_bytes.entry(b.stack).or_default() += b.size;
            *threads.entry(b.thread.0).or_default() += 1;
            *classes.entry(size_class(b.size)).or_default() += 1;
        }
        let heaviest = stack_bytes.iter().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0))).map(|(s, _)| *s)?;
        let label = match query.grouping {
            Grouping::Thread => self.thread_label(analyzer::ThreadIndex(key.0 as u32)),
            _ => size_class_label(key.0 as u8),
        };
        Some(GroupDetails {
            label,
            totals: Totals { bytes: totals.bytes, blocks: totals.blocks },
            stacks: stack_bytes.len() as u64,
            call_sites: 0,
            suppression: None,
            frames: self.frames_of(heaviest),
            histogram: Self::histogram(classes),
            history: Vec::new(),
            history_at: 0,
            first_alloc_ns: first.alloc_ns,
            last_alloc_ns: blocks.last().map(|b| b.alloc_ns).unwrap_or(first.alloc_ns),
            threads: self.threads(threads),
        })
    }
}

/// What the browser shows about a whole trace: its title, length, peak, marks...
pub(crate) fn summary_of(analysis: &Analysis) -> Summary {
    let s = analysis.summary();
    let title = match s.program() {
        program if program.is_empty() => s.path.display().to_string(),
        program => program,
    };
    let marks = analysis
        .marks()
        .iter()
        .map(|m| Mark {
            at_ns: m.at_ns,
            label: if m.occurrence > 1 { format!("{}#{}", m.label, m.occurrence) } else { m.label.clone() },
        })
        .collect();
    Summary {
        title,
        pid: s.pid,
        duration_ns: s.duration_ns,
        events: s.events,
        peak_at_ns: s.totals.peak_at_ns,
        peak: Totals { bytes: s.totals.peak_bytes, blocks: s.totals.peak_blocks },
        at_end: Totals { bytes: s.outstanding_at_end.bytes, blocks: s.outstanding_at_end.blocks },
        marks,
        complete: s.complete,
    }
}

fn sort_rows(rows: &mut [GroupRow], sort: SortKey) {
    rows.sort_by(|a, b| {
        let primary = match sort {
            SortKey::Bytes => b.totals.bytes.cmp(&a.totals.bytes),
            SortKey::Blocks => b.totals.blocks.cmp(&a.totals.blocks),
            SortKey::Newest => b.newest_ns.cmp(&a.newest_ns),
            SortKey::Suspicion => std::cmp::Ordering::Equal,
        };
        primary
            .then(b.totals.bytes.cmp(&a.totals.bytes))
            .then(b.totals.blocks.cmp(&a.totals.blocks))
            .then(a.depth.cmp(&b.depth))
            .then(a.label.cmp(&b.label))
            .then(a.key.cmp(&b.key))
    });
}

impl AnalysisSource {
    /// Rows of stack groups (`rows[i]` of stack `stacks[i]`) whose top frames share a name get
    /// the caller, or else the place, that sets each apart (see [`alike`]).
    fn tell_alike_apart(scrub: &Scrub, stacks: &[u32], rows: &mut [GroupRow]) {
        let labels: Vec<&str> = rows.iter().map(|r| r.label.as_str()).collect();
        let facts: Vec<Option<&StackFacts>> =
            stacks.iter().map(|&d| scrub.facts[d as usize].as_ref()).collect();
        let functions: Vec<&[u32]> = facts.iter().map(|f| f.map_or(&[][..], |f| &f.functions[..])).collect();
        let places: Vec<Option<&str>> = facts.iter().map(|f| f.and_then(|f| f.place.as_deref())).collect();
        let suffixes = alike::distinguishing_callers(&labels, &functions, &places, |id| {
            scrub.functions.name(id).map(str::to_string)
        });
        for (row, suffix) in rows.iter_mut().zip(suffixes) {
            if let Some(suffix) = suffix {
                row.label.push_str(&suffix);
            }
        }
    }
}

impl DataSource for AnalysisSource {
    fn summary(&self) -> &Summary {
        &self.summary
    }

    fn timeline(&self, buckets: usize, what: Selection) -> Vec<u64> {
        self.analysis.bytes_over_time(what, buckets)
    }

    fn resident(&self) -> Option<&ResidentMemory> {
        let resident = self.analysis.resident_memory();
        (!resident.is_empty()).then_some(resident)
    }

    fn totals_at(&self, at_ns: u64, what: Selection) -> Totals {
        let mut scrub = lock(&self.scrub);
        scrub.live.move_to(&self.index, &self.analysis, at_ns, what);
        Totals { bytes: scrub.live.total.bytes, blocks: scrub.live.total.blocks }
    }

    fn groups(&self, query: &GroupQuery) -> Vec<GroupRow> {
        let mut guard = lock(&self.scrub);
        let scrub = &mut *guard;
        self.prepare(scrub, query);
        let shown = self.shown_stacks(scrub);
        let newest = query.sort == SortKey::Newest;
        let mut rows: Vec<GroupRow> = match query.grouping {
            Grouping::Stack => {
                // The shown stacks by canonical stack, in order of first appearance.
                let mut by_canonical: IntMap<u32, usize> = IntMap::default();
                let mut groups: Vec<(u32, Agg, Vec<u32>)> = Vec::new();
                for &d in &shown {
                    let canonical = Self::canonical(scrub, d);
                    let at = *by_canonical.entry(canonical).or_insert_with(|| {
                        groups.push((canonical, Agg::default(), Vec::new()));
                        groups.len() - 1
                    });
                    let (_, totals, members) = &mut groups[at];
                    let a = scrub.live.per_stack[d as usize];
                    totals.bytes += a.bytes;
                    totals.blocks += a.blocks;
                    members.push(d);
                }
                // Each row's first stack stands for them all (they read the same; the canonical
                // stack itself may not be counted now).
                let firsts: Vec<u32> = groups.iter().map(|g| g.2[0]).collect();
                let mut rows: Vec<GroupRow> = groups
                    .into_iter()
                    .map(|(canonical, a, members)| GroupRow {
                        depth: 0,
                        key: GroupKey(u64::from(self.index.stack(canonical).0)),
                        totals: Totals { bytes: a.bytes, blocks: a.blocks },
                        newest_ns: if newest { self.newest_of(&members, query) } else { 0 },
                        label: scrub.facts[members[0] as usize]
                            .as_ref()
                            .map(|f| f.label.clone())
                            .unwrap_or_default(),
                    })
                    .collect();
                Self::tell_alike_apart(scrub, &firsts, &mut rows);
                rows
            }
            Grouping::Function => {
                let mut by_function: IntMap<u32, (Agg, Vec<u32>, u32)> = IntMap::default();
                for &d in &shown {
                    let a = scrub.live.per_stack[d as usize];
                    let functions = scrub.facts[d as usize].as_ref().map(|f| &f.functions[..]).unwrap_or(&[]);
                    for (depth, &f) in functions.iter().enumerate() {
                        let entry =
                            by_function.entry(f).or_insert_with(|| (Agg::default(), Vec::new(), u32::MAX));
                        entry.0.bytes += a.bytes;
                        entry.0.blocks += a.blocks;
                        entry.1.push(d);
                        entry.2 = entry.2.min(depth as u32);
                    }
                }
                by_function
                    .into_iter()
                    .map(|(f, (a, stacks, depth))| GroupRow {
                        depth,
                        key: GroupKey(u64::from(f)),
                        totals: Totals { bytes: a.bytes, blocks: a.blocks },
                        newest_ns: if newest { self.newest_of(&stacks, query) } else { 0 },
                        label: scrub.functions.name(f).map(str::to_string).unwrap_or_default(),
                    })
                    .collect()
            }
            Grouping::Size => {
                let shown: IntSet<u32> = shown.into_iter().collect();
                self.rows_by_key(
                    &scrub.live.per_class,
                    CLASS_KEY_BITS,
                    &shown,
                    newest.then_some((query.at_ns, query.what)),
                    |b| u64::from(size_class(b.size)),
                    |class| size_class_label(class as u8),
                )
            }
            Grouping::Thread => {
                let shown: IntSet<u32> = shown.into_iter().collect();
                self.rows_by_key(
                    &scrub.live.per_thread,
                    THREAD_KEY_BITS,
                    &shown,
                    newest.then_some((query.at_ns, query.what)),
                    |b| u64::from(b.thread.0),
                    |thread| self.thread_label(analyzer::ThreadIndex(thread as u32)),
                )
            }
        };
        sort_rows(&mut rows, query.sort);
        rows
    }

    fn group_details(&self, query: &GroupQuery, key: GroupKey) -> Option<GroupDetails> {
        let mut guard = lock(&self.scrub);
        let scrub = &mut *guard;
        self.prepare(scrub, query);
        let details = match query.grouping {
            Grouping::Size | Grouping::Thread => self.walked_details(scrub, query, key),
            Grouping::Stack | Grouping::Function => self.rolled_up_details(scrub, query, key),
        }?;
        let stacks = self.group_stacks(scrub, query.grouping, key);
        let history = self.history_of(scrub, (query.grouping, key), &stacks).to_vec();
        let history_at = HistoryBuilder::new(self.summary.duration_ns).point_at(query.at_ns);
        Some(GroupDetails { history, history_at, ..details })
    }

    fn allocations(&self, query: &GroupQuery, key: GroupKey, offset: usize, limit: usize) -> AllocationPage {
        let mut guard = lock(&self.scrub);
        let scrub = &mut *guard;
        self.prepare(scrub, query);
        let wanted = (query.clone(), key);
        if scrub.members_for.as_ref() != Some(&wanted) {
            let mut members = self.members(scrub, query, key);
            members.sort_by_key(|b| super::allocation_order(query.sort, b.size, b.alloc_ns, b.address));
            scrub.members = Arc::new(members.iter().map(|b| b.id.0).collect());
            scrub.members_for = Some(wanted);
        }
        AllocationPage {
            total: scrub.members.len() as u64,
            rows: scrub
                .members
                .iter()
                .skip(offset)
                .take(limit)
                .filter_map(|&id| self.analysis.block(analyzer::BlockId(id)))
                .map(|b| AllocationRow {
                    address: b.address,
                    size: b.size,
                    at_ns: b.alloc_ns,
                    tid: self.tid_of(b.thread),
                    stack: StackKey(u64::from(b.stack.0)),
                })
                .collect(),
        }
    }

    fn stack_frames(&self, stack: StackKey) -> Vec<FrameInfo> {
        let Ok(id) = u32::try_from(stack.0) else { return Vec::new() };
        self.frames_of(StackId(id))
    }

    fn thread_name(&self, tid: u32) -> Option<String> {
        self.analysis.threads().iter().find(|t| t.tid == tid).and_then(|t| t.name.clone())
    }

    /// The verdicts keyed by stack group. The analyzer judges stacks that read the same as one
    /// suspect, on all their blocks, keyed by its heaviest stack; that stack's row (its
    /// canonical stack's key) gets the verdict. Should two suspects fall in one row, the row
    /// keeps the first in the analyzer's order.
    fn suspects(&self, at_ns: u64) -> Option<Vec<StackVerdict>> {
        let suspects = self.analysis.suspects(at_ns);
        let mut guard = lock(&self.scrub);
        let scrub = &mut *guard;
        let dense: Vec<Option<u32>> = suspects.iter().map(|s| self.index.dense(s.stack)).collect();
        self.find_canonical(scrub, &dense.iter().flatten().copied().collect::<Vec<u32>>());
        let mut judged: IntSet<GroupKey> = IntSet::default();
        Some(
            suspects
                .iter()
                .zip(dense)
                .filter_map(|(s, d)| {
                    let key = match d {
                        Some(d) => self.stack_group_key(scrub, d),
                        None => GroupKey(u64::from(s.stack.0)),
                    };
                    judged.insert(key).then(|| StackVerdict {
                        key,
                        verdict: s.verdict,
                        evidence: analyzer::suspects::evidence(s, at_ns),
                    })
                })
                .collect(),
        )
    }
}

/// Turns the analyzer's progress reports into [`LoadProgress`] for the loading screen, sending
/// one report per percent of each stage at most. Stage names get `prefix` (e.g. which of two
/// traces is loading).
pub(crate) struct LoadReporter<'a> {
    report: ProgressFn<'a>,
    prefix: &'a str,
    stage: Mutex<(&'static str, u64)>,
    done: AtomicU64,
}

impl<'a> LoadReporter<'a> {
    pub(crate) fn new(report: ProgressFn<'a>, prefix: &'a str) -> Self {
        LoadReporter { report, prefix, stage: Mutex::new(("opening", 0)), done: AtomicU64::new(0) }
    }
}

impl analyzer::Progress for LoadReporter<'_> {
    fn start(&self, stage: analyzer::Stage, total: u64) {
        *lock(&self.stage) = (stage.name(), total);
        self.done.store(0, Ordering::Relaxed);
        (self.report)(LoadProgress { stage: format!("{}{}", self.prefix, stage.name()), done: 0, total });
    }

    fn advance(&self, units: u64) {
        let before = self.done.fetch_add(units, Ordering::Relaxed);
        let (name, total) = *lock(&self.stage);
        let percent = |n: u64| if total == 0 { 0 } else { u128::from(n) * 100 / u128::from(total) };
        if percent(before) != percent(before + units) {
            (self.report)(LoadProgress {
                stage: format!("{}{name}", self.prefix),
                done: before + units,
                total,
            });
        }
    }
}
