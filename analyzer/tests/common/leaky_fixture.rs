//! The C fixture `tests/fixtures/leaky.c`, compiled with debug info, and its symbols'
//! addresses: synthetic traces point their stacks into it so that symbolization is real.

use std::path::{Path, PathBuf};
use std::process::Command;

use leakview_format::Segment;

use super::TraceBuilder;

/// Where the fixture is loaded in the synthetic traces.
pub const BASE: u64 = 0x5555_0000_0000;
/// Where the recorder's library is loaded in them (its frames must be trimmed).
pub const PRELOAD_BASE: u64 = 0x7f00_0000_0000;
/// A return address in the recorder's library, outside any of its symbols.
pub const RECORDER_FRAME: u64 = PRELOAD_BASE + 0x1234;

/// Stack ids that [`leaky_stacks`] defines.
pub const MAIN_STACK: u32 = 1;
/// make_leak → main.
pub const LEAK_STACK: u32 = 4;
/// The recorder's frame → make_leak → main.
pub const RECORDED_LEAK_STACK: u32 = 2;
/// make_temp → main.
pub const TEMP_STACK: u32 = 3;

/// Compiles the fixture into `dir`, and writes into `b` (thread 1) the fixture's module, the
/// recorder library's, and the stacks [`MAIN_STACK`], [`LEAK_STACK`], [`RECORDED_LEAK_STACK`]
/// and [`TEMP_STACK`]. Returns the fixture's path.
pub fn leaky_stacks(dir: &Path, b: &mut TraceBuilder) -> PathBuf {
    let exe = build_fixture(dir);
    let address = |symbol| BASE + symbol_address(&exe, symbol);
    let segments = [Segment { vaddr: 0, memsz: 0x10_0000, flags: 5 }];
    b.module(1, 0, 1, BASE, exe.to_str().expect("utf-8 path"), &segments);
    b.module(1, 0, 2, PRELOAD_BASE, "/opt/leakview/libleakview_preload.so", &segments);
    b.stack(1, MAIN_STACK, 0, address("main") + 20);
    b.stack(1, LEAK_STACK, MAIN_STACK, address("make_leak") + 12);
    b.stack(1, RECORDED_LEAK_STACK, LEAK_STACK, RECORDER_FRAME);
    b.stack(1, TEMP_STACK, MAIN_STACK, address("make_temp") + 12);
    exe
}

/// Compiles the fixture into `dir` and returns its path.
pub fn build_fixture(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/leaky.c");
    let exe = dir.join("leaky");
    let status = Command::new("cc")
        .args(["-g", "-O0", "-fno-omit-frame-pointer", "-o"])
        .arg(&exe)
        .arg(&src)
        .status()
        .expect("run cc");
    assert!(status.success(), "cc failed");
    exe
}

/// ELF virtual address of `symbol` in `exe`, from `nm`.
pub fn symbol_address(exe: &Path, symbol: &str) -> u64 {
    let out = Command::new("nm").arg(exe).output().expect("run nm");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|line| {
            let mut parts = line.split_whitespace();
            let addr = parts.next()?;
            let _kind = parts.next()?;
            (parts.next()? == symbol).then(|| u64::from_str_radix(addr, 16).ok()).flatten()
        })
        .unwrap_or_else(|| panic!("{symbol} not in nm output"))
}

/// A synthetic trace whose stacks point into the fixture: the fixture's directory (the
/// compiled program must outlive the trace's symbolization) and the trace.
pub struct LeakyTrace {
    _dir: tempfile::TempDir,
    pub trace: super::Finished,
}

impl LeakyTrace {
    /// Compiles the fixture, writes its modules and stacks ([`leaky_stacks`]), lets `events`
    /// add the rest, and finishes the trace at `end`.
    pub fn write(end: u64, events: impl FnOnce(&mut TraceBuilder)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut b = TraceBuilder::new();
        leaky_stacks(dir.path(), &mut b);
        events(&mut b);
        LeakyTrace { _dir: dir, trace: b.finish(end) }
    }

    pub fn load(&self) -> leakview_analyzer::Analysis {
        let options = leakview_analyzer::LoadOptions::default();
        leakview_analyzer::Analysis::open(&self.trace.path, &options, &leakview_analyzer::NoProgress)
            .expect("loads")
    }
}
