//! Error types of the analyzer: why a trace could not be loaded, and why a `WHEN` string could
//! not be turned into a moment of the trace.

use std::path::PathBuf;

use leakview_format::ReadError;

/// Why a trace could not be loaded. A damaged or incomplete trace is *not* an error: what can be
/// read is loaded and [`crate::Summary::complete`] is false.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The file could not be opened, or it is not a leakview trace.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// More allocations than the analyzer's 32-bit block ids can address.
    #[error("{path}: the trace holds more than {limit} allocations, more than this analyzer can index")]
    TooManyAllocations { path: PathBuf, limit: u64 },
    /// The caller's [`crate::Progress::cancelled`] asked to stop.
    #[error("loading was cancelled")]
    Cancelled,
}

/// Why a `WHEN` string (`end`, `peak`, `40%`, `1.5s`, `mark:LABEL#2`, ...) could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WhenError {
    #[error(
        "empty moment; use end, peak, start, 0%..100%, a time such as 1.5s/250ms/800us/12345ns, or mark:LABEL"
    )]
    Empty,
    #[error(
        "`{0}` is not a moment; use end, peak, start, 0%..100%, a time such as 1.5s/250ms/800us/12345ns, or mark:LABEL"
    )]
    Unrecognized(String),
    #[error("`{0}` is not a percentage between 0% and 100%")]
    BadPercent(String),
    #[error("`{0}` is not a time; write a number followed by s, ms, us or ns (e.g. 1.5s)")]
    BadDuration(String),
    #[error("{when} is past the end of the trace ({} long)", crate::when::format_duration(*.duration_ns))]
    PastEnd { when: String, duration_ns: u64 },
    #[error("no mark labelled `{label}` in this trace{}", known_marks(.known))]
    UnknownMark { label: String, known: Vec<String> },
    #[error(
        "mark `{label}` occurs {}; there is no occurrence #{occurrence}{}",
        times(*.count),
        occurrence_hint(.label, *.occurrence)
    )]
    MarkOccurrence { label: String, occurrence: u32, count: u32 },
}

/// `once`, `2 times`.
fn times(count: u32) -> String {
    if count == 1 { "once".to_string() } else { format!("{count} times") }
}

/// For `#0`: occurrences count from 1.
fn occurrence_hint(label: &str, occurrence: u32) -> String {
    if occurrence == 0 {
        format!(" (occurrences count from 1: mark:{label}#1 is the first)")
    } else {
        String::new()
    }
}

fn known_marks(known: &[String]) -> String {
    if known.is_empty() {
        " (it has no marks)".to_string()
    } else {
        let mut list: Vec<&str> = known.iter().map(String::as_str).take(10).collect();
        if known.len() > 10 {
            list.push("…");
        }
        format!(" (marks: {})", list.join(", "))
    }
}
