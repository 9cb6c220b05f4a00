//! One recorded run: starts a program with the recorder library preloaded and collects the traces
//! it wrote. Shared by `leakview record` and `leakview demo`.
//!
//! The environment protocol with `libleakview_preload.so` (the recorder reads these variables):
//! - `LD_PRELOAD`: the recorder library, prepended to any existing entries.
//! - `LEAKVIEW_OUTPUT`: absolute path of the trace; `%p` in it stands for the recorded process's pid.
//!   Fork children of a process recording to a fixed path write `<stem>.<pid>.bin` beside it.
//! - `LEAKVIEW_DEPTH`: the maximum number of stack frames captured.
//! - `LEAKVIEW_MANIFEST`: a file to which every recorded process appends one line: the absolute
//!   path of the trace it created, or `!` and the reason it could not record.
//! - `LEAKVIEW_ONLY_CHILD_OF` (`--no-children`): this process's pid; only processes whose parent
//!   it is record (the program started and the images it execs).

use std::ffi::OsString;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

use anyhow::Context;

use crate::{embedded, supervise};

pub const OUTPUT_ENV: &str = "LEAKVIEW_OUTPUT";
pub const DEPTH_ENV: &str = "LEAKVIEW_DEPTH";
pub const MANIFEST_ENV: &str = "LEAKVIEW_MANIFEST";
pub const ONLY_CHILD_OF_ENV: &str = "LEAKVIEW_ONLY_CHILD_OF";
pub const RSS_INTERVAL_ENV: &str = "LEAKVIEW_RSS_INTERVAL_MS";
pub const HEAP_SCAN_ENV: &str = "LEAKVIEW_HEAP_SCAN";
/// Milliseconds between RSS samples (the recorder's default too).
pub const DEFAULT_RSS_INTERVAL_MS: u64 = 10;
/// Stack depth `leakview record` records with by default, and `leakview demo` always.
pub const DEFAULT_DEPTH: u32 = 128;
/// The deepest stack the recorder captures (its `MAX_DEPTH_LIMIT`; it would cut a deeper
/// `LEAKVIEW_DEPTH` to this).
pub const MAX_DEPTH: u32 = 256;

/// What to record and where.
pub struct RecordPlan<'a> {
    /// The resolved program to run.
    pub program: &'a Path,
    /// `argv`, `argv[0]` as the user wrote it.
    pub argv: &'a [String],
    /// Absolute trace path (it may hold `%p`).
    pub output: &'a Path,
    pub depth: u32,
    /// Milliseconds between samples of the resident set size (0: none).
    pub rss_interval_ms: u64,
    /// Scan memory for references to heap blocks at exit (leak kinds).
    pub leak_kinds: bool,
    /// Record the program started (and the images it execs) only, not the processes it forks.
    pub no_children: bool,
}

/// How the recorded program ended and which traces it left.
pub struct Finished {
    pub status: ExitStatus,
    /// Absolute paths, in the order the processes created them.
    pub traces: Vec<PathBuf>,
    /// Why processes could not record, one entry per process.
    pub failures: Vec<String>,
}

/// Runs the plan to the end. `Err` only if the program could not be started.
pub fn run(plan: &RecordPlan<'_>) -> anyhow::Result<Finished> {
    let library = embedded::preload_library()?;
    let manifest = tempfile::Builder::new()
        .prefix("leakview-traces-")
        .suffix(".txt")
        .tempfile()
        .context("creating the list of written traces in the temporary directory")?;
    let manifest_path = std::path::absolute(manifest.path())?;

    let mut command = Command::new(plan.program);
    if let Some((arg0, args)) = plan.argv.split_first() {
        command.arg0(arg0).args(args);
    }
    command
        .env("LD_PRELOAD", ld_preload_value(&library, std::env::var_os("LD_PRELOAD")))
        .env(OUTPUT_ENV, plan.output)
        .env(DEPTH_ENV, plan.depth.to_string())
        .env(RSS_INTERVAL_ENV, plan.rss_interval_ms.to_string())
        .env(MANIFEST_ENV, &manifest_path)
        .env(HEAP_SCAN_ENV, if plan.leak_kinds { "1" } else { "0" });
    if plan.no_children {
        command.env(ONLY_CHILD_OF_ENV, std::process::id().to_string());
    } else {
        // One inherited from an outer `leakview record --no-children` would leave this run out.
        command.env_remove(ONLY_CHILD_OF_ENV);
    }
    let status =
        supervise::run(&mut command).with_context(|| format!("cannot run {}", plan.program.display()))?;

    let listed = fs::read_to_string(&manifest_path).unwrap_or_default();
    drop(manifest);
    let (traces, failures) = parse_manifest(&listed);
    Ok(Finished { status, traces, failures })
}

/// The recorder first, then whatever the user already preloads (so a preloaded allocator such as
/// jemalloc stays the allocator the recorder forwards to).
pub fn ld_preload_value(library: &Path, existing: Option<OsString>) -> OsString {
    let mut value = library.as_os_str().to_owned();
    if let Some(existing) = existing.filter(|e| !e.is_empty()) {
        value.push(":");
        value.push(existing);
    }
    value
}

/// The manifest's absolute trace paths, each once, in order; and the reasons processes gave
/// for not recording (`!` lines).
pub fn parse_manifest(text: &str) -> (Vec<PathBuf>, Vec<String>) {
    let mut traces: Vec<PathBuf> = Vec::new();
    let mut failures = Vec::new();
    for line in text.lines().map(str::trim_end) {
        if let Some(reason) = line.strip_prefix('!') {
            failures.push(reason.to_string());
            continue;
        }
        let path = PathBuf::from(line);
        if path.is_absolute() && !traces.contains(&path) {
            traces.push(path);
        }
    }
    (traces, failures)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorder_comes_first_in_ld_preload() {
        let lib = Path::new("/cache/libleakview_preload.so");
        assert_eq!(ld_preload_value(lib, None), OsString::from("/cache/libleakview_preload.so"));
        assert_eq!(
            ld_preload_value(lib, Some(OsString::new())),
            OsString::from("/cache/libleakview_preload.so")
        );
        assert_eq!(
            ld_preload_value(lib, Some(OsString::from("/usr/lib/libjemalloc.so.2"))),
            OsString::from("/cache/libleakview_preload.so:/usr/lib/libjemalloc.so.2")
        );
    }

    #[test]
    fn manifest_lines_are_deduplicated_absolute_paths() {
        let text = "/tmp/a.bin\n/tmp/b.1234.bin\n/tmp/a.bin\nrelative.bin\n!cannot create trace /tmp/c.bin: No space\n\n";
        let (traces, failures) = parse_manifest(text);
        assert_eq!(traces, vec![PathBuf::from("/tmp/a.bin"), PathBuf::from("/tmp/b.1234.bin")]);
        assert_eq!(failures, vec!["cannot create trace /tmp/c.bin: No space".to_string()]);
    }
}
