//! The right pane: the selected group's details (stack, size histogram, times, its bytes over
//! the trace, threads, and the leak-suspect verdict on a stack group when known), or the stack of
//! the selected allocation of an open group.

use ratatui::Frame;
use ratatui::text::{Line, Span};

use crate::format;
use crate::source::{FrameInfo, GroupDetails, StackVerdict, Verdict};
use crate::state::{OpenGroup, Pane};

use super::pane::{draw_group_details, draw_scrolled};
use super::theme::Theme;
use super::{BodyAreas, Screen, pane_block};

/// Lines showing `frames`, innermost first: the function, then its place (file:line · module),
/// in a pane `width` columns wide. A name too long for the pane (C++ templates) goes on over
/// further lines rather than being cut: the full name is what tells the frame apart.
pub fn frame_lines<'a>(frames: &[FrameInfo], width: usize, theme: &Theme) -> Vec<Line<'a>> {
    let mut lines = Vec::with_capacity(frames.len() * 2);
    if frames.is_empty() {
        lines.push(Line::styled("(no stack recorded)", theme.dim));
    }
    for (i, f) in frames.iter().enumerate() {
        let mut name = split_at_width(&f.function, width.saturating_sub(INDENT.len())).into_iter();
        let mut head = vec![
            Span::styled(format!("{i:>2} "), theme.dim),
            Span::styled(name.next().unwrap_or_default(), theme.function),
        ];
        let rest: Vec<String> = name.collect();
        if f.inlined && rest.is_empty() {
            head.push(Span::styled(" (inlined)", theme.dim));
        }
        lines.push(Line::from(head));
        let last = rest.len();
        for (n, piece) in rest.into_iter().enumerate() {
            let mut line = vec![Span::raw(INDENT), Span::styled(piece, theme.function)];
            if f.inlined && n + 1 == last {
                line.push(Span::styled(" (inlined)", theme.dim));
            }
            lines.push(Line::from(line));
        }
        // A frame without symbols is already named `module+0xOFFSET`.
        let module = f.module.as_deref().filter(|m| !f.function.starts_with(&format!("{m}+")));
        let place: Vec<&str> = [f.location.as_deref(), module].into_iter().flatten().collect();
        if !place.is_empty() {
            // Cut with `…` where the pane is narrower (a long path or module name).
            let room = width.saturating_sub(INDENT.len());
            let place = place.join(" · ");
            let place = if room >= MIN_KNOWN_WIDTH { format::fit(&place, room) } else { place };
            lines.push(Line::styled(format!("{INDENT}{place}"), theme.dim));
        }
    }
    lines
}

/// How far a frame's continuation lines and its place are indented (past its number).
const INDENT: &str = "   ";
/// Narrower than this, a pane's width is taken as not known yet (before the first draw): names
/// and places are left whole.
const MIN_KNOWN_WIDTH: usize = 8;

/// `text` in pieces of at most `width` characters (one piece when it fits, or when the width
/// is not known yet).
fn split_at_width(text: &str, width: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    if width < MIN_KNOWN_WIDTH || chars.len() <= width {
        return vec![text.to_string()];
    }
    chars.chunks(width).map(|c| c.iter().collect()).collect()
}

/// Eighths of a cell, for the history's bars.
const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// A group's history in two lines: a header with its peak, then one bar per column (each the
/// highest level of the points it covers) across `width` columns at most, the column of T
/// (`history_at`) marked. A history that is 0 at every point (blocks freed between two
/// samples, as temporary ones are) is one line that says so.
fn history_lines<'a>(history: &[u64], history_at: usize, width: usize, theme: &Theme) -> Vec<Line<'a>> {
    let peak = history.iter().copied().max().unwrap_or(0);
    if peak == 0 {
        return vec![Line::from(vec![
            Span::styled("live over time", theme.header),
            Span::styled(" · 0 B at every sample", theme.dim),
        ])];
    }
    let header = Line::from(vec![
        Span::styled("live over time", theme.header),
        Span::styled(format!(" · peak {}", format::bytes(peak)), theme.dim),
    ]);
    let points = history.len();
    let columns = width.clamp(1, points.max(1));
    let column_of = |point: usize| point * columns / points.max(1);
    let mut bars = Vec::with_capacity(columns);
    for c in 0..columns {
        let from = c * points / columns;
        let to = ((c + 1) * points / columns).clamp(from + 1, points.max(from + 1));
        let level = history.get(from..to).and_then(|p| p.iter().copied().max()).unwrap_or(0);
        let bar = match level {
            0 => ' ',
            _ => BARS[((u128::from(level) * 8).div_ceil(u128::from(peak.max(1))) as usize).clamp(1, 8) - 1],
        };
        let style = if c == column_of(history_at) { theme.cursor } else { theme.bar };
        bars.push(Span::styled(bar.to_string(), style));
    }
    vec![header, Line::from(bars)]
}

/// The verdict on a stack and its evidence, wrapped to `width`.
fn verdict_lines<'a>(v: &StackVerdict, width: usize, theme: &Theme) -> Vec<Line<'a>> {
    let style = match v.verdict {
        Verdict::Growing | Verdict::Outlived => theme.warning,
        Verdict::NeverFreed => theme.emphasis,
        Verdict::InUse => theme.function.patch(theme.dim),
    };
    let mut lines =
        vec![Line::from(vec![Span::styled("verdict ", theme.dim), Span::styled(v.verdict.name(), style)])];
    lines
        .extend(format::wrap(&v.evidence, wrap_width(width)).into_iter().map(|l| Line::styled(l, theme.dim)));
    lines
}

/// The width text is wrapped to in a pane `width` columns wide: narrower than 20 columns the
/// pane is not drawn readably anyway (and before the first draw the width is not known).
pub(super) fn wrap_width(width: usize) -> usize {
    if width < 20 { 40 } else { width }
}

/// Lines of the details pane for one group, with the leak-suspect `verdict` on it when known;
/// `width` sizes the histogram bars and wraps the verdict's evidence.
pub fn group_lines<'a>(
    d: &GroupDetails,
    verdict: Option<&StackVerdict>,
    width: usize,
    theme: &Theme,
) -> Vec<Line<'a>> {
    let mut lines = vec![
        // Cut with `…` when too long: the stack below has it in full.
        Line::styled(format::fit(&d.label, wrap_width(width)), theme.function),
        Line::from(format!(
            "{} · {}{}",
            format::bytes(d.totals.bytes),
            format::blocks(d.totals.blocks),
            if d.stacks > 1 {
                format!(" · {} stacks", format::count(d.stacks))
            } else if d.call_sites > 1 {
                format!(" · {} call sites", format::count(d.call_sites))
            } else {
                String::new()
            }
        )),
        Line::from(vec![
            Span::styled("allocated ", theme.dim),
            Span::raw(format::duration(d.first_alloc_ns)),
            Span::styled(" .. ", theme.dim),
            Span::raw(format::duration(d.last_alloc_ns)),
        ]),
    ];
    if !d.history.is_empty() {
        lines.extend(history_lines(&d.history, d.history_at, wrap_width(width), theme));
    }
    if let Some(v) = verdict {
        lines.extend(verdict_lines(v, width, theme));
    }
    // The line for `leakview check --suppressions`, whole (it is meant to be copied).
    if let Some(rule) = &d.suppression {
        for (n, part) in
            split_at_width(&format!("suppress {rule}"), wrap_width(width)).into_iter().enumerate()
        {
            match part.strip_prefix("suppress ").filter(|_| n == 0) {
                Some(rest) => lines.push(Line::from(vec![
                    Span::styled("suppress ", theme.dim),
                    Span::raw(rest.to_string()),
                ])),
                None => lines.push(Line::raw(part)),
            }
        }
    }
    let threads: Vec<String> = d
        .threads
        .iter()
        .map(|t| format!("{} ×{}", format::thread(t.tid, t.name.as_deref()), format::count(t.blocks)))
        .collect();
    // A thread's own group (grouped by thread) names its thread already.
    let names_its_thread =
        matches!(d.threads.as_slice(), [t] if d.label == format::thread(t.tid, t.name.as_deref()));
    // All the threads, over as many lines as they take.
    let threads = format!("threads {}", threads.join(", "));
    let thread_lines = if names_its_thread { Vec::new() } else { format::wrap(&threads, wrap_width(width)) };
    for (n, line) in thread_lines.into_iter().enumerate() {
        match line.strip_prefix("threads ").filter(|_| n == 0) {
            Some(rest) => {
                lines.push(Line::from(vec![Span::styled("threads ", theme.dim), Span::raw(rest.to_string())]))
            }
            None => lines.push(Line::raw(line)),
        }
    }
    lines.push(Line::styled("sizes", theme.header));
    let labels: Vec<String> = d.histogram.iter().map(|b| format!("≥{}", format::bytes(b.min_size))).collect();
    let label_width = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let most = d.histogram.iter().map(|b| b.blocks).max().unwrap_or(1).max(1);
    for (bucket, label) in d.histogram.iter().zip(&labels) {
        let count = format::compact_count(bucket.blocks);
        let room = width.saturating_sub(label_width + count.len() + 3).max(1);
        let bar = ((u128::from(bucket.blocks) * room as u128).div_ceil(u128::from(most)) as usize).max(1);
        lines.push(Line::from(vec![
            Span::raw(format!("{label:>label_width$} ")),
            Span::styled("█".repeat(bar), theme.bar),
            Span::raw(format!(" {count}")),
        ]));
    }
    lines.push(Line::styled(if d.stacks > 1 { "heaviest stack" } else { "stack" }, theme.header));
    lines.extend(frame_lines(&d.frames, width, theme));
    lines
}

pub(super) fn draw_group(frame: &mut Frame<'_>, body: &BodyAreas, screen: &Screen<'_>) {
    let state = screen.state;
    let width = usize::from(body.details_inner.width);
    let lines = screen.details.map(|d| group_lines(d, screen.selected_verdict, width, screen.theme));
    let focused = state.focus == Pane::Details;
    draw_group_details(frame, body, focused, lines, state.details_scroll, screen.theme);
}

pub(super) fn draw_stack(frame: &mut Frame<'_>, body: &BodyAreas, screen: &Screen<'_>, open: &OpenGroup) {
    let focused = screen.state.focus == Pane::Details;
    let selected =
        open.cursor.selected.checked_sub(open.cursor.offset).and_then(|i| screen.allocations.rows.get(i));
    let title = match selected {
        Some(row) => format!(" Stack of {} ", format::address(row.address)),
        None => " Stack ".to_string(),
    };
    let block = pane_block(title, focused, screen.theme);
    let theme = screen.theme;
    let lines = match selected {
        Some(row) => {
            let index = open.cursor.selected - open.cursor.offset;
            let mut spans = vec![
                Span::raw(format::bytes(row.size)),
                Span::styled(" at ", theme.dim),
                Span::raw(format::duration(row.at_ns)),
                Span::styled(" by ", theme.dim),
            ];
            // The thread in the room left on the line: a narrow pane drops its tid, not a `)`.
            let room = usize::from(body.details_inner.width)
                .saturating_sub(spans.iter().map(|s| s.width()).sum::<usize>());
            if let Some((tid, name)) = screen.allocation_threads.get(index) {
                spans.push(Span::raw(format::thread_within(*tid, name.as_deref(), room)));
            }
            let mut lines = vec![Line::from(spans)];
            lines.extend(frame_lines(screen.stack, usize::from(body.details_inner.width), theme));
            lines
        }
        None => vec![Line::styled("no allocation selected", theme.dim)],
    };
    draw_scrolled(frame, (body.details, body.details_inner), block, lines, open.stack_scroll, theme);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::ThreadShare;

    fn text(lines: &[Line<'_>]) -> Vec<String> {
        lines.iter().map(|l| l.to_string()).collect()
    }

    #[test]
    fn a_history_has_a_bar_per_column_scaled_to_its_peak() {
        let theme = Theme::monochrome();
        // 100 points: nothing, then a rise to 800 bytes, held, then freed.
        let mut history = vec![0u64; 100];
        for (k, level) in history.iter_mut().enumerate().take(90).skip(10) {
            *level = (k as u64 * 10).min(800);
        }
        let lines = history_lines(&history, 50, 10, &theme);
        assert_eq!(lines[0].to_string(), "live over time · peak 800 B");
        // Ten columns of ten points each: the highest of each.
        assert_eq!(lines[1].to_string(), " ▂▃▄▅▆▇██ ");
        let wide = history_lines(&history, 0, 200, &theme);
        assert_eq!(wide[1].to_string().chars().count(), 100, "one column per point at most");
        let none = history_lines(&[0; 100], 3, 40, &theme);
        assert_eq!(text(&none), ["live over time · 0 B at every sample"], "no empty row of bars");
        // The column of T is marked.
        assert_eq!(lines[1].spans[5].style, theme.cursor);
        assert_eq!(lines[1].spans[4].style, theme.bar);
    }

    #[test]
    fn a_stack_groups_suppression_line_is_shown_whole() {
        let theme = Theme::monochrome();
        let rule = "leak:^app::Registry<int>::make_bucket(int const&)$";
        let details = GroupDetails {
            label: "leak".to_string(),
            suppression: Some(rule.to_string()),
            ..GroupDetails::default()
        };
        let wide = text(&group_lines(&details, None, 80, &theme));
        assert!(wide.contains(&format!("suppress {rule}")), "{wide:#?}");
        // Narrower than the line: it goes on over lines, every character kept.
        let narrow = text(&group_lines(&details, None, 24, &theme));
        let at = narrow.iter().position(|l| l.starts_with("suppress ")).expect("the line");
        let shown: String = narrow[at..]
            .iter()
            .take_while(|l| !l.starts_with("threads") && !l.starts_with("sizes"))
            .map(String::as_str)
            .collect();
        assert_eq!(shown, format!("suppress {rule}"), "{narrow:#?}");
        // Without one (grouped by size, say), no such line.
        let none = text(&group_lines(&GroupDetails { suppression: None, ..details }, None, 80, &theme));
        assert!(!none.iter().any(|l| l.starts_with("suppress")), "{none:#?}");
    }

    #[test]
    fn a_long_function_name_goes_on_over_lines_instead_of_being_cut() {
        let name = "std::vector<std::map<int, std::string>> app::Registry<int>::make_bucket(int const&)";
        let frame = FrameInfo {
            function: name.to_string(),
            location: Some("app.cpp:12".to_string()),
            module: Some("app".to_string()),
            inlined: true,
        };
        let lines = text(&frame_lines(std::slice::from_ref(&frame), 30, &Theme::monochrome()));
        assert!(lines.iter().all(|l| l.chars().count() <= 30), "{lines:#?}");
        let shown: String =
            lines[..lines.len() - 1].iter().map(|l| l[3..].trim_end_matches(" (inlined)")).collect();
        assert_eq!(shown, name, "every character of the name is shown, in order");
        assert!(lines[lines.len() - 2].ends_with(" (inlined)"), "{lines:#?}");
        assert_eq!(lines.last().map(String::as_str), Some("   app.cpp:12 · app"));
        // A name that fits keeps one line.
        let short = FrameInfo { function: "main".to_string(), ..frame };
        assert_eq!(frame_lines(&[short], 30, &Theme::monochrome()).len(), 2);
    }

    #[test]
    fn a_place_wider_than_the_pane_is_cut_with_an_ellipsis() {
        let frame = FrameInfo {
            function: "_dl_start".to_string(),
            location: Some("elf/rtld.c:580".to_string()),
            module: Some("ld-linux-x86-64.so.2".to_string()),
            inlined: false,
        };
        let lines = text(&frame_lines(std::slice::from_ref(&frame), 30, &Theme::monochrome()));
        assert_eq!(lines.last().map(String::as_str), Some("   elf/rtld.c:580 · ld-linux-…"));
        // Where it fits, the place is whole.
        let lines = text(&frame_lines(&[frame], 60, &Theme::monochrome()));
        assert_eq!(lines.last().map(String::as_str), Some("   elf/rtld.c:580 · ld-linux-x86-64.so.2"));
    }

    #[test]
    fn every_thread_of_a_group_is_listed_over_as_many_lines_as_it_takes() {
        let threads = (0..6)
            .map(|i| ThreadShare { tid: 1000 + i, name: Some(format!("worker-{i}")), blocks: 10 })
            .collect();
        let details = GroupDetails { label: "leak".to_string(), threads, ..GroupDetails::default() };
        let lines = text(&group_lines(&details, None, 40, &Theme::monochrome()));
        let all = lines.join(" ");
        assert!((0..6).all(|i| all.contains(&format!("worker-{i} ({}) ×10", 1000 + i))), "{lines:#?}");
        assert!(lines.iter().all(|l| l.chars().count() <= 40), "{lines:#?}");
    }

    #[test]
    fn a_stack_group_from_several_call_sites_says_how_many() {
        let one =
            GroupDetails { label: "leak".to_string(), stacks: 1, call_sites: 1, ..GroupDetails::default() };
        let merged = GroupDetails { call_sites: 2, ..one.clone() };
        let function = GroupDetails { stacks: 3, ..one.clone() };
        let lines = |d: &GroupDetails| text(&group_lines(d, None, 60, &Theme::monochrome()));
        assert_eq!(lines(&one)[1], "0 B · 0 blocks");
        assert_eq!(lines(&merged)[1], "0 B · 0 blocks · 2 call sites");
        // Its stacks read the same: the pane shows "stack", not "heaviest stack".
        assert!(lines(&merged).contains(&"stack".to_string()), "{:#?}", lines(&merged));
        assert_eq!(lines(&function)[1], "0 B · 0 blocks · 3 stacks");
        assert!(lines(&function).contains(&"heaviest stack".to_string()));
    }
}
