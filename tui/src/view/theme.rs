//! Colours and text styles, in one place. Only the terminal's named colours are used (they are
//! tuned by the user's palette for dark and light backgrounds), never grey levels or RGB; the
//! selection is shown by reversing colours. With `NO_COLOR` set, every colour is dropped and only
//! bold, dim, underline and reverse remain (the diff's statuses also carry a text marker, so they
//! read without colour).

use ratatui::style::{Color, Modifier, Style};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Theme {
    pub title: Style,
    pub chart: Style,
    /// The resident set size line drawn over the live heap chart.
    pub resident: Style,
    pub cursor: Style,
    pub peak: Style,
    pub mark: Style,
    pub border: Style,
    pub border_focused: Style,
    pub header: Style,
    pub selected: Style,
    pub selected_unfocused: Style,
    pub dim: Style,
    pub emphasis: Style,
    pub function: Style,
    pub warning: Style,
    pub key: Style,
    pub bar: Style,
    /// Diff statuses.
    pub new: Style,
    pub fixed: Style,
    pub grew: Style,
    pub shrank: Style,
    pub same: Style,
}

impl Theme {
    /// The theme for this environment: [`Theme::monochrome`] when `NO_COLOR` is set to anything
    /// but the empty string (<https://no-color.org>), [`Theme::colour`] otherwise.
    pub fn from_env() -> Self {
        match std::env::var_os("NO_COLOR") {
            Some(v) if !v.is_empty() => Theme::monochrome(),
            _ => Theme::colour(),
        }
    }

    pub fn colour() -> Self {
        let plain = Style::new();
        Theme {
            title: plain.add_modifier(Modifier::BOLD),
            chart: plain.fg(Color::Cyan),
            resident: plain.fg(Color::Magenta),
            cursor: plain.fg(Color::Yellow).add_modifier(Modifier::BOLD),
            peak: plain.fg(Color::Red).add_modifier(Modifier::BOLD),
            mark: plain.fg(Color::Magenta),
            border: plain,
            border_focused: plain.fg(Color::Cyan).add_modifier(Modifier::BOLD),
            header: plain.add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
            selected: plain.add_modifier(Modifier::REVERSED),
            selected_unfocused: plain.add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
            dim: plain.add_modifier(Modifier::DIM),
            emphasis: plain.add_modifier(Modifier::BOLD),
            function: plain.fg(Color::Blue).add_modifier(Modifier::BOLD),
            warning: plain.fg(Color::Red).add_modifier(Modifier::BOLD),
            key: plain.fg(Color::Yellow).add_modifier(Modifier::BOLD),
            bar: plain.fg(Color::Green),
            new: plain.fg(Color::Red).add_modifier(Modifier::BOLD),
            fixed: plain.fg(Color::Green).add_modifier(Modifier::BOLD),
            grew: plain.fg(Color::Yellow).add_modifier(Modifier::BOLD),
            shrank: plain.fg(Color::Cyan),
            same: plain.add_modifier(Modifier::DIM),
        }
    }

    pub fn monochrome() -> Self {
        let strip = |s: Style| Style { fg: None, bg: None, ..s };
        let c = Theme::colour();
        Theme {
            title: strip(c.title),
            chart: strip(c.chart),
            resident: strip(c.resident),
            cursor: strip(c.cursor).add_modifier(Modifier::REVERSED),
            peak: strip(c.peak),
            mark: strip(c.mark),
            border: strip(c.border),
            border_focused: strip(c.border_focused),
            header: strip(c.header),
            selected: strip(c.selected),
            selected_unfocused: strip(c.selected_unfocused),
            dim: strip(c.dim),
            emphasis: strip(c.emphasis),
            function: strip(c.function),
            warning: strip(c.warning),
            key: strip(c.key),
            bar: strip(c.bar),
            new: strip(c.new),
            fixed: strip(c.fixed),
            grew: strip(c.grew),
            shrank: strip(c.shrank),
            same: strip(c.same),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monochrome_has_no_colour_at_all() {
        let t = Theme::monochrome();
        for s in [
            t.title,
            t.chart,
            t.resident,
            t.cursor,
            t.peak,
            t.mark,
            t.border_focused,
            t.selected,
            t.function,
            t.key,
            t.bar,
            t.new,
            t.fixed,
            t.grew,
            t.shrank,
            t.same,
        ] {
            assert_eq!((s.fg, s.bg), (None, None));
        }
        assert_ne!(Theme::colour().chart.fg, None);
        assert_ne!(Theme::colour().resident.fg, Theme::colour().chart.fg, "RSS and heap differ");
        assert_ne!(Theme::colour().new.fg, Theme::colour().fixed.fg);
    }
}
