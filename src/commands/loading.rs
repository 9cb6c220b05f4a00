//! Loading a trace for a command, with progress bars on stderr when it is a terminal and the
//! work takes more than a moment.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use leakview_analyzer::{Analysis, LoadOptions, Progress, Stage};

/// Bars appear only after this long, so quick loads print nothing.
const SHOW_AFTER: Duration = Duration::from_millis(400);

/// An indicatif bar that stays hidden until the work has taken [`SHOW_AFTER`], and forever when
/// stderr is not a terminal.
pub struct Bars {
    bar: ProgressBar,
    started: Instant,
    enabled: bool,
    shown: AtomicBool,
}

impl Bars {
    pub fn new() -> Self {
        let bar = ProgressBar::hidden();
        if let Ok(style) = ProgressStyle::with_template("{msg:>16} [{bar:40}] {percent:>3}% ({eta})") {
            bar.set_style(style.progress_chars("=> "));
        }
        Bars {
            bar,
            started: Instant::now(),
            enabled: std::io::stderr().is_terminal(),
            shown: AtomicBool::new(false),
        }
    }

    fn maybe_show(&self) {
        if self.enabled && !self.shown.load(Ordering::Relaxed) && self.started.elapsed() >= SHOW_AFTER {
            self.shown.store(true, Ordering::Relaxed);
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
        }
    }
}

impl Progress for Bars {
    fn start(&self, stage: Stage, total: u64) {
        self.bar.set_length(total);
        self.bar.set_position(0);
        self.bar.set_message(stage.name());
        self.maybe_show();
    }

    fn advance(&self, units: u64) {
        self.bar.inc(units);
        self.maybe_show();
    }
}

impl Drop for Bars {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

/// Loads and indexes `path`, drawing progress on `bars`.
pub fn load(path: &Path, bars: &Bars) -> anyhow::Result<Analysis> {
    Analysis::open(path, &LoadOptions::default(), bars)
        .with_context(|| format!("cannot load {}", path.display()))
}
