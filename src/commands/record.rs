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
    finish_replaced_images(&finished.traces);
    trim_ended(&finished.traces);
    traces_written::tell(&finished.traces, name);
    Ok(supervise::exit_like(finished.status))
}

/// Marks complete each unfinished trace whose process went on, under the same pid, to write a
/// later trace (listed in creation order): that image replaced itself with `exec`, so its trace
/// holds everything up to the exec.
fn finish_replaced_images(traces: &[std::path::PathBuf]) {
    let states: Vec<Option<(u32, bool)>> = traces
        .iter()
        .map(|path| {
            let reader = leakview_format::TraceReader::open(path).ok()?;
            Some((reader.metadata().pid, reader.header().finished()))
        })
        .collect();
    for (i, path) in traces.iter().enumerate() {
        let Some((pid, false)) = states[i] else { continue };
        let replaced = states[i + 1..].iter().flatten().any(|&(later_pid, _)| later_pid == pid && pid != 0);
        if replaced {
            // A trace that cannot be marked stays readable; the analyzer says it is incomplete.
            let _ = leakview_format::finish_replaced_image(path);
        }
    }
}

/// Trims the disk space reserved ahead of use off each trace whose process has ended (a
/// daemonised descendant may still be writing its own trace: that one is left as it is).
fn trim_ended(traces: &[std::path::PathBuf]) {
    for path in traces {
        let Ok(reader) = leakview_format::TraceReader::open(path) else { continue };
        let pid = reader.metadata().pid;
        drop(reader);
        if pid != 0 && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            // A trace that cannot be trimmed is still whole; nothing to report.
            let _ = leakview_format::trim_finished(path);
        }
    }
}
