//! Allocation windows: a moment's outstanding blocks narrowed to those allocated within a span
//! of time (`--allocated-after`, `--allocated-before`), for questions such as "what did the
//! warm-up allocate that was still live at the end?" or "what was allocated between two marks
//! and never freed?".

use crate::when::format_duration;

/// One end of a window: a time (ns since the start of the trace) and the user's words for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowEnd {
    pub ns: u64,
    pub when: String,
}

/// Blocks allocated at or after `after` and before `before` (either end may be open).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllocWindow {
    pub after: Option<WindowEnd>,
    pub before: Option<WindowEnd>,
}

impl AllocWindow {
    /// Every block, whenever allocated.
    pub fn all() -> Self {
        AllocWindow::default()
    }

    /// Whether the window lets every block through.
    pub fn is_all(&self) -> bool {
        self.after.is_none() && self.before.is_none()
    }

    /// Whether a block allocated at `alloc_ns` is inside.
    pub fn contains(&self, alloc_ns: u64) -> bool {
        self.after.as_ref().is_none_or(|a| alloc_ns >= a.ns)
            && self.before.as_ref().is_none_or(|b| alloc_ns < b.ns)
    }

    /// `allocated from 1.5s (mark:warmup) to 3s (mark:done)`, or `None` for every block.
    pub fn describe(&self) -> Option<String> {
        let end = |e: &WindowEnd| {
            let t = format_duration(e.ns);
            if e.when.trim() == t { t } else { format!("{t} ({})", e.when.trim()) }
        };
        match (&self.after, &self.before) {
            (None, None) => None,
            (Some(a), None) => Some(format!("allocated from {}", end(a))),
            (None, Some(b)) => Some(format!("allocated before {}", end(b))),
            (Some(a), Some(b)) => Some(format!("allocated from {} to {}", end(a), end(b))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end(ns: u64, when: &str) -> Option<WindowEnd> {
        Some(WindowEnd { ns, when: when.to_string() })
    }

    #[test]
    fn ends_are_inclusive_after_and_exclusive_before() {
        let w = AllocWindow { after: end(100, "100ns"), before: end(200, "200ns") };
        assert!(!w.contains(99));
        assert!(w.contains(100));
        assert!(w.contains(199));
        assert!(!w.contains(200));
        assert!(AllocWindow::all().contains(0) && AllocWindow::all().contains(u64::MAX));
        assert!(AllocWindow::all().is_all() && !w.is_all());
    }

    #[test]
    fn descriptions_name_the_users_moments() {
        assert_eq!(AllocWindow::all().describe(), None);
        let w = AllocWindow { after: end(1_500_000_000, "mark:warmup"), before: None };
        assert_eq!(w.describe().as_deref(), Some("allocated from 1.5s (mark:warmup)"));
        let w = AllocWindow { after: None, before: end(250_000_000, "250ms") };
        assert_eq!(w.describe().as_deref(), Some("allocated before 250ms"));
        let w = AllocWindow { after: end(1_000, "10%"), before: end(3_000, "mark:done") };
        assert_eq!(w.describe().as_deref(), Some("allocated from 1us (10%) to 3us (mark:done)"));
    }
}
