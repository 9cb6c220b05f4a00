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
    trim_ended(&finished.traces);
    traces_written::tell(&finished.traces, name);
    Ok(supervise::exit_like(finished.status))
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
