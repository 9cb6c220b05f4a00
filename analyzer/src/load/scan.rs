//! First pass over a trace: every chunk decoded in parallel to count events and allocations per
//! chunk (so lifetimes can be written in place by the next pass) and to collect the small
//! records: stack nodes, modules, thread names and marks.

use leakview_format::{ChunkInfo, Event, TraceReader};
use rayon::prelude::*;

use crate::model::EventCounts;
use crate::progress::Progress;

/// A module load or unload, with its raw (monotonic) timestamp.
#[derive(Debug, Clone)]
pub(crate) enum ModuleEvent {
    Load {
        ts: u64,
        id: u32,
        base: u64,
        path: String,
        build_id: Vec<u8>,
        segments: Vec<leakview_format::Segment>,
    },
    Unload {
        ts: u64,
        id: u32,
    },
}

/// What the first pass learned about one chunk.
#[derive(Debug, Default)]
pub(crate) struct ChunkScan {
    /// Blocks that came into being in this chunk (allocs and reallocs with a new address).
    pub blocks: u64,
    pub counts: EventCounts,
    pub min_ts: Option<u64>,
    pub max_ts: Option<u64>,
    /// The chunk's tail could not be decoded.
    pub undecodable: bool,
    pub nodes: Vec<(u32, u32, u64)>,
    pub modules: Vec<ModuleEvent>,
    /// (ts, tid, name)
    pub thread_names: Vec<(u64, u32, String)>,
    /// (ts, label)
    pub marks: Vec<(u64, String)>,
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Scans one chunk.
pub(crate) fn scan_chunk(reader: &TraceReader, chunk: &ChunkInfo) -> ChunkScan {
    let mut scan = ChunkScan::default();
    for event in reader.events(chunk) {
        let event = match event {
            Ok(event) => event,
            Err(_) => {
                scan.undecodable = true;
                break;
            }
        };
        if let Some(ts) = event.timestamp() {
            scan.min_ts = Some(scan.min_ts.map_or(ts, |m| m.min(ts)));
            scan.max_ts = Some(scan.max_ts.map_or(ts, |m| m.max(ts)));
        }
        let c = &mut scan.counts;
        match event {
            Event::Alloc { addr, .. } => {
                c.alloc += 1;
                if addr != 0 {
                    scan.blocks += 1;
                }
            }
            Event::Free { .. } => c.free += 1,
            Event::Realloc { ts_free, new_addr, .. } => {
                c.realloc += 1;
                scan.min_ts = Some(scan.min_ts.map_or(ts_free, |m| m.min(ts_free)));
                if new_addr != 0 {
                    scan.blocks += 1;
                }
            }
            Event::StackNode { id, parent, ip } => {
                c.stack_node += 1;
                scan.nodes.push((id, parent, ip));
            }
            Event::ModuleLoad { ts, id, base, path, build_id, segments } => {
                c.module_load += 1;
                scan.modules.push(ModuleEvent::Load {
                    ts,
                    id,
                    base,
                    path: text(path),
                    build_id: build_id.to_vec(),
                    segments: segments.iter().collect(),
                });
            }
            Event::ModuleUnload { ts, id } => {
                c.module_unload += 1;
                scan.modules.push(ModuleEvent::Unload { ts, id });
            }
            Event::ThreadName { ts, tid, name } => {
                c.thread_name += 1;
                scan.thread_names.push((ts, tid, text(name)));
            }
            Event::Mark { ts, label } => {
                c.mark += 1;
                scan.marks.push((ts, text(label)));
            }
        }
    }
    scan
}

/// Scans every chunk in parallel; `None` if cancelled.
pub(crate) fn scan_all(reader: &TraceReader, progress: &dyn Progress) -> Option<Vec<ChunkScan>> {
    let scans: Vec<Option<ChunkScan>> = reader
        .chunks()
        .par_iter()
        .map(|chunk| {
            if progress.cancelled() {
                return None;
            }
            let scan = scan_chunk(reader, chunk);
            progress.advance(1);
            Some(scan)
        })
        .collect();
    scans.into_iter().collect()
}
