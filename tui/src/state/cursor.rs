//! [`ListCursor`]: the selection and scroll position of a list, and how it follows the selected
//! row when the list is recomputed. Both browsers' lists use it.

/// A scrollable list: the selected row and the first row shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ListCursor {
    pub selected: usize,
    pub offset: usize,
    /// The user moved the selection: it follows its group when the list re-ranks. Until then
    /// the top row stays selected, so a list that re-ranks (T moved) shows its top.
    pub chosen: bool,
}

impl ListCursor {
    /// Moves the selection by `delta` rows within `len`, scrolling so it stays among the
    /// `visible` rows shown.
    pub fn move_by(&mut self, delta: isize, len: usize, visible: usize) {
        if len == 0 {
            *self = ListCursor::default();
            return;
        }
        self.chosen = true;
        self.selected = self.selected.saturating_add_signed(delta).min(len - 1);
        self.keep_visible(len, visible);
    }

    /// Clamps the selection into `0..len` and scrolls so it is shown.
    pub fn keep_visible(&mut self, len: usize, visible: usize) {
        let visible = visible.max(1);
        self.selected = self.selected.min(len.saturating_sub(1));
        if self.selected < self.offset {
            self.offset = self.selected;
        } else if self.selected >= self.offset + visible {
            self.offset = self.selected + 1 - visible;
        }
        self.offset = self.offset.min(len.saturating_sub(visible));
    }

    /// After the list was recomputed (`keys` in display order): selects the row of
    /// `selected_key` if the user chose it and it is still listed, else keeps the row index;
    /// scrolls it into view among `visible` rows. Returns the key now selected.
    pub fn follow<K: Copy + PartialEq>(
        &mut self,
        selected_key: Option<K>,
        keys: &[K],
        visible: usize,
    ) -> Option<K> {
        if self.chosen
            && let Some(key) = selected_key
            && let Some(i) = keys.iter().position(|k| *k == key)
        {
            self.selected = i;
        }
        self.keep_visible(keys.len(), visible);
        keys.get(self.selected).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_within_the_list_and_scrolls_the_selection_into_view() {
        let mut c = ListCursor::default();
        c.move_by(-1, 25, 10);
        assert_eq!((c.selected, c.offset), (0, 0));
        c.move_by(12, 25, 10);
        assert_eq!((c.selected, c.offset), (12, 3));
        c.move_by(100, 25, 10);
        assert_eq!((c.selected, c.offset), (24, 15));
        c.move_by(1, 0, 10);
        assert_eq!(c, ListCursor::default(), "an empty list has nothing selected");
    }

    #[test]
    fn follows_the_selected_key_else_keeps_the_row() {
        let mut c = ListCursor::default();
        assert_eq!(c.follow(None, &['a', 'b', 'c'], 10), Some('a'));
        c.move_by(1, 3, 10);
        assert_eq!(c.follow(Some('b'), &['c', 'a', 'b'], 10), Some('b'));
        assert_eq!(c.selected, 2);
        assert_eq!(c.follow(Some('x'), &['c', 'a', 'b', 'd'], 10), Some('b'), "gone: the row stays");
        assert_eq!(c.follow(Some('b'), &['c'], 10), Some('c'), "clamped");
        assert_eq!(c.follow(Some('c'), &[], 10), None);
    }

    #[test]
    fn the_top_row_stays_selected_until_the_user_moves() {
        let mut c = ListCursor::default();
        assert_eq!(c.follow(None, &['a', 'b', 'c'], 10), Some('a'));
        // Re-ranked (T moved): the top of the list is shown, not where 'a' went.
        assert_eq!(c.follow(Some('a'), &['b', 'c', 'a'], 2), Some('b'));
        assert_eq!((c.selected, c.offset), (0, 0));
        c.move_by(1, 3, 2);
        assert_eq!(c.follow(Some('c'), &['a', 'b', 'c'], 2), Some('c'), "chosen: followed");
        assert_eq!((c.selected, c.offset), (2, 1));
    }
}
