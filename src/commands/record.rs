//! `leakview record [-o FILE] [--depth N] [--force] -- CMD ARGS...`: runs a program with the
//! recorder preloaded, tells where its traces went, and exits the way the program did.

use std::ffi::OsStr;
use std::process::ExitCode;

use anyhow::bail;

use crate::cli::RecordArgs;
use crate::recording::{self, RecordPlan};
use crate::{supervise, target_program, trace_paths, traces_written};

pub fn run(args: &RecordArgs) -> anyhow::Result<ExitCode> {
    if args.depth == 0 {
        bail!("--depth must be at least 1");
    }
    let Some(name) = args.command.first() else { bail!("no command given (leakview record -- CMD ARGS...)") };
    let program = target_program::resolve(OsStr::new(name))?;
    target_program::check_recordable(&program)?;
    let output = match &args.output {
        Some(path) => trace_paths::prepare_explicit_output(path, args.force)?,
        None => trace_paths::default_output(&std::env::current_dir()?, name),
    };
    let finished = recording::run(&RecordPlan {
        program: &program,
        argv: &args.command,
        output: &output,
        depth: args.depth,
    })?;
    settle_traces(&finished.traces);
    traces_written::tell(&finished.traces, name);
    Ok(supervise::exit_like(finished.status))
}

/// Settles each trace no process can write any more: one whose image replaced itself with
/// `exec` (an unfinished trace followed, in creation order, by a later trace of the same pid and
/// parent) is marked complete, since it holds everything up to the exec; then the disk space reserved ahead
/// of use is trimmed off it and off each trace whose process has ended. A daemonised descendant
/// may still be writing its own trace: that one is left as it is.
fn settle_traces(traces: &[std::path::PathBuf]) {
    // (pid, parent pid, finished) of each trace, without reading its events in (a trace may be
    // gigabytes long).
    let states: Vec<Option<(u32, u32, bool)>> = traces
        .iter()
        .map(|path| {
            let reader = leakview_format::TraceReader::open_sparse(path).ok()?;
            let metadata = reader.metadata();
            Some((metadata.pid, metadata.parent_pid, reader.header().finished()))
        })
        .collect();
    for (i, path) in traces.iter().enumerate() {
        let Some((pid, parent, finished)) = states[i] else { continue };
        if pid == 0 {
            continue;
        }
        // The same process after exec keeps its pid and parent. (A process killed mid-run whose
        // pid a sibling reuses within one recording would pass too; pids are rarely reused that
        // soon.)
        let replaced =
            !finished && states[i + 1..].iter().flatten().any(|&(p, pp, _)| p == pid && pp == parent);
        // A trace that cannot be marked or trimmed stays readable (the analyzer says when it is
        // incomplete); nothing to report.
        if replaced {
            let _ = leakview_format::finish_replaced_image(path);
        }
        if replaced || !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = leakview_format::trim_finished(path);
        }
    }
}
