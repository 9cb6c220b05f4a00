//! [`Differ`]: computes diff tables for the diff browser, either right away (tests, scripted
//! runs) or on a worker thread, so that scrubbing a side of a big trace never freezes the screen.
//!
//! The worker answers only the latest question: requests that queued up while it was busy are
//! skipped, so holding ←/→ costs one diff per finished computation, not one per key.

use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;

use crate::source::{ComparisonSource, DiffMoment, DiffTable};

enum Mode {
    Inline,
    Worker { requests: Sender<DiffMoment>, answers: Receiver<DiffTable> },
}

/// Computes diff tables of one source.
pub struct Differ {
    source: Arc<ComparisonSource>,
    mode: Mode,
    /// The last moment asked of the worker and not answered yet.
    pending: Option<DiffMoment>,
}

impl Differ {
    /// A differ that computes on the caller's thread.
    pub fn inline(source: Arc<ComparisonSource>) -> Self {
        Differ { source, mode: Mode::Inline, pending: None }
    }

    /// A differ with a worker thread; if the thread cannot be started, computes inline.
    pub fn in_background(source: Arc<ComparisonSource>) -> Self {
        let (requests, inbox) = mpsc::channel::<DiffMoment>();
        let (outbox, answers) = mpsc::channel::<DiffTable>();
        let worker_source = source.clone();
        let started = thread::Builder::new().name("leakview-diff".into()).spawn(move || {
            while let Ok(mut moment) = inbox.recv() {
                if let Some(latest) = inbox.try_iter().last() {
                    moment = latest;
                }
                if outbox.send(worker_source.table(moment)).is_err() {
                    break;
                }
            }
        });
        let mode = match started {
            Ok(_) => Mode::Worker { requests, answers },
            Err(_) => Mode::Inline,
        };
        Differ { source, mode, pending: None }
    }

    pub fn source(&self) -> &Arc<ComparisonSource> {
        &self.source
    }

    /// Asks for the table at `moment`: inline, returns it; with a worker, returns `None` and
    /// the answer comes from [`Differ::poll`].
    pub fn request(&mut self, moment: DiffMoment) -> Option<DiffTable> {
        match &self.mode {
            Mode::Inline => Some(self.source.table(moment)),
            Mode::Worker { requests, .. } => {
                if self.pending != Some(moment) {
                    if requests.send(moment).is_err() {
                        // The worker is gone (it panicked): answer here from now on.
                        self.mode = Mode::Inline;
                        self.pending = None;
                        return Some(self.source.table(moment));
                    }
                    self.pending = Some(moment);
                }
                None
            }
        }
    }

    /// The newest answer the worker finished since the last poll, if any.
    pub fn poll(&mut self) -> Option<DiffTable> {
        let Mode::Worker { answers, .. } = &self.mode else { return None };
        let latest = answers.try_iter().last()?;
        if self.pending == Some(latest.moment) {
            self.pending = None;
        }
        Some(latest)
    }

    /// Whether a question is being worked on.
    pub fn busy(&self) -> bool {
        self.pending.is_some()
    }
}
