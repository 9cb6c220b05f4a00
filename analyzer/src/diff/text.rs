//! The text diff: both sides and their moments, the totals and their change, then the groups
//! ranked by the size of their change in aligned columns (status, change, A, B, blocks), each
//! with its top frames as `function  file:line` (B's lines when B holds the group).

use std::fmt::Write;

use super::{DiffBy, DiffGroup, DiffKey, DiffReport, DiffStatus};
use crate::analysis::Analysis;
use crate::model::LiveTotals;
use crate::report::units::{bytes, count, duration, plural};
use crate::report::write_frames_up_to;
use crate::selection::Selection;

/// Frames shown per group; the rest are counted.
const MAX_FRAMES: usize = 10;

/// `+1.5 KiB`, `-512 B`, `0 B`.
pub(crate) fn signed_bytes(change: i64) -> String {
    match change.signum() {
        1 => format!("+{}", bytes(change.unsigned_abs())),
        -1 => format!("-{}", bytes(change.unsigned_abs())),
        _ => bytes(0),
    }
}

/// `1.2 KiB in 30 blocks`.
pub(crate) fn bytes_in_blocks(totals: LiveTotals) -> String {
    format!("{} in {}", bytes(totals.bytes), plural(totals.blocks, "block", "blocks"))
}

/// `+3`, `-2`, `0`.
fn signed_count(change: i64) -> String {
    match change.signum() {
        1 => format!("+{}", count(change.unsigned_abs())),
        -1 => format!("-{}", count(change.unsigned_abs())),
        _ => "0".to_string(),
    }
}

#[derive(Clone, Copy)]
enum Align {
    Left,
    Right,
}

const COLUMNS: [(&str, Align); 6] = [
    ("#", Align::Left),
    ("status", Align::Left),
    ("change", Align::Right),
    ("A", Align::Right),
    ("B", Align::Right),
    ("blocks A → B", Align::Right),
];

fn row(group: &DiffGroup, rank: usize) -> [String; 6] {
    [
        format!("#{rank}"),
        group.status.name().to_string(),
        signed_bytes(group.change_bytes()),
        bytes(group.bytes_a),
        bytes(group.bytes_b),
        format!("{} → {}", count(group.blocks_a), count(group.blocks_b)),
    ]
}

fn write_row(out: &mut String, cells: &[String; 6], widths: &[usize; 6]) {
    let mut line = String::new();
    for (i, (cell, (_, align))) in cells.iter().zip(COLUMNS).enumerate() {
        if i > 0 {
            line.push_str("  ");
        }
        let pad = widths[i].saturating_sub(cell.chars().count());
        match align {
            Align::Left => {
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', pad));
            }
            Align::Right => {
                line.extend(std::iter::repeat_n(' ', pad));
                line.push_str(cell);
            }
        }
    }
    out.push_str(line.trim_end());
}

pub(super) fn render(report: &DiffReport<'_>) -> String {
    let mut out = String::new();
    write_header(report, &mut out);
    let shown = report.shown();
    if shown.is_empty() {
        let nothing = match report.diff.selection {
            Selection::Outstanding => "Nothing outstanding on either side.",
            Selection::Allocated => "No allocations on either side.",
            Selection::Temporary => "No temporary allocations on either side.",
        };
        let _ = writeln!(out, "\n{nothing}");
        return out;
    }
    let rows: Vec<[String; 6]> = shown.iter().enumerate().map(|(i, g)| row(g, i + 1)).collect();
    let header: [String; 6] = COLUMNS.map(|(name, _)| name.to_string());
    let mut widths = [0usize; 6];
    for cells in rows.iter().chain(std::iter::once(&header)) {
        for (w, cell) in widths.iter_mut().zip(cells) {
            *w = (*w).max(cell.chars().count());
        }
    }
    out.push('\n');
    write_row(&mut out, &header, &widths);
    out.push('\n');
    for (group, cells) in shown.iter().zip(&rows) {
        out.push('\n');
        write_row(&mut out, cells, &widths);
        if let DiffKey::Function(key) = &group.key {
            let _ = write!(out, "  {key}");
        }
        out.push('\n');
        write_frames_up_to(&group.frames, MAX_FRAMES, &mut out);
    }
    let hidden = report.diff.groups.len() - shown.len();
    if hidden > 0 {
        let noun = if hidden == 1 { "group" } else { "groups" };
        let _ = writeln!(out, "\n… and {} more {noun} (--top 0 shows all)", count(hidden as u64));
    }
    out
}

fn trace_line(analysis: &Analysis) -> String {
    let s = analysis.summary();
    let command = s.program();
    format!("{} (pid {}: {})", s.path.display(), s.pid, command)
}

fn moment(analysis: &Analysis, when: &str, at_ns: u64) -> String {
    format!("{when} ({} of {})", duration(at_ns), duration(analysis.duration_ns()))
}

fn write_header(report: &DiffReport<'_>, out: &mut String) {
    let (c, d) = (report.comparison, report.diff);
    if c.is_one_trace() {
        let _ = writeln!(out, "trace    {}", trace_line(c.a()));
        let _ = writeln!(out, "A        at {}", moment(c.a(), &report.when_a, d.at_a_ns));
        let _ = writeln!(out, "B        at {}", moment(c.b(), &report.when_b, d.at_b_ns));
    } else {
        let _ =
            writeln!(out, "A        {} at {}", trace_line(c.a()), moment(c.a(), &report.when_a, d.at_a_ns));
        let _ =
            writeln!(out, "B        {} at {}", trace_line(c.b()), moment(c.b(), &report.when_b, d.at_b_ns));
    }
    match d.selection {
        Selection::Outstanding => {}
        Selection::Allocated => {
            let _ = writeln!(out, "counting every block allocated up to each moment, freed or not");
        }
        Selection::Temporary => {
            let _ = writeln!(out, "counting temporary blocks: freed before their thread allocated again");
        }
    }
    let _ = writeln!(
        out,
        "totals   A {}, B {}, change {} ({} {})",
        bytes_in_blocks(d.totals_a),
        bytes_in_blocks(d.totals_b),
        signed_bytes(d.change_bytes()),
        signed_count(d.change_blocks()),
        if d.change_blocks().unsigned_abs() == 1 { "block" } else { "blocks" },
    );
    let counts = d.counts();
    let by = match d.by {
        DiffBy::Stack => "stacks",
        DiffBy::Function => "functions",
    };
    let statuses: Vec<String> =
        DiffStatus::ALL.iter().map(|&s| format!("{} {}", count(counts.get(s)), s.name())).collect();
    let _ = writeln!(out, "groups   {} {by}: {}", count(d.groups.len() as u64), statuses.join(", "));
    let sides: &[(&str, &Analysis)] =
        if c.is_one_trace() { &[("the trace", c.a())] } else { &[("trace A", c.a()), ("trace B", c.b())] };
    for (name, analysis) in sides {
        crate::report::write_incomplete_warning_about(analysis.summary(), Some(name), out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_units() {
        assert_eq!(signed_bytes(1536), "+1.5 KiB");
        assert_eq!(signed_bytes(-512), "-512 B");
        assert_eq!(signed_bytes(0), "0 B");
        assert_eq!(signed_bytes(i64::MIN), format!("-{}", bytes(1 << 63)));
        assert_eq!(signed_count(1234), "+1,234");
        assert_eq!(signed_count(-2), "-2");
        assert_eq!(signed_count(0), "0");
    }
}
