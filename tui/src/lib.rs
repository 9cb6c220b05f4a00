//! leakview's terminal browser: scrub a recorded trace in time and see what was outstanding at
//! each moment, where it was allocated and how it got there.
//!
//! Layers, each usable on its own:
//! - [`source`]: what the browser needs from a trace ([`DataSource`]), implemented over the
//!   analyzer ([`AnalysisSource`]) and in memory for tests ([`MemorySource`]);
//! - [`state`] and [`keys`]: the state, the actions and the key table that maps keys to them
//!   (pure, no terminal);
//! - [`view`]: drawing the state and its data into a ratatui frame;
//! - [`App`]: state + source + view, driven by key and mouse events (what tests script), with
//!   the leak-suspect verdicts of the moment kept in [`suspicion`];
//! - the diff browser, the same layers for two traces (or two moments of one):
//!   [`ComparisonSource`], [`diff_state`], [`keys::DIFF_KEYS`], [`view::diff`], [`DiffApp`];
//! - [`run`]: the terminal runner (raw mode, background loading, restore on exit and panic);
//!   [`Following`]: the browser on a trace still being recorded, loaded again as it grows.

#![forbid(unsafe_code)]

mod app;
mod diff_app;
pub mod diff_state;
mod differ;
mod error;
mod follow;
pub mod format;
pub mod keys;
mod pointer;
mod runner;
pub mod source;
pub mod state;
pub mod suspicion;
pub mod view;

pub use app::App;
pub use diff_app::DiffApp;
pub use error::TuiError;
pub use follow::Following;
pub use runner::{Browser, ProgressFn, run, run_with};
pub use source::{AnalysisSource, ComparisonSource, DataSource, MemorySource};
pub use view::loading::LoadProgress;
pub use view::theme::Theme;

/// Opens the browser on the trace at `path`: loads it (showing progress) and browses it until
/// the user quits. A trace still being recorded is followed: loaded again as it grows, until
/// its process ends.
pub fn browse(path: &std::path::Path) -> Result<(), TuiError> {
    let label = path.display().to_string();
    let load_path = path.to_path_buf();
    let load = move |progress: ProgressFn<'_>| {
        let started = std::time::Instant::now();
        let source = AnalysisSource::open(&load_path, progress).map_err(|e| e.to_string())?;
        Ok((source, started.elapsed()))
    };
    run_with(&label, load, |(source, load_time), theme| {
        Following::new(App::new(source, theme), path, load_time)
    })
}

/// What the diff browser opens on: trace `a` against trace `b` (or, without `b`, two moments of
/// trace `a`), at the moments `at_a` and `at_b` (`end`, `peak`, `40%`, `1.5s`, `mark:LABEL`, as
/// `leakview diff --at-a` / `--at-b` take them), grouped `by`, counting `what` (as `leakview
/// diff --what` does).
#[derive(Clone, Debug)]
pub struct DiffRequest {
    pub a: std::path::PathBuf,
    pub b: Option<std::path::PathBuf>,
    pub at_a: String,
    pub at_b: String,
    pub by: leakview_analyzer::DiffBy,
    pub what: leakview_analyzer::Selection,
}

/// Opens the diff browser: loads both traces and the first diff (showing progress), then
/// browses until the user quits.
pub fn browse_diff(request: DiffRequest) -> Result<(), TuiError> {
    use leakview_analyzer::Side;
    let label = match &request.b {
        Some(b) => format!("{} and {}", request.a.display(), b.display()),
        None => request.a.display().to_string(),
    };
    let load = move |progress: ProgressFn<'_>| {
        let source =
            ComparisonSource::open(&request.a, request.b.as_deref(), progress).map_err(|e| e.to_string())?;
        let at_a = source
            .resolve_when(Side::A, &request.at_a)
            .map_err(|e| format!("--at-a {}: {e}", request.at_a.trim()))?;
        let at_b = source
            .resolve_when(Side::B, &request.at_b)
            .map_err(|e| format!("--at-b {}: {e}", request.at_b.trim()))?;
        let moment = source::DiffMoment { at_a_ns: at_a, at_b_ns: at_b, by: request.by, what: request.what };
        let table = source.table_for_loading(moment, progress);
        Ok((std::sync::Arc::new(source), table))
    };
    run_with(&label, load, |(source, table), theme| DiffApp::new(source, table, theme).in_background())
}
