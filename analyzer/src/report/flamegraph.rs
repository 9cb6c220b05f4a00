//! The report's stacks as an interactive flame graph (an SVG drawn by inferno from the folded
//! stacks): each frame as wide as the bytes (or blocks, ranked by blocks) allocated below it,
//! outermost frame at the bottom. Opened in a web browser, a click zooms into a frame and Ctrl-F
//! searches. Frame colours come from the function names, so two runs colour alike.

use std::fmt::Write;

use inferno::flamegraph::{self, Options, color::BasicPalette, color::Palette};

use super::Report;
use super::text::nothing_selected;
use super::units::{bytes, count, duration, plural};
use crate::group::SortBy;
use crate::model::Summary;
use crate::selection::Selection;

/// Longest command line shown in the title; longer ones end in `…`.
const MAX_COMMAND_CHARS: usize = 80;

/// Why a flame graph could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("cannot draw the flame graph: {0}")]
pub struct FlameGraphError(#[from] std::io::Error);

/// Draws the `top` heaviest stacks (0: all).
pub(super) fn render(report: &Report<'_>, top: usize) -> Result<String, FlameGraphError> {
    let folded = report.to_folded();
    let stacks = folded.lines().count();
    let drawn = if top == 0 { stacks } else { stacks.min(top) };
    let title = title(report);
    if drawn == 0 {
        return Ok(empty(&title, nothing_selected(report.selection)));
    }
    let count_name = if report.sort == SortBy::Blocks { "blocks" } else { "bytes" };
    draw(title, subtitle(report, drawn, stacks), count_name, folded.lines().take(drawn))
}

/// Draws folded stack `lines` (`root;...;leaf N`, or `... A B` for a differential graph: widths
/// by B, red where B has more, blue where less) under `title` and `subtitle`, figures named
/// `count_name`.
pub(crate) fn draw<'l>(
    title: String,
    subtitle: String,
    count_name: &str,
    lines: impl IntoIterator<Item = &'l str>,
) -> Result<String, FlameGraphError> {
    let mut options = Options::default();
    options.title = title;
    options.subtitle = Some(subtitle);
    options.colors = Palette::Basic(BasicPalette::Mem);
    options.deterministic = true;
    options.count_name = count_name.to_string();
    let mut svg = Vec::new();
    flamegraph::from_lines(&mut options, lines, &mut svg)?;
    Ok(String::from_utf8_lossy(&svg).into_owned())
}

/// `Outstanding at end (1.2s): ./server --port 80 (pid 4242)`.
fn title(report: &Report<'_>) -> String {
    let s = report.analysis.summary();
    let which = match (report.selection, report.leak_kinds) {
        (Selection::Outstanding, Some(kinds)) => format!("Outstanding ({}) at", kinds.describe()),
        (Selection::Outstanding, None) => "Outstanding at".to_string(),
        (Selection::Allocated, _) => "Allocated by".to_string(),
        (Selection::Temporary, _) => "Temporary by".to_string(),
    };
    format!("{which} {} ({}): {}", report.when, duration(report.at_ns), program_and_pid(s))
}

/// The recorded program for a title: `./server --port 80 (pid 4242)`, a long command line cut
/// short with `…`.
pub(crate) fn program_and_pid(s: &Summary) -> String {
    let command = s.program();
    let command = if command.chars().count() > MAX_COMMAND_CHARS {
        let cut: String = command.chars().take(MAX_COMMAND_CHARS - 1).collect();
        format!("{cut}…")
    } else {
        command
    };
    format!("{command} (pid {})", s.pid)
}

/// `12.0 KiB in 138 blocks, widths by bytes` (and which blocks the window keeps, how many stacks
/// of how many are drawn, and whether the trace is incomplete).
fn subtitle(report: &Report<'_>, drawn: usize, stacks: usize) -> String {
    let totals = report.grouping.totals;
    let by = if report.sort == SortBy::Blocks { "blocks" } else { "bytes" };
    let mut line =
        format!("{} in {}, widths by {by}", bytes(totals.bytes), plural(totals.blocks, "block", "blocks"));
    if let Some(window) = report.window.describe() {
        let _ = write!(line, "; only blocks {window}");
    }
    if drawn < stacks {
        let _ = write!(line, "; the {} heaviest of {} stacks", count(drawn as u64), count(stacks as u64));
    }
    if !report.analysis.summary().complete {
        line.push_str("; an incomplete trace: what could be read");
    }
    line
}

/// An SVG with the title and `message` where there is no stack to draw.
pub(crate) fn empty(title: &str, message: &str) -> String {
    format!(
        "<?xml version=\"1.0\" standalone=\"no\"?>\n\
         <svg version=\"1.1\" width=\"1200\" height=\"90\" xmlns=\"http://www.w3.org/2000/svg\">\n\
         <rect x=\"0\" y=\"0\" width=\"100%\" height=\"100%\" fill=\"#eeeeee\"/>\n\
         <text x=\"600\" y=\"30\" text-anchor=\"middle\" font-family=\"Verdana\" font-size=\"17\">{}</text>\n\
         <text x=\"600\" y=\"62\" text-anchor=\"middle\" font-family=\"Verdana\" font-size=\"12\">{}</text>\n\
         </svg>\n",
        escape(title),
        escape(message)
    )
}

/// `text` with the characters XML gives a meaning escaped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{empty, escape};

    #[test]
    fn escape_leaves_plain_text_and_escapes_markup() {
        assert_eq!(escape("./app --n 3"), "./app --n 3");
        assert_eq!(escape("a<b> & \"c\" 'd'"), "a&lt;b&gt; &amp; &quot;c&quot; &apos;d&apos;");
    }

    #[test]
    fn an_empty_graph_is_an_svg_with_its_escaped_title_and_message() {
        let svg = empty("Outstanding at end (1ms): ./a <x> (pid 1)", "No outstanding allocations.");
        assert!(svg.starts_with("<?xml"), "{svg}");
        assert!(svg.trim_end().ends_with("</svg>"), "{svg}");
        assert!(svg.contains("./a &lt;x&gt; (pid 1)"), "{svg}");
        assert!(svg.contains(">No outstanding allocations.</text>"), "{svg}");
        assert!(!svg.contains("<x>"), "{svg}");
    }
}
