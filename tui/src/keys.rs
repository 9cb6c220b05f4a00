//! The key tables: every binding, its action and its description. The same table dispatches
//! keys ([`action_in`]), fills the `?` help overlay and the key-hint line, so what the help says
//! is what the keys do. [`BROWSE_KEYS`] serve the browser of one trace, [`DIFF_KEYS`] the diff
//! browser (two traces, or two moments of one), [`FILTER_KEYS`] both while a filter is typed.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// Something the user asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    StepBack,
    StepForward,
    JumpBack,
    JumpForward,
    GoStart,
    GoEnd,
    GoPeak,
    NextMark,
    PrevMark,
    Up,
    Down,
    PageUp,
    PageDown,
    Open,
    Back,
    CycleGrouping,
    CycleSort,
    /// Count outstanding, allocated or temporary blocks.
    CycleWhat,
    /// Show the call tree of the largest stacks instead of the groups (top down, then bottom
    /// up), or the groups again.
    ToggleTree,
    /// Draw the resident set size line over the live heap, or stop drawing it.
    ToggleResident,
    StartFilter,
    FocusNext,
    FocusPrev,
    ToggleHelp,
    Quit,
    /// Diff browser: the time keys move side A's moment from now on.
    SideA,
    /// Diff browser: the time keys move side B's moment from now on.
    SideB,
    /// While typing a filter: apply it and stop typing.
    FilterAccept,
    /// While typing a filter: restore the previous filter.
    FilterCancel,
    /// While typing a filter: delete the last character.
    FilterBackspace,
    /// While typing a filter: add a character (not bound in the table; any printable key).
    FilterChar(char),
}

/// One key a binding answers to. Character keys match whatever Shift state produced them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyPattern {
    pub code: KeyCode,
    pub modifiers: KeyModifiers,
}

const fn key(code: KeyCode) -> KeyPattern {
    KeyPattern { code, modifiers: KeyModifiers::NONE }
}

const fn shift(code: KeyCode) -> KeyPattern {
    KeyPattern { code, modifiers: KeyModifiers::SHIFT }
}

const fn ctrl(c: char) -> KeyPattern {
    KeyPattern { code: KeyCode::Char(c), modifiers: KeyModifiers::CONTROL }
}

const fn ch(c: char) -> KeyPattern {
    key(KeyCode::Char(c))
}

impl KeyPattern {
    pub fn matches(&self, event: &KeyEvent) -> bool {
        let relevant = KeyModifiers::SHIFT | KeyModifiers::CONTROL | KeyModifiers::ALT;
        let mut pressed = event.modifiers & relevant;
        if matches!(event.code, KeyCode::Char(_)) {
            pressed.remove(KeyModifiers::SHIFT);
        }
        // Terminals report Shift+Tab as BackTab, with or without the Shift flag.
        if event.code == KeyCode::BackTab {
            pressed.remove(KeyModifiers::SHIFT);
        }
        self.code == event.code && self.modifiers == pressed
    }
}

/// A row of the key table: keys that share a description (often a pair of opposite moves),
/// each with its own action.
#[derive(Clone, Copy, Debug)]
pub struct Binding {
    pub keys: &'static [(KeyPattern, Action)],
    /// How the help overlay writes the keys.
    pub label: &'static str,
    pub description: &'static str,
    /// Keys and word for the key-hint line; `None` keeps the binding out of it.
    pub hint: Option<(&'static str, &'static str)>,
}

const STEP: Binding = Binding {
    keys: &[(key(KeyCode::Left), Action::StepBack), (key(KeyCode::Right), Action::StepForward)],
    label: "← →",
    description: "move T one step back / forward",
    hint: Some(("←→", "time")),
};

const JUMP: Binding = Binding {
    keys: &[
        (shift(KeyCode::Left), Action::JumpBack),
        (shift(KeyCode::Right), Action::JumpForward),
        (ch('['), Action::JumpBack),
        (ch(']'), Action::JumpForward),
    ],
    label: "S-← S-→ [ ]",
    description: "move T ten steps back / forward",
    hint: None,
};

const ENDS: Binding = Binding {
    keys: &[(key(KeyCode::Home), Action::GoStart), (key(KeyCode::End), Action::GoEnd)],
    label: "Home End",
    description: "T at the start / end of the trace",
    hint: None,
};

const PEAK: Binding = Binding {
    keys: &[(ch('p'), Action::GoPeak)],
    label: "p",
    description: "T at the peak of live bytes",
    hint: Some(("p", "peak")),
};

const MARKS: Binding = Binding {
    keys: &[(ch('m'), Action::NextMark), (ch('M'), Action::PrevMark)],
    label: "m M",
    description: "T at the next / previous mark",
    hint: None,
};

const ROWS: Binding = Binding {
    keys: &[
        (key(KeyCode::Up), Action::Up),
        (key(KeyCode::Down), Action::Down),
        (ch('k'), Action::Up),
        (ch('j'), Action::Down),
    ],
    label: "↑ ↓ k j",
    description: "previous / next row (scrolls the details pane)",
    hint: Some(("↑↓", "select")),
};

const PAGES: Binding = Binding {
    keys: &[(key(KeyCode::PageUp), Action::PageUp), (key(KeyCode::PageDown), Action::PageDown)],
    label: "PgUp PgDn",
    description: "one page up / down",
    hint: None,
};

const OPEN: Binding = Binding {
    keys: &[(key(KeyCode::Enter), Action::Open)],
    label: "Enter",
    description: "open the group or tree line: its allocations and their stacks",
    hint: Some(("Enter", "open")),
};

const BACK: Binding = Binding {
    keys: &[(key(KeyCode::Esc), Action::Back)],
    label: "Esc",
    description: "back; close help; clear the filter",
    hint: None,
};

const GROUPING: Binding = Binding {
    keys: &[(ch('g'), Action::CycleGrouping)],
    label: "g",
    description: "group by stack, function, size, thread",
    hint: Some(("g", "group")),
};

const WHAT: Binding = Binding {
    keys: &[(ch('w'), Action::CycleWhat)],
    label: "w",
    description: "count outstanding, allocated or temporary blocks (freed at once)",
    hint: Some(("w", "what")),
};

const TREE: Binding = Binding {
    keys: &[(ch('t'), Action::ToggleTree)],
    label: "t",
    description: "call tree of the largest stacks, top down / bottom up / groups",
    hint: Some(("t", "tree")),
};

const RESIDENT: Binding = Binding {
    keys: &[(ch('r'), Action::ToggleResident)],
    label: "r",
    description: "RSS line over the live heap (one scale) on / off",
    hint: None,
};

const SORT: Binding = Binding {
    keys: &[(ch('s'), Action::CycleSort)],
    label: "s",
    description: "sort by bytes, blocks, newest, suspicion (leak verdicts)",
    hint: Some(("s", "sort")),
};

const FILTER: Binding = Binding {
    keys: &[(ch('/'), Action::StartFilter)],
    label: "/",
    description: "filter by text in any frame (function, file, module)",
    hint: Some(("/", "filter")),
};

const FOCUS: Binding = Binding {
    keys: &[(key(KeyCode::Tab), Action::FocusNext), (key(KeyCode::BackTab), Action::FocusPrev)],
    label: "Tab S-Tab",
    description: "focus the next / previous pane",
    hint: None,
};

const HELP: Binding = Binding {
    keys: &[(ch('?'), Action::ToggleHelp), (key(KeyCode::F(1)), Action::ToggleHelp)],
    label: "? F1",
    description: "show or hide this help",
    hint: Some(("?", "help")),
};

const QUIT: Binding = Binding {
    keys: &[(ch('q'), Action::Quit), (ctrl('c'), Action::Quit)],
    label: "q Ctrl+C",
    description: "quit",
    hint: Some(("q", "quit")),
};

/// The same keys, described for the diff browser.
const fn described(binding: Binding, description: &'static str) -> Binding {
    Binding { description, ..binding }
}

/// Keys while browsing.
pub const BROWSE_KEYS: &[Binding] = &[
    STEP, JUMP, ENDS, PEAK, MARKS, ROWS, PAGES, OPEN, BACK, WHAT, GROUPING, TREE, SORT, FILTER, FOCUS,
    RESIDENT, HELP, QUIT,
];

/// Keys of the diff browser. Each side has its own moment; the time keys move the side chosen
/// with `a` / `b` (or by focusing its timeline with Tab, or clicking it).
pub const DIFF_KEYS: &[Binding] = &[
    Binding {
        keys: &[(ch('a'), Action::SideA), (ch('b'), Action::SideB)],
        label: "a b",
        description: "scrub side A / side B (the time keys move its T)",
        hint: Some(("a b", "side")),
    },
    described(STEP, "move the side's T one step back / forward"),
    described(JUMP, "move the side's T ten steps back / forward"),
    described(ENDS, "the side's T at the start / end of its trace"),
    Binding { hint: None, ..described(PEAK, "the side's T at its peak of live bytes") },
    described(MARKS, "the side's T at its next / previous mark"),
    described(ROWS, "previous / next group (scrolls the details pane)"),
    PAGES,
    described(BACK, "close help; clear the filter"),
    Binding { hint: None, ..described(WHAT, "compare outstanding, allocated or temporary blocks") },
    described(GROUPING, "group by stack, function"),
    described(SORT, "sort by change, A bytes, B bytes, status"),
    FILTER,
    described(FOCUS, "focus the next / previous pane (a timeline: its side)"),
    HELP,
    QUIT,
];

/// Keys while typing a filter (any other printable key is typed).
pub const FILTER_KEYS: &[Binding] = &[
    Binding {
        keys: &[(key(KeyCode::Enter), Action::FilterAccept)],
        label: "Enter",
        description: "keep the filter",
        hint: Some(("Enter", "keep")),
    },
    Binding {
        keys: &[(key(KeyCode::Esc), Action::FilterCancel)],
        label: "Esc",
        description: "restore the previous filter",
        hint: Some(("Esc", "cancel")),
    },
    Binding {
        keys: &[(key(KeyCode::Backspace), Action::FilterBackspace)],
        label: "Backspace",
        description: "delete the last character",
        hint: None,
    },
    Binding { keys: &[(ctrl('c'), Action::Quit)], label: "Ctrl+C", description: "quit", hint: None },
];

/// The action `event` asks for in the browser of one trace: [`action_in`] [`BROWSE_KEYS`].
pub fn action_for(event: &KeyEvent, typing_filter: bool) -> Option<Action> {
    action_in(BROWSE_KEYS, event, typing_filter)
}

/// The action a key press asks for, as [`action_in`] finds it; other key events (release,
/// repeat on some terminals) ask for nothing.
pub fn pressed_action(keys: &[Binding], event: &KeyEvent, typing_filter: bool) -> Option<Action> {
    if event.kind != KeyEventKind::Press {
        return None;
    }
    action_in(keys, event, typing_filter)
}

/// The action `event` asks for: from `FILTER_KEYS` (or as a typed character) while typing a
/// filter, from `keys` otherwise.
pub fn action_in(keys: &[Binding], event: &KeyEvent, typing_filter: bool) -> Option<Action> {
    let table = if typing_filter { FILTER_KEYS } else { keys };
    let bound = table.iter().flat_map(|b| b.keys.iter()).find(|(k, _)| k.matches(event));
    if let Some((_, action)) = bound {
        return Some(*action);
    }
    if typing_filter
        && let KeyCode::Char(c) = event.code
        && !event.modifiers.intersects(KeyModifiers::CONTROL | KeyModifiers::ALT)
    {
        return Some(Action::FilterChar(c));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    #[test]
    fn arrows_step_both_ways_and_shift_jumps() {
        let none = KeyModifiers::NONE;
        assert_eq!(action_for(&press(KeyCode::Left, none), false), Some(Action::StepBack));
        assert_eq!(action_for(&press(KeyCode::Right, none), false), Some(Action::StepForward));
        assert_eq!(action_for(&press(KeyCode::Left, KeyModifiers::SHIFT), false), Some(Action::JumpBack));
        assert_eq!(action_for(&press(KeyCode::Right, KeyModifiers::SHIFT), false), Some(Action::JumpForward));
        assert_eq!(action_for(&press(KeyCode::Char(']'), none), false), Some(Action::JumpForward));
    }

    #[test]
    fn shifted_characters_match_their_character() {
        let shifted = KeyModifiers::SHIFT;
        assert_eq!(action_for(&press(KeyCode::Char('M'), shifted), false), Some(Action::PrevMark));
        assert_eq!(action_for(&press(KeyCode::Char('?'), shifted), false), Some(Action::ToggleHelp));
        assert_eq!(action_for(&press(KeyCode::BackTab, shifted), false), Some(Action::FocusPrev));
        assert_eq!(action_for(&press(KeyCode::Char('c'), KeyModifiers::CONTROL), false), Some(Action::Quit));
        assert_eq!(action_for(&press(KeyCode::Char('x'), KeyModifiers::NONE), false), None);
        assert_eq!(action_for(&press(KeyCode::Char('j'), KeyModifiers::NONE), false), Some(Action::Down));
        assert_eq!(action_for(&press(KeyCode::End, KeyModifiers::NONE), false), Some(Action::GoEnd));
    }

    #[test]
    fn typing_a_filter_takes_characters_literally() {
        let none = KeyModifiers::NONE;
        assert_eq!(action_for(&press(KeyCode::Char('q'), none), true), Some(Action::FilterChar('q')));
        assert_eq!(action_for(&press(KeyCode::Esc, none), true), Some(Action::FilterCancel));
        assert_eq!(action_for(&press(KeyCode::Char('c'), KeyModifiers::CONTROL), true), Some(Action::Quit));
    }

    #[test]
    fn diff_keys_choose_the_side_and_share_the_browser_moves() {
        let none = KeyModifiers::NONE;
        let diff = |code| action_in(DIFF_KEYS, &press(code, none), false);
        assert_eq!(diff(KeyCode::Char('a')), Some(Action::SideA));
        assert_eq!(diff(KeyCode::Char('b')), Some(Action::SideB));
        assert_eq!(diff(KeyCode::Right), Some(Action::StepForward));
        assert_eq!(diff(KeyCode::Char('s')), Some(Action::CycleSort));
        assert_eq!(diff(KeyCode::Char('/')), Some(Action::StartFilter));
        assert_eq!(diff(KeyCode::Char('q')), Some(Action::Quit));
        // No drill-down in the diff browser; `a` and `b` mean nothing while browsing one trace.
        assert_eq!(diff(KeyCode::Enter), None);
        assert_eq!(action_for(&press(KeyCode::Char('a'), none), false), None);
        // While typing a filter, `a` is a letter of it.
        assert_eq!(
            action_in(DIFF_KEYS, &press(KeyCode::Char('a'), none), true),
            Some(Action::FilterChar('a'))
        );
    }

    #[test]
    fn only_presses_ask_for_an_action() {
        let mut event = press(KeyCode::Char('q'), KeyModifiers::NONE);
        assert_eq!(pressed_action(BROWSE_KEYS, &event, false), Some(Action::Quit));
        event.kind = KeyEventKind::Release;
        assert_eq!(pressed_action(BROWSE_KEYS, &event, false), None);
        event.kind = KeyEventKind::Repeat;
        assert_eq!(pressed_action(DIFF_KEYS, &event, false), None);
    }

    #[test]
    fn no_key_is_bound_twice_in_a_table() {
        for table in [BROWSE_KEYS, DIFF_KEYS, FILTER_KEYS] {
            let keys: Vec<&KeyPattern> = table.iter().flat_map(|b| b.keys.iter().map(|(k, _)| k)).collect();
            for (i, a) in keys.iter().enumerate() {
                assert!(!keys[i + 1..].contains(a), "{a:?} bound twice");
            }
        }
    }
}
