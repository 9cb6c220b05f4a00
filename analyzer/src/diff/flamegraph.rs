//! A diff as a differential flame graph (SVG): B's stacks, each frame as wide as the bytes B
//! holds below it, red where B holds more than A, blue where less (the deeper the colour, the
//! larger the change). Stacks only A holds have no width in B and are not drawn; the subtitle
//! says how many there are.

use std::fmt::Write;

use super::text::{bytes_in_blocks, signed_bytes};
use super::{DiffBy, DiffReport};
use crate::report::flamegraph::{FlameGraphError, draw, empty, program_and_pid};
use crate::report::folded::folded_stack;
use crate::report::units::{count, duration, plural};
use crate::selection::Selection;

/// Draws the shown groups of a diff by stack (a diff by function has no stacks to draw: it
/// gives the empty graph, saying so).
pub(super) fn render(report: &DiffReport<'_>) -> Result<String, FlameGraphError> {
    let (c, d) = (report.comparison, report.diff);
    let which = match d.selection {
        Selection::Outstanding => "Outstanding",
        Selection::Allocated => "Allocated",
        Selection::Temporary => "Temporary",
    };
    let moment_a = format!("{} ({})", report.when_a, duration(d.at_a_ns));
    let moment_b = format!("{} ({})", report.when_b, duration(d.at_b_ns));
    let title = if c.is_one_trace() {
        format!("{which}: at {moment_a} → at {moment_b}: {}", program_and_pid(c.a().summary()))
    } else {
        format!("{which}: A at {moment_a} → B at {moment_b}: {}", program_and_pid(c.b().summary()))
    };
    let shown = report.shown();
    if d.by != DiffBy::Stack {
        return Ok(empty(&title, "A diff by function has no stacks to draw."));
    }
    if shown.iter().all(|g| g.bytes_b == 0) {
        return Ok(empty(&title, "Nothing on side B to draw."));
    }
    let lines: Vec<String> = shown
        .iter()
        .filter(|g| g.bytes_b > 0)
        .map(|g| format!("{} {} {}", folded_stack(&g.frames), g.bytes_a, g.bytes_b))
        .collect();
    let mut subtitle = format!(
        "A {} → B {} ({}); widths: B's bytes; red: more than in A, blue: less",
        bytes_in_blocks(d.totals_a),
        bytes_in_blocks(d.totals_b),
        signed_bytes(d.change_bytes()),
    );
    let gone = shown.len() - lines.len();
    if gone > 0 {
        let _ = write!(subtitle, "; {} only in A not drawn", plural(gone as u64, "stack", "stacks"));
    }
    if shown.len() < d.groups.len() {
        let _ = write!(
            subtitle,
            "; the {} largest changes of {}",
            count(shown.len() as u64),
            count(d.groups.len() as u64)
        );
    }
    draw(title, subtitle, "bytes", lines.iter().map(String::as_str))
}
