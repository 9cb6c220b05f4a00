//! Time on a trace's timeline: where the time keys move a moment ([`moved_time`]) and how
//! timeline columns map to times and back. Both browsers' time keys and timelines use it.

use crate::keys::Action;

/// Steps across the whole trace for ←/→; Shift jumps ten of them.
pub const STEPS_PER_TRACE: u64 = 200;
/// Steps of a Shift+←/→ (or `[` `]`) jump.
pub const JUMP_STEPS: u64 = 10;

/// What the time keys need to know about one trace.
#[derive(Clone, Copy, Debug, Default)]
pub struct Timespan<'a> {
    pub duration_ns: u64,
    pub peak_at_ns: u64,
    /// Mark times, ascending.
    pub marks: &'a [u64],
}

/// Where a time key (←/→, Shift+←/→, Home/End, `p`, `m`/`M`) moves a moment `at_ns` of the trace
/// `span` describes, always within the trace; `None` for any other action. A mark key with no
/// mark in its direction leaves the moment where it is.
pub fn moved_time(action: Action, at_ns: u64, span: &Timespan<'_>) -> Option<u64> {
    let step = (span.duration_ns / STEPS_PER_TRACE).max(1);
    let to = match action {
        Action::StepBack => at_ns.saturating_sub(step),
        Action::StepForward => at_ns.saturating_add(step),
        Action::JumpBack => at_ns.saturating_sub(step * JUMP_STEPS),
        Action::JumpForward => at_ns.saturating_add(step * JUMP_STEPS),
        Action::GoStart => 0,
        Action::GoEnd => span.duration_ns,
        Action::GoPeak => span.peak_at_ns,
        Action::NextMark => span.marks.iter().copied().find(|&t| t > at_ns).unwrap_or(at_ns),
        Action::PrevMark => span.marks.iter().rev().copied().find(|&t| t < at_ns).unwrap_or(at_ns),
        _ => return None,
    };
    Some(to.min(span.duration_ns))
}

/// The column of a timeline `width` columns wide that shows time `at_ns`.
pub fn column_of(at_ns: u64, width: u16, duration_ns: u64) -> u16 {
    slice_of(at_ns, usize::from(width), duration_ns) as u16
}

/// Which of `slices` equal slices of a trace lasting `duration_ns` shows time `at_ns` (a
/// column, or a dot column of the chart); times past the end are in the last.
pub fn slice_of(at_ns: u64, slices: usize, duration_ns: u64) -> usize {
    if slices == 0 || duration_ns == 0 {
        return 0;
    }
    let slice = u128::from(at_ns) * slices as u128 / u128::from(duration_ns);
    slice.min(slices as u128 - 1) as usize
}

/// The time a click on `column` of a timeline `width` columns wide stands for: the middle of
/// the column's slice, the very start for the first column and the very end for the last.
pub fn time_at_column(column: u16, width: u16, duration_ns: u64) -> u64 {
    if width <= 1 || column == 0 {
        return 0;
    }
    if column >= width - 1 {
        return duration_ns;
    }
    let middle = (2 * u128::from(column) + 1) * u128::from(duration_ns) / (2 * u128::from(width));
    middle as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeline_columns_and_clicks_agree() {
        for width in [1u16, 2, 7, 80] {
            for column in 0..width {
                let t = time_at_column(column, width, 1_000_000);
                assert_eq!(column_of(t, width, 1_000_000), column, "width {width} column {column}");
            }
        }
        assert_eq!(time_at_column(79, 80, 1_000), 1_000);
    }
}
