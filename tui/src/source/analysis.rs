//! [`AnalysisSource`]: the browser's data source over the analyzer's [`Analysis`] of a trace.
//! The grouping of the moment looked at is kept, so the list, the details and the allocation
//! pages of one moment share one pass over the outstanding blocks.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use leakview_analyzer as analyzer;
use leakview_analyzer::{Analysis, GroupBy, LoadOptions, SortBy, StackId};

use super::{
    AllocationPage, AllocationRow, DataSource, FrameInfo, GroupDetails, GroupKey, GroupQuery, GroupRow,
    Grouping, Mark, SizeBucket, SortKey, StackKey, Summary, ThreadShare, Totals,
};
use crate::format;
use crate::runner::ProgressFn;
use crate::view::loading::LoadProgress;

/// The grouping of one moment, and the rows of one query over it.
#[derive(Default)]
struct Cache {
    grouping_for: Option<(u64, Grouping)>,
    grouping: Option<Arc<analyzer::Grouping>>,
    /// The query `rows` answer and the indices into `grouping.groups` they list, in order.
    rows_for: Option<GroupQuery>,
    rows: Arc<Vec<usize>>,
}

/// Function names seen, so a function group has a numeric [`GroupKey`].
#[derive(Default)]
struct FunctionNames {
    ids: HashMap<Arc<str>, u64>,
    names: Vec<Arc<str>>,
}

impl FunctionNames {
    fn key(&mut self, name: &Arc<str>) -> u64 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.names.len() as u64;
        self.names.push(name.clone());
        self.ids.insert(name.clone(), id);
        id
    }
}

/// A [`DataSource`] over an analyzed trace.
pub struct AnalysisSource {
    analysis: Analysis,
    summary: Summary,
    cache: Mutex<Cache>,
    functions: Mutex<FunctionNames>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn group_by(grouping: Grouping) -> GroupBy {
    match grouping {
        Grouping::Stack => GroupBy::Stack,
        Grouping::Function => GroupBy::Function,
        Grouping::Size => GroupBy::SizeClass,
    }
}

fn sort_by(sort: SortKey) -> SortBy {
    match sort {
        SortKey::Bytes => SortBy::Bytes,
        SortKey::Blocks => SortBy::Blocks,
        SortKey::Newest => SortBy::Newest,
    }
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
        module: frame.module.as_deref().map(|m| short_path(m).rsplit('/').next().unwrap_or(m).to_string()),
        inlined: frame.inlined,
    }
}

fn size_class_label(class: u8) -> String {
    let (low, high) = analyzer::size_class_bounds(class);
    if low == high {
        format::bytes(low)
    } else {
        format!("{}..{}", format::bytes(low), format::bytes(high.saturating_add(1)))
    }
}

impl AnalysisSource {
    /// Loads the trace at `path`, reporting progress to `progress`.
    pub fn open(path: &Path, progress: ProgressFn<'_>) -> Result<Self, analyzer::LoadError> {
        let reporter = LoadReporter::new(progress);
        let analysis = Analysis::open(path, &LoadOptions::default(), &reporter)?;
        Ok(Self::new(analysis))
    }

    pub fn new(analysis: Analysis) -> Self {
        let s = analysis.summary();
        let title = if !s.command.is_empty() {
            s.command.join(" ")
        } else if !s.executable.is_empty() {
            s.executable.clone()
        } else {
            s.path.display().to_string()
        };
        let marks = analysis
            .marks()
            .iter()
            .map(|m| Mark {
                at_ns: m.at_ns,
                label: if m.occurrence > 1 {
                    format!("{}#{}", m.label, m.occurrence)
                } else {
                    m.label.clone()
                },
            })
            .collect();
        let summary = Summary {
            title,
            pid: s.pid,
            duration_ns: s.duration_ns,
            events: s.events,
            peak_at_ns: s.totals.peak_at_ns,
            peak: Totals { bytes: s.totals.peak_bytes, blocks: s.totals.peak_blocks },
            at_end: Totals { bytes: s.outstanding_at_end.bytes, blocks: s.outstanding_at_end.blocks },
            marks,
            complete: s.complete,
        };
        AnalysisSource {
            analysis,
            summary,
            cache: Mutex::new(Cache::default()),
            functions: Mutex::new(FunctionNames::default()),
        }
    }

    pub fn analysis(&self) -> &Analysis {
        &self.analysis
    }

    /// The grouping and listed rows for `query`, computed if the cache holds another query.
    fn rows(&self, query: &GroupQuery) -> (Arc<analyzer::Grouping>, Arc<Vec<usize>>) {
        let mut cache = lock(&self.cache);
        let moment = (query.at_ns, query.grouping);
        let grouping = match (&cache.grouping_for, &cache.grouping) {
            (Some(m), Some(g)) if *m == moment => g.clone(),
            _ => {
                let snapshot = self.analysis.outstanding_at(query.at_ns);
                let grouping = Arc::new(self.analysis.group(&snapshot, group_by(query.grouping)));
                cache.grouping_for = Some(moment);
                cache.grouping = Some(grouping.clone());
                cache.rows_for = None;
                grouping
            }
        };
        if cache.rows_for.as_ref() == Some(query) {
            return (grouping, cache.rows.clone());
        }
        let mut order: Vec<usize> = if query.filter.is_empty() {
            (0..grouping.groups.len()).collect()
        } else {
            self.analysis.filter_groups(&grouping, &query.filter)
        };
        let by = sort_by(query.sort);
        if by != SortBy::Bytes {
            // The grouping is ranked by bytes; other orders sort the indices the same way the
            // analyzer would (ties by bytes, then blocks, then key).
            order.sort_by(|&a, &b| {
                let (a, b) = (&grouping.groups[a], &grouping.groups[b]);
                let primary = match by {
                    SortBy::Blocks => b.blocks.cmp(&a.blocks),
                    _ => b.last_alloc_ns.cmp(&a.last_alloc_ns),
                };
                primary
                    .then(b.bytes.cmp(&a.bytes))
                    .then(b.blocks.cmp(&a.blocks))
                    .then_with(|| a.key.cmp(&b.key))
            });
        }
        let rows = Arc::new(order);
        cache.rows_for = Some(query.clone());
        cache.rows = rows.clone();
        (grouping, rows)
    }

    fn key_of(&self, key: &analyzer::GroupKey) -> GroupKey {
        GroupKey(match key {
            analyzer::GroupKey::Stack(s) => u64::from(s.0),
            analyzer::GroupKey::Function(name) => lock(&self.functions).key(name),
            analyzer::GroupKey::Size(size) => *size,
            analyzer::GroupKey::SizeClass(class) => u64::from(*class),
            analyzer::GroupKey::Thread(t) => u64::from(t.0),
        })
    }

    fn find<'g>(&self, grouping: &'g analyzer::Grouping, key: GroupKey) -> Option<&'g analyzer::Group> {
        let function = match grouping.by {
            GroupBy::Function => Some(lock(&self.functions).names.get(key.0 as usize).cloned()?),
            _ => None,
        };
        grouping.groups.iter().find(|g| match (&g.key, &function) {
            (analyzer::GroupKey::Function(name), Some(wanted)) => name == wanted,
            (analyzer::GroupKey::Stack(s), None) => u64::from(s.0) == key.0,
            (analyzer::GroupKey::SizeClass(c), None) => u64::from(*c) == key.0,
            (analyzer::GroupKey::Size(s), None) => *s == key.0,
            (analyzer::GroupKey::Thread(t), None) => u64::from(t.0) == key.0,
            _ => false,
        })
    }

    fn label(&self, group: &analyzer::Group) -> String {
        match &group.key {
            analyzer::GroupKey::Stack(s) => self
                .analysis
                .stack_frames(*s)
                .first()
                .map(|f| f.display_name())
                .unwrap_or_else(|| "(no stack)".to_string()),
            analyzer::GroupKey::Function(name) => name.to_string(),
            analyzer::GroupKey::Size(size) => format::bytes(*size),
            analyzer::GroupKey::SizeClass(class) => size_class_label(*class),
            analyzer::GroupKey::Thread(t) => {
                self.analysis.thread(*t).map(|t| t.label()).unwrap_or_else(|| t.0.to_string())
            }
        }
    }

    fn tid_of(&self, thread: analyzer::ThreadIndex) -> u32 {
        self.analysis.thread(thread).map(|t| t.tid).unwrap_or(thread.0)
    }
}

impl DataSource for AnalysisSource {
    fn summary(&self) -> &Summary {
        &self.summary
    }

    fn timeline(&self, buckets: usize) -> Vec<u64> {
        let points = self.analysis.timeline().downsample(buckets);
        if points.is_empty() {
            return vec![0; buckets];
        }
        // Fewer points than buckets (a short trace): each bucket shows the point covering it.
        (0..buckets).map(|i| points[i * points.len() / buckets].max_live_bytes).collect()
    }

    fn totals_at(&self, at_ns: u64) -> Totals {
        let live = self.analysis.live_at(at_ns);
        Totals { bytes: live.bytes, blocks: live.blocks }
    }

    fn groups(&self, query: &GroupQuery) -> Vec<GroupRow> {
        let (grouping, rows) = self.rows(query);
        let stacks: Vec<StackId> = rows
            .iter()
            .filter_map(|&i| match grouping.groups[i].key {
                analyzer::GroupKey::Stack(s) => Some(s),
                _ => None,
            })
            .collect();
        // Symbolizing in bulk is much faster than stack by stack.
        self.analysis.prepare_symbols(&stacks, &analyzer::NoProgress);
        rows.iter()
            .map(|&i| {
                let g = &grouping.groups[i];
                GroupRow {
                    key: self.key_of(&g.key),
                    totals: Totals { bytes: g.bytes, blocks: g.blocks },
                    newest_ns: g.last_alloc_ns,
                    label: self.label(g),
                }
            })
            .collect()
    }

    fn group_details(&self, query: &GroupQuery, key: GroupKey) -> Option<GroupDetails> {
        let (grouping, _) = self.rows(query);
        let group = self.find(&grouping, key)?;
        let mut histogram: HashMap<u32, u64> = HashMap::new();
        let mut threads: HashMap<u32, u64> = HashMap::new();
        for id in grouping.block_ids(group) {
            if let Some(block) = self.analysis.block(id) {
                *histogram.entry(super::size_class(block.size)).or_default() += 1;
                *threads.entry(self.tid_of(block.thread)).or_default() += 1;
            }
        }
        let mut histogram: Vec<SizeBucket> = histogram
            .into_iter()
            .map(|(class, blocks)| SizeBucket {
                min_size: if class == 0 { 0 } else { 1u64 << class },
                blocks,
            })
            .collect();
        histogram.sort_by_key(|b| b.min_size);
        let mut threads: Vec<ThreadShare> = threads
            .into_iter()
            .map(|(tid, blocks)| ThreadShare { tid, name: self.thread_name(tid), blocks })
            .collect();
        threads.sort_by(|a, b| b.blocks.cmp(&a.blocks).then(a.tid.cmp(&b.tid)));
        Some(GroupDetails {
            label: self.label(group),
            totals: Totals { bytes: group.bytes, blocks: group.blocks },
            stacks: group.stacks.len() as u64,
            frames: group
                .stacks
                .first()
                .map(|&s| self.analysis.stack_frames(s).iter().map(frame_info).collect())
                .unwrap_or_default(),
            histogram,
            first_alloc_ns: group.first_alloc_ns,
            last_alloc_ns: group.last_alloc_ns,
            threads,
        })
    }

    fn allocations(&self, query: &GroupQuery, key: GroupKey, offset: usize, limit: usize) -> AllocationPage {
        let (grouping, _) = self.rows(query);
        let Some(group) = self.find(&grouping, key) else { return AllocationPage::default() };
        let ids = grouping.block_ids(group);
        AllocationPage {
            total: ids.len() as u64,
            rows: ids
                .iter()
                .skip(offset)
                .take(limit)
                .filter_map(|&id| self.analysis.block(id))
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
        self.analysis.stack_frames(StackId(id)).iter().map(frame_info).collect()
    }

    fn thread_name(&self, tid: u32) -> Option<String> {
        self.analysis.threads().iter().find(|t| t.tid == tid).and_then(|t| t.name.clone())
    }
}

/// Turns the analyzer's progress reports into [`LoadProgress`] for the loading screen, sending
/// one report per percent of each stage at most.
struct LoadReporter<'a> {
    report: ProgressFn<'a>,
    stage: Mutex<(&'static str, u64)>,
    done: AtomicU64,
}

impl<'a> LoadReporter<'a> {
    fn new(report: ProgressFn<'a>) -> Self {
        LoadReporter { report, stage: Mutex::new(("opening", 0)), done: AtomicU64::new(0) }
    }
}

impl analyzer::Progress for LoadReporter<'_> {
    fn start(&self, stage: analyzer::Stage, total: u64) {
        *lock(&self.stage) = (stage.name(), total);
        self.done.store(0, Ordering::Relaxed);
        (self.report)(LoadProgress { stage: stage.name().to_string(), done: 0, total });
    }

    fn advance(&self, units: u64) {
        let before = self.done.fetch_add(units, Ordering::Relaxed);
        let (name, total) = *lock(&self.stage);
        let percent = |n: u64| if total == 0 { 0 } else { u128::from(n) * 100 / u128::from(total) };
        if percent(before) != percent(before + units) {
            (self.report)(LoadProgress { stage: name.to_string(), done: before + units, total });
        }
    }
}
