//! Loading a trace: the replay (chunks decoded in parallel a round ahead, merged in time order,
//! each address's allocations and frees paired by its state machine, lifetimes appended in order
//! of allocation time, the time index built along), then the checkpoints' live sets. Damaged or
//! incomplete traces load as far as they can be read and are flagged, never an error or a panic.
//!
//! The replay needs the trace's time span before it starts (for the timeline) and a lower bound
//! of each chunk's timestamps (to know when every earlier event has been decoded). A trace that
//! was finished cleanly says both in its headers (start, end, each chunk's base timestamp), so
//! one pass over the chunks is enough; the decoder checks that every timestamp keeps those
//! promises. Otherwise (the program was killed, or the promises were broken) a scan pass over
//! all chunks finds the exact span first.
//!
//! Why one replay in time order rather than matching shards of addresses in parallel: the replay
//! holds only the live blocks in its address table (small and cache-resident for most programs,
//! where a sorted join by address would touch every block), it never needs the raw events of the
//! whole trace in memory (decoded chunks are dropped as soon as they are replayed, so a load
//! stays within the lifetimes' own 28 bytes plus a few megabytes), and it builds the timeline,
//! peak and checkpoints in the same walk. The parallel work — decoding, merging the threads'
//! streams — runs beside it on the other workers, and on two cores the replay keeps pace with it.
//! Measured on a 10M-event trace (two cores): the replay and the decoding take about the same
//! CPU time and together keep both cores busy, so shards replayed in parallel would add work
//! (each shard reads the whole window, and the per-moment totals must be merged back in time
//! order) without a core to run it on; a load there gets faster only by doing less.

mod decode;
mod lifecycle;
mod reorder;
mod replay;
mod scan;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use leakview_format::{RecorderKind, TraceReader};

use crate::error::LoadError;
use crate::heap_scan::{ScanFound, ScanParts};
use crate::index::{IndexBuild, IndexBuilder, TimeIndex, apply_peak};
use crate::lifetimes::LifetimeStore;
use crate::model::{EventCounts, LiveTotals, Mark, Summary, ThreadInfo, Totals};
use crate::progress::{Progress, Stage};
use crate::resident::{ResidentMemory, ResidentSample};
use crate::stacks::StackTable;
use crate::symbolize::ModuleInfo;
use crate::timeline::Timeline;

use decode::SiteInterner;
use lifecycle::Lifecycle;
use replay::{ReplayPlan, Replayed};
use scan::{ChunkScan, ModuleEvent};

/// Everything a load produces; [`crate::Analysis`] wraps it.
pub(crate) struct Loaded {
    pub summary: Summary,
    pub store: LifetimeStore,
    pub index: TimeIndex,
    pub timeline: Timeline,
    pub stacks: StackTable,
    pub threads: Vec<ThreadInfo>,
    pub marks: Vec<Mark>,
    pub modules: Vec<ModuleInfo>,
    pub resident: ResidentMemory,
    pub heap_scan: ScanFound,
}

fn check_cancel(progress: &dyn Progress) -> Result<(), LoadError> {
    if progress.cancelled() { Err(LoadError::Cancelled) } else { Ok(()) }
}

/// Most blocks a trace may hold (ids are `u32`).
const MAX_BLOCKS: u64 = u32::MAX as u64 - 1;

/// The time span the replay works in, and where each chunk's events may start.
struct Span {
    /// Monotonic time of the trace's start (every `*_ns` counts from it).
    origin: u64,
    /// Monotonic time of the trace's end.
    end: u64,
    /// A lower bound of each chunk's timestamps.
    lower_bounds: Vec<u64>,
    /// Records expected per chunk, and blocks in all (capacity hints).
    expected: Vec<usize>,
    blocks: usize,
}

/// Loads everything from an open reader.
pub(crate) fn load(reader: &TraceReader, progress: &dyn Progress) -> Result<Loaded, LoadError> {
    if let Some(span) = span_from_headers(reader)
        && let Some(loaded) = load_in(reader, span, true, progress)?
    {
        return Ok(loaded);
    }
    let span = span_from_scan(reader, progress)?;
    // A scan's span is exact, so its promises hold.
    load_in(reader, span, false, progress)?.ok_or(LoadError::Cancelled)
}

/// The span a cleanly finished trace's headers give; `None` if they do not give one.
fn span_from_headers(reader: &TraceReader) -> Option<Span> {
    let (meta, header) = (reader.metadata(), reader.header());
    let origin = meta.start_monotonic_ns;
    if !header.finished() || origin == 0 || header.end_timestamp < origin {
        return None;
    }
    let chunks = reader.chunks();
    // Every block takes at least 3 bytes: the store reserves address space for the most a trace
    // can hold (memory is used only as it fills). Records per chunk are a hint (events of real
    // traces take about 6 bytes).
    let blocks = (chunks.iter().map(|c| c.body_len() / 3).sum::<usize>()).min(MAX_BLOCKS as usize);
    let expected: Vec<usize> = chunks.iter().map(|c| c.body_len() / 4).collect();
    let lower_bounds = chunks.iter().map(|c| c.base_timestamp).collect();
    Some(Span { origin, end: header.end_timestamp, lower_bounds, expected, blocks })
}

/// The exact span, from a scan of every chunk.
fn span_from_scan(reader: &TraceReader, progress: &dyn Progress) -> Result<Span, LoadError> {
    let chunks = reader.chunks();
    progress.start(Stage::Scanning, chunks.len() as u64);
    let scans = scan::scan_all(reader, progress).ok_or(LoadError::Cancelled)?;
    progress.finish(Stage::Scanning);
    let (meta, header) = (reader.metadata(), reader.header());
    let min_ts = scans.iter().filter_map(|s| s.min_ts).min();
    let max_ts = scans.iter().filter_map(|s| s.max_ts).max();
    let origin = match min_ts {
        Some(first) if meta.start_monotonic_ns == 0 || meta.start_monotonic_ns > first => first,
        _ => meta.start_monotonic_ns,
    };
    let mut end = max_ts.unwrap_or(origin);
    if header.finished() && header.end_timestamp >= end {
        end = header.end_timestamp;
    }
    let total_blocks: u64 = scans.iter().map(|s| s.blocks).sum();
    if total_blocks > MAX_BLOCKS {
        return Err(LoadError::TooManyAllocations { path: reader.path().to_path_buf(), limit: MAX_BLOCKS });
    }
    Ok(Span {
        origin,
        end: end.max(origin),
        lower_bounds: scans.iter().map(|s| s.min_ts.unwrap_or(origin)).collect(),
        expected: scans.iter().map(|s| (s.blocks + s.releases) as usize).collect(),
        blocks: total_blocks as usize,
    })
}

/// Replays and indexes the trace in `span`; `Ok(None)` if the span's promises were broken and
/// `checked` asks for them to hold.
fn load_in(
    reader: &TraceReader,
    span: Span,
    checked: bool,
    progress: &dyn Progress,
) -> Result<Option<Loaded>, LoadError> {
    let chunks = reader.chunks();
    let meta = reader.metadata();
    let header = reader.header();
    let (origin, end) = (span.origin, span.end);
    let duration_ns = end.saturating_sub(origin);

    // Threads: one per distinct chunk tid, in tid order.
    let tids: Vec<u32> = {
        let mut t: Vec<u32> = chunks.iter().map(|c| c.tid).collect();
        t.sort_unstable();
        t.dedup();
        t
    };
    let thread_of = |tid: u32| tids.binary_search(&tid).map_or(0, |i| i as u32);
    let chunk_threads: Vec<u32> = chunks.iter().map(|c| thread_of(c.tid)).collect();

    check_cancel(progress)?;
    progress.start(Stage::Matching, chunks.len() as u64);
    let interner = SiteInterner::default();
    let store = LifetimeStore::with_capacity(span.blocks);
    // Only the preload recorder reads a clock that may swap events of different threads.
    let skew_window = if meta.recorder_kind == RecorderKind::Preload { reorder::SKEW_WINDOW_NS } else { 0 };
    let mut life = Lifecycle::new(origin, store, IndexBuilder::new(duration_ns), 1024, skew_window);
    let plan = ReplayPlan {
        reader,
        lower_bounds: &span.lower_bounds,
        chunk_threads: &chunk_threads,
        expected: &span.expected,
        times: origin..=end,
        checked,
        interner: &interner,
    };
    let Replayed { scans, promises_held } =
        replay::replay(&plan, &mut life, progress).ok_or(LoadError::Cancelled)?;
    progress.finish(Stage::Matching);
    if checked && !promises_held {
        return Ok(None);
    }
    if life.too_many {
        return Err(LoadError::TooManyAllocations { path: reader.path().to_path_buf(), limit: MAX_BLOCKS });
    }
    let (live_blocks, live_bytes) = life.live_totals();
    let Lifecycle { mut store, index, matched, unmatched, reordered, bytes_allocated, tie_runs, .. } = life;
    store.order_ties(&tie_runs);
    store.set_sites(interner.into_sites());
    store.shrink_to_fit();

    check_cancel(progress)?;
    let IndexBuild { index, timeline, peak } = index.finish(&store, progress);

    let mut counts = EventCounts::default();
    for s in &scans {
        counts.add(&s.counts);
    }
    let mut totals = Totals {
        allocations: store.len() as u64,
        frees: matched,
        unmatched_frees: unmatched,
        reordered_pairs: reordered,
        bytes_allocated,
        ..Totals::default()
    };
    apply_peak(&mut totals, peak);
    let outstanding_at_end = LiveTotals { blocks: live_blocks, bytes: live_bytes };

    let undecodable_chunks = scans.iter().filter(|s| s.undecodable).count() as u64;
    let last_event_ns = scans.iter().filter_map(|s| s.max_ts).max().map_or(0, |ts| ts.saturating_sub(origin));
    let SmallRecords { stacks, threads, marks, modules, resident, heap_scan } =
        collect_small_records(scans, &tids, origin);
    let damaged = u64::from(reader.damaged_chunks()) + u64::from(reader.missing_chunks());
    let summary = Summary {
        path: reader.path().to_path_buf(),
        pid: meta.pid,
        parent_pid: meta.parent_pid,
        executable: meta.executable.clone(),
        command: meta.argv.clone(),
        start_unix_ns: meta.start_unix_ns,
        origin_monotonic_ns: origin,
        duration_ns,
        events: counts.total(),
        event_counts: counts,
        threads: tids.len() as u64,
        modules: modules.len() as u64,
        stacks: stacks.len() as u64,
        complete: reader.is_complete() && undecodable_chunks == 0,
        finished: header.finished(),
        recording: crate::liveness::recorded_now(header, meta),
        truncated: header.truncated(),
        lost_events: header.lost_events,
        last_event_ns,
        damaged_chunks: damaged,
        undecodable_chunks,
        file_bytes: reader.file_len(),
        event_bytes: chunks.iter().map(|c| c.body_len() as u64).sum(),
        totals,
        outstanding_at_end,
    };
    Ok(Some(Loaded { summary, store, index, timeline, stacks, threads, marks, modules, resident, heap_scan }))
}

/// What a load gathers from the chunks' small records.
struct SmallRecords {
    stacks: StackTable,
    threads: Vec<ThreadInfo>,
    marks: Vec<Mark>,
    modules: Vec<ModuleInfo>,
    resident: ResidentMemory,
    heap_scan: ScanFound,
}

fn collect_small_records(scans: Vec<ChunkScan>, tids: &[u32], origin: u64) -> SmallRecords {
    let mut nodes = Vec::new();
    let mut names: BTreeMap<u32, (u64, String)> = BTreeMap::new();
    let mut raw_marks: Vec<(u64, String)> = Vec::new();
    let mut module_events: Vec<ModuleEvent> = Vec::new();
    let mut resident = Vec::new();
    let mut heap_scan = ScanParts::default();
    for s in scans {
        heap_scan.merge(s.heap_scan);
        nodes.extend(s.nodes);
        for (ts, tid, name) in s.thread_names {
            let e = names.entry(tid).or_insert((ts, name.clone()));
            if ts >= e.0 {
                *e = (ts, name);
            }
        }
        raw_marks.extend(s.marks);
        module_events.extend(s.modules);
        resident.extend(
            s.resident.iter().map(|&(ts, bytes)| ResidentSample { at_ns: ts.saturating_sub(origin), bytes }),
        );
    }
    let threads =
        tids.iter().map(|&tid| ThreadInfo { tid, name: names.get(&tid).map(|(_, n)| n.clone()) }).collect();
    raw_marks.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    let mut seen: HashMap<String, u32> = HashMap::new();
    let marks = raw_marks
        .into_iter()
        .map(|(ts, label)| {
            let n = seen.entry(label.clone()).or_insert(0);
            *n += 1;
            Mark { label, at_ns: ts.saturating_sub(origin), occurrence: *n }
        })
        .collect();
    module_events.sort_by_key(|e| match e {
        ModuleEvent::Load { ts, .. } | ModuleEvent::Unload { ts, .. } => *ts,
    });
    let mut modules: Vec<ModuleInfo> = Vec::new();
    for e in module_events {
        match e {
            ModuleEvent::Load { ts, id, base, path, build_id, segments } => modules.push(ModuleInfo {
                id,
                path: PathBuf::from(path),
                build_id,
                base,
                segments,
                loaded_ns: ts,
                unloaded_ns: None,
            }),
            ModuleEvent::Unload { ts, id } => {
                if let Some(m) = modules.iter_mut().rev().find(|m| m.id == id && m.unloaded_ns.is_none()) {
                    m.unloaded_ns = Some(ts);
                }
            }
        }
    }
    SmallRecords {
        stacks: StackTable::new(nodes),
        threads,
        marks,
        modules,
        resident: ResidentMemory::new(resident),
        heap_scan: heap_scan.finish(origin),
    }
}

#[cfg(test)]
mod tests {
    use leakview_format::{Event, ThreadStream, TraceMetadata, TraceWriter, WriteError, WriterOptions};

    use super::*;
    use crate::progress::NoProgress;

    const START: u64 = 1_000_000;

    /// A trace whose recording stops (as on a full disk) after `recorded` allocations, one every
    /// microsecond; the program then runs on and ends at `end`.
    fn stopped_trace(path: &std::path::Path, recorded: u64, end: u64) {
        let meta = TraceMetadata {
            start_monotonic_ns: START,
            recorder_kind: RecorderKind::Synthetic,
            ..TraceMetadata::default()
        };
        let writer = TraceWriter::create(path, &meta, &WriterOptions::default()).expect("create");
        let mut stream = ThreadStream::new(7);
        let alloc = |i: u64| Event::Alloc {
            ts: START + 1_000 * (i + 1),
            addr: 0x1000 + 64 * i,
            size: 32,
            align: 0,
            stack: 0,
        };
        for i in 0..recorded {
            writer.append(&mut stream, &alloc(i)).expect("append");
        }
        writer.stop(true);
        assert!(matches!(writer.append(&mut stream, &alloc(recorded)), Err(WriteError::Stopped)));
        writer.finish(end);
    }

    #[test]
    fn a_stopped_trace_says_when_recording_stopped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.bin");
        let end = START + 5_000_000_000;
        stopped_trace(&path, 300, end);
        let reader = TraceReader::open(&path).expect("open");
        let loaded = load(&reader, &NoProgress).expect("load");
        let s = &loaded.summary;
        assert!(s.truncated && !s.complete);
        assert_eq!(s.last_event_ns, 1_000 * 300, "the last recorded allocation");
        assert_eq!(s.duration_ns, end - START, "the run went on after recording stopped");
        let mut warning = String::new();
        crate::report::write_incomplete_warning(s, &mut warning);
        let stopped_at = crate::report::units::duration(s.last_event_ns);
        let run = crate::report::units::duration(s.duration_ns);
        assert!(warning.contains(&format!("recording stopped at {stopped_at} of {run}")), "{warning}");
    }
}
