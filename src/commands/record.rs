//! `leakview record [-o FILE] [--depth N] [--force] -- CMD ARGS...`: runs a program with the
//! recorder preloaded, tells where its traces went, and exits the way the program did.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;

use crate::cli::RecordArgs;
use crate::recording::{self, RecordPlan};
use crate::{supervise, target_program, trace_paths};

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
    tell_where_traces_went(&finished.traces, name);
    Ok(supervise::exit_like(finished.status))
}

/// One line on stderr per trace, with the command that opens it.
pub fn tell_where_traces_went(traces: &[PathBuf], program: &str) {
    match traces {
        [] => eprintln!(
            "leakview: no trace was written: the recorder did not start in {program} \
             (it may have cleared LD_PRELOAD, or the trace file could not be created)"
        ),
        [only] => {
            let shown = trace_paths::for_shell(only);
            eprintln!("leakview: trace written to {shown} (open it: leakview {shown})");
        }
        [first, ..] => {
            eprintln!("leakview: {} traces written, one per recorded process:", traces.len());
            for trace in traces {
                eprintln!("leakview:   {}", trace_paths::for_shell(trace));
            }
            eprintln!("leakview: open one: leakview {}", trace_paths::for_shell(first));
        }
    }
}
