//! Following a trace that is still being recorded: while each load finds it so
//! (`Summary::recording`), the trace is loaded again in the background every few seconds and the
//! browser's data swapped for the new load when it is ready, the view kept as it was (see
//! [`App::replace_source`]). The first load after the process has ended shows the finished trace
//! and following stops.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::thread;
use std::time::{Duration, Instant};

use ratatui::Frame;
use ratatui::crossterm::event::{KeyEvent, MouseEvent};

use crate::app::App;
use crate::runner::Browser;
use crate::source::{AnalysisSource, DataSource};

/// The least time between the end of one load and the start of the next.
const MIN_PAUSE: Duration = Duration::from_secs(1);
/// Loads are this many times their own length apart, so that following a long trace does not
/// keep the machine busy loading it.
const PAUSE_PER_LOAD: u32 = 3;

/// The browser on one trace, following it while it is recorded.
pub struct Following {
    app: App<AnalysisSource>,
    path: PathBuf,
    /// The last load found the trace still being recorded: there will be another load.
    following: bool,
    /// The load under way, and when it started.
    loading: Option<(Receiver<Option<AnalysisSource>>, Instant)>,
    next_load: Instant,
}

impl Following {
    /// The browser `app` on the trace at `path`, whose load took `load_time`; follows the trace
    /// if it was still being recorded when loaded.
    pub fn new(mut app: App<AnalysisSource>, path: &Path, load_time: Duration) -> Self {
        let following = recording(app.source());
        app.set_recording(following);
        Following {
            app,
            path: path.to_path_buf(),
            following,
            loading: None,
            next_load: Instant::now() + pause_after(load_time),
        }
    }

    pub fn app(&self) -> &App<AnalysisSource> {
        &self.app
    }

    /// Starts a load of the trace on a thread of its own.
    fn start_load(&mut self) {
        let (tx, rx) = mpsc::channel();
        let path = self.path.clone();
        let started = thread::Builder::new().name("leakview-follow".into()).spawn(move || {
            let _ = tx.send(AnalysisSource::open(&path, &|_| {}).ok());
        });
        if started.is_ok() {
            self.loading = Some((rx, Instant::now()));
        } else {
            self.next_load = Instant::now() + MIN_PAUSE;
        }
    }

    /// Takes a finished load; returns whether the screen changed.
    fn take_load(&mut self) -> bool {
        let Some((rx, started)) = &self.loading else { return false };
        let loaded = match rx.try_recv() {
            Ok(loaded) => loaded,
            Err(TryRecvError::Empty) => return false,
            Err(TryRecvError::Disconnected) => None,
        };
        self.next_load = Instant::now() + pause_after(started.elapsed());
        self.loading = None;
        // A load that fails (the trace caught mid-growth) is tried again at the next turn.
        let Some(source) = loaded else { return false };
        self.following = recording(&source);
        if self.following && source.summary().events == self.app.source().summary().events {
            return false;
        }
        self.app.replace_source(source);
        self.app.set_recording(self.following);
        true
    }
}

/// Whether the trace of `source` was still being recorded when it was loaded.
fn recording(source: &AnalysisSource) -> bool {
    source.analysis().summary().recording
}

/// How long to wait after a load that took `load_time`.
fn pause_after(load_time: Duration) -> Duration {
    MIN_PAUSE.max(load_time * PAUSE_PER_LOAD)
}

impl Browser for Following {
    fn draw(&mut self, frame: &mut Frame<'_>) {
        self.app.draw(frame);
    }

    fn handle_key(&mut self, event: KeyEvent) {
        self.app.handle_key(event);
    }

    fn handle_mouse(&mut self, event: MouseEvent) {
        self.app.handle_mouse(event);
    }

    fn should_quit(&self) -> bool {
        self.app.should_quit()
    }

    fn busy(&self) -> bool {
        self.following || self.loading.is_some()
    }

    fn poll(&mut self) -> bool {
        if self.loading.is_some() {
            return self.take_load();
        }
        if self.following && Instant::now() >= self.next_load {
            self.start_load();
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_are_spaced_by_their_own_length_and_at_least_a_second() {
        assert_eq!(pause_after(Duration::from_millis(10)), MIN_PAUSE);
        assert_eq!(pause_after(Duration::from_secs(2)), Duration::from_secs(6));
    }
}
