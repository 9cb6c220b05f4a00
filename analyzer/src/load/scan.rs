//! What a load learns about each chunk besides its allocations and frees: event counts, time
//! span, and the small records (stack nodes, modules, thread names, marks, resident memory
//! samples, the heap scan at exit). The replay's decoder gathers it as it goes ([`ChunkScan::observe`]). A separate
//! scan pass over all chunks ([`scan_all`]) is needed only when a trace does not say its own
//! time span (it was not finished cleanly, or its timestamps fall outside the span its header
//! gives).

use leakview_format::{ChunkInfo, Event, TraceReader};
use rayon::prelude::*;

use crate::heap_scan::{ScanParts, ScanTotals};
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

/// What is known about one chunk.
#[derive(Debug, Default)]
pub(crate) struct ChunkScan {
    /// Blocks that came into being in this chunk (allocs and reallocs with a new address).
    pub blocks: u64,
    /// Frees of a non-zero address (including the release half of reallocs).
    pub releases: u64,
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
    /// (ts, resident set size in bytes)
    pub resident: Vec<(u64, u64)>,
    /// The heap scan's events in this chunk.
    pub heap_scan: ScanParts,
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

impl ChunkScan {
    fn saw_time(&mut self, ts: u64) {
        self.min_ts = Some(self.min_ts.map_or(ts, |m| m.min(ts)));
        self.max_ts = Some(self.max_ts.map_or(ts, |m| m.max(ts)));
    }

    /// Takes note of one decoded event.
    pub fn observe(&mut self, event: &Event<'_>) {
        let c = &mut self.counts;
        match *event {
            Event::Alloc { ts, addr, .. } => {
                c.alloc += 1;
                self.blocks += u64::from(addr != 0);
                self.saw_time(ts);
            }
            Event::Free { ts, addr } => {
                c.free += 1;
                self.releases += u64::from(addr != 0);
                self.saw_time(ts);
            }
            Event::Realloc { ts_free, ts, old_addr, new_addr, .. } => {
                c.realloc += 1;
                self.releases += u64::from(old_addr != 0);
                self.blocks += u64::from(new_addr != 0);
                self.saw_time(ts_free);
                self.saw_time(ts);
            }
            Event::StackNode { id, parent, ip } => {
                c.stack_node += 1;
                self.nodes.push((id, parent, ip));
            }
            Event::ModuleLoad { ts, id, base, path, build_id, segments } => {
                c.module_load += 1;
                self.saw_time(ts);
                self.modules.push(ModuleEvent::Load {
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
                self.saw_time(ts);
                self.modules.push(ModuleEvent::Unload { ts, id });
            }
            Event::ThreadName { ts, tid, name } => {
                c.thread_name += 1;
                self.saw_time(ts);
                self.thread_names.push((ts, tid, text(name)));
            }
            Event::Mark { ts, label } => {
                c.mark += 1;
                self.saw_time(ts);
                self.marks.push((ts, text(label)));
            }
            Event::ResidentMemory { ts, bytes } => {
                c.resident_memory += 1;
                self.saw_time(ts);
                self.resident.push((ts, bytes));
            }
            Event::ScanRegion { ts, start, len, kind } => {
                c.scan_region += 1;
                self.saw_time(ts);
                self.heap_scan.region(ts, start, len, kind);
            }
            Event::References { ts, ref refs } => {
                c.references += 1;
                self.saw_time(ts);
                self.heap_scan.references(ts, refs);
            }
            Event::ScanEnd { ts, regions, bytes, references } => {
                c.scan_end += 1;
                self.saw_time(ts);
                self.heap_scan.end(ts, ScanTotals { regions, bytes, references });
            }
        }
    }
}

/// Scans one chunk.
pub(crate) fn scan_chunk(reader: &TraceReader, chunk: &ChunkInfo) -> ChunkScan {
    let mut scan = ChunkScan::default();
    for event in reader.events(chunk) {
        match event {
            Ok(event) => scan.observe(&event),
            Err(_) => {
                scan.undecodable = true;
                break;
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
