//! `leakview demo [-o FILE] [--no-tui]`: records the small leaky program bundled with leakview
//! (`fixtures/demo/leaky.c`) and shows what it leaked. The newcomer's first command.
//!
//! The trace is kept (default `./leakview-demo.bin`, or the next free `-2`, `-3`... name; in the
//! cache directory if the current one is not writable) so it can be opened again afterwards.
//! What is shown: in a terminal, the browser on the trace (q quits); otherwise, or with
//! `--no-tui`, `leakview report` of what was outstanding at the end, grouped by allocation stack;
//! then the command to look again.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use rustix::fs::Access;

use crate::cli::{DemoArgs, GroupBy, ReportArgs, ReportFormat, What, WindowArgs};
use crate::messages::say;
use crate::recording::{self, DEFAULT_DEPTH, DEFAULT_RSS_INTERVAL_MS, RecordPlan};
use crate::{cache_dir, embedded, trace_paths};

use super::report;

pub fn run(args: &DemoArgs) -> anyhow::Result<ExitCode> {
    let program = embedded::demo_program()?;
    let output = match &args.output {
        Some(path) => {
            if std::fs::symlink_metadata(path).is_ok() {
                bail!(
                    "{} already exists (the demo never overwrites a file; choose another -o)",
                    path.display()
                );
            }
            trace_paths::prepare_explicit_output(path, false, "leakview-demo")?
        }
        None => default_output()?,
    };
    say!(
        "leakview: recording the demo: a small server whose two worker threads serve 200 requests \
         and leak in three places (source: fixtures/demo/leaky.c)"
    );
    let argv = ["leakview-demo".to_string()];
    let finished = recording::run(&RecordPlan {
        program: &program,
        argv: &argv,
        output: &output,
        depth: DEFAULT_DEPTH,
        rss_interval_ms: DEFAULT_RSS_INTERVAL_MS,
        leak_kinds: false,
        no_children: false,
    })?;
    if !finished.status.success() {
        bail!("the demo program failed ({})", finished.status);
    }
    let Some(trace) = finished.traces.first() else {
        bail!("the demo ran but the recorder wrote no trace (is LD_PRELOAD usable here?)");
    };
    show_leaks(trace, args.no_tui)?;
    let shown = trace_paths::for_shell(trace);
    say!(
        "leakview: the demo trace is kept at {shown}: browse it over time with `leakview {shown}`, \
         group by function with `leakview report --group-by function {shown}`, \
         or see which stacks look like leaks with `leakview suspects {shown}`"
    );
    Ok(ExitCode::SUCCESS)
}

/// The browser on the demo trace when standard input and output are a terminal (and `--no-tui`
/// is not given); otherwise (a pipe, CI) the report of what the demo left outstanding at its end.
fn show_leaks(trace: &Path, no_tui: bool) -> anyhow::Result<()> {
    if !no_tui && std::io::stdout().is_terminal() && std::io::stdin().is_terminal() {
        return Ok(leakview_tui::browse(trace)?);
    }
    let args = ReportArgs {
        at: "end".into(),
        what: What::Outstanding,
        rank_by: None,
        group_by: GroupBy::Stack,
        top: Some(10),
        format: ReportFormat::Text,
        leak_kind: None,
        window: WindowArgs { allocated_after: None, allocated_before: None },
        trace: trace.to_path_buf(),
    };
    report::run(&args).map(|_| ())
}

/// `./leakview-demo.bin` (or the next free numbered name) if the current directory is writable,
/// otherwise the same in the cache directory.
fn default_output() -> anyhow::Result<PathBuf> {
    let cwd = std::env::current_dir().context("finding the current directory")?;
    let dir = if rustix::fs::access(&cwd, Access::WRITE_OK).is_ok() {
        cwd
    } else {
        cache_dir::ensure("demo-traces", |_| true)?
    };
    trace_paths::first_free(&dir, "leakview-demo", "bin")
        .with_context(|| format!("no free name for the demo trace in {}", dir.display()))
}
