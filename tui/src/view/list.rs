//! The left pane: the ranked groups of the blocks counted at T (outstanding, or as the `w` key
//! chose: allocated or temporary), or an open group's allocations.

use ratatui::Frame;
use ratatui::text::{Line, Span};

use crate::format;
use crate::source::{Grouping, Selection, SortKey, Verdict, alike};
use crate::state::{OpenGroup, Opened, Pane};

use super::pane::{Position, with_position};
use super::rows::{draw_with_header, pad, row_style};
use super::{BodyAreas, Screen, pane_block};

fn label_header(grouping: Grouping) -> &'static str {
    match grouping {
        Grouping::Stack => "top frame",
        Grouping::Function => "function",
        Grouping::Size => "size",
        Grouping::Thread => "thread",
    }
}

/// How a blank list says that `what` counts nothing at T.
pub(super) fn counted_nothing(what: Selection) -> &'static str {
    match what {
        Selection::Outstanding => "outstanding at T",
        Selection::Allocated => "allocated by T",
        Selection::Temporary => "temporary by T",
    }
}

/// `" · allocated"` or `" · temporary"` in a pane title when the list counts those blocks;
/// nothing for outstanding blocks, the browser's usual view.
pub(super) fn what_in_title(what: Selection) -> String {
    match what {
        Selection::Outstanding => String::new(),
        other => format!(" · {}", other.name()),
    }
}

/// Rows at least this wide show the verdicts' full names, narrower ones a four-letter tag.
const WIDE_VERDICTS: usize = 60;

/// How a row names its verdict: the full name, or a four-letter tag.
pub fn verdict_tag(verdict: Verdict, wide: bool) -> &'static str {
    if wide {
        return verdict.name();
    }
    match verdict {
        Verdict::Growing => "grow",
        Verdict::Outlived => "outl",
        Verdict::NeverFreed => "kept",
        Verdict::InUse => "used",
    }
}

/// A label of a group of `grouping` cut to `room` characters: names of functions (stack and
/// function groups) are first made short as [`fitted_label`] does; a thread (`name (tid)`)
/// drops its tid first, as [`format::thread_within`] does; sizes are only cut.
fn grouping_label(label: &str, room: usize, grouping: Grouping) -> String {
    match grouping {
        Grouping::Stack | Grouping::Function => format::fit(&fitted_label(label, room), room),
        Grouping::Thread if label.chars().count() > room => match label.rsplit_once(" (") {
            Some((name, _)) => format::fit(name, room),
            None => format::fit(label, room),
        },
        Grouping::Size | Grouping::Thread => format::fit(label, room),
    }
}

/// A group's label for a column `room` characters wide: as it is when it fits, else each
/// function name in it (the top frame's, and the caller that tells it apart from groups of the
/// same top frame) made short ([`format::short_function`]), and a caller without symbols in the
/// top frame's module (`libsqlite3.so.0+0x3974e` after `libsqlite3.so.0+0xa7504`) named by its
/// offset alone (`+0x3974e`); the full name is in the details pane.
pub(crate) fn fitted_label(label: &str, room: usize) -> String {
    if label.chars().count() <= room {
        return label.to_string();
    }
    for arrow in [alike::FAR_CALLER_ARROW, alike::CALLER_ARROW] {
        if let Some((top, caller)) = label.split_once(arrow) {
            let caller = match (module_offset(top), module_offset(caller)) {
                (Some((module, _)), Some((same, offset))) if module == same => format!("+{offset}"),
                _ => format::short_function(caller),
            };
            return format!("{}{arrow}{caller}", short_top(top));
        }
    }
    short_top(label)
}

/// `module+0xOFFSET`, the name of a frame without symbols, split into the module and the
/// offset (`0x…`).
fn module_offset(name: &str) -> Option<(&str, &str)> {
    let (module, offset) = name.rsplit_once('+')?;
    let hex = offset.strip_prefix("0x")?;
    (!module.is_empty() && !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit()))
        .then_some((module, offset))
}

/// The top frame's part of a label made short: its function name, and the ` (PLACE)` that
/// follows it when rows read alike (`cache_put (leaky.c:107)`) kept as it is, since a name
/// shortener would take the place for a parameter list and the name before it for a return type.
fn short_top(top: &str) -> String {
    match split_place(top) {
        Some((name, place)) => format!("{} ({place})", format::short_function(name)),
        None => format::short_function(top),
    }
}

/// `name (PLACE)` split into the name and the place; `None` when `top` does not end with a
/// parenthesised place (a place holds no brackets, unlike a parameter list such as
/// `f(int (*)(int))`).
fn split_place(top: &str) -> Option<(&str, &str)> {
    let (name, rest) = top.rsplit_once(" (")?;
    let place = rest.strip_suffix(')')?;
    (!name.is_empty() && !place.is_empty() && !place.contains(['(', ')'])).then_some((name, place))
}

pub(super) fn draw_groups(frame: &mut Frame<'_>, body: &BodyAreas, screen: &Screen<'_>) {
    let state = screen.state;
    let theme = screen.theme;
    let width = usize::from(body.list_rows.width);
    let title = format!(
        " At {}{} · by {} · {} ",
        format::duration(state.at_ns),
        what_in_title(state.what),
        state.grouping.name(),
        match screen.groups.len() {
            1 => "1 group".to_string(),
            n => format!("{} groups", format::count(n as u64)),
        }
    );
    let focused = state.focus == Pane::List;
    let shown = usize::from(body.list_rows.height);
    let position = Position::Row { selected: state.groups.selected, len: screen.groups.len(), shown };
    frame.render_widget(with_position(pane_block(title, focused, theme), position, theme), body.list);
    let mut lines = Vec::with_capacity(usize::from(body.list_rows.height) + 1);
    // Sorted by suspicion, stack groups are ranked by their verdicts; without verdicts (other
    // groupings) the list stays in bytes order.
    let verdicts = screen.verdicts.filter(|_| state.sort == SortKey::Suspicion);
    let sort =
        if state.sort == SortKey::Suspicion && verdicts.is_none() { SortKey::Bytes } else { state.sort };
    let wide = width >= WIDE_VERDICTS;
    let tag_width = if wide { "never-freed".len() } else { 4 };
    let sort_mark =
        |name: &str, key: SortKey| if sort == key { format!("{name}↓") } else { name.to_string() };
    let verdict_header = match verdicts {
        Some(_) => format!("{:<tag_width$} ", if wide { "verdict↓" } else { "why↓" }),
        None => String::new(),
    };
    let header = format!(
        "{:>9} {:>6} {:>5}  {verdict_header}{}",
        sort_mark("bytes", SortKey::Bytes),
        sort_mark("blocks", SortKey::Blocks),
        "share",
        if sort == SortKey::Newest {
            format!("{} (newest first)", label_header(state.grouping))
        } else {
            label_header(state.grouping).to_string()
        }
    );
    lines.push(Line::styled(pad(&header, width), theme.header));
    if screen.groups.is_empty() {
        let empty = match (state.query().filter.as_str(), state.what) {
            ("", what) => format!("nothing {}", counted_nothing(what)),
            (filter, Selection::Outstanding) => format!("no outstanding stack matches \"{filter}\""),
            (filter, what) => format!("no stack of {} blocks matches \"{filter}\"", what.name()),
        };
        lines.push(Line::styled(format::fit(&empty, width), theme.dim));
    }
    let visible =
        screen.groups.iter().enumerate().skip(state.groups.offset).take(usize::from(body.list_rows.height));
    for (i, row) in visible {
        let tag = match verdicts {
            Some(v) => {
                let tag = v.of(row.key).map(|v| verdict_tag(v.verdict, wide)).unwrap_or("?");
                format!("{tag:<tag_width$} ")
            }
            None => String::new(),
        };
        let numbers = format!(
            "{:>9} {:>6} {:>5}  {tag}",
            format::bytes(row.totals.bytes),
            format::compact_count(row.totals.blocks),
            format::percent(row.totals.bytes, screen.totals.bytes),
        );
        let label = grouping_label(&row.label, width.saturating_sub(numbers.chars().count()), state.grouping);
        let text = format!("{numbers}{label}");
        lines.push(Line::styled(pad(&text, width), row_style(i == state.groups.selected, focused, theme)));
    }
    draw_with_header(frame, body.list_rows, lines);
}

/// How an open list's label is fitted: as the grouping's labels, or as a function (a frame of
/// the call tree).
fn open_grouping(open: &OpenGroup, grouping: Grouping) -> Grouping {
    match open.opened {
        Opened::Group(_) => grouping,
        Opened::TreeLine(_) => Grouping::Function,
    }
}

pub(super) fn draw_allocations(
    frame: &mut Frame<'_>,
    body: &BodyAreas,
    screen: &Screen<'_>,
    open: &OpenGroup,
) {
    let state = screen.state;
    let theme = screen.theme;
    let width = usize::from(body.list_rows.width);
    let page = screen.allocations;
    // The label takes what the rest of the title leaves on the pane's top border, up to 30.
    let when = if state.what == Selection::Outstanding { "at" } else { "by" };
    let rest = format!(
        "{} · {} {when} {} ",
        what_in_title(state.what),
        format::blocks(page.total),
        format::duration(state.at_ns)
    );
    let room = usize::from(body.list.width).saturating_sub(rest.chars().count() + 3).clamp(8, 30);
    let title = Line::from(vec![
        Span::raw(" "),
        Span::styled(grouping_label(&open.label, room, open_grouping(open, state.grouping)), theme.function),
        Span::raw(rest),
    ]);
    let focused = state.focus == Pane::List;
    let shown = usize::from(body.list_rows.height);
    let position = Position::Row { selected: open.cursor.selected, len: page.total as usize, shown };
    frame.render_widget(with_position(pane_block(title, focused, theme), position, theme), body.list);
    let mut lines = Vec::with_capacity(usize::from(body.list_rows.height) + 1);
    lines.push(Line::styled(
        pad(&format!("{:<14} {:>8} {:>8}  thread", "address", "size", "time"), width),
        theme.header,
    ));
    if page.rows.is_empty() {
        let empty = format!("nothing of this group is {}", counted_nothing(state.what));
        lines.push(Line::styled(format::fit(&empty, width), theme.dim));
    }
    for (i, (row, (tid, name))) in page.rows.iter().zip(screen.allocation_threads).enumerate() {
        let numbers = format!(
            "{:<14} {:>8} {:>8}  ",
            format::address(row.address),
            format::bytes(row.size),
            format::duration(row.at_ns),
        );
        let room = width.saturating_sub(numbers.chars().count());
        let text = format!("{numbers}{}", format::thread_within(*tid, name.as_deref(), room));
        let selected = open.cursor.offset + i == open.cursor.selected;
        lines.push(Line::styled(pad(&text, width), row_style(selected, focused, theme)));
    }
    draw_with_header(frame, body.list_rows, lines);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_and_size_labels_are_cut_not_shortened_as_functions() {
        let thread = "a-pool-worker (12345)";
        assert_eq!(grouping_label(thread, 30, Grouping::Thread), thread);
        assert_eq!(grouping_label(thread, 15, Grouping::Thread), "a-pool-worker", "the tid goes first");
        assert_eq!(grouping_label(thread, 10, Grouping::Thread), "a-pool-wo…");
        assert_eq!(grouping_label("thread 12345", 8, Grouping::Thread), "thread …");
        let function = "void std::vector<int>::push_back(int const&)";
        assert_eq!(grouping_label(function, 30, Grouping::Function), "std::vector<…>::push_back(…)");
    }

    #[test]
    fn a_top_frame_with_its_place_keeps_its_name_when_shortened() {
        // Rows that read alike carry the top frame's place; a narrow column keeps the name.
        let label = "arena_map_get (obmalloc.c:1459)";
        assert_eq!(grouping_label(label, 18, Grouping::Stack), "arena_map_get (ob…");
        assert_eq!(grouping_label(label, 10, Grouping::Stack), "arena_map…");
        let cpp = "void std::vector<int>::push_back(int const&) (vector.h:12) ← main";
        assert_eq!(
            grouping_label(cpp, 50, Grouping::Stack),
            "std::vector<…>::push_back(…) (vector.h:12) ← main"
        );
        let far = "xmalloc (util.c:41) ← … ← void parse_header(char const*)";
        assert_eq!(grouping_label(far, 45, Grouping::Stack), "xmalloc (util.c:41) ← … ← parse_header(…)");
        // A parameter list with brackets of its own is not a place.
        let pointer = "void apply(int (*)(int), int)";
        assert_eq!(grouping_label(pointer, 12, Grouping::Stack), "apply(…)");
        // A caller without symbols in the top frame's module goes by its offset.
        let stripped = "libsqlite3.so.0+0xa7504 ← … ← libsqlite3.so.0+0x3974e";
        assert_eq!(grouping_label(stripped, 40, Grouping::Stack), "libsqlite3.so.0+0xa7504 ← … ← +0x3974e");
        assert_eq!(grouping_label(stripped, 60, Grouping::Stack), stripped, "whole where it fits");
        let other = "libsqlite3.so.0+0xa7504 ← sqlite3+0x200c4";
        assert_eq!(grouping_label(other, 30, Grouping::Stack), "libsqlite3.so.0+0xa7504 ← sql…");
    }
}
