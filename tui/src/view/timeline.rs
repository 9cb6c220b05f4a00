//! The timeline: live heap bytes over the whole trace as a braille area chart, with the cursor
//! at T, the peak marked above the chart and marks on the time axis below it; or, when the
//! browser counts allocated or temporary blocks, their bytes so far (a cumulative chart, its
//! total marked at the end). Over the live heap, when the trace sampled it, the process's
//! resident set size (RSS) is drawn as a line in its own colour, on the same scale.
//!
//! Rows of the area it is given: one marker row (the peak or the total), the chart, one axis row.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use crate::format;
use crate::source::{ResidentMemory, Selection, Summary};
use crate::state::column_of;

use super::theme::Theme;

/// Braille dot bits by (row from the top, column) within a cell of 4x2 dots.
const DOTS: [[u8; 2]; 4] = [[0x01, 0x08], [0x02, 0x10], [0x04, 0x20], [0x40, 0x80]];
const BRAILLE_BLANK: u32 = 0x2800;
/// What stands for the RSS line in the timeline's title: a short run of braille dots.
const RESIDENT_LEGEND: &str = "⠒";

/// The label above the chart and the moment it points at.
pub struct Marker {
    pub at_ns: u64,
    pub label: String,
}

/// The timeline widget. `levels` holds what is charted for `2 * width` equal slices of the
/// trace (two braille dots per column): the highest live bytes of each, or bytes so far.
pub struct Timeline<'a> {
    pub levels: &'a [u64],
    pub duration_ns: u64,
    pub at_ns: u64,
    /// The peak (live bytes) or the total at the end (bytes so far); none when nothing is charted.
    pub marker: Option<Marker>,
    /// The chart's full height stands for at least this many bytes (the peak: no slice of the
    /// downsampled levels may reach it).
    pub scale_floor: u64,
    /// Mark times, ns from the start.
    pub marks: &'a [u64],
    /// The resident set size for each of the `2 * width` slices, drawn as a line over the
    /// levels (`None`: not sampled yet); empty when not drawn.
    pub resident: &'a [Option<u64>],
    pub theme: &'a Theme,
}

impl<'a> Timeline<'a> {
    /// The timeline of the trace `summary` describes, charting what `what` counts (the levels
    /// of [`DataSource::timeline`](crate::source::DataSource::timeline)), with the cursor at
    /// `at_ns`; `marks` are its mark times ([`Summary::mark_times`]).
    pub fn of_trace(
        summary: &Summary,
        what: Selection,
        levels: &'a [u64],
        at_ns: u64,
        marks: &'a [u64],
        theme: &'a Theme,
    ) -> Self {
        let so_far = levels.last().copied().unwrap_or(0);
        let (marker, scale_floor) = match what {
            Selection::Outstanding => {
                let peak = summary.peak.bytes;
                let label =
                    format!("peak {} at {}", format::bytes(peak), format::duration(summary.peak_at_ns));
                ((peak > 0).then_some(Marker { at_ns: summary.peak_at_ns, label }), peak)
            }
            Selection::Allocated | Selection::Temporary => {
                let label = match what {
                    Selection::Temporary => format!("{} in temporary blocks in all", format::bytes(so_far)),
                    _ => format!("{} allocated in all", format::bytes(so_far)),
                };
                ((so_far > 0).then_some(Marker { at_ns: summary.duration_ns, label }), 0)
            }
        };
        Timeline {
            levels,
            duration_ns: summary.duration_ns,
            at_ns,
            marker,
            scale_floor,
            marks,
            resident: &[],
            theme,
        }
    }

    /// The timeline with the resident set size line `resident` (levels of
    /// [`resident_levels`](crate::source::resident_levels) for its dots) drawn over it.
    pub fn with_resident(self, resident: &'a [Option<u64>]) -> Self {
        Timeline { resident, ..self }
    }

    /// Whether the timeline charting what `what` counts draws the resident set size line: when
    /// `asked` (`r`: off at first, since RSS is often many times the heap and the heap's shape
    /// then flattens on the shared scale), over the live heap only, the one to compare it with
    /// (bytes so far only grow).
    pub fn charts_resident(what: Selection, asked: bool) -> bool {
        asked && what == Selection::Outstanding
    }

    /// The pane title of the timeline charting what `what` counts.
    pub fn title(what: Selection) -> &'static str {
        match what {
            Selection::Outstanding => " Live heap ",
            Selection::Allocated => " Bytes allocated so far ",
            Selection::Temporary => " Bytes in temporary blocks so far ",
        }
    }

    /// The pane title of the timeline charting what `what` counts; when the trace sampled its
    /// resident set size (`resident`), followed by the size at T (`at_ns`), named in the colour
    /// of its line when the line is `charted`.
    pub fn title_line<'t>(
        what: Selection,
        resident: Option<&ResidentMemory>,
        at_ns: u64,
        charted: bool,
        theme: &Theme,
    ) -> Line<'t> {
        let Some(resident) = resident else { return Line::from(Self::title(what)) };
        let name = if charted { format!("{RESIDENT_LEGEND} RSS") } else { "RSS".into() };
        let value = match resident.at(at_ns) {
            Some(sample) => format!(" at T {} ", format::bytes(sample.bytes)),
            None => " at T: none sampled yet ".to_string(),
        };
        Line::from(vec![
            Span::raw(Self::title(what)),
            Span::styled("· ", theme.dim),
            Span::styled(name, theme.resident),
            Span::raw(value),
        ])
    }

    /// Dot columns the chart needs for an area `width` columns wide.
    pub fn dots_for(width: u16) -> usize {
        usize::from(width) * 2
    }

    /// The bytes the chart's full height stands for: the highest level of either series, at
    /// least [`Timeline::scale_floor`] (and 1).
    fn scale(&self) -> u64 {
        let heap = self.levels.iter().copied().max().unwrap_or(0);
        let resident = self.resident.iter().flatten().copied().max().unwrap_or(0);
        heap.max(resident).max(self.scale_floor).max(1)
    }

    fn render_chart(&self, area: Rect, buf: &mut Buffer) {
        let dot_rows = u64::from(area.height) * 4;
        let scale = self.scale();
        self.render_heap(area, buf, dot_rows, scale);
        self.render_resident(area, buf, dot_rows, scale);
        let cursor = area.x + column_of(self.at_ns, area.width, self.duration_ns);
        for y in area.top()..area.bottom() {
            let cell = &mut buf[(cursor, y)];
            if cell.symbol() == " " {
                cell.set_char('│');
            }
            cell.set_style(self.theme.cursor);
        }
    }

    /// The heap's levels as an area filled from the bottom.
    fn render_heap(&self, area: Rect, buf: &mut Buffer, dot_rows: u64, scale: u64) {
        for dot_column in 0..Self::dots_for(area.width) {
            let level = self.levels.get(dot_column).copied().unwrap_or(0);
            let dots = dot_height(level, dot_rows, scale);
            for dot in 0..dots.min(dot_rows) {
                set_dot(buf, area, dot_column, dot, self.theme.chart);
            }
        }
    }

    /// The resident set size as a line over the heap: one dot per dot column at its level,
    /// joined to the previous column's by a vertical run where the level jumps.
    fn render_resident(&self, area: Rect, buf: &mut Buffer, dot_rows: u64, scale: u64) {
        let mut previous_top: Option<u64> = None;
        for (dot_column, level) in self.resident.iter().enumerate().take(Self::dots_for(area.width)) {
            let Some(level) = *level else { continue };
            let top = dot_height(level, dot_rows, scale).min(dot_rows).saturating_sub(1);
            let (low, high) = match previous_top {
                Some(previous) if previous < top => (previous + 1, top),
                Some(previous) if previous > top => (top, previous - 1),
                _ => (top, top),
            };
            for dot in low..=high {
                set_dot(buf, area, dot_column, dot, self.theme.resident);
            }
            previous_top = Some(top);
        }
    }

    fn render_marker_row(&self, area: Rect, buf: &mut Buffer) {
        let Some(marker) = &self.marker else { return };
        let column = column_of(marker.at_ns, area.width, self.duration_ns);
        let label = &marker.label;
        let x = area.x + column;
        buf[(x, area.y)].set_char('▼').set_style(self.theme.peak);
        let width = label.chars().count() as u16;
        if column + 2 + width <= area.width {
            buf.set_string(x + 2, area.y, label, self.theme.peak);
        } else if column > width {
            buf.set_string(x - 1 - width, area.y, label, self.theme.peak);
        } else {
            let label = format::fit(label, usize::from(area.width.saturating_sub(column + 2)));
            buf.set_string(x + 2, area.y, label, self.theme.peak);
        }
    }

    fn render_axis(&self, area: Rect, buf: &mut Buffer) {
        let cursor = column_of(self.at_ns, area.width, self.duration_ns);
        let marks: Vec<u16> =
            self.marks.iter().map(|&m| column_of(m, area.width, self.duration_ns)).collect();
        // Time labels give way to the cursor and the marks rather than being cut by them: a
        // label is drawn only when neither is on it or on the column next to it.
        let clear = |start: u16, width: u16| {
            let (from, to) = (start.saturating_sub(1), start + width);
            std::iter::once(cursor).chain(marks.iter().copied()).all(|x| x < from || x > to)
        };
        if area.width > 3 && clear(0, 2) {
            buf.set_string(area.x, area.y, "0s", self.theme.dim);
        }
        let end = format::duration(self.duration_ns);
        let end_width = end.chars().count() as u16;
        if area.width > end_width + 3 && clear(area.width - end_width, end_width) {
            buf.set_string(area.right() - end_width, area.y, &end, self.theme.dim);
        }
        for &x in &marks {
            buf[(area.x + x, area.y)].set_char('m').set_style(self.theme.mark);
        }
        buf[(area.x + cursor, area.y)].set_char('▲').set_style(self.theme.cursor);
    }
}

impl Widget for Timeline<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.width < 4 || area.height < 3 {
            return;
        }
        buf.set_style(area, Style::new());
        let peak_row = Rect { height: 1, ..area };
        let axis_row = Rect { y: area.bottom() - 1, height: 1, ..area };
        let chart = Rect { y: area.y + 1, height: area.height - 2, ..area };
        self.render_chart(chart, buf);
        self.render_marker_row(peak_row, buf);
        self.render_axis(axis_row, buf);
    }
}

/// How many dots high `level` stands in a chart `dot_rows` dots high whose full height is
/// `scale` bytes: rounded up, and at least one for any level above zero.
fn dot_height(level: u64, dot_rows: u64, scale: u64) -> u64 {
    let dots = (u128::from(level) * u128::from(dot_rows)).div_ceil(u128::from(scale.max(1)));
    let dots = u64::try_from(dots).unwrap_or(u64::MAX);
    if level > 0 { dots.max(1) } else { dots }
}

/// Adds the braille dot `dot` rows from the bottom of `area` in dot column `dot_column` (two per
/// cell) to the dots already in its cell, and gives the cell `style`.
fn set_dot(buf: &mut Buffer, area: Rect, dot_column: usize, dot: u64, style: Style) {
    let (Ok(column), Ok(row_from_bottom)) = (u16::try_from(dot_column / 2), u16::try_from(dot / 4)) else {
        return;
    };
    if column >= area.width || row_from_bottom >= area.height {
        return;
    }
    let half = dot_column % 2;
    let dot_in_cell = 3 - (dot % 4) as usize;
    let cell = &mut buf[(area.x + column, area.bottom() - 1 - row_from_bottom)];
    let current = cell.symbol().chars().next().map(u32::from).unwrap_or(BRAILLE_BLANK);
    let bits =
        if (BRAILLE_BLANK..BRAILLE_BLANK + 256).contains(&current) { current - BRAILLE_BLANK } else { 0 };
    let glyph = char::from_u32(BRAILLE_BLANK + (bits | u32::from(DOTS[dot_in_cell][half]))).unwrap_or(' ');
    cell.set_char(glyph).set_style(style);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::ResidentSample;

    fn render(levels: &[u64], at_ns: u64, width: u16, height: u16) -> Buffer {
        render_with_marks(levels, at_ns, width, height, &[25])
    }

    fn render_with_marks(levels: &[u64], at_ns: u64, width: u16, height: u16, marks: &[u64]) -> Buffer {
        let theme = Theme::monochrome();
        draw(timeline(levels, at_ns, marks, &theme), width, height)
    }

    /// A timeline of `levels` over 100ns with T at `at_ns`, the peak marked at 50ns.
    fn timeline<'a>(levels: &'a [u64], at_ns: u64, marks: &'a [u64], theme: &'a Theme) -> Timeline<'a> {
        let peak = levels.iter().copied().max().unwrap_or(0);
        Timeline {
            levels,
            duration_ns: 100,
            at_ns,
            marker: Some(Marker { at_ns: 50, label: format!("peak {peak} B at 50ns") }),
            scale_floor: peak,
            marks,
            resident: &[],
            theme,
        }
    }

    fn draw(timeline: Timeline<'_>, width: u16, height: u16) -> Buffer {
        let area = Rect::new(0, 0, width, height);
        let mut buf = Buffer::empty(area);
        timeline.render(area, &mut buf);
        buf
    }

    fn row(buf: &Buffer, y: u16) -> String {
        (0..buf.area.width).map(|x| buf[(x, y)].symbol().to_string()).collect()
    }

    fn render_with_resident(levels: &[u64], resident: &[Option<u64>], width: u16, height: u16) -> Buffer {
        let theme = Theme::colour();
        let timeline = Timeline { marker: None, ..timeline(levels, 100, &[], &theme) };
        draw(timeline.with_resident(resident), width, height)
    }

    #[test]
    fn the_resident_line_is_drawn_over_the_heap_on_one_scale_in_its_own_colour() {
        // Chart rows 1 and 2: 8 dots high. The RSS (16) sets the scale: the heap (8) is half
        // high. No RSS in the first column; then 8 (on the heap's top dot), then 16: a run up
        // to the top dot, which the last column (with the cursor) keeps.
        let resident = [None, None, Some(8), Some(8), Some(16), Some(16), Some(16), Some(16)];
        let buf = render_with_resident(&[8; 8], &resident, 4, 4);
        assert_eq!(row(&buf, 1), "  ⡏⠉");
        assert_eq!(row(&buf, 2), "⣿⣿⣿⣿");
        let magenta = |x: u16, y: u16| buf[(x, y)].fg == ratatui::style::Color::Magenta;
        assert!(!magenta(0, 1) && !magenta(0, 2), "no RSS before the first sample: the heap's colour");
        assert!(magenta(1, 2), "the RSS dots on the heap's top are the RSS colour");
        assert!(magenta(2, 1), "the RSS line at the top");
        assert_eq!(buf[(0, 2)].fg, ratatui::style::Color::Cyan);
    }

    #[test]
    fn a_jump_of_the_resident_line_is_joined_by_a_vertical_run() {
        // 16 dots high (rows 1..=4), no heap: the RSS sets the scale. From the bottom dot up to
        // the top dot and down again, then along the bottom (the cursor in the last column).
        let resident = [Some(1), Some(16), Some(16), Some(1), Some(1), Some(1), Some(1), Some(1)];
        let buf = render_with_resident(&[0; 8], &resident, 4, 6);
        let chart: Vec<String> = (1..5).map(|y| row(&buf, y)).collect();
        // Column 0: the bottom dot on the left, the run up on the right; column 1: the top dot
        // on the left, the run down to the bottom on the right.
        assert_eq!(chart, ["⢸⢱ │", "⢸⢸ │", "⢸⢸ │", "⡸⢸⣀⣀"]);
    }

    #[test]
    fn the_title_tells_the_rss_at_t_only_when_the_trace_sampled_it() {
        let theme = Theme::monochrome();
        let title = |what, resident, at_ns| {
            let charted = Timeline::charts_resident(what, true);
            Timeline::title_line(what, resident, at_ns, charted, &theme).to_string()
        };
        assert_eq!(title(Selection::Outstanding, None, 5), " Live heap ");
        let samples = vec![ResidentSample { at_ns: 10, bytes: 66 << 20 }];
        let resident = ResidentMemory::new(samples);
        assert_eq!(title(Selection::Outstanding, Some(&resident), 10), " Live heap · ⠒ RSS at T 66.0 MiB ");
        assert_eq!(
            title(Selection::Outstanding, Some(&resident), 9),
            " Live heap · ⠒ RSS at T: none sampled yet "
        );
        // No RSS line on bytes so far: no legend for it.
        assert_eq!(
            title(Selection::Allocated, Some(&resident), 50),
            " Bytes allocated so far · RSS at T 66.0 MiB "
        );
        // Nor where the line was not asked for.
        assert!(!Timeline::charts_resident(Selection::Outstanding, false));
        let plain = Timeline::title_line(Selection::Outstanding, Some(&resident), 10, false, &theme);
        assert_eq!(plain.to_string(), " Live heap · RSS at T 66.0 MiB ");
    }

    #[test]
    fn full_level_fills_the_column_and_half_level_half_of_it() {
        let buf = render(&[8, 8, 4, 4, 0, 0, 0, 0], 100, 4, 4);
        // Chart rows are 1 and 2: 8 dots high. Column 0 full, column 1 half, cursor at the end.
        assert_eq!(row(&buf, 1), "⣿  │");
        assert_eq!(row(&buf, 2), "⣿⣿ │");
    }

    #[test]
    fn peak_cursor_and_marks_are_drawn() {
        let buf = render(&[1; 80], 0, 40, 5);
        assert!(row(&buf, 0).contains("▼ peak 1 B at 50ns"), "{}", row(&buf, 0));
        let axis = row(&buf, 4);
        assert!(axis.starts_with('▲'), "cursor at the start: {axis}");
        assert_eq!(axis.chars().nth(10), Some('m'));
        assert!(axis.ends_with("100ns"));
        let at_end = row(&render(&[1; 80], 100, 40, 5), 4);
        assert!(at_end.starts_with("0s") && at_end.ends_with('▲') && !at_end.contains("100ns"), "{at_end}");
    }

    #[test]
    fn marks_on_the_time_labels_hide_the_labels_instead_of_cutting_them() {
        // 40 columns for 100ns: a mark at 2ns is column 0 (on "0s"), one at 97ns column 38 (on
        // "100ns", columns 35..40).
        let axis = row(&render_with_marks(&[1; 80], 50, 40, 5, &[2, 97]), 4);
        assert_eq!(axis.chars().next(), Some('m'), "{axis}");
        assert_eq!(axis.chars().nth(38), Some('m'), "{axis}");
        assert_eq!(axis.chars().nth(20), Some('▲'), "{axis}");
        let rest: String = axis.chars().filter(|c| !matches!(c, 'm' | '▲' | ' ')).collect();
        assert_eq!(rest, "", "no piece of a label is left around the marks: {axis}");
        // A mark right next to a label hides it too; marks clear of both keep both labels.
        let next_to = row(&render_with_marks(&[1; 80], 50, 40, 5, &[6]), 4);
        assert!(!next_to.contains("0s") && next_to.ends_with("100ns"), "{next_to}");
        let clear = row(&render_with_marks(&[1; 80], 50, 40, 5, &[10, 80]), 4);
        assert!(clear.starts_with("0s") && clear.ends_with("100ns"), "{clear}");
    }
}
