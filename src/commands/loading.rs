//! Loading a trace for a command, with progress bars on stderr when it is a terminal and the
//! work takes more than a moment; and refusing, before anything opens it, a path that cannot
//! hold a trace.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use leakview_analyzer::{Analysis, LoadOptions, Progress, Stage};
use leakview_format::TraceReader;

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

/// Loads and indexes `path`, drawing progress on `bars`. (The loader's errors name the path.)
pub fn load(path: &Path, bars: &Bars) -> anyhow::Result<Analysis> {
    check_trace_path(path)?;
    Ok(Analysis::open(path, &LoadOptions::default(), bars)?)
}

/// Loads and indexes the trace `reader` has open (mapped once for both), drawing progress on
/// `bars`.
pub fn load_from(reader: &TraceReader, bars: &Bars) -> anyhow::Result<Analysis> {
    Ok(Analysis::from_reader(reader, &LoadOptions::default(), bars)?)
}

/// Opens `path` for reading its header and chunks.
pub fn open_reader(path: &Path) -> anyhow::Result<TraceReader> {
    check_trace_path(path)?;
    Ok(TraceReader::open(path)?)
}

/// Refuses a path that cannot hold a trace: a directory, or a pipe, socket or device (a trace is
/// read at random places, and opening a FIFO would wait for a writer forever). A path that cannot
/// be looked at is left to the reader, which says why.
pub fn check_trace_path(path: &Path) -> anyhow::Result<()> {
    let Ok(metadata) = std::fs::metadata(path) else { return Ok(()) };
    if metadata.is_dir() {
        bail!("{} is a directory, not a trace", path.display());
    }
    if !metadata.is_file() {
        bail!("{} is not a regular file (a pipe?); save the trace to a file first", path.display());
    }
    Ok(())
}
