//! The text report: a header with the trace, the moment and which blocks are counted, then the
//! ranked groups with aligned columns (bytes, blocks, share of the ranking figure) and each
//! group's stack as `function  file:line`.

use std::fmt::Write;

use super::Report;
use super::units::{bytes, count, duration, plural, share, size_range};
use crate::group::{GroupBy, GroupKey, SortBy, size_class_bounds};
use crate::model::Summary;
use crate::reachability::{LeakKind, LeakKinds};
use crate::resident::ResidentMemory;
use crate::selection::Selection;
use crate::symbolize::Frame;
use crate::window::AllocWindow;

/// Longest function column before names are left to overflow.
const MAX_FUNCTION_WIDTH: usize = 60;

/// `file:line`, or the module's file name (plus offset when the function is known), or empty.
pub fn location(frame: &Frame) -> String {
    match (&frame.file, frame.line) {
        (Some(file), Some(line)) => format!("{file}:{line}"),
        (Some(file), None) => file.clone(),
        _ => match (&frame.module, frame.function.is_some()) {
            (Some(module), true) => {
                let name = module.rsplit('/').next().unwrap_or(module);
                match frame.module_offset {
                    Some(off) => format!("{name}+{off:#x}"),
                    None => name.to_string(),
                }
            }
            _ => String::new(),
        },
    }
}

fn group_title(report: &Report<'_>, key: &GroupKey) -> String {
    match key {
        GroupKey::Stack(_) => String::new(),
        GroupKey::Function(name) => name.to_string(),
        GroupKey::Size(size) => format!("size {}", exact_size(*size)),
        GroupKey::SizeClass(class) => {
            let (lo, hi) = size_class_bounds(*class);
            format!("sizes {}", size_range(lo, hi))
        }
        GroupKey::Thread(index) => match report.analysis.thread(*index) {
            Some(info) => format!("thread {}", info.label()),
            None => format!("thread #{}", index.0),
        },
    }
}

/// An exact allocation size: `40 B`, or `72,704 B (71.0 KiB)` where the binary unit alone would
/// round it (grouped by size, each group is one exact size).
fn exact_size(size: u64) -> String {
    if size < 1024 { format!("{size} B") } else { format!("{} B ({})", count(size), bytes(size)) }
}

pub(super) fn render(report: &Report<'_>) -> String {
    let mut out = String::new();
    if !write_start(report, &mut out) {
        return out;
    }
    let shown = report.shown();
    let totals = report.grouping.totals;
    let share_of = |g: &crate::group::Group| match report.sort {
        SortBy::Blocks => share(g.blocks, totals.blocks),
        _ => share(g.bytes, totals.bytes),
    };
    let rows: Vec<[String; 4]> = shown
        .iter()
        .enumerate()
        .map(|(i, g)| {
            [format!("#{}", i + 1), bytes(g.bytes), plural(g.blocks, "block", "blocks"), share_of(g)]
        })
        .collect();
    let width = |k: usize| rows.iter().map(|r| r[k].chars().count()).max().unwrap_or(0);
    let widths = [width(0), width(1), width(2), width(3)];
    for (g, row) in shown.iter().zip(&rows) {
        let _ = write!(
            out,
            "\n{:<w0$}  {:>w1$}  {:>w2$}  {:>w3$}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3]
        );
        let title = group_title(report, &g.key);
        if !title.is_empty() {
            let _ = write!(out, "  {title}");
        }
        let _ = write!(out, "  allocated {}", span(g.first_alloc_ns, g.last_alloc_ns));
        if g.threads.len() > 1 {
            let _ = write!(out, " by {} threads", g.threads.len());
        } else if let GroupKey::Thread(_) = g.key {
            // The group's title names its thread already.
        } else if let Some(info) = g.threads.first().and_then(|&t| report.analysis.thread(t)) {
            let _ = write!(out, " by thread {}", info.label());
        }
        out.push('\n');
        let frames = report.frames_of(g);
        if report.grouping.by != GroupBy::Stack
            && !matches!(g.key, GroupKey::Function(_))
            && !frames.is_empty()
        {
            let _ = writeln!(out, "    heaviest stack:");
        }
        write_frames(&frames, &mut out);
        match g.key {
            GroupKey::Function(_) => {
                let _ = writeln!(out, "    on {}", plural(g.stacks.len() as u64, "stack", "stacks"));
            }
            // Stacks that read the same, merged: recorded from several return addresses.
            GroupKey::Stack(_) if g.stacks.len() > 1 => {
                let _ =
                    writeln!(out, "    from {} call sites with these frames", count(g.stacks.len() as u64));
            }
            _ => {}
        }
    }
    let hidden = report.grouping.len() - shown.len();
    if hidden > 0 {
        let noun = if hidden == 1 { "group" } else { "groups" };
        let _ = writeln!(out, "\n… and {} more {noun} (--top 0 shows all)", count(hidden as u64));
    }
    out
}

/// Writes the report's header, and where it shows no group the line that says so; whether it
/// shows any.
pub(super) fn write_start(report: &Report<'_>, out: &mut String) -> bool {
    write_header(report, out);
    if !report.shown().is_empty() {
        return true;
    }
    match report.leak_kinds {
        Some(kinds) => {
            let _ = writeln!(out, "\nNo outstanding allocations are {}.", kinds.describe());
        }
        None => {
            let _ = writeln!(out, "\n{}", nothing_selected(report.selection));
        }
    }
    false
}

/// What a report says where `selection` counts no block.
pub(super) fn nothing_selected(selection: Selection) -> &'static str {
    match selection {
        Selection::Outstanding => "No outstanding allocations.",
        Selection::Allocated => "No allocations.",
        Selection::Temporary => "No temporary allocations.",
    }
}

fn span(first: u64, last: u64) -> String {
    if first == last {
        format!("at {}", duration(first))
    } else {
        format!("{}..{}", duration(first), duration(last))
    }
}

fn write_frames(frames: &[Frame], out: &mut String) {
    write_frames_up_to(frames, usize::MAX, out);
}

/// Writes the first `limit` of `frames`, one per line (name, location, inlined or not), and how
/// many more there are.
pub fn write_frames_up_to(frames: &[Frame], limit: usize, out: &mut String) {
    if frames.is_empty() {
        let _ = writeln!(out, "    (no stack recorded)");
        return;
    }
    let (frames, more) = (&frames[..frames.len().min(limit)], frames.len().saturating_sub(limit));
    let names: Vec<String> = frames.iter().map(Frame::display_name).collect();
    let width = names.iter().map(|n| n.chars().count()).max().unwrap_or(0).min(MAX_FUNCTION_WIDTH);
    for (frame, name) in frames.iter().zip(&names) {
        let loc = location(frame);
        let inlined = if frame.inlined { "  [inlined]" } else { "" };
        if loc.is_empty() {
            let _ = writeln!(out, "    {name}{inlined}");
        } else {
            let _ = writeln!(out, "    {name:<width$}  {loc}{inlined}");
        }
    }
    if more > 0 {
        let _ = writeln!(out, "    … {}", plural(more as u64, "more frame", "more frames"));
    }
}

/// The `trace` and `heap` lines every text report of the analyzer starts with.
pub fn write_trace_lines(s: &Summary, out: &mut String) {
    let t = &s.totals;
    let command = s.program();
    let _ = writeln!(out, "trace    {} (pid {}: {})", s.path.display(), s.pid, command);
    let _ = writeln!(
        out,
        "heap     {}, {}, {} allocated, peak {} at {}",
        plural(t.allocations, "allocation", "allocations"),
        plural(t.frees, "free", "frees"),
        bytes(t.bytes_allocated),
        bytes(t.peak_bytes),
        duration(t.peak_at_ns)
    );
}

/// The `only` line of a report narrowed to an allocation window (nothing without one).
pub fn write_window(window: &AllocWindow, out: &mut String) {
    if let Some(described) = window.describe() {
        let _ = writeln!(out, "only     blocks {described}");
    }
}

/// The warning line of a report on a trace that is not complete (empty if it is). A trace whose
/// recording stopped early says when: its "end" holds only what was recorded until then.
pub fn write_incomplete_warning(s: &Summary, out: &mut String) {
    write_incomplete_warning_about(s, None, out);
}

/// [`write_incomplete_warning`] naming the trace (`trace A`) where several are shown.
pub fn write_incomplete_warning_about(s: &Summary, name: Option<&str>, out: &mut String) {
    let (whose, subject) = match name {
        Some(name) => (format!("{name}: "), name),
        None => (String::new(), "the trace"),
    };
    if s.truncated {
        let of = if s.duration_ns > s.last_event_ns {
            format!(" of {}", duration(s.duration_ns))
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "warning  {whose}recording stopped at {}{of} (disk full or size limit) and nothing after it was \
             recorded: blocks freed later show as outstanding, later allocations are missing",
            duration(s.last_event_ns)
        );
    } else if s.recorded_so_far() {
        let _ = writeln!(
            out,
            "note     {subject} is still being recorded (pid {} is running); shown is what was recorded up to {}",
            s.pid,
            duration(s.duration_ns)
        );
    } else if !s.complete {
        // Where chunks are missing, the events read may end well before the trace does.
        let read_up_to = if s.duration_ns > s.last_event_ns {
            format!(", up to {} of {}", duration(s.last_event_ns), duration(s.duration_ns))
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "warning  {subject} is incomplete (program killed, disk full or damaged file); shown is what could be \
             read{read_up_to}"
        );
    }
}

/// The text report's header: the trace, its heap, the moment and what is counted.
fn write_header(report: &Report<'_>, out: &mut String) {
    let s = report.analysis.summary();
    write_trace_lines(s, out);
    let (one, by) = match report.grouping.by {
        GroupBy::Stack => ("stack", "stacks"),
        GroupBy::Function => ("function", "functions"),
        GroupBy::Size => ("size", "sizes"),
        GroupBy::SizeClass => ("size class", "size classes"),
        GroupBy::Thread => ("thread", "threads"),
    };
    let totals = report.grouping.totals;
    let counted = match report.selection {
        Selection::Outstanding => "outstanding".to_string(),
        Selection::Allocated => "allocated up to then, freed or not".to_string(),
        Selection::Temporary => {
            let allocated = report.analysis.allocated_count(report.at_ns, &report.window);
            format!(
                "freed before their thread allocated again (temporary: {} of {} allocated)",
                share(totals.blocks, allocated),
                plural(allocated, "block", "blocks")
            )
        }
    };
    let counted = match report.leak_kinds {
        Some(kinds) => format!("{counted}, {}", kinds.describe()),
        None => counted,
    };
    let ranked = if report.sort == SortBy::Blocks { ", ranked by blocks" } else { "" };
    let _ = writeln!(
        out,
        "at       {} ({} of {}): {} in {} {counted}, in {}{ranked}",
        report.when,
        duration(report.at_ns),
        duration(s.duration_ns),
        bytes(totals.bytes),
        plural(totals.blocks, "block", "blocks"),
        plural(report.grouping.len() as u64, one, by),
    );
    if let Some(kinds) = report.analysis.leak_kinds() {
        write_leak_kinds(kinds, out);
    }
    write_resident(report.analysis.resident_memory(), report.at_ns, out);
    write_window(&report.window, out);
    write_incomplete_warning(s, out);
}

/// The `leaks` line: the blocks outstanding at the end by leak kind (`not scanned` only where
/// there are such blocks).
pub fn write_leak_kinds(kinds: &LeakKinds, out: &mut String) {
    let parts: Vec<String> = LeakKind::ALL
        .into_iter()
        .filter(|&k| k != LeakKind::NotScanned || kinds.totals(k).blocks > 0)
        .map(|k| {
            let t = kinds.totals(k);
            format!("{} {} in {}", k.label(), bytes(t.bytes), plural(t.blocks, "block", "blocks"))
        })
        .collect();
    let _ = writeln!(out, "leaks    at the end: {}", parts.join(", "));
}

/// The `rss` line: the process's resident set size at the report's moment (the last sample by
/// then) and its peak; nothing for a trace without samples.
fn write_resident(memory: &ResidentMemory, at_ns: u64, out: &mut String) {
    let Some(peak) = memory.peak() else { return };
    let then = match memory.at(at_ns) {
        Some(sample) => {
            format!("{} at {} (the last sample by then)", bytes(sample.bytes), duration(sample.at_ns))
        }
        None => "not sampled yet by then".to_string(),
    };
    let _ = writeln!(out, "rss      {then}; peak {} at {}", bytes(peak.bytes), duration(peak.at_ns));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_sizes_are_not_rounded() {
        assert_eq!(exact_size(40), "40 B");
        assert_eq!(exact_size(1023), "1023 B");
        assert_eq!(exact_size(72_704), "72,704 B (71.0 KiB)");
        assert_eq!(exact_size(72_705), "72,705 B (71.0 KiB)");
    }
}
