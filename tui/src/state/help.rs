//! [`HelpOverlay`]: whether the `?` overlay is shown and how far it is scrolled. Both browsers
//! show their key table in it.

use crate::keys::Action;

/// The help overlay's state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HelpOverlay {
    pub shown: bool,
    /// Lines the overlay is scrolled by (when it does not fit the screen).
    pub scroll: usize,
}

impl HelpOverlay {
    /// Shows or hides the overlay, scrolled to its top.
    pub fn toggle(&mut self) {
        self.shown = !self.shown;
        self.scroll = 0;
    }

    /// While the overlay is shown, the row and page keys scroll it (`page` lines a page, down to
    /// `overflow` lines at the most); returns whether `action` did.
    pub fn scroll_by(&mut self, action: Action, page: usize, overflow: usize) -> bool {
        if !self.shown {
            return false;
        }
        let by = match action {
            Action::Up => -1,
            Action::Down => 1,
            Action::PageUp => -(page as isize),
            Action::PageDown => page as isize,
            _ => return false,
        };
        self.scroll = self.scroll.saturating_add_signed(by).min(overflow);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrolls_only_while_shown_and_within_its_overflow() {
        let mut help = HelpOverlay::default();
        assert!(!help.scroll_by(Action::Down, 10, 4), "hidden: the keys are the list's");
        help.toggle();
        assert!(help.scroll_by(Action::PageDown, 10, 4));
        assert_eq!(help.scroll, 4);
        assert!(help.scroll_by(Action::Up, 10, 4));
        assert_eq!(help.scroll, 3);
        assert!(!help.scroll_by(Action::StepBack, 10, 4));
        help.toggle();
        help.toggle();
        assert_eq!((help.shown, help.scroll), (true, 0));
    }
}
