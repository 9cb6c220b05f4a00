//! Progress reporting for long operations (loading, symbolizing), without tying the library to a
//! terminal: the CLI draws bars, the TUI sends messages to its event loop, tests pass
//! [`NoProgress`].

/// A phase of a long operation. Each phase announces its total work with [`Progress::start`]
/// and then reports increments with [`Progress::advance`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Reading the trace: chunk headers, metadata, stacks, modules (units: chunks).
    Scanning,
    /// Decoding allocations into lifetimes (units: chunks).
    Decoding,
    /// Matching frees to allocations (units: chunks).
    Matching,
    /// Building the timeline and checkpoints (units: events).
    Indexing,
    /// Symbolizing return addresses (units: addresses).
    Symbolizing,
}

impl Stage {
    /// A short lowercase name for display.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Scanning => "scanning",
            Stage::Decoding => "decoding",
            Stage::Matching => "matching frees",
            Stage::Indexing => "indexing",
            Stage::Symbolizing => "symbolizing",
        }
    }
}

/// Receives progress of long operations. Called from worker threads, hence `Sync`. Every method
/// has a do-nothing default.
pub trait Progress: Sync {
    /// A new stage begins with `total` units of work.
    fn start(&self, stage: Stage, total: u64) {
        let _ = (stage, total);
    }
    /// `units` more units of the current stage are done.
    fn advance(&self, units: u64) {
        let _ = units;
    }
    /// The current stage is done.
    fn finish(&self, stage: Stage) {
        let _ = stage;
    }
    /// Return true to stop the operation early (it then fails with
    /// [`crate::LoadError::Cancelled`]). Polled between chunks.
    fn cancelled(&self) -> bool {
        false
    }
}

/// Ignores all progress.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}
