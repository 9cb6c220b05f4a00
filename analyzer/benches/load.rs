//! Load + index benchmark on large synthetic traces (widely varied sizes and stacks, four
//! threads, cross-thread frees, address reuse, reallocs, a slow leak).
//!
//! ```text
//! cargo bench -p leakview-analyzer --bench load -- 10000000 100000000
//! ```
//!
//! For each event count it writes the trace once (kept in `$CARGO_TARGET_DIR/leakview-bench/`),
//! then loads it in a fresh child process and prints: load + index time (wall and CPU, and the
//! part of that CPU time the memory sampler below took), the child's peak resident memory
//! (VmHWM, which includes the trace's mapped pages), the analyzer's
//! own memory per lifetime — the peak of anonymous resident memory (RssAnon, sampled every
//! millisecond during the load: everything but the mapped trace), what stays after the load,
//! and the size of its tables — and the time of `--at` queries (outstanding set + totals +
//! the raw grouping by stack with its top 20 groups made; median of three) at several moments
//! after indexing, and the time to make every group of such a grouping. `leakview report` also
//! merges the groups of stacks that read the same, which needs every stack's symbols: timed
//! apart (`merging`, once with the moment's new stacks symbolized, then with every symbol
//! cached), not part of the query figures. The synthetic traces record no modules, so their
//! symbols are placeholders and that first figure leaves out real symbolization. The last line,
//! `RESULT ...`, repeats the figures as `key=value` pairs for scripts.
//!
//! `cargo bench -p leakview-analyzer --bench load -- --load TRACE` loads any trace that way;
//! `--load-only TRACE` loads it and prints the load's figures alone, without the queries and
//! the memory sampler (its "peak" is then what stays after the load): for instruction counts
//! of the load under callgrind, and for timing the load alone.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use leakview_analyzer::{Analysis, GroupBy, LoadOptions, Progress, Stage};

/// Field `i` (counting from 0 after the command name, which is in parentheses) of
/// /proc/self/stat.
fn stat_field(i: usize) -> f64 {
    stat_field_of("/proc/self/stat", i)
}

/// Field `i` of a stat file (/proc/self/stat, /proc/thread-self/stat).
fn stat_field_of(path: &str, i: usize) -> f64 {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0)
}

/// CPU time (user + system) of this process so far, in seconds.
fn cpu_seconds() -> f64 {
    (stat_field(11) + stat_field(12)) / 100.0
}

/// Minor page faults of this process so far (each first touch of fresh memory).
fn minor_faults() -> u64 {
    stat_field(7) as u64
}

/// Prints when each load stage starts, relative to the start of the load (wall and CPU time).
struct StageTimes(Instant, f64);

impl Progress for StageTimes {
    fn start(&self, stage: Stage, _total: u64) {
        println!(
            "    {:>6.2} s wall {:>6.2} s cpu  {}",
            self.0.elapsed().as_secs_f64(),
            cpu_seconds() - self.1,
            stage.name()
        );
    }
}
use leakview_format::testing::XorShift;
use leakview_format::{Event, ThreadStream, TraceMetadata, TraceWriter, WriterOptions};

const STACKS: u32 = 200_000;
const THREADS: u32 = 4;

fn generate(path: &Path, events: u64) {
    let meta = TraceMetadata {
        pid: 1,
        executable: "/bench".into(),
        argv: vec!["bench".into()],
        start_monotonic_ns: 1_000,
        clock_id: 1,
        pointer_width: 8,
        arch: "x86_64".into(),
        recorder: "bench".into(),
        recorder_kind: leakview_format::RecorderKind::Synthetic,
        ..TraceMetadata::default()
    };
    let options = WriterOptions { chunk_size: 1 << 20, max_file_size: 64 << 30 };
    let writer = TraceWriter::create(path, &meta, &options).expect("create bench trace");
    let mut streams: Vec<ThreadStream> = (0..THREADS).map(|t| ThreadStream::new(1000 + t)).collect();
    let mut rng = XorShift::new(0x9e37_79b9_7f4a_7c15);
    // A stack trie: each node's parent is an earlier node, depths up to a few dozen.
    for id in 1..=STACKS {
        let parent = if id < 64 { 0 } else { 1 + rng.below(u64::from(id - 1)) as u32 };
        let ip = 0x40_0000 + rng.below(1 << 24);
        writer.append(&mut streams[0], &Event::StackNode { id, parent, ip }).expect("append");
    }
    let mut live: Vec<(u64, u64)> = Vec::new();
    let mut free_addrs: Vec<u64> = Vec::new();
    let mut next_addr = 0x1000_0000u64;
    let mut ts = 1_000u64;
    let mut written = u64::from(STACKS);
    while written < events {
        ts += 1 + rng.below(100);
        let stream = &mut streams[rng.below(u64::from(THREADS)) as usize];
        let roll = rng.below(1000);
        let event = if roll < 502 || live.is_empty() {
            // Log-uniform sizes from 1 byte to 1 MiB.
            let size = 1 + (rng.next_u64() >> (44 + rng.below(20)));
            let addr = free_addrs.pop().unwrap_or_else(|| {
                next_addr += 64;
                next_addr
            });
            let stack = 1 + rng.below(u64::from(STACKS)) as u32;
            live.push((addr, size));
            Event::Alloc { ts, addr, size, align: 0, stack }
        } else if roll < 990 {
            let (addr, _) = live.swap_remove(rng.below(live.len() as u64) as usize);
            free_addrs.push(addr);
            Event::Free { ts, addr }
        } else {
            let i = rng.below(live.len() as u64) as usize;
            let (old, size) = live[i];
            let new_size = size + 1 + rng.below(4096);
            let new = if rng.below(2) == 0 {
                old
            } else {
                free_addrs.push(old);
                next_addr += 64;
                next_addr
            };
            live[i] = (new, new_size);
            let stack = 1 + rng.below(u64::from(STACKS)) as u32;
            Event::Realloc { ts_free: ts, ts, old_addr: old, new_addr: new, size: new_size, stack }
        };
        writer.append(stream, &event).expect("append");
        written += 1;
        if written % 10_000_000 == 0 {
            writer.append(stream, &Event::Mark { ts, label: b"tick" }).expect("append");
            written += 1;
        }
    }
    for s in &mut streams {
        writer.release(s);
    }
    writer.finish(ts + 1);
}

/// A `kB` field of /proc/self/status.
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

fn peak_rss_kib() -> u64 {
    status_kib("VmHWM:")
}

/// Samples anonymous resident memory every millisecond until dropped; keeps the largest.
struct AnonPeak {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    /// Returns the sampler's own CPU time (seconds).
    thread: Option<std::thread::JoinHandle<f64>>,
}

impl AnonPeak {
    fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(status_kib("RssAnon:")));
        let (s, p) = (stop.clone(), peak.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(status_kib("RssAnon:"), Ordering::Relaxed);
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            let own = |i| stat_field_of("/proc/thread-self/stat", i);
            (own(11) + own(12)) / 100.0
        });
        AnonPeak { stop, peak, thread: Some(thread) }
    }

    /// The peak, and the sampler's own CPU time (part of the process's).
    fn finish(mut self) -> (u64, f64) {
        self.stop.store(true, Ordering::Relaxed);
        let cpu = self.thread.take().and_then(|t| t.join().ok()).unwrap_or(0.0);
        (self.peak.load(Ordering::Relaxed).max(status_kib("RssAnon:")), cpu)
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn load_and_query(path: &Path, queries: bool) {
    let anon_before = status_kib("RssAnon:");
    // Without the queries, the memory sampler stays off too: its readings of /proc would add
    // to the load's instruction counts.
    let sampler = queries.then(AnonPeak::start);
    let started = Instant::now();
    let cpu_start = cpu_seconds();
    let a = Analysis::open(path, &LoadOptions::default(), &StageTimes(started, cpu_start)).expect("load");
    let load = started.elapsed();
    let load_cpu = cpu_seconds() - cpu_start;
    let (peak_anon, sampler_cpu) = sampler.map_or((status_kib("RssAnon:"), 0.0), AnonPeak::finish);
    let peak_anon = peak_anon.saturating_sub(anon_before);
    let kept_anon = status_kib("RssAnon:").saturating_sub(anon_before);
    let s = a.summary();
    let lifetimes = s.totals.allocations.max(1) as f64;
    let per_lifetime = |kib: u64| kib as f64 * 1024.0 / lifetimes;
    println!(
        "  events {}  lifetimes {}  load+index {:.3} s wall, {:.3} s cpu (of which the memory sampler {:.3} s)  peak RSS {} MiB (trace mapped: {} MiB)",
        s.events,
        s.totals.allocations,
        load.as_secs_f64(),
        load_cpu,
        sampler_cpu,
        peak_rss_kib() / 1024,
        s.file_bytes >> 20,
    );
    println!(
        "  analyzer memory: peak {:.1} B/lifetime during the load, {:.1} B/lifetime after it, tables {:.1} B/lifetime",
        per_lifetime(peak_anon),
        per_lifetime(kept_anon),
        a.index_bytes() as f64 / lifetimes,
    );
    if !queries {
        return;
    }
    let mut worst_at = 0f64;
    let mut at_fields = String::new();
    for when in ["10%", "50%", "peak", "end"] {
        let t = a.resolve_when(when).expect("moment");
        let (mut outstanding, mut totals, mut grouping) = (Vec::new(), Vec::new(), Vec::new());
        let (mut live_blocks, mut groups) = (0, 0);
        let (faults_before, cpu_before) = (minor_faults(), cpu_seconds());
        for _ in 0..3 {
            let started = Instant::now();
            let snapshot = a.outstanding_at(t);
            outstanding.push(started.elapsed().as_secs_f64() * 1e3);
            let started = Instant::now();
            live_blocks = a.live_at(t).blocks;
            totals.push(started.elapsed().as_secs_f64() * 1e3);
            let started = Instant::now();
            // The raw grouping by stack, top 20 groups made (`leakview report` also merges the
            // groups of stacks that read alike: timed apart below).
            let by_stack = a.group(&snapshot, GroupBy::Stack);
            groups = by_stack.len();
            std::hint::black_box(by_stack.top(20));
            drop(by_stack);
            grouping.push(started.elapsed().as_secs_f64() * 1e3);
        }
        let faults = (minor_faults() - faults_before) / 3;
        let cpu_ms = (cpu_seconds() - cpu_before) * 1e3 / 3.0;
        // Every group made (as `--top 0`, JSON of all groups or folded output need): not part of
        // the query above.
        let by_stack = a.group(&a.outstanding_at(t), GroupBy::Stack);
        let started = Instant::now();
        let all = std::hint::black_box(by_stack.all()).len();
        let all_ms = started.elapsed().as_secs_f64() * 1e3;
        // What `leakview report` adds: the groups of stacks that read alike merged (every stack
        // of the moment symbolized, the first time), then the top 20 made.
        let snapshot = a.outstanding_at(t);
        let mut merging = Vec::new();
        let mut merged_groups = 0;
        for _ in 0..2 {
            let started = Instant::now();
            let merged = a.group_merged(&snapshot, GroupBy::Stack);
            merged_groups = merged.len();
            std::hint::black_box(merged.top(20));
            drop(merged);
            merging.push(started.elapsed().as_secs_f64() * 1e3);
        }
        let (o, l, g) = (median(outstanding), median(totals), median(grouping));
        worst_at = worst_at.max(o + g);
        at_fields.push_str(&format!(" at_{}_ms={:.1}", when.trim_end_matches('%'), o + g));
        println!(
            "  --at {when:<4}: {live_blocks} blocks live; outstanding set {o:.1} ms, live totals {l:.1} ms, group by stack {g:.1} ms ({groups} stacks, top 20 made); per query (all three steps, mean): {cpu_ms:.0} ms cpu, {faults} page faults; making all {all} groups: {all_ms:.1} ms; merging stacks that read alike ({merged_groups} groups, top 20 made): {:.1} ms first, {:.1} ms with symbols cached",
            merging[0], merging[1],
        );
    }
    println!(
        "RESULT events={} lifetimes={} load_wall_s={:.3} load_cpu_s={:.3} sampler_cpu_s={:.3} peak_rss_mib={} file_mib={} peak_anon_b_per_lifetime={:.1} kept_anon_b_per_lifetime={:.1} tables_b_per_lifetime={:.1} worst_at_ms={:.1}{}",
        s.events,
        s.totals.allocations,
        load.as_secs_f64(),
        load_cpu,
        sampler_cpu,
        peak_rss_kib() / 1024,
        s.file_bytes >> 20,
        per_lifetime(peak_anon),
        per_lifetime(kept_anon),
        a.index_bytes() as f64 / lifetimes,
        worst_at,
        at_fields,
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    if let [flag, path] = args.as_slice()
        && (flag == "--load" || flag == "--load-only")
    {
        load_and_query(Path::new(path), flag == "--load");
        return;
    }
    let counts: Vec<u64> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let counts = if counts.is_empty() { vec![10_000_000] } else { counts };
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"))
        .join("leakview-bench");
    std::fs::create_dir_all(&dir).expect("bench dir");
    for events in counts {
        let path = dir.join(format!("synthetic-{events}.bin"));
        if !path.exists() {
            let started = Instant::now();
            generate(&path, events);
            println!("wrote {} in {:.1} s", path.display(), started.elapsed().as_secs_f64());
        }
        println!("{} ({} MiB)", path.display(), std::fs::metadata(&path).map(|m| m.len() >> 20).unwrap_or(0));
        let exe = std::env::current_exe().expect("own path");
        let status = Command::new(exe).arg("--load").arg(&path).status().expect("run loader");
        assert!(status.success(), "loader failed");
    }
}
