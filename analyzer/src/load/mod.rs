//! Loading a trace: three parallel passes over the mapped chunks (scan, decode lifetimes, match
//! frees), then the time index. Damaged or incomplete traces load as far as they can be read
//! and are flagged, never an error or a panic.

mod decode;
mod matching;
mod scan;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use leakview_format::TraceReader;
use rayon::prelude::*;

use crate::error::LoadError;
use crate::index::{IndexBuild, TimeIndex, apply_peak};
use crate::lifetimes::{Lifetime, LifetimeStore};
use crate::model::{EventCounts, LiveTotals, Mark, Summary, ThreadInfo, Totals};
use crate::progress::{Progress, Stage};
use crate::stacks::StackTable;
use crate::symbolize::ModuleInfo;
use crate::timeline::Timeline;

use decode::{DecodeContext, SiteInterner};
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
}

fn check_cancel(progress: &dyn Progress) -> Result<(), LoadError> {
    if progress.cancelled() { Err(LoadError::Cancelled) } else { Ok(()) }
}

/// Loads everything from an open reader.
pub(crate) fn load(reader: &TraceReader, progress: &dyn Progress) -> Result<Loaded, LoadError> {
    let chunks = reader.chunks();
    progress.start(Stage::Scanning, chunks.len() as u64);
    let scans = scan::scan_all(reader, progress).ok_or(LoadError::Cancelled)?;
    progress.finish(Stage::Scanning);

    let meta = reader.metadata();
    let header = reader.header();
    let mut counts = EventCounts::default();
    for s in &scans {
        counts.add(&s.counts);
    }
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

    let total_blocks: u64 = scans.iter().map(|s| s.blocks).sum();
    let limit = u64::from(u32::MAX - 1);
    if total_blocks > limit {
        return Err(LoadError::TooManyAllocations { path: reader.path().to_path_buf(), limit });
    }

    check_cancel(progress)?;
    progress.start(Stage::Decoding, chunks.len() as u64);
    let mut lifetimes: Vec<Lifetime> = (0..total_blocks).map(|_| Lifetime::empty()).collect();
    let interner = SiteInterner::default();
    let ctx = DecodeContext { reader, origin, interner: &interner };
    let blocks_per_chunk: Vec<u64> = scans.iter().map(|s| s.blocks).collect();
    let big = decode::decode_all(&ctx, &chunk_threads, &blocks_per_chunk, &mut lifetimes, progress)
        .ok_or(LoadError::Cancelled)?;
    progress.finish(Stage::Decoding);
    let mut big_sizes = HashMap::new();
    for (t, a, s) in big {
        LifetimeStore::record_big_size(&mut big_sizes, t, a, s);
    }

    check_cancel(progress)?;
    progress.start(Stage::Matching, chunks.len() as u64);
    lifetimes.par_sort_unstable_by_key(matching::sort_key);
    let matched = matching::match_all(reader, origin, &lifetimes, progress).ok_or(LoadError::Cancelled)?;
    lifetimes.par_sort_unstable_by_key(|l| (l.alloc_ns, l.addr, l.free_ns()));
    progress.finish(Stage::Matching);

    let store = LifetimeStore { lifetimes, sites: interner.into_sites(), big_sizes };
    check_cancel(progress)?;
    let IndexBuild { index, timeline, peak } = TimeIndex::build(&store, duration_ns, progress);

    let mut totals = Totals {
        allocations: store.len() as u64,
        frees: matched.matched,
        unmatched_frees: matched.unmatched,
        bytes_allocated: store.lifetimes.par_iter().map(|l| store.size_of(l)).sum(),
        ..Totals::default()
    };
    apply_peak(&mut totals, peak);
    let open: Vec<u32> =
        (0..store.len() as u32).into_par_iter().filter(|&i| store.lifetimes[i as usize].is_open()).collect();
    let outstanding_at_end =
        LiveTotals { blocks: open.len() as u64, bytes: open.iter().map(|&i| store.size_of_index(i)).sum() };

    let undecodable_chunks = scans.iter().filter(|s| s.undecodable).count() as u64;
    let (stacks, threads, marks, modules) = collect_small_records(scans, &tids, origin);
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
        truncated: header.truncated(),
        lost_events: header.lost_events,
        damaged_chunks: damaged,
        undecodable_chunks,
        file_bytes: reader.file_len(),
        event_bytes: chunks.iter().map(|c| c.body_len() as u64).sum(),
        totals,
        outstanding_at_end,
    };
    Ok(Loaded { summary, store, index, timeline, stacks, threads, marks, modules })
}

type SmallRecords = (StackTable, Vec<ThreadInfo>, Vec<Mark>, Vec<ModuleInfo>);

fn collect_small_records(scans: Vec<ChunkScan>, tids: &[u32], origin: u64) -> SmallRecords {
    let mut nodes = Vec::new();
    let mut names: BTreeMap<u32, (u64, String)> = BTreeMap::new();
    let mut raw_marks: Vec<(u64, String)> = Vec::new();
    let mut module_events: Vec<ModuleEvent> = Vec::new();
    for s in scans {
        nodes.extend(s.nodes);
        for (ts, tid, name) in s.thread_names {
            let e = names.entry(tid).or_insert((ts, name.clone()));
            if ts >= e.0 {
                *e = (ts, name);
            }
        }
        raw_marks.extend(s.marks);
        module_events.extend(s.modules);
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
    (StackTable::new(nodes), threads, marks, modules)
}
