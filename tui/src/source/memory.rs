//! [`MemorySource`]: a [`DataSource`] over allocations held in memory, answering each query by
//! a plain scan. It is the reference the browser's tests run on, and small enough to read as a
//! specification of what each query returns.

use std::collections::{BTreeMap, HashMap};

use super::{
    AllocationPage, AllocationRow, DataSource, FrameInfo, GroupDetails, GroupKey, GroupQuery, GroupRow,
    Grouping, HistoryBuilder, Mark, ResidentMemory, ResidentSample, Selection, SizeBucket, SortKey, StackKey,
    StackVerdict, Summary, ThreadShare, Totals,
};

/// One allocation's lifetime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryAllocation {
    pub address: u64,
    pub size: u64,
    pub alloc_ns: u64,
    /// `None`: never freed.
    pub free_ns: Option<u64>,
    pub tid: u32,
    /// Index into the source's stacks.
    pub stack: usize,
}

/// A data source over explicit lifetimes and stacks.
#[derive(Clone, Debug)]
pub struct MemorySource {
    summary: Summary,
    stacks: Vec<Vec<FrameInfo>>,
    allocations: Vec<MemoryAllocation>,
    /// Whether each allocation is temporary: freed no later than its thread's next allocation.
    temporary: Vec<bool>,
    thread_names: HashMap<u32, String>,
    /// Distinct innermost function names, sorted; a function group's key is its index here.
    functions: Vec<String>,
    /// Resident set size samples (none unless given with [`MemorySource::with_resident`]).
    resident: ResidentMemory,
}

impl MemorySource {
    /// Builds a source; the summary's peak, totals and event count are computed from
    /// `allocations`. A stack index out of range is treated as an empty stack.
    pub fn new(
        title: &str,
        duration_ns: u64,
        stacks: Vec<Vec<FrameInfo>>,
        allocations: Vec<MemoryAllocation>,
        marks: Vec<Mark>,
        thread_names: HashMap<u32, String>,
    ) -> Self {
        let mut functions: Vec<String> = stacks.iter().map(|s| innermost_function(s)).collect();
        functions.sort();
        functions.dedup();
        let temporary = temporary_allocations(&allocations);
        let mut source = MemorySource {
            summary: Summary::default(),
            stacks,
            allocations,
            temporary,
            thread_names,
            functions,
            resident: ResidentMemory::default(),
        };
        let (peak_at_ns, peak) = source.peak();
        let mut marks = marks;
        marks.sort_by_key(|m| m.at_ns);
        source.summary = Summary {
            title: title.to_string(),
            pid: 0,
            duration_ns,
            events: source.allocations.iter().map(|a| 1 + u64::from(a.free_ns.is_some())).sum(),
            peak_at_ns,
            peak,
            at_end: source.totals_at(duration_ns, Selection::Outstanding),
            marks,
            complete: true,
        };
        source
    }

    /// The source with the process's resident set size sampled as `samples` (in any order).
    pub fn with_resident(mut self, samples: Vec<ResidentSample>) -> Self {
        self.resident = ResidentMemory::new(samples);
        self
    }

    fn frames(&self, stack: usize) -> &[FrameInfo] {
        self.stacks.get(stack).map(Vec::as_slice).unwrap_or(&[])
    }

    /// (time, +/- bytes, +/- blocks) changes in time order; frees sort before allocations at
    /// the same time, matching "outstanding at T" (allocated at or before T, freed after T).
    fn changes(&self) -> Vec<(u64, i128, i64)> {
        let mut changes = Vec::with_capacity(self.allocations.len() * 2);
        for a in &self.allocations {
            changes.push((a.alloc_ns, i128::from(a.size), 1));
            if let Some(f) = a.free_ns {
                changes.push((f, -i128::from(a.size), -1));
            }
        }
        changes.sort_by_key(|&(t, d, _)| (t, d >= 0));
        changes
    }

    fn peak(&self) -> (u64, Totals) {
        let (mut bytes, mut blocks) = (0i128, 0i64);
        let mut best = (0, Totals::default());
        for (t, d, b) in self.changes() {
            bytes += d;
            blocks += b;
            if bytes > i128::from(best.1.bytes) {
                best = (t, Totals { bytes: bytes as u64, blocks: blocks as u64 });
            }
        }
        best
    }

    fn group_of(&self, a: &MemoryAllocation, grouping: Grouping) -> GroupKey {
        match grouping {
            Grouping::Stack => GroupKey(a.stack as u64),
            Grouping::Function => {
                let name = innermost_function(self.frames(a.stack));
                GroupKey(self.functions.binary_search(&name).unwrap_or(0) as u64)
            }
            Grouping::Size => GroupKey(u64::from(size_class(a.size))),
            Grouping::Thread => GroupKey(u64::from(a.tid)),
        }
    }

    fn label_of(&self, key: GroupKey, grouping: Grouping, sample: &MemoryAllocation) -> String {
        match grouping {
            Grouping::Stack => innermost_function(self.frames(sample.stack)),
            Grouping::Function => self.functions.get(key.0 as usize).cloned().unwrap_or_default(),
            Grouping::Size => size_class_label(key.0 as u32),
            Grouping::Thread => {
                crate::format::thread(sample.tid, self.thread_names.get(&sample.tid).map(String::as_str))
            }
        }
    }

    fn matches(&self, a: &MemoryAllocation, filter: &str) -> bool {
        filter.is_empty() || self.frames(a.stack).iter().any(|f| frame_matches(f, filter))
    }

    /// The allocations `what` counts at `at_ns`.
    fn counted(&self, at_ns: u64, what: Selection) -> impl Iterator<Item = &MemoryAllocation> + '_ {
        self.allocations
            .iter()
            .zip(&self.temporary)
            .filter(move |(a, temporary)| what.counts(a.alloc_ns, a.free_ns, at_ns, **temporary))
            .map(|(a, _)| a)
    }

    fn selected<'a>(&'a self, query: &'a GroupQuery) -> impl Iterator<Item = &'a MemoryAllocation> + 'a {
        self.counted(query.at_ns, query.what).filter(move |a| self.matches(a, &query.filter))
    }
}

/// Which of `allocations` are temporary: freed no later than the next allocation of their
/// thread (in order of allocation time, then address), or freed at all when it has none.
fn temporary_allocations(allocations: &[MemoryAllocation]) -> Vec<bool> {
    let mut by_thread: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (i, a) in allocations.iter().enumerate() {
        by_thread.entry(a.tid).or_default().push(i);
    }
    let mut temporary = vec![false; allocations.len()];
    for ids in by_thread.values_mut() {
        ids.sort_by_key(|&i| (allocations[i].alloc_ns, allocations[i].address));
        for (k, &i) in ids.iter().enumerate() {
            let next_alloc = ids.get(k + 1).map(|&j| allocations[j].alloc_ns);
            temporary[i] = allocations[i].free_ns.is_some_and(|f| next_alloc.is_none_or(|n| f <= n));
        }
    }
    temporary
}

fn innermost_function(frames: &[FrameInfo]) -> String {
    frames.first().map(|f| f.function.clone()).unwrap_or_else(|| "(no stack)".to_string())
}

/// Whether `frame` contains `needle` in its function, location or module. Smart case: a needle
/// with an upper-case letter matches case-sensitively, otherwise case is ignored.
pub fn frame_matches(frame: &FrameInfo, needle: &str) -> bool {
    let fields = [Some(frame.function.as_str()), frame.location.as_deref(), frame.module.as_deref()];
    if needle.chars().any(char::is_uppercase) {
        fields.into_iter().flatten().any(|f| f.contains(needle))
    } else {
        let needle = needle.to_lowercase();
        fields.into_iter().flatten().any(|f| f.to_lowercase().contains(&needle))
    }
}

/// The power-of-two class of `size`: class k holds sizes in `[2^k, 2^(k+1))` (class 0 also 0).
pub fn size_class(size: u64) -> u32 {
    if size == 0 { 0 } else { 63 - size.leading_zeros() }
}

/// `"64 B..<128 B"`-style label of a size class, as the analyzer source labels them.
pub fn size_class_label(class: u32) -> String {
    let low = 1u64.checked_shl(class).unwrap_or(u64::MAX);
    let high = low.saturating_mul(2).saturating_sub(1);
    leakview_analyzer::report::units::size_range(low, high)
}

fn sort_rows(rows: &mut [GroupRow], sort: SortKey) {
    match sort {
        SortKey::Bytes | SortKey::Suspicion => {
            rows.sort_by(|a, b| b.totals.bytes.cmp(&a.totals.bytes).then(a.key.cmp(&b.key)))
        }
        SortKey::Blocks => rows.sort_by(|a, b| b.totals.blocks.cmp(&a.totals.blocks).then(a.key.cmp(&b.key))),
        SortKey::Newest => rows.sort_by(|a, b| b.newest_ns.cmp(&a.newest_ns).then(a.key.cmp(&b.key))),
    }
}

impl DataSource for MemorySource {
    fn summary(&self) -> &Summary {
        &self.summary
    }

    fn timeline(&self, buckets: usize, what: Selection) -> Vec<u64> {
        let mut out = vec![0u64; buckets];
        if buckets == 0 {
            return out;
        }
        let duration = self.summary.duration_ns.max(1);
        let bucket_of =
            |t: u64| ((u128::from(t) * buckets as u128 / u128::from(duration)) as usize).min(buckets - 1);
        if what != Selection::Outstanding {
            // Each block counts from one moment on: its allocation, or its free if temporary.
            for (a, &temporary) in self.allocations.iter().zip(&self.temporary) {
                if let Some(t) = what.counted_from(a.alloc_ns, a.free_ns, temporary) {
                    out[bucket_of(t)] += a.size;
                }
            }
            let mut total = 0;
            for level in &mut out {
                total += *level;
                *level = total;
            }
            return out;
        }
        let mut live = 0i128;
        let mut bucket = 0usize;
        for (t, d, _) in self.changes() {
            let b = bucket_of(t);
            // Buckets with no change keep the level reached before them.
            while bucket < b {
                bucket += 1;
                out[bucket] = out[bucket].max(live as u64);
            }
            live += d;
            out[b] = out[b].max(live as u64);
        }
        while bucket + 1 < buckets {
            bucket += 1;
            out[bucket] = out[bucket].max(live as u64);
        }
        out
    }

    fn totals_at(&self, at_ns: u64, what: Selection) -> Totals {
        self.counted(at_ns, what)
            .fold(Totals::default(), |t, a| Totals { bytes: t.bytes + a.size, blocks: t.blocks + 1 })
    }

    fn groups(&self, query: &GroupQuery) -> Vec<GroupRow> {
        let mut by_key: BTreeMap<GroupKey, GroupRow> = BTreeMap::new();
        for a in self.selected(query) {
            let key = self.group_of(a, query.grouping);
            let row = by_key.entry(key).or_insert_with(|| GroupRow {
                depth: 0,
                key,
                totals: Totals::default(),
                newest_ns: 0,
                label: self.label_of(key, query.grouping, a),
            });
            row.totals.bytes += a.size;
            row.totals.blocks += 1;
            row.newest_ns = row.newest_ns.max(a.alloc_ns);
        }
        let mut rows: Vec<GroupRow> = by_key.into_values().collect();
        sort_rows(&mut rows, query.sort);
        rows
    }

    fn group_details(&self, query: &GroupQuery, key: GroupKey) -> Option<GroupDetails> {
        let members: Vec<&MemoryAllocation> =
            self.selected(query).filter(|a| self.group_of(a, query.grouping) == key).collect();
        let first = members.first()?;
        let mut stack_bytes: BTreeMap<usize, u64> = BTreeMap::new();
        let mut histogram: BTreeMap<u32, u64> = BTreeMap::new();
        let mut threads: BTreeMap<u32, u64> = BTreeMap::new();
        let mut details = GroupDetails {
            label: self.label_of(key, query.grouping, first),
            first_alloc_ns: u64::MAX,
            ..GroupDetails::default()
        };
        for a in &members {
            details.totals.bytes += a.size;
            details.totals.blocks += 1;
            details.first_alloc_ns = details.first_alloc_ns.min(a.alloc_ns);
            details.last_alloc_ns = details.last_alloc_ns.max(a.alloc_ns);
            *stack_bytes.entry(a.stack).or_default() += a.size;
            *histogram.entry(size_class(a.size)).or_default() += 1;
            *threads.entry(a.tid).or_default() += 1;
        }
        let heaviest = stack_bytes.iter().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0))).map(|(s, _)| *s);
        details.stacks = stack_bytes.len() as u64;
        details.frames = heaviest.map(|s| self.frames(s).to_vec()).unwrap_or_default();
        details.histogram =
            histogram.into_iter().map(|(c, blocks)| SizeBucket { min_size: 1u64 << c, blocks }).collect();
        let mut threads: Vec<ThreadShare> = threads
            .into_iter()
            .map(|(tid, blocks)| ThreadShare { tid, name: self.thread_names.get(&tid).cloned(), blocks })
            .collect();
        threads.sort_by(|a, b| b.blocks.cmp(&a.blocks).then(a.tid.cmp(&b.tid)));
        details.threads = threads;
        // Every block of the group on the group's stacks over the whole trace, whatever T is.
        let mut history = HistoryBuilder::new(self.summary.duration_ns);
        let stacks: Vec<usize> = stack_bytes.keys().copied().collect();
        let in_group =
            |a: &&MemoryAllocation| stacks.contains(&a.stack) && self.group_of(a, query.grouping) == key;
        for a in self.allocations.iter().filter(in_group) {
            history.add(a.alloc_ns, a.free_ns, a.size);
        }
        details.history_at = history.point_at(query.at_ns);
        details.history = history.finish();
        Some(details)
    }

    fn allocations(&self, query: &GroupQuery, key: GroupKey, offset: usize, limit: usize) -> AllocationPage {
        let mut members: Vec<&MemoryAllocation> =
            self.selected(query).filter(|a| self.group_of(a, query.grouping) == key).collect();
        members.sort_by_key(|a| super::allocation_order(query.sort, a.size, a.alloc_ns, a.address));
        AllocationPage {
            total: members.len() as u64,
            rows: members
                .into_iter()
                .skip(offset)
                .take(limit)
                .map(|a| AllocationRow {
                    address: a.address,
                    size: a.size,
                    at_ns: a.alloc_ns,
                    tid: a.tid,
                    stack: StackKey(a.stack as u64),
                })
                .collect(),
        }
    }

    fn stack_frames(&self, stack: StackKey) -> Vec<FrameInfo> {
        self.frames(stack.0 as usize).to_vec()
    }

    fn thread_name(&self, tid: u32) -> Option<String> {
        self.thread_names.get(&tid).cloned()
    }

    fn suspects(&self, at_ns: u64) -> Option<Vec<StackVerdict>> {
        Some(super::memory_suspects::rank(&self.allocations, at_ns))
    }

    fn resident(&self) -> Option<&ResidentMemory> {
        (!self.resident.is_empty()).then_some(&self.resident)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(name: &str) -> FrameInfo {
        FrameInfo {
            function: name.to_string(),
            location: Some(format!("{name}.c:1")),
            module: Some("prog".to_string()),
            inlined: false,
        }
    }

    fn alloc(address: u64, size: u64, alloc_ns: u64, free_ns: Option<u64>, stack: usize) -> MemoryAllocation {
        MemoryAllocation { address, size, alloc_ns, free_ns, tid: 1, stack }
    }

    fn source() -> MemorySource {
        MemorySource::new(
            "prog",
            100,
            vec![vec![frame("leak"), frame("main")], vec![frame("cache"), frame("main")]],
            vec![
                alloc(0x10, 100, 10, None, 0),
                alloc(0x20, 50, 20, Some(60), 1),
                alloc(0x30, 30, 30, Some(40), 0),
            ],
            vec![],
            HashMap::new(),
        )
    }

    #[test]
    fn outstanding_excludes_blocks_freed_at_or_before_t() {
        let s = source();
        let outstanding = |t| s.totals_at(t, Selection::Outstanding);
        assert_eq!(outstanding(35), Totals { bytes: 180, blocks: 3 });
        assert_eq!(outstanding(40), Totals { bytes: 150, blocks: 2 });
        assert_eq!(outstanding(100), Totals { bytes: 100, blocks: 1 });
        assert_eq!(s.summary().peak, Totals { bytes: 180, blocks: 3 });
        assert_eq!(s.summary().peak_at_ns, 30);
    }

    #[test]
    fn allocated_counts_every_block_by_t_and_temporary_those_freed_before_the_next_allocation() {
        let s = source();
        let at = |t, what| s.totals_at(t, what);
        assert_eq!(at(25, Selection::Allocated), Totals { bytes: 150, blocks: 2 });
        assert_eq!(at(100, Selection::Allocated), Totals { bytes: 180, blocks: 3 });
        // 0x20 was freed after its thread allocated 0x30; 0x30, its last block, was freed.
        assert_eq!(at(35, Selection::Temporary), Totals::default(), "0x30 is freed at 40");
        assert_eq!(at(40, Selection::Temporary), Totals { bytes: 30, blocks: 1 });
        let q = GroupQuery { at_ns: 100, what: Selection::Allocated, ..GroupQuery::default() };
        let rows: Vec<(String, Totals)> = s.groups(&q).into_iter().map(|r| (r.label, r.totals)).collect();
        assert_eq!(
            rows,
            [
                ("leak".to_string(), Totals { bytes: 130, blocks: 2 }),
                ("cache".into(), Totals { bytes: 50, blocks: 1 })
            ]
        );
        let temporary = GroupQuery { what: Selection::Temporary, ..q };
        let rows = s.groups(&temporary);
        assert_eq!((rows.len(), rows[0].label.as_str(), rows[0].totals.blocks), (1, "leak", 1));
        let page = s.allocations(&temporary, rows[0].key, 0, 10);
        assert_eq!(page.rows.iter().map(|r| r.address).collect::<Vec<_>>(), [0x30]);
    }

    #[test]
    fn timeline_keeps_the_highest_level_per_bucket() {
        let s = source();
        let line = s.timeline(10, Selection::Outstanding);
        assert_eq!(line.len(), 10);
        assert_eq!(line[0], 0);
        assert_eq!(line[3], 180);
        assert_eq!(line[9], 100);
    }

    #[test]
    fn allocated_and_temporary_timelines_count_bytes_so_far() {
        let s = source();
        // Ten slices of 10 ns: allocations at 10, 20 and 30; the temporary 0x30 freed at 40.
        assert_eq!(s.timeline(10, Selection::Allocated), [0, 100, 150, 180, 180, 180, 180, 180, 180, 180]);
        assert_eq!(s.timeline(10, Selection::Temporary), [0, 0, 0, 0, 30, 30, 30, 30, 30, 30]);
        assert!(s.timeline(0, Selection::Allocated).is_empty());
    }

    #[test]
    fn groups_rank_and_filter() {
        let s = source();
        let q = GroupQuery { at_ns: 35, ..GroupQuery::default() };
        let rows = s.groups(&q);
        assert_eq!(rows.iter().map(|r| r.label.as_str()).collect::<Vec<_>>(), ["leak", "cache"]);
        assert_eq!(rows[0].totals, Totals { bytes: 130, blocks: 2 });
        let q = GroupQuery { filter: "CACHE".into(), ..q };
        assert!(s.groups(&q).is_empty(), "upper case in the filter matches case-sensitively");
        let q = GroupQuery { filter: "cache".into(), ..q };
        assert_eq!(s.groups(&q).len(), 1);
    }

    #[test]
    fn thread_groups_hold_each_threads_blocks_across_stacks() {
        let mut allocations = vec![
            alloc(0x10, 100, 10, None, 0),
            alloc(0x20, 50, 20, None, 1),
            alloc(0x30, 30, 30, None, 0),
            alloc(0x40, 500, 40, Some(60), 1),
        ];
        allocations[1].tid = 7;
        allocations[2].tid = 7;
        allocations[3].tid = 7;
        let s = MemorySource::new(
            "prog",
            100,
            vec![vec![frame("leak"), frame("main")], vec![frame("cache"), frame("main")]],
            allocations,
            vec![],
            HashMap::from([(7, "worker-0".to_string())]),
        );
        let q = GroupQuery { at_ns: 100, grouping: Grouping::Thread, ..GroupQuery::default() };
        let rows: Vec<(GroupKey, String, Totals)> =
            s.groups(&q).into_iter().map(|r| (r.key, r.label, r.totals)).collect();
        assert_eq!(
            rows,
            [
                (GroupKey(1), "thread 1".to_string(), Totals { bytes: 100, blocks: 1 }),
                (GroupKey(7), "worker-0 (7)".to_string(), Totals { bytes: 80, blocks: 2 }),
            ]
        );
        let details = s.group_details(&q, GroupKey(7)).expect("the worker has blocks");
        assert_eq!((details.label.as_str(), details.stacks), ("worker-0 (7)", 2));
        assert_eq!(details.threads, [ThreadShare { tid: 7, name: Some("worker-0".into()), blocks: 2 }]);
        let page = s.allocations(&q, GroupKey(7), 0, 10);
        assert_eq!(page.rows.iter().map(|r| r.address).collect::<Vec<_>>(), [0x20, 0x30]);
        let at_50 = GroupQuery { at_ns: 50, ..q.clone() };
        assert_eq!(s.groups(&at_50)[0].label, "worker-0 (7)", "its 500 bytes are outstanding at 50");
        let filtered = GroupQuery { filter: "cache".into(), ..q };
        let rows = s.groups(&filtered);
        assert_eq!((rows.len(), rows[0].totals), (1, Totals { bytes: 50, blocks: 1 }), "{rows:?}");
    }

    #[test]
    fn size_classes_are_powers_of_two() {
        assert_eq!(size_class(0), 0);
        assert_eq!(size_class(1), 0);
        assert_eq!(size_class(64), 6);
        assert_eq!(size_class(127), 6);
        assert_eq!(size_class(128), 7);
    }
}
