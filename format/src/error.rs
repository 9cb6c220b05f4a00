//! Error types of the format crate.

use std::io;
use std::path::PathBuf;

/// Why an event could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("event cut short")]
    Truncated,
    #[error("unknown event tag {0:#04x}")]
    BadTag(u8),
    #[error("invalid {0}")]
    BadValue(&'static str),
}

/// Why a trace file could not be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The OS error is part of the message (and deliberately not a `source()`, so that error
    /// chains print it once).
    #[error("cannot read {path}: {error}")]
    Io { path: PathBuf, error: io::Error },
    #[error("{path} is empty")]
    Empty { path: PathBuf },
    #[error("{path} is not a leakview trace (bad magic)")]
    NotATrace { path: PathBuf },
    #[error(
        "{path} is a leakview trace of format version {major}.{minor}; this leakview reads versions {oldest}.x to {supported}.x",
        oldest = crate::layout::OLDEST_READABLE_MAJOR
    )]
    UnsupportedVersion { path: PathBuf, major: u16, minor: u16, supported: u16 },
    #[error("{path}: damaged trace header: {what}")]
    BadHeader { path: PathBuf, what: String },
}

/// Why a trace could not be created or an event not written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// As for [`ReadError::Io`], the OS error is in the message, not a `source()`.
    #[error("cannot create trace {path}: {error}")]
    Create { path: PathBuf, error: io::Error },
    #[error("invalid writer options: {0}")]
    Options(&'static str),
    #[error("trace metadata does not fit in the header page")]
    MetadataTooLarge,
    /// Recording has stopped (disk full, size limit or [`crate::TraceWriter::stop`]).
    #[error("recording has stopped")]
    Stopped,
    /// The event is larger than a chunk can hold.
    #[error("event larger than a chunk")]
    EventTooLarge,
}
