//! What a mouse event asks of a browser: a press of the left button (a click, or a drag) at a
//! place, or a step of the wheel at a place, and the actions a wheel step stands for. Both
//! browsers read the mouse through it.

use ratatui::crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::Position;

use crate::keys::Action;

/// A mouse event a browser answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pointer {
    /// The left button went down, or moved while down, at this cell.
    Press(Position),
    /// The wheel turned one step (`up`, or down) over this cell.
    Wheel { at: Position, up: bool },
}

impl Pointer {
    /// What `event` asks, if it is anything a browser answers.
    pub fn of(event: &MouseEvent) -> Option<Self> {
        let at = Position::new(event.column, event.row);
        match event.kind {
            MouseEventKind::Down(MouseButton::Left) | MouseEventKind::Drag(MouseButton::Left) => {
                Some(Pointer::Press(at))
            }
            MouseEventKind::ScrollUp => Some(Pointer::Wheel { at, up: true }),
            MouseEventKind::ScrollDown => Some(Pointer::Wheel { at, up: false }),
            _ => None,
        }
    }
}

/// A wheel step over a timeline: up moves T forward.
pub(crate) fn wheel_time_step(up: bool) -> Action {
    if up { Action::StepForward } else { Action::StepBack }
}

/// A wheel step over a list or the details pane: a row (or line) up or down.
pub(crate) fn wheel_row_step(up: bool) -> Action {
    if up { Action::Up } else { Action::Down }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::crossterm::event::KeyModifiers;

    fn mouse(kind: MouseEventKind) -> MouseEvent {
        MouseEvent { kind, column: 3, row: 4, modifiers: KeyModifiers::NONE }
    }

    #[test]
    fn left_presses_and_wheel_steps_are_answered_the_rest_is_not() {
        let at = Position::new(3, 4);
        assert_eq!(Pointer::of(&mouse(MouseEventKind::Down(MouseButton::Left))), Some(Pointer::Press(at)));
        assert_eq!(Pointer::of(&mouse(MouseEventKind::Drag(MouseButton::Left))), Some(Pointer::Press(at)));
        assert_eq!(Pointer::of(&mouse(MouseEventKind::ScrollUp)), Some(Pointer::Wheel { at, up: true }));
        assert_eq!(Pointer::of(&mouse(MouseEventKind::ScrollDown)), Some(Pointer::Wheel { at, up: false }));
        assert_eq!(Pointer::of(&mouse(MouseEventKind::Down(MouseButton::Right))), None);
        assert_eq!(Pointer::of(&mouse(MouseEventKind::Up(MouseButton::Left))), None);
        assert_eq!(Pointer::of(&mouse(MouseEventKind::Moved)), None);
    }
}
