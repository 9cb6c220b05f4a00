//! `leakview record [-o FILE] [--depth N] [--rss-interval MS] [--force] -- CMD ARGS...`: runs a
//! program with the recorder preloaded, tells where its traces went, and exits the way the
//! program did.

use std::ffi::OsStr;
use std::process::ExitCode;

use anyhow::bail;

use crate::cli::RecordArgs;
use crate::messages::say;
use crate::recording::{self, RecordPlan};
use crate::{supervise, target_program, trace_paths, traces_written};

pub fn run(args: &RecordArgs) -> anyhow::Result<ExitCode> {
    let Some(name) = args.command.first() else { bail!("no command given (leakview record -- CMD ARGS...)") };
    let program = target_program::resolve(OsStr::new(name))?;
    target_program::check_recordable(&program)?;
    let output = match &args.output {
        Some(path) => trace_paths::prepare_explicit_output(path, args.force, name)?,
        None => {
            let output = trace_paths::default_output(&std::env::current_dir()?, name);
            trace_paths::check_creatable(&output)?;
            output
        }
    };
    let finished = recording::run(&RecordPlan {
        program: &program,
        argv: &args.command,
        output: &output,
        depth: args.depth,
        rss_interval_ms: args.rss_interval,
        leak_kinds: args.leak_kinds,
        no_children: args.no_children,
    })?;
    settle_traces(&finished.traces);
    traces_written::tell(&finished.traces, name, !finished.failures.is_empty());
    if let Some(hint) = traces_written::children_hint(finished.traces.len(), !args.no_children) {
        say!("leakview: {hint}");
    }
    traces_written::tell_failures(&finished.failures);
    Ok(supervise::exit_like(finished.status))
}

/// Settles each trace no process can write any more: one whose image replaced itself with
/// `exec` (an unfinished trace followed, in creation order, by a later trace of the same
/// process: see [`TraceState::same_process`]) is marked complete, since it holds everything up
/// to the exec; then the disk space reserved ahead of use is trimmed off it and off each trace
/// whose process has ended. A daemonised descendant may still be writing its own trace: that
/// one is left as it is.
fn settle_traces(traces: &[std::path::PathBuf]) {
    // What each trace says of its process, without reading its events in (a trace may be
    // gigabytes long).
    let states: Vec<Option<TraceState>> = traces
        .iter()
        .map(|path| {
            let head = leakview_format::read_head(path).ok()?;
            Some(TraceState {
                pid: head.metadata.pid,
                parent: head.metadata.parent_pid,
                started: head.metadata.process_start_ticks,
                finished: head.header.finished(),
            })
        })
        .collect();
    for (i, path) in traces.iter().enumerate() {
        let Some(state) = states[i] else { continue };
        if state.pid == 0 {
            continue;
        }
        let replaced =
            !state.finished && states[i + 1..].iter().flatten().any(|later| later.same_process(&state));
        // A trace that cannot be marked or trimmed stays readable (the analyzer says when it is
        // incomplete); nothing to report.
        if replaced {
            let _ = leakview_format::finish_replaced_image(path);
        }
        if replaced || !std::path::Path::new(&format!("/proc/{}", state.pid)).exists() {
            let _ = leakview_format::trim_finished(path);
        }
    }
}

/// The process a trace recorded, as its metadata tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TraceState {
    pid: u32,
    parent: u32,
    /// Clock ticks after boot when the process started (0: unknown).
    started: u64,
    finished: bool,
}

impl TraceState {
    /// Both traces are of one process (images of it before and after an exec): the same pid,
    /// parent and start time. Without start times (traces of older recorders) pid and parent
    /// must do, which a sibling that got a dead process's pid would pass too.
    fn same_process(&self, other: &TraceState) -> bool {
        let started_alike = self.started == 0 || other.started == 0 || self.started == other.started;
        self.pid == other.pid && self.parent == other.parent && started_alike
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(pid: u32, parent: u32, started: u64) -> TraceState {
        TraceState { pid, parent, started, finished: false }
    }

    #[test]
    fn an_exec_keeps_the_process_and_a_reused_pid_does_not() {
        let before_exec = state(100, 1, 5_000);
        assert!(state(100, 1, 5_000).same_process(&before_exec));
        // A sibling that got the pid later started later.
        assert!(!state(100, 1, 5_900).same_process(&before_exec));
        assert!(!state(101, 1, 5_000).same_process(&before_exec));
        assert!(!state(100, 2, 5_000).same_process(&before_exec));
        // A trace without a start time is matched by pid and parent alone.
        assert!(state(100, 1, 0).same_process(&before_exec));
    }
}
