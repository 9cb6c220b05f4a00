//! [`Filter`]: the filter in force and the one being typed, and how the filter keys edit them.
//! Both browsers filter their group list with it.

use crate::keys::Action;

/// The filter in force and, while one is typed, what was typed so far (shown live) and the
/// filter to restore on Esc.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    pub in_force: String,
    /// `(typed, previous)` while typing.
    pub typing: Option<(String, String)>,
}

impl Filter {
    /// The filter shown: the one being typed, else the one in force.
    pub fn shown(&self) -> &str {
        match &self.typing {
            Some((typed, _)) => typed,
            None => &self.in_force,
        }
    }

    pub fn is_typing(&self) -> bool {
        self.typing.is_some()
    }

    /// Applies a filter action: `/` starts typing (from the filter in force), Enter keeps what
    /// was typed, Esc restores the previous filter. Returns whether `action` was fully handled;
    /// `StartFilter` starts typing and returns false, so the caller can also close what the
    /// filter would be typed over.
    pub fn edit(&mut self, action: Action) -> bool {
        let (filter, input) = (&mut self.in_force, &mut self.typing);
        match action {
            Action::StartFilter => {
                *input = Some((filter.clone(), filter.clone()));
                return false;
            }
            Action::FilterAccept => {
                if let Some((typed, _)) = input.take() {
                    *filter = typed;
                }
            }
            Action::FilterCancel => {
                if let Some((_, previous)) = input.take() {
                    *filter = previous;
                }
            }
            Action::FilterBackspace => {
                if let Some((typed, _)) = input {
                    typed.pop();
                }
            }
            Action::FilterChar(c) => {
                if let Some((typed, _)) = input {
                    typed.push(c);
                }
            }
            _ => return false,
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typing_is_shown_live_and_esc_restores_the_previous_filter() {
        let mut f = Filter { in_force: "old".into(), typing: None };
        assert!(!f.edit(Action::StartFilter), "the caller also sees the start");
        assert!(f.edit(Action::FilterBackspace) && f.edit(Action::FilterChar('d')));
        assert_eq!((f.shown(), f.in_force.as_str(), f.is_typing()), ("old", "old", true));
        f.edit(Action::FilterChar('!'));
        assert_eq!(f.shown(), "old!");
        f.edit(Action::FilterCancel);
        assert_eq!((f.shown(), f.is_typing()), ("old", false));
        f.edit(Action::StartFilter);
        f.edit(Action::FilterChar('?'));
        f.edit(Action::FilterAccept);
        assert_eq!((f.in_force.as_str(), f.is_typing()), ("old?", false));
        assert!(!f.edit(Action::Up), "other actions are left to the caller");
    }
}
