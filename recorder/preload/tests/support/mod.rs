//! End-to-end test support: build the C/C++ fixtures with the system compiler (-O2, no frame
//! pointers), run them under the real preload library, read their traces and replay them to
//! find the outstanding blocks, and attribute each block to the fixture function that
//! allocated it (its innermost frame outside the allocator, symbolized with `nm`).

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use leakview_format::{OwnedEvent, Segment, TraceMetadata, TraceReader};

/// The preload library, built (once per test run) into the target directory of these tests:
/// cargo does not build a cdylib for its own integration tests.
pub fn preload_library() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let exe = std::env::current_exe().expect("test executable path");
            let profile_dir = exe.parent().and_then(Path::parent).expect("target profile directory");
            let target_dir = profile_dir.parent().expect("target directory");
            let release = profile_dir.file_name().is_some_and(|n| n == "release");
            let mut cmd = Command::new(env!("CARGO"));
            cmd.args(["build", "--quiet", "-p", "leakview-preload", "--target-dir"]).arg(target_dir);
            if release {
                cmd.arg("--release");
            }
            let status = cmd.status().expect("run cargo build for the preload library");
            assert!(status.success(), "building leakview-preload failed");
            let lib = profile_dir.join("libleakview_preload.so");
            assert!(lib.exists(), "{} is missing after the build", lib.display());
            lib
        })
        .clone()
}

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

pub fn include_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("include")
}

/// Whether a C++ compiler is installed. Debian's `gcc` does not bring `g++`: outside CI a C++
/// fixture test is then skipped with a note; under CI (`CI` set) the compiler is required.
pub fn cpp_compiler_available() -> bool {
    let found = Command::new("g++").arg("--version").output().is_ok_and(|o| o.status.success());
    if !found {
        assert!(std::env::var_os("CI").is_none(), "g++ is required under CI (.ci/run installs it)");
        eprintln!("note: g++ is not installed; skipping this C++ fixture test");
    }
    found
}

/// Compiles fixture `sources` into `out` with `-O2 -g -fomit-frame-pointer`.
pub fn compile(sources: &[&str], out: &Path, extra: &[&str]) {
    let cpp = sources.iter().any(|s| s.ends_with(".cpp"));
    let compiler = if cpp { "g++" } else { "gcc" };
    let mut cmd = Command::new(compiler);
    cmd.args(["-O2", "-g", "-fomit-frame-pointer", "-pthread"]).arg("-I").arg(include_dir());
    for source in sources {
        cmd.arg(fixtures_dir().join(source));
    }
    cmd.args(extra).arg("-o").arg(out);
    let output = cmd.output().expect("run the C compiler");
    assert!(
        output.status.success(),
        "{compiler} failed for {sources:?}:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs `exe` under the preload library, recording into `trace` (manifest beside it).
pub fn record(exe: &Path, args: &[&str], trace: &Path, manifest: &Path, depth: Option<u32>) -> Output {
    let output = recording_command(exe, args, trace, manifest, depth).output().expect("run fixture");
    assert_succeeded(exe, &output);
    output
}

/// [`record`] with these environment settings for the recorder added.
pub fn record_with(exe: &Path, trace: &Path, manifest: &Path, settings: &[(&str, &str)]) -> Output {
    let output = recording_command(exe, &[], trace, manifest, None)
        .envs(settings.iter().copied())
        .output()
        .expect("run fixture");
    assert_succeeded(exe, &output);
    output
}

/// [`record`], failing the test if the program has not ended within `limit` (it is killed).
pub fn record_within(exe: &Path, trace: &Path, manifest: &Path, limit: std::time::Duration) -> Output {
    let mut child = recording_command(exe, &[], trace, manifest, None)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run fixture");
    let deadline = std::time::Instant::now() + limit;
    while child.try_wait().expect("wait for the fixture").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{} did not end within {limit:?} under the recorder", exe.display());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let output = child.wait_with_output().expect("collect the fixture's output");
    assert_succeeded(exe, &output);
    output
}

fn recording_command(
    exe: &Path,
    args: &[&str],
    trace: &Path,
    manifest: &Path,
    depth: Option<u32>,
) -> Command {
    std::fs::write(manifest, b"").expect("create manifest");
    let mut cmd = Command::new(exe);
    cmd.args(args)
        .env("LD_PRELOAD", preload_library())
        .env("LEAKVIEW_OUTPUT", trace)
        .env("LEAKVIEW_MANIFEST", manifest);
    match depth {
        Some(depth) => cmd.env("LEAKVIEW_DEPTH", depth.to_string()),
        None => cmd.env_remove("LEAKVIEW_DEPTH"),
    };
    cmd
}

fn assert_succeeded(exe: &Path, output: &Output) {
    assert!(
        output.status.success(),
        "{} failed: {:?}\nstdout: {}\nstderr: {}",
        exe.display(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The traces a run announced in the manifest.
pub fn manifest_traces(manifest: &Path) -> Vec<PathBuf> {
    std::fs::read_to_string(manifest).expect("read manifest").lines().map(PathBuf::from).collect()
}

#[derive(Debug, Clone)]
pub struct Module {
    pub id: u32,
    pub base: u64,
    pub path: String,
    pub segments: Vec<Segment>,
    pub unloaded: bool,
}

impl Module {
    pub fn contains(&self, ip: u64) -> bool {
        self.segments.iter().any(|s| {
            let start = self.base.wrapping_add(s.vaddr);
            ip >= start && ip < start + s.memsz
        })
    }
}

/// A block outstanding at the end of the trace.
#[derive(Debug, Clone)]
pub struct Block {
    pub addr: u64,
    pub size: u64,
    pub align: u64,
    pub stack: u32,
    pub tid: u32,
}

/// Everything the tests look at in one trace.
pub struct Trace {
    pub path: PathBuf,
    pub metadata: TraceMetadata,
    pub complete: bool,
    pub nodes: HashMap<u32, (u32, u64)>,
    pub modules: Vec<Module>,
    pub marks: Vec<String>,
    /// (tid, name) of every ThreadName event.
    pub thread_names: Vec<(u32, String)>,
    /// (ts, bytes) of every ResidentMemory event, in time order.
    pub resident: Vec<(u64, u64)>,
    /// Times of the first and the last allocation.
    alloc_span: Option<(u64, u64)>,
    pub chunk_tids: Vec<u32>,
    pub outstanding: Vec<Block>,
    pub counts: ReplayCounts,
}

/// What the replay of a trace counted.
#[derive(Debug, Default, Clone, Copy)]
pub struct ReplayCounts {
    pub allocations: u64,
    pub frees: u64,
    pub unknown_frees: u64,
    /// Allocations at an address whose block was still live, whose free did not follow within
    /// the clock's skew window: a correct recording never shows one.
    pub allocated_while_live: u64,
    /// Allocations at an address last freed on another thread.
    pub cross_thread_reuses: u64,
    /// An allocation and a free of one address on different threads that the clock swapped,
    /// put back in order.
    pub swapped: u64,
}

enum Op {
    Alloc { addr: u64, size: u64, align: u64, stack: u32 },
    Free { addr: u64 },
}

type TimedOp = (u64, u32, u32, u32, Op);

/// How far apart an allocation and a free of one address on different threads may come out
/// swapped by the recorder's clock (FORMAT.md, "Ordering across threads").
const SKEW_WINDOW_NS: u64 = 10_000;

/// Replays allocations and frees in time order, as the analyzer does (FORMAT.md): the events of
/// one moment are applied per address in the order its state allows, a release first when the
/// address holds a live block; an allocation and a free of one address on different threads that
/// the clock swapped (within [`SKEW_WINDOW_NS`]) are put back in order.
#[derive(Default)]
struct Replay {
    live: HashMap<u64, Block>,
    last_free_tid: HashMap<u64, u32>,
    /// Blocks displaced by an allocation at their address: (address, time, displacing thread).
    displaced: Vec<(u64, u64, u32)>,
    /// Frees that found no live block: (address, time, thread).
    orphans: Vec<(u64, u64, u32)>,
    counts: ReplayCounts,
}

impl Replay {
    fn alloc(&mut self, ts: u64, tid: u32, addr: u64, size: u64, align: u64, stack: u32) {
        self.counts.allocations += 1;
        if self.last_free_tid.get(&addr).is_some_and(|&t| t != tid) {
            self.counts.cross_thread_reuses += 1;
        }
        self.orphans.retain(|&(_, t, _)| t + SKEW_WINDOW_NS >= ts);
        if let Some(at) = self.orphans.iter().position(|&(a, _, _)| a == addr) {
            let (_, _, freed_by) = self.orphans.remove(at);
            if freed_by != tid {
                // Freed on another thread with a time read early: the block came and went.
                self.counts.unknown_frees -= 1;
                self.counts.swapped += 1;
                return;
            }
        }
        let block = Block { addr, size, align, stack, tid };
        if self.live.insert(addr, block).is_some() {
            self.counts.allocated_while_live += 1;
            self.displaced.push((addr, ts, tid));
        }
    }

    fn free(&mut self, ts: u64, tid: u32, addr: u64) {
        self.counts.frees += 1;
        self.last_free_tid.insert(addr, tid);
        self.displaced.retain(|&(_, t, _)| t + SKEW_WINDOW_NS >= ts);
        if let Some(at) = self.displaced.iter().position(|&(a, _, _)| a == addr)
            && self.displaced[at].2 != tid
        {
            // The free of the displaced block, with a time read late relative to the allocation.
            self.displaced.remove(at);
            self.counts.allocated_while_live -= 1;
            self.counts.swapped += 1;
            return;
        }
        if self.live.remove(&addr).is_none() {
            self.counts.unknown_frees += 1;
            self.orphans.push((addr, ts, tid));
        }
    }

    /// The events of one timestamp, sorted by thread and position.
    fn moment(&mut self, events: &[TimedOp]) {
        let Some(&(ts, ..)) = events.first() else { return };
        let mut by_addr: BTreeMap<u64, (Vec<&TimedOp>, Vec<u32>)> = BTreeMap::new();
        for event in events {
            match event.4 {
                Op::Alloc { addr, .. } => by_addr.entry(addr).or_default().0.push(event),
                Op::Free { addr } => by_addr.entry(addr).or_default().1.push(event.3),
            }
        }
        for (addr, (allocs, free_tids)) in by_addr {
            let (mut allocs, mut free_tids) = (allocs.into_iter(), free_tids.into_iter().peekable());
            loop {
                if self.live.contains_key(&addr) && free_tids.peek().is_some() {
                    let tid = free_tids.next().unwrap_or_default();
                    self.free(ts, tid, addr);
                } else if let Some(&(_, _, _, tid, Op::Alloc { addr, size, align, stack })) = allocs.next() {
                    self.alloc(ts, tid, addr, size, align, stack);
                } else if let Some(tid) = free_tids.next() {
                    self.free(ts, tid, addr);
                } else {
                    break;
                }
            }
        }
    }
}

impl Trace {
    pub fn load(path: &Path) -> Trace {
        let reader = TraceReader::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        let mut nodes = HashMap::new();
        let mut modules: Vec<Module> = Vec::new();
        let mut marks = Vec::new();
        let mut thread_names = Vec::new();
        let mut resident = Vec::new();
        let mut chunk_tids = Vec::new();
        // (ts, chunk index, position, tid, op): replay in time order; same-thread order breaks ties.
        let mut ops: Vec<TimedOp> = Vec::new();
        for chunk in reader.chunks() {
            chunk_tids.push(chunk.tid);
            let order = chunk.seq_in_thread;
            for (pos, event) in (1u32..).zip(reader.events(chunk)) {
                let event =
                    event.unwrap_or_else(|e| panic!("decode {}: {e}", path.display())).to_owned_event();
                let key = |ts| (ts, chunk.tid, order * 1_000_000 + pos);
                match event {
                    OwnedEvent::Alloc { ts, addr, size, align, stack } => {
                        let (t, tid, p) = key(ts);
                        ops.push((t, tid, p, chunk.tid, Op::Alloc { addr, size, align, stack }));
                    }
                    OwnedEvent::Free { ts, addr } => {
                        let (t, tid, p) = key(ts);
                        ops.push((t, tid, p, chunk.tid, Op::Free { addr }));
                    }
                    OwnedEvent::Realloc { ts_free, ts, old_addr, new_addr, size, stack } => {
                        let (t, tid, p) = key(ts_free);
                        ops.push((t, tid, p, chunk.tid, Op::Free { addr: old_addr }));
                        let (t, tid, p) = key(ts);
                        ops.push((t, tid, p, chunk.tid, Op::Alloc { addr: new_addr, size, align: 0, stack }));
                    }
                    OwnedEvent::StackNode { id, parent, ip } => {
                        nodes.insert(id, (parent, ip));
                    }
                    OwnedEvent::ModuleLoad { id, base, path, segments, .. } => modules.push(Module {
                        id,
                        base,
                        path: String::from_utf8_lossy(&path).into_owned(),
                        segments,
                        unloaded: false,
                    }),
                    OwnedEvent::ModuleUnload { id, .. } => {
                        for m in modules.iter_mut().filter(|m| m.id == id) {
                            m.unloaded = true;
                        }
                    }
                    OwnedEvent::Mark { label, .. } => {
                        marks.push(String::from_utf8_lossy(&label).into_owned())
                    }
                    OwnedEvent::ThreadName { tid, name, .. } => {
                        thread_names.push((tid, String::from_utf8_lossy(&name).into_owned()));
                    }
                    OwnedEvent::ResidentMemory { ts, bytes } => resident.push((ts, bytes)),
                    // The heap scan at exit: its tests read it through the analyzer.
                    OwnedEvent::ScanRegion { .. }
                    | OwnedEvent::References { .. }
                    | OwnedEvent::ScanEnd { .. } => {}
                }
            }
        }
        ops.sort_by_key(|(ts, tid, pos, _, _)| (*ts, *tid, *pos));
        resident.sort_unstable();
        let alloc_times = ops.iter().filter(|op| matches!(op.4, Op::Alloc { .. })).map(|op| op.0);
        let alloc_span = alloc_times.clone().min().zip(alloc_times.max());
        let mut replay = Replay::default();
        for moment in ops.chunk_by(|a, b| a.0 == b.0) {
            replay.moment(moment);
        }
        let Replay { live, counts, .. } = replay;
        let mut outstanding: Vec<Block> = live.into_values().collect();
        outstanding.sort_by_key(|b| b.addr);
        Trace {
            path: path.to_path_buf(),
            metadata: reader.metadata().clone(),
            complete: reader.is_complete(),
            nodes,
            modules,
            marks,
            thread_names,
            resident,
            alloc_span,
            chunk_tids,
            outstanding,
            counts,
        }
    }

    /// Times of the first and the last allocation, if any.
    pub fn alloc_time_span(&self) -> Option<(u64, u64)> {
        self.alloc_span
    }

    /// Return addresses of stack `id`, innermost first.
    pub fn frames(&self, mut id: u32) -> Vec<u64> {
        let mut out = Vec::new();
        while id != 0 {
            let (parent, ip) =
                *self.nodes.get(&id).unwrap_or_else(|| panic!("stack node {id} is not defined"));
            out.push(ip);
            assert!(out.len() <= 1024, "stack {id} has a cycle");
            id = parent;
        }
        out
    }

    pub fn module_of(&self, ip: u64) -> Option<&Module> {
        self.modules.iter().rev().find(|m| m.contains(ip))
    }
}

/// Function symbols of one ELF file, from `nm -S --defined-only --demangle`.
pub struct Symbols {
    functions: Vec<(u64, u64, String)>,
}

impl Symbols {
    pub fn of(path: &Path) -> Symbols {
        let output = Command::new("nm")
            .args(["-S", "--defined-only", "--demangle"])
            .arg(path)
            .output()
            .expect("run nm");
        assert!(output.status.success(), "nm {} failed", path.display());
        let mut functions = Vec::new();
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            let mut parts = line.splitn(4, ' ');
            let (Some(addr), Some(size), Some(kind), Some(name)) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            if !matches!(kind, "t" | "T" | "W" | "w") {
                continue;
            }
            if let (Ok(addr), Ok(size)) = (u64::from_str_radix(addr, 16), u64::from_str_radix(size, 16)) {
                functions.push((addr, size, base_name(name).to_string()));
            }
        }
        Symbols { functions }
    }

    /// The function containing file-relative address `svma`.
    pub fn lookup(&self, svma: u64) -> Option<&str> {
        self.functions
            .iter()
            .find(|(addr, size, _)| svma >= *addr && svma < addr + size)
            .map(|(_, _, name)| name.as_str())
    }
}

/// A compiler-made clone's name without its suffix (`f.isra.0`, `f.constprop.0`, `f.part.0`,
/// `f.cold` are all `f`).
fn base_name(name: &str) -> &str {
    [".isra.", ".constprop.", ".part.", ".cold"]
        .iter()
        .filter_map(|s| name.find(s))
        .min()
        .map_or(name, |i| &name[..i])
}

fn is_allocator_frame(module: &str, function: Option<&str>) -> bool {
    module.contains("libstdc++")
        || module.contains("libleakview_preload")
        || function.is_some_and(|f| {
            f.starts_with("std::") || f.starts_with("__gnu_cxx::") || f.starts_with("operator new")
        })
}

/// Symbolizes frames of the fixture's own files.
pub struct Attribution {
    symbols: Vec<(String, Symbols)>,
}

impl Attribution {
    /// `files`: the fixture executable and shared objects, as recorded module paths.
    pub fn new(files: &[&Path]) -> Attribution {
        let symbols = files
            .iter()
            .map(|p| {
                let canonical = std::fs::canonicalize(p).expect("canonical fixture path");
                (canonical.to_string_lossy().into_owned(), Symbols::of(p))
            })
            .collect();
        Attribution { symbols }
    }

    fn symbols_for(&self, module: &Module) -> Option<&Symbols> {
        let path = std::fs::canonicalize(&module.path).map(|p| p.to_string_lossy().into_owned()).ok();
        self.symbols.iter().find(|(p, _)| Some(p) == path.as_ref() || *p == module.path).map(|(_, s)| s)
    }

    /// The function a frame's return address lies in, if in a fixture file.
    pub fn function(&self, trace: &Trace, ip: u64) -> Option<(String, String)> {
        let module = trace.module_of(ip)?;
        let name = self.symbols_for(module)?.lookup(ip.wrapping_sub(1).wrapping_sub(module.base))?;
        Some((module.path.clone(), name.to_string()))
    }

    /// The allocating function: the innermost frame outside the allocator, if it is fixture
    /// code ("<other>" for blocks that the runtime allocated on its own).
    pub fn allocating_function(&self, trace: &Trace, stack: u32) -> String {
        for ip in trace.frames(stack) {
            let Some(module) = trace.module_of(ip) else { return "<unknown module>".into() };
            let function = self
                .symbols_for(module)
                .and_then(|s| s.lookup(ip.wrapping_sub(1).wrapping_sub(module.base)).map(str::to_string));
            if is_allocator_frame(&module.path, function.as_deref()) {
                continue;
            }
            return match (self.symbols_for(module), function) {
                (Some(_), Some(name)) => name,
                _ => "<other>".into(),
            };
        }
        "<other>".into()
    }

    /// Outstanding (blocks, bytes) per allocating fixture function; runtime-internal blocks
    /// are left out.
    pub fn leaks(&self, trace: &Trace) -> BTreeMap<String, (u64, u64)> {
        let mut out = BTreeMap::new();
        for block in &trace.outstanding {
            let function = self.allocating_function(trace, block.stack);
            if function.starts_with('<') {
                continue;
            }
            let entry = out.entry(function).or_insert((0, 0));
            entry.0 += 1;
            entry.1 += block.size;
        }
        out
    }
}

/// Builds an expected leak table.
pub fn expect(rows: &[(&str, u64, u64)]) -> BTreeMap<String, (u64, u64)> {
    rows.iter().map(|&(f, blocks, bytes)| (f.to_string(), (blocks, bytes))).collect()
}
