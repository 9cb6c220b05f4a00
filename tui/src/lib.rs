//! leakview's terminal browser: scrub a recorded trace in time and see what was outstanding at
//! each moment, where it was allocated and how it got there.
//!
//! Layers, each usable on its own:
//! - [`source`]: what the browser needs from a trace ([`DataSource`]), implemented over the
//!   analyzer ([`AnalysisSource`]) and in memory for tests ([`MemorySource`]);
//! - [`state`] and [`keys`]: the state, the actions and the key table that maps keys to them
//!   (pure, no terminal);
//! - [`view`]: drawing the state and its data into a ratatui frame;
//! - [`App`]: state + source + view, driven by key and mouse events (what tests script);
//! - [`run`]: the terminal runner (raw mode, background loading, restore on exit and panic).

#![forbid(unsafe_code)]

mod app;
mod error;
pub mod format;
pub mod keys;
mod runner;
pub mod source;
pub mod state;
pub mod view;

pub use app::App;
pub use error::TuiError;
pub use runner::{ProgressFn, run};
pub use source::{AnalysisSource, DataSource, MemorySource};
pub use view::loading::LoadProgress;
pub use view::theme::Theme;

/// Opens the browser on the trace at `path`: loads it (showing progress) and browses it until
/// the user quits.
pub fn browse(path: &std::path::Path) -> Result<(), TuiError> {
    let label = path.display().to_string();
    let path = path.to_path_buf();
    run(&label, move |progress| AnalysisSource::open(&path, progress).map_err(|e| e.to_string()))
}
