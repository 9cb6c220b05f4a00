//! The message `leakview record` prints on stderr about the traces a run left: one trace gets one
//! line with the command that opens it; several (a program that forks or runs others) get one
//! line each with the process's command line and amount recorded; many (a wrapper script running
//! dozens of tools) are cut to the largest few, and the largest is the one suggested to open.

use std::path::{Path, PathBuf};

use leakview_analyzer::report::units::binary_units;
use leakview_format::TraceReader;

use crate::messages::say;
use crate::trace_paths;

/// At most this many distinct reasons for not recording are listed.
const MAX_FAILURES_LISTED: usize = 3;

/// Says, once for the whole run, that processes could not record and why (each distinct
/// reason once, with how many processes gave it).
pub fn tell_failures(failures: &[String]) {
    for line in failure_lines(failures) {
        say!("leakview: {line}");
    }
}

/// The lines of [`tell_failures`] (without the `leakview: ` prefix).
pub fn failure_lines(failures: &[String]) -> Vec<String> {
    let Some(first) = failures.first() else { return Vec::new() };
    let mut lines = vec![match failures.len() {
        1 => format!("1 process could not record: {first}"),
        n => format!("{n} processes could not record; the first: {first}"),
    }];
    // Processes of one run differ in their trace names, not in why they failed.
    let reason =
        |failure: &String| failure.rsplit_once(": ").map_or(failure.clone(), |(_, why)| why.to_string());
    let mut others: Vec<(String, usize)> = Vec::new();
    for failure in &failures[1..] {
        let why = reason(failure);
        if why == reason(first) {
            continue;
        }
        match others.iter_mut().find(|(r, _)| *r == why) {
            Some((_, n)) => *n += 1,
            None => others.push((why, 1)),
        }
    }
    for (why, n) in others.iter().take(MAX_FAILURES_LISTED) {
        lines.push(format!(
            "  also: {why} ({})",
            if *n == 1 { "1 process".to_string() } else { format!("{n} processes") }
        ));
    }
    lines
}

/// At most this many traces are listed one per line.
pub const MAX_LISTED: usize = 8;

/// What a trace says about itself, for the listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceSummary {
    pub path: PathBuf,
    /// The recorded command line, if the trace is readable.
    pub command: Option<String>,
    /// Bytes of recorded events.
    pub recorded_bytes: u64,
    /// Recording stopped early: the disk filled or the size limit was reached.
    pub cut_short: bool,
}

impl TraceSummary {
    /// Reads what the listing shows of the trace at `path`; its recorded bytes (which take a
    /// look at every chunk) only when `with_size`, else 0.
    pub fn read(path: &Path, with_size: bool) -> TraceSummary {
        let unreadable =
            || TraceSummary { path: path.to_path_buf(), command: None, recorded_bytes: 0, cut_short: false };
        if !with_size {
            return match leakview_format::read_head(path) {
                Ok(head) => TraceSummary {
                    path: path.to_path_buf(),
                    command: Some(head.metadata.command_line()),
                    recorded_bytes: 0,
                    cut_short: head.header.truncated(),
                },
                Err(_) => unreadable(),
            };
        }
        match TraceReader::open_sparse(path) {
            Ok(reader) => TraceSummary {
                path: path.to_path_buf(),
                command: Some(reader.metadata().command_line()),
                recorded_bytes: reader.chunks().iter().map(|c| c.body_len() as u64).sum(),
                cut_short: reader.header().truncated(),
            },
            Err(_) => unreadable(),
        }
    }
}

/// The lines to print (without the `leakview: ` prefix), given the traces in creation order;
/// `failures_told`: processes said why they could not record (see [`tell_failures`]), so no
/// trace needs no guess at why.
pub fn message(traces: &[TraceSummary], program: &str, failures_told: bool) -> Vec<String> {
    match traces {
        [] if failures_told => vec!["no trace was written".to_string()],
        [] => vec![format!(
            "no trace was written: the recorder did not start in {program} \
             (it may have cleared LD_PRELOAD, or the trace file could not be created)"
        )],
        [only] => {
            let shown = trace_paths::for_shell(&only.path);
            vec![format!("trace written to {shown} (open it: leakview {shown})")]
        }
        _ => {
            let mut largest: Vec<usize> = (0..traces.len()).collect();
            largest.sort_by_key(|&i| (std::cmp::Reverse(traces[i].recorded_bytes), i));
            let listed: Vec<usize> = {
                let mut kept = largest[..traces.len().min(MAX_LISTED)].to_vec();
                kept.sort_unstable();
                kept
            };
            let mut lines = vec![if listed.len() == traces.len() {
                format!("{} traces written, one per recorded process:", traces.len())
            } else {
                format!(
                    "{} traces written, one per recorded process; the {} largest:",
                    traces.len(),
                    listed.len()
                )
            }];
            let width =
                listed.iter().map(|&i| trace_paths::for_shell(&traces[i].path).len()).max().unwrap_or(0);
            for &i in &listed {
                let trace = &traces[i];
                let shown = trace_paths::for_shell(&trace.path);
                lines.push(match &trace.command {
                    Some(command) => format!(
                        "  {shown:<width$}  {}  {}",
                        human_bytes(trace.recorded_bytes),
                        shorten(command, 60)
                    ),
                    None => format!("  {shown}"),
                });
            }
            if listed.len() < traces.len() {
                lines.push(format!("  ... and {} smaller ones", traces.len() - listed.len()));
            }
            lines.push(format!("open one: leakview {}", trace_paths::for_shell(&traces[largest[0]].path)));
            lines
        }
    }
}

/// Prints [`message`] on stderr.
pub fn tell(traces: &[PathBuf], program: &str, failures_told: bool) {
    // One trace is named alone; sizes matter only for ranking several.
    let with_size = traces.len() > 1;
    let summaries: Vec<TraceSummary> = traces.iter().map(|p| TraceSummary::read(p, with_size)).collect();
    for line in message(&summaries, program, failures_told).into_iter().chain(cut_short_line(&summaries)) {
        say!("leakview: {line}");
    }
}

/// After a listing cut to the largest traces (see [`message`]) of a recording that followed
/// forked processes: how to leave them out.
pub fn children_hint(traces: usize, followed_children: bool) -> Option<String> {
    (followed_children && traces > MAX_LISTED)
        .then(|| "(`leakview record --no-children` leaves out the processes the program forks)".to_string())
}

/// The line saying that traces were cut short (the recorded processes do not say it
/// themselves under `leakview record`), if any was.
pub fn cut_short_line(traces: &[TraceSummary]) -> Option<String> {
    let cut: Vec<&TraceSummary> = traces.iter().filter(|t| t.cut_short).collect();
    let which = match (cut.as_slice(), traces.len()) {
        ([], _) => return None,
        ([_], 1) => "the trace was".to_string(),
        ([only], _) => format!("{} was", trace_paths::for_shell(&only.path)),
        (many, total) => format!("{} of the {total} traces were", many.len()),
    };
    Some(format!(
        "recording stopped early: {which} cut short (disk full or size limit); \
         it holds what was recorded until then (leakview stats says when)"
    ))
}

fn human_bytes(bytes: u64) -> String {
    match binary_units(bytes) {
        None => format!("{bytes:>5} B  "),
        Some((value, unit)) => format!("{value:>5.1} {unit:<3}"),
    }
}

fn shorten(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let kept: String = text.chars().take(max_chars.saturating_sub(1)).collect();
    format!("{kept}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_told_once_per_reason() {
        assert!(failure_lines(&[]).is_empty());
        let full =
            |n: u32| format!("cannot create trace /t/p.{n}.bin: No space left on device (os error 28)");
        assert_eq!(failure_lines(&[full(1)]), vec![format!("1 process could not record: {}", full(1))]);
        let many = vec![full(1), full(2), "cannot map /t/x.bin: Permission denied".to_string(), full(3)];
        assert_eq!(
            failure_lines(&many),
            vec![
                format!("4 processes could not record; the first: {}", full(1)),
                "  also: Permission denied (1 process)".to_string()
            ]
        );
    }

    fn summary(name: &str, bytes: u64) -> TraceSummary {
        TraceSummary {
            path: PathBuf::from(format!("/traces/{name}")),
            command: Some(format!("prog {name}")),
            recorded_bytes: bytes,
            cut_short: false,
        }
    }

    #[test]
    fn traces_cut_short_are_told_once() {
        let mut one = summary("a.bin", 10);
        assert_eq!(cut_short_line(std::slice::from_ref(&one)), None);
        one.cut_short = true;
        let line = cut_short_line(std::slice::from_ref(&one)).expect("a line");
        assert!(line.starts_with("recording stopped early: the trace was cut short"), "{line}");
        let mut traces = vec![one, summary("b.bin", 5), summary("c.bin", 5)];
        let line = cut_short_line(&traces).expect("a line");
        assert!(line.contains("/traces/a.bin was cut short"), "{line}");
        traces[2].cut_short = true;
        let line = cut_short_line(&traces).expect("a line");
        assert!(line.contains("2 of the 3 traces were cut short"), "{line}");
    }

    #[test]
    fn one_trace_one_line() {
        let lines = message(&[summary("a.bin", 10)], "prog", false);
        assert_eq!(lines, vec!["trace written to /traces/a.bin (open it: leakview /traces/a.bin)"]);
    }

    #[test]
    fn no_trace_names_the_program() {
        let lines = message(&[], "sqlite3", false);
        assert_eq!(lines.len(), 1);
        assert!(lines[0].contains("sqlite3"));
        assert!(lines[0].contains("may have cleared LD_PRELOAD"), "{lines:?}");
        // Where the processes said why, no guess.
        assert_eq!(message(&[], "sqlite3", true), vec!["no trace was written"]);
    }

    #[test]
    fn several_traces_are_all_listed_and_the_largest_suggested() {
        let traces = [summary("a.bin", 10), summary("a.1.bin", 5000), summary("a.2.bin", 20)];
        let lines = message(&traces, "prog", false);
        assert_eq!(lines.len(), 5, "{lines:#?}");
        assert!(lines[0].starts_with("3 traces written"));
        for (line, name) in lines[1..4].iter().zip(["a.bin", "a.1.bin", "a.2.bin"]) {
            assert!(
                line.contains(&format!("/traces/{name} ")) && line.contains(&format!("prog {name}")),
                "{line}"
            );
        }
        assert_eq!(lines[4], "open one: leakview /traces/a.1.bin");
    }

    #[test]
    fn many_traces_are_cut_to_the_largest() {
        let traces: Vec<TraceSummary> = (0..20).map(|i| summary(&format!("t{i}.bin"), i * 100)).collect();
        let lines = message(&traces, "prog", false);
        assert!(lines[0].contains("20 traces") && lines[0].contains("the 8 largest"), "{}", lines[0]);
        let listed: Vec<&String> = lines.iter().filter(|l| l.starts_with("  /traces/")).collect();
        assert_eq!(listed.len(), MAX_LISTED);
        // In creation order, and only the largest (t12..t19).
        assert!(
            listed[0].contains("/traces/t12.bin") && listed[7].contains("/traces/t19.bin"),
            "{listed:#?}"
        );
        assert!(lines.iter().any(|l| l == "  ... and 12 smaller ones"));
        assert_eq!(lines.last().map(String::as_str), Some("open one: leakview /traces/t19.bin"));
    }

    #[test]
    fn a_cut_listing_of_a_recording_with_children_says_how_to_leave_them_out() {
        assert!(children_hint(MAX_LISTED + 1, true).is_some_and(|l| l.contains("--no-children")));
        assert_eq!(children_hint(MAX_LISTED, true), None);
        assert_eq!(children_hint(MAX_LISTED + 1, false), None);
    }

    #[test]
    fn sizes_are_readable() {
        assert_eq!(human_bytes(512).trim(), "512 B");
        assert_eq!(human_bytes(3 * 1024 * 1024).trim(), "3.0 MiB");
    }
}
