//! Writes traces with the real trace writer, for tests and benchmarks that load them through
//! the analyzer: a small "server" with known leaks, and large synthetic traces.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::Path;

use leakview_analyzer::{Analysis, LoadOptions, NoProgress};
use leakview_format::{Event, Segment, Segments, ThreadStream, TraceMetadata, TraceWriter, WriterOptions};

/// The trace `write` writes into a fresh temporary directory, loaded through the analyzer (the
/// directory goes when the returned guard is dropped).
pub fn loaded(write: impl FnOnce(&Path)) -> (tempfile::TempDir, Analysis) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("trace.bin");
    write(&path);
    let analysis = Analysis::open(&path, &LoadOptions::default(), &NoProgress).expect("the trace loads");
    (dir, analysis)
}

/// Monotonic time of the start of every trace written here; events are relative to it.
pub const START: u64 = 1_000_000_000;
const MS: u64 = 1_000_000;

/// The executable and library of the "server"; they do not exist on disk, so frames show as
/// `server+0xOFFSET`, the same on every machine.
pub const SERVER: &str = "/opt/leakview-fixture/server";
pub const LIBHTTP: &str = "/opt/leakview-fixture/libhttp.so";
const SERVER_BASE: u64 = 0x5555_5555_0000;
const LIBHTTP_BASE: u64 = 0x7f00_0000_0000;

struct Trace {
    writer: TraceWriter,
    streams: HashMap<u32, ThreadStream>,
}

impl Trace {
    fn create(path: &Path, argv: &[&str]) -> Self {
        let meta = TraceMetadata {
            pid: 4242,
            parent_pid: 1,
            executable: SERVER.into(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            start_unix_ns: 1_700_000_000_000_000_000,
            start_monotonic_ns: START,
            clock_id: 1,
            pointer_width: 8,
            arch: "x86_64".into(),
            recorder: "leakview-tui tests".into(),
            recorder_kind: leakview_format::RecorderKind::Synthetic,
            max_stack_depth: 64,
            process_start_ticks: 0,
        };
        let writer = TraceWriter::create(path, &meta, &WriterOptions::default()).expect("create trace");
        Trace { writer, streams: HashMap::new() }
    }

    fn event(&mut self, tid: u32, event: Event<'_>) {
        let stream = self.streams.entry(tid).or_insert_with(|| ThreadStream::new(tid));
        self.writer.append(stream, &event).expect("append");
    }

    fn module(&mut self, tid: u32, id: u32, base: u64, path: &str) {
        self.module_built(tid, id, base, path, &[]);
    }

    /// A module with a GNU build-id (two traces with the same build-id match its frames by offset).
    fn module_built(&mut self, tid: u32, id: u32, base: u64, path: &str, build_id: &[u8]) {
        let segments = [Segment { vaddr: 0, memsz: 0x10_0000, flags: 5 }];
        self.event(
            tid,
            Event::ModuleLoad {
                ts: START,
                id,
                base,
                path: path.as_bytes(),
                build_id,
                segments: Segments::Slice(&segments),
            },
        );
    }

    fn finish(mut self, end: u64) {
        for stream in self.streams.values_mut() {
            self.writer.release(stream);
        }
        self.writer.finish(START + end);
    }
}

/// The "server" of the screen tests, as a trace: over 10 s, a steady leak (1 KiB every 100 ms
/// in `server+0x1600`), a bounded cache (4 KiB every 50 ms, each freed 2 s later), a burst of
/// header buffers in `libhttp.so` between the marks `load-start` and `load-end` (freed at 6 s),
/// and a worker thread whose scratch buffers are freed quickly except every tenth.
pub fn write_server_trace(path: &Path) {
    const MAIN: u32 = 100;
    const WORKER: u32 = 101;
    let mut t = Trace::create(path, &["server", "--port", "8080"]);
    t.module(MAIN, 1, SERVER_BASE, SERVER);
    t.module(MAIN, 2, LIBHTTP_BASE, LIBHTTP);
    t.event(MAIN, Event::ThreadName { ts: START, tid: MAIN, name: b"main" });
    t.event(WORKER, Event::ThreadName { ts: START, tid: WORKER, name: b"worker" });
    let nodes = [
        (1, 0, SERVER_BASE + 0x1200),  // main
        (2, 1, SERVER_BASE + 0x1400),  // handle_request
        (3, 2, SERVER_BASE + 0x1600),  // leak_buffer
        (4, 2, SERVER_BASE + 0x1800),  // cache_insert
        (5, 2, LIBHTTP_BASE + 0x2a00), // parse_header
    ];
    for (id, parent, ip) in nodes {
        t.event(MAIN, Event::StackNode { id, parent, ip });
    }
    t.event(WORKER, Event::StackNode { id: 6, parent: 0, ip: SERVER_BASE + 0x2000 });
    t.event(WORKER, Event::StackNode { id: 7, parent: 6, ip: SERVER_BASE + 0x2200 });

    // Main thread events in time order.
    let mut main: Vec<(u64, Event<'static>)> = Vec::new();
    let mut address = 0x5555_6000_0000u64;
    let mut next_address = || {
        address += 0x1000;
        address
    };
    for i in 1..=100u64 {
        let ts = START + i * 100 * MS - MS;
        main.push((ts, Event::Alloc { ts, addr: next_address(), size: 1024, align: 0, stack: 3 }));
    }
    for i in 1..200u64 {
        let ts = START + i * 50 * MS;
        let addr = next_address();
        main.push((ts, Event::Alloc { ts, addr, size: 4096, align: 0, stack: 4 }));
        // The program ends at 10 s; blocks not freed by then are outstanding at the end.
        if ts + 2_000 * MS < START + 10_000 * MS {
            main.push((ts + 2_000 * MS, Event::Free { ts: ts + 2_000 * MS, addr }));
        }
    }
    for i in 0..200u64 {
        let ts = START + 4_000 * MS + i * 5 * MS;
        let addr = next_address();
        main.push((ts, Event::Alloc { ts, addr, size: 64 << (i % 4), align: 0, stack: 5 }));
        main.push((START + 6_000 * MS, Event::Free { ts: START + 6_000 * MS, addr }));
    }
    for (at, label) in [(2_000, "warmup-done"), (4_000, "load-start"), (6_000, "load-end")] {
        let ts = START + at * MS;
        main.push((ts, Event::Mark { ts, label: label.as_bytes() }));
    }
    // Frees sort before allocations at the same moment.
    main.sort_by_key(|(ts, e)| (*ts, !matches!(e, Event::Free { .. })));
    for (_, e) in &main {
        t.event(MAIN, *e);
    }

    for i in 0..50u64 {
        let ts = START + i * 200 * MS + 7 * MS;
        let addr = next_address();
        t.event(WORKER, Event::Alloc { ts, addr, size: 256, align: 0, stack: 7 });
        if i % 10 != 9 {
            t.event(WORKER, Event::Free { ts: ts + 150 * MS, addr });
        }
    }
    t.finish(10_000 * MS);
}

/// One of two versions of the "server" for diff tests: `after == false` is version 1 (10 s),
/// `after == true` version 2 (8 s), the same build of the same executable (so frames match by
/// offset). Outstanding at the end, per allocating frame:
///
/// | frame            | version 1  | version 2   | status |
/// |------------------|------------|-------------|--------|
/// | `server+0x1600`  | 3 × 1000 B | (freed)     | fixed  |
/// | `server+0x1a00`  | -          | 2 × 512 B   | new    |
/// | `server+0x1c00`  | 5 × 128 B  | 10 × 128 B  | grew   |
/// | `server+0x2200`  | 8 × 32 B   | 2 × 32 B    | shrank |
/// | `server+0x1800`  | 10 × 4 KiB | 10 × 4 KiB  | same   |
///
/// `0x1800` is a cache (4 KiB every 100 ms, each freed 1 s later), `0x2200` runs on the thread
/// `worker`; both versions have the mark `warmup` at 2 s.
pub fn write_diff_trace(path: &Path, after: bool) {
    const MAIN: u32 = 100;
    const WORKER: u32 = 101;
    let end_ms: u64 = if after { 8_000 } else { 10_000 };
    let version = if after { "2" } else { "1" };
    let mut t = Trace::create(path, &["server", "--version", version]);
    t.module_built(MAIN, 1, SERVER_BASE, SERVER, &[0xab; 20]);
    t.event(MAIN, Event::ThreadName { ts: START, tid: MAIN, name: b"main" });
    t.event(WORKER, Event::ThreadName { ts: START, tid: WORKER, name: b"worker" });
    let nodes = [
        (1, 0, SERVER_BASE + 0x1200), // main
        (2, 1, SERVER_BASE + 0x1400), // handle_request
        (3, 2, SERVER_BASE + 0x1600), // fixed in version 2
        (4, 2, SERVER_BASE + 0x1800), // cache
        (5, 2, SERVER_BASE + 0x1a00), // new in version 2
        (6, 2, SERVER_BASE + 0x1c00), // grows
    ];
    for (id, parent, ip) in nodes {
        t.event(MAIN, Event::StackNode { id, parent, ip });
    }
    t.event(WORKER, Event::StackNode { id: 7, parent: 0, ip: SERVER_BASE + 0x2000 });
    t.event(WORKER, Event::StackNode { id: 8, parent: 7, ip: SERVER_BASE + 0x2200 });

    let mut address = 0x5555_6000_0000u64;
    let mut next_address = || {
        address += 0x1000;
        address
    };
    let at = |ms: u64| START + ms * MS;
    let mut main: Vec<(u64, Event<'static>)> = Vec::new();
    let mut alloc =
        |events: &mut Vec<(u64, Event<'static>)>, ms: u64, size: u64, stack: u32, free_ms: Option<u64>| {
            let addr = next_address();
            events.push((at(ms), Event::Alloc { ts: at(ms), addr, size, align: 0, stack }));
            if let Some(free) = free_ms.filter(|&f| f < end_ms) {
                events.push((at(free), Event::Free { ts: at(free), addr }));
            }
        };
    for i in 0..3 {
        let ms = 1_000 + i * 1_000;
        alloc(&mut main, ms, 1000, 3, after.then_some(ms + 500));
    }
    for k in 1..end_ms / 100 {
        alloc(&mut main, k * 100, 4096, 4, Some(k * 100 + 1_000));
    }
    if after {
        alloc(&mut main, 6_000, 512, 5, None);
        alloc(&mut main, 7_000, 512, 5, None);
    }
    for i in 0..if after { 10 } else { 5 } {
        alloc(&mut main, 2_500 + i * 500, 128, 6, None);
    }
    main.push((at(2_000), Event::Mark { ts: at(2_000), label: b"warmup" }));
    // Frees sort before allocations at the same moment.
    main.sort_by_key(|(ts, e)| (*ts, !matches!(e, Event::Free { .. })));
    for (_, e) in &main {
        t.event(MAIN, *e);
    }
    let mut worker = Vec::new();
    for i in 0..if after { 2 } else { 8 } {
        alloc(&mut worker, i * 900 + 7, 32, 8, None);
    }
    for (_, e) in &worker {
        t.event(WORKER, *e);
    }
    t.finish(end_ms * MS);
}

/// A synthetic trace of about `events` events on four threads: allocations every 100 ns from
/// 997 call sites (stacks three frames deep), each freed 1,000 allocations later except every
/// thirteenth, which leaks. Returns the number of events written.
pub fn write_synthetic_trace(path: &Path, events: u64) -> u64 {
    write_synthetic_trace_with_scratch(path, events, None)
}

/// [`write_synthetic_trace`], where with `scratch_every` k every k-th allocation is instead
/// freed 50 ns later, before its thread allocates again (a temporary block).
pub fn write_synthetic_trace_with_scratch(path: &Path, events: u64, scratch_every: Option<u64>) -> u64 {
    const SITES: u64 = 997;
    const LAG: u64 = 1_000;
    let mut t = Trace::create(path, &["synthetic", "--events", &events.to_string()]);
    t.module(1, 1, SERVER_BASE, SERVER);
    let mut written = 1u64;
    // Stack nodes: one shared root, 31 middles, one leaf per site.
    t.event(1, Event::StackNode { id: 1, parent: 0, ip: SERVER_BASE + 0x100 });
    for m in 0..31u32 {
        t.event(1, Event::StackNode { id: 2 + m, parent: 1, ip: SERVER_BASE + 0x1000 + u64::from(m) * 0x10 });
    }
    for s in 0..SITES as u32 {
        t.event(
            1,
            Event::StackNode {
                id: 100 + s,
                parent: 2 + s % 31,
                ip: SERVER_BASE + 0x8000 + u64::from(s) * 0x10,
            },
        );
    }
    written += 32 + SITES;
    // An allocation, plus a free for all but every 13th: 25 events per 13 allocations.
    let allocations = (events.saturating_sub(written)) * 13 / 25;
    let address = |i: u64| 0x1000_0000 + i * 0x40;
    let scratch = |i: u64| scratch_every.is_some_and(|k| i.is_multiple_of(k));
    for i in 0..allocations {
        let ts = START + i * 100;
        let tid = 1 + (i % 4) as u32;
        let size = (i * 37) % 4096 + 16;
        let stack = 100 + (i % SITES) as u32;
        t.event(tid, Event::Alloc { ts, addr: address(i), size, align: 0, stack });
        written += 1;
        if i >= LAG && !scratch(i - LAG) && !(i - LAG).is_multiple_of(13) {
            t.event(tid, Event::Free { ts, addr: address(i - LAG) });
            written += 1;
        }
        if scratch(i) {
            t.event(tid, Event::Free { ts: ts + 50, addr: address(i) });
            written += 1;
        }
        if i == allocations / 2 {
            t.event(tid, Event::Mark { ts, label: b"half" });
            written += 1;
        }
    }
    t.finish(allocations * 100 + 1_000);
    written
}

/// A program whose allocation wrapper (`server+0x1600`) is called from three places: from
/// `server+0x1400` (2 blocks of 100 B), and from `server+0x1500` twice, once called from
/// `server+0x1300` (3 × 200 B) and once from `server+0x1310` (1 × 300 B); plus a block from
/// `server+0x1700` alone (400 B). All outstanding at the end (1 s).
pub fn write_wrapper_trace(path: &Path) {
    const MAIN: u32 = 100;
    let mut t = Trace::create(path, &["server"]);
    t.module(MAIN, 1, SERVER_BASE, SERVER);
    let nodes = [
        (1, 0, SERVER_BASE + 0x1200),  // main
        (2, 1, SERVER_BASE + 0x1400),  // a caller of the wrapper
        (3, 2, SERVER_BASE + 0x1600),  // the wrapper, from 0x1400
        (4, 1, SERVER_BASE + 0x1300),  // an outer caller
        (5, 4, SERVER_BASE + 0x1500),  // another caller of the wrapper
        (6, 5, SERVER_BASE + 0x1600),  // the wrapper, from 0x1500 from 0x1300
        (7, 1, SERVER_BASE + 0x1310),  // another outer caller
        (8, 7, SERVER_BASE + 0x1500),  // the same caller of the wrapper
        (9, 8, SERVER_BASE + 0x1600),  // the wrapper, from 0x1500 from 0x1310
        (10, 1, SERVER_BASE + 0x1700), // a function that allocates itself
    ];
    for (id, parent, ip) in nodes {
        t.event(MAIN, Event::StackNode { id, parent, ip });
    }
    let blocks = [(3, 100, 2), (6, 200, 3), (9, 300, 1), (10, 400, 1)];
    let mut ts = START;
    let mut addr = 0x5555_7000_0000u64;
    for (stack, size, count) in blocks {
        for _ in 0..count {
            ts += MS;
            addr += 0x1000;
            t.event(MAIN, Event::Alloc { ts, addr, size, align: 0, stack });
        }
    }
    t.finish(1_000 * MS);
}

/// A program whose wrapper `server+0x1600` allocates through leakview's own library from two
/// return addresses (`libleakview_preload.so+0x100` and `+0x200`, trimmed from the shown
/// stacks), so its two recorded stacks read the same: stack 4 (through `+0x200`, 1 × 150 B at
/// 1 ms) and stack 3 (through `+0x100`, 2 × 100 B at 2 and 3 ms). Stack 5, `server+0x1700`,
/// allocates 300 B at 4 ms. All outstanding at the end (1 s).
pub fn write_alike_trace(path: &Path) {
    const MAIN: u32 = 100;
    const PRELOAD_BASE: u64 = 0x7f10_0000_0000;
    let mut t = Trace::create(path, &["server"]);
    t.module(MAIN, 1, SERVER_BASE, SERVER);
    t.module(MAIN, 2, PRELOAD_BASE, "/opt/leakview-fixture/libleakview_preload.so");
    let nodes = [
        (1, 0, SERVER_BASE + 0x1200), // main
        (2, 1, SERVER_BASE + 0x1600), // the wrapper
        (3, 2, PRELOAD_BASE + 0x100), // leakview's malloc, from the wrapper
        (4, 2, PRELOAD_BASE + 0x200), // leakview's calloc, from the wrapper
        (5, 1, SERVER_BASE + 0x1700), // a function that allocates itself
    ];
    for (id, parent, ip) in nodes {
        t.event(MAIN, Event::StackNode { id, parent, ip });
    }
    let blocks = [(4, 150), (3, 100), (3, 100), (5, 300)];
    let mut ts = START;
    let mut addr = 0x5555_7000_0000u64;
    for (stack, size) in blocks {
        ts += MS;
        addr += 0x1000;
        t.event(MAIN, Event::Alloc { ts, addr, size, align: 0, stack });
    }
    t.finish(1_000 * MS);
}

/// A program with three threads, over 1 s: `main` (tid 300) and `worker-0` (tid 301) are named,
/// tid 302 never is. Outstanding at the end, per thread and stack:
///
/// | thread     | `server+0x1300`  | `server+0x1500` (shared) | `server+0x2200` | `server+0x2400` |
/// |------------|------------------|--------------------------|-----------------|-----------------|
/// | `main`     | 4 × 1000 B       | 2 × 100 B                | -               | -               |
/// | `worker-0` | -                | 5 × 100 B                | 3 × 2048 B      | -               |
/// | tid 302    | -                | 1 × 64 B                 | -               | 2 × 512 B       |
///
/// `main` also fills a cache (`server+0x1700`, 10 × 4 KiB) in its first 100 ms and frees it
/// at 500 ms, so the peak is main's.
pub fn write_threads_trace(path: &Path) {
    const MAIN: u32 = 300;
    const WORKER: u32 = 301;
    const UNNAMED: u32 = 302;
    let mut t = Trace::create(path, &["server", "--threads", "2"]);
    t.module(MAIN, 1, SERVER_BASE, SERVER);
    t.event(MAIN, Event::ThreadName { ts: START, tid: MAIN, name: b"main" });
    t.event(WORKER, Event::ThreadName { ts: START, tid: WORKER, name: b"worker-0" });
    let nodes = [
        (1, 0, SERVER_BASE + 0x1200), // main
        (2, 1, SERVER_BASE + 0x1300), // load_config
        (3, 1, SERVER_BASE + 0x1500), // the shared allocation helper
        (4, 1, SERVER_BASE + 0x1700), // the cache
        (5, 0, SERVER_BASE + 0x2000), // thread entry
        (6, 5, SERVER_BASE + 0x2200), // worker buffers
        (7, 5, SERVER_BASE + 0x2400), // the unnamed thread's buffers
    ];
    for (id, parent, ip) in nodes {
        t.event(MAIN, Event::StackNode { id, parent, ip });
    }
    let mut address = 0x5555_8000_0000u64;
    let mut next_address = || {
        address += 0x1000;
        address
    };
    let at = |ms: u64| START + ms * MS;
    let mut alloc = |t: &mut Trace, tid: u32, ms: u64, size: u64, stack: u32| {
        let addr = next_address();
        t.event(tid, Event::Alloc { ts: at(ms), addr, size, align: 0, stack });
        addr
    };
    let cache: Vec<u64> = (0..10).map(|i| alloc(&mut t, MAIN, 10 + i * 10, 4096, 4)).collect();
    for i in 0..4 {
        alloc(&mut t, MAIN, 150 + i * 50, 1000, 2);
    }
    for ms in [420, 440] {
        alloc(&mut t, MAIN, ms, 100, 3);
    }
    for addr in cache {
        t.event(MAIN, Event::Free { ts: at(500), addr });
    }
    for i in 0..3 {
        alloc(&mut t, WORKER, 200 + i * 100, 2048, 6);
    }
    for i in 0..5 {
        alloc(&mut t, WORKER, 550 + i * 50, 100, 3);
    }
    alloc(&mut t, UNNAMED, 600, 64, 3);
    for ms in [700, 900] {
        alloc(&mut t, UNNAMED, ms, 512, 7);
    }
    t.finish(1_000 * MS);
}

/// A one-second program that allocates 16 KiB every 100 ms (never freed) on two threads, which
/// take turns sampling its resident set size (format 2.1): every 100 ms from 50 ms on, 1 MiB
/// plus what it has allocated, and once more at the end.
pub fn write_resident_trace(path: &Path) {
    const MAIN: u32 = 500;
    const WORKER: u32 = 501;
    let mut t = Trace::create(path, &["grower"]);
    t.module(MAIN, 1, SERVER_BASE, SERVER);
    t.event(MAIN, Event::StackNode { id: 1, parent: 0, ip: SERVER_BASE + 0x1200 });
    for i in 0..10u64 {
        let tid = if i % 2 == 0 { MAIN } else { WORKER };
        let ts = START + i * 100 * MS;
        let addr = 0x5555_9000_0000 + i * 0x10_000;
        t.event(tid, Event::Alloc { ts, addr, size: 16 << 10, align: 0, stack: 1 });
        let sampled = START + i * 100 * MS + 50 * MS;
        t.event(tid, Event::ResidentMemory { ts: sampled, bytes: (1 << 20) + (i + 1) * (16 << 10) });
    }
    t.event(MAIN, Event::ResidentMemory { ts: START + 1_000 * MS, bytes: 2 << 20 });
    t.finish(1_000 * MS);
}
