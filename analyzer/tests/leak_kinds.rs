//! Leak kinds through the whole load: scan events in a written trace, the blocks live at the
//! scan searched, the blocks outstanding at the end classified (or not scanned), anonymous
//! memory judged by every block the trace ever placed in it.

use leakview_analyzer::{Analysis, BlockId, LeakKind, LeakKindSet, LoadOptions, NoProgress, ScanTotals};
use leakview_format::{
    Event, References, ThreadStream, TraceMetadata, TraceWriter, WriterOptions, region_kind,
};

const START: u64 = 1_000;
const DATA: u64 = 0x60_0000;
const HEAP: u64 = 0x1000_0000;
const ARENA: u64 = 0x7000_0000;

/// Blocks (ids in allocation order): 0 in the arena, freed early; 1 (a global points to it);
/// 2 (1 points to it; freed after the scan); 3 (2 points to it); 4 (a word in the arena points
/// to it, where block 0 once lay: not a root); 5 allocated after the scan began.
fn write(path: &std::path::Path, scan_end: bool) {
    let meta = TraceMetadata { pid: 5, start_monotonic_ns: START, clock_id: 1, ..TraceMetadata::default() };
    let writer = TraceWriter::create(path, &meta, &WriterOptions::default()).expect("create");
    let mut stream = ThreadStream::new(1);
    let mut append = |e: &Event<'_>| writer.append(&mut stream, e).expect("append");
    append(&Event::Alloc { ts: START + 1, addr: ARENA + 0x100, size: 32, align: 0, stack: 0 });
    append(&Event::Free { ts: START + 2, addr: ARENA + 0x100 });
    for (i, addr) in [HEAP, HEAP + 0x100, HEAP + 0x200, HEAP + 0x300].into_iter().enumerate() {
        append(&Event::Alloc { ts: START + 10 + i as u64, addr, size: 16, align: 0, stack: 0 });
    }
    let ts = START + 50;
    append(&Event::ScanRegion { ts, start: DATA, len: 64, kind: region_kind::MODULE_DATA });
    append(&Event::ScanRegion { ts, start: HEAP, len: 0x1000, kind: region_kind::BRK_HEAP });
    append(&Event::ScanRegion { ts, start: ARENA, len: 0x1000, kind: region_kind::ANONYMOUS });
    let refs =
        [(DATA, HEAP), (HEAP + 8, HEAP + 0x100), (HEAP + 0x108, HEAP + 0x200), (ARENA + 0x800, HEAP + 0x300)];
    append(&Event::References { ts, refs: References::Slice(&refs) });
    append(&Event::Alloc { ts: START + 55, addr: HEAP + 0x400, size: 8, align: 0, stack: 0 });
    if scan_end {
        append(&Event::ScanEnd { ts: START + 60, regions: 3, bytes: 0x2040, references: 4 });
    }
    append(&Event::Free { ts: START + 70, addr: HEAP + 0x100 });
    writer.release(&mut stream);
    writer.finish(START + 100);
}

fn load(scan_end: bool) -> Analysis {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.bin");
    write(&path, scan_end);
    Analysis::open(&path, &LoadOptions::default(), &NoProgress).expect("load")
}

#[test]
fn blocks_outstanding_at_the_end_get_their_kinds() {
    let a = load(true);
    let scan = a.heap_scan().expect("a complete scan");
    assert_eq!(scan.at_ns(), 50);
    assert_eq!(scan.totals(), ScanTotals { regions: 3, bytes: 0x2040, references: 4 });
    assert_eq!(scan.regions().len(), 3);
    assert_eq!(scan.references().len(), 4);
    let counts = a.summary().event_counts;
    assert_eq!((counts.scan_region, counts.references, counts.scan_end), (3, 1, 1));
    let kinds = a.leak_kinds().expect("leak kinds");
    let of = |id| kinds.kind_of(BlockId(id));
    assert_eq!(
        (0..7).map(of).collect::<Vec<_>>(),
        [
            None,
            Some(LeakKind::StillReachable),
            None, // freed after the scan: not outstanding at the end, yet it held the pointer to 3
            Some(LeakKind::StillReachable),
            Some(LeakKind::DefinitelyLost),
            Some(LeakKind::NotScanned),
            None,
        ]
    );
    assert_eq!(kinds.totals(LeakKind::StillReachable).blocks, 2);
    assert_eq!(kinds.totals(LeakKind::StillReachable).bytes, 32);
    assert_eq!(kinds.totals(LeakKind::NotScanned).bytes, 8);
    assert_eq!(kinds.totals_of(LeakKindSet::LOST).blocks, 1);
    let end = a.outstanding_at(a.duration_ns());
    let lost = a.of_leak_kinds(&end, LeakKindSet::LOST);
    assert_eq!(lost.block_ids().collect::<Vec<_>>(), [BlockId(4)]);
    assert_eq!(lost.totals().bytes, 16);
}

#[test]
fn without_the_scan_end_there_are_no_leak_kinds() {
    let a = load(false);
    assert!(a.heap_scan().is_none());
    assert!(a.heap_scan_interrupted());
    assert!(a.leak_kinds().is_none());
    let end = a.outstanding_at(a.duration_ns());
    assert_eq!(end.len(), 4);
    assert!(a.of_leak_kinds(&end, LeakKindSet::ALL).is_empty());
}
