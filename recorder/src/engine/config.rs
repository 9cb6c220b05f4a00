//! Recording settings, read from the environment so that forked and exec'd processes inherit
//! them (the `leakview record` command sets them):
//!
//! - `LEAKVIEW_OUTPUT`: the trace path; `%p` is replaced by the pid of the process creating the
//!   trace; a directory (or a path ending in `/`) takes the default name inside it. Unset:
//!   `leakview-<program>-<pid>.bin` in the current directory.
//! - `LEAKVIEW_DEPTH`: maximum frames per stack (default 128, at most 256).
//! - `LEAKVIEW_MANIFEST`: a file to which each process appends `<absolute trace path>\n`.
//! - `LEAKVIEW_STACK_REUSE=0`: step every frame with framehop and intern every stack frame by
//!   frame, instead of using the per-thread caches of unwind rules and whole stacks (a
//!   diagnostic: the stacks recorded are the same).
//! - `LEAKVIEW_STACK_VERIFY=1`: also unwind every stack in full and compare; a difference is
//!   reported once on stderr (a diagnostic, for testing the caches on real programs).
//! - `LEAKVIEW_CLOCK=monotonic`: take every timestamp with clock_gettime instead of the
//!   calibrated TSC (see clock.rs).
//! - `LEAKVIEW_RSS_INTERVAL_MS`: milliseconds between samples of the resident set size (default
//!   10; 0: none).
//! - `LEAKVIEW_HEAP_SCAN=1`: at exit, scan the process's memory for references to heap blocks
//!   (see heap_scan.rs), so the analyzer can tell lost blocks from reachable ones.
//! - `LEAKVIEW_ONLY_CHILD_OF=PID`: record only in a process whose parent is PID (`leakview
//!   record --no-children` gives its own pid: the program it starts and the images that program
//!   execs record; processes it forks, and what they run, do not).

use crate::engine::stack::{DEFAULT_DEPTH, MAX_DEPTH_LIMIT};
use crate::engine::{resident, sys};

pub const ENV_OUTPUT: &str = "LEAKVIEW_OUTPUT";
pub const ENV_DEPTH: &str = "LEAKVIEW_DEPTH";
pub const ENV_MANIFEST: &str = "LEAKVIEW_MANIFEST";
pub const ENV_STACK_REUSE: &str = "LEAKVIEW_STACK_REUSE";
pub const ENV_STACK_VERIFY: &str = "LEAKVIEW_STACK_VERIFY";
pub const ENV_CLOCK: &str = "LEAKVIEW_CLOCK";
pub const ENV_ONLY_CHILD_OF: &str = "LEAKVIEW_ONLY_CHILD_OF";
pub const ENV_RSS_INTERVAL_MS: &str = "LEAKVIEW_RSS_INTERVAL_MS";
pub const ENV_HEAP_SCAN: &str = "LEAKVIEW_HEAP_SCAN";

/// The settings of one recording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Raw `LEAKVIEW_OUTPUT` (may contain `%p`).
    pub output: Option<Vec<u8>>,
    pub manifest: Option<Vec<u8>>,
    pub max_depth: usize,
    /// Use the per-thread unwind-rule and stack caches (default on).
    pub stack_reuse: bool,
    /// Check every cached stack against a full unwind (default off).
    pub verify_stacks: bool,
    /// Timestamps from the calibrated TSC where it can stand in for CLOCK_MONOTONIC (default on).
    pub tsc_clock: bool,
    /// Time between samples of the resident set size (0: none).
    pub rss_interval_ns: u64,
    /// Scan memory for references to heap blocks at exit (default off).
    pub heap_scan: bool,
}

fn getenv(name: &str) -> Option<Vec<u8>> {
    let mut key = [0u8; 64];
    let bytes = name.as_bytes();
    if bytes.len() >= key.len() {
        return None;
    }
    key[..bytes.len()].copy_from_slice(bytes);
    // SAFETY: `key` is NUL-terminated; getenv returns a pointer into the environment or null,
    // copied out at once (it neither allocates nor takes Rust's environment lock).
    let value = unsafe { sys::c_bytes(libc::getenv(key.as_ptr().cast())) };
    (!value.is_empty()).then(|| value.to_vec())
}

/// Whether a process whose parent is `parent` records under an `LEAKVIEW_ONLY_CHILD_OF` setting
/// of `only_child_of` (unset or not a pid: every process records).
pub fn records_child_of(only_child_of: Option<&[u8]>, parent: u32) -> bool {
    let wanted =
        only_child_of.and_then(|v| std::str::from_utf8(v).ok()).and_then(|v| v.trim().parse::<u32>().ok());
    wanted.is_none_or(|pid| pid == parent)
}

/// Whether this process records (see `LEAKVIEW_ONLY_CHILD_OF`). Allocates: call with the guard
/// held.
pub fn records_this_process() -> bool {
    // SAFETY: getppid cannot fail.
    let parent = unsafe { libc::getppid() } as u32;
    records_child_of(getenv(ENV_ONLY_CHILD_OF).as_deref(), parent)
}

/// Parses a depth setting: a positive integer, clamped to [`MAX_DEPTH_LIMIT`].
pub fn parse_depth(value: Option<&[u8]>) -> usize {
    value
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&d| d > 0)
        .map_or(DEFAULT_DEPTH, |d| d.min(MAX_DEPTH_LIMIT))
}

/// Parses an RSS interval setting in milliseconds (default [`resident::DEFAULT_INTERVAL_NS`];
/// 0 turns sampling off) into nanoseconds.
pub fn parse_rss_interval(value: Option<&[u8]>) -> u64 {
    value
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(resident::DEFAULT_INTERVAL_NS, |ms| ms.saturating_mul(1_000_000))
}

impl Config {
    /// Reads the settings from the environment. Allocates: call with the guard held.
    pub fn from_env() -> Config {
        Config {
            output: getenv(ENV_OUTPUT),
            manifest: getenv(ENV_MANIFEST),
            max_depth: parse_depth(getenv(ENV_DEPTH).as_deref()),
            stack_reuse: getenv(ENV_STACK_REUSE).as_deref() != Some(b"0"),
            verify_stacks: getenv(ENV_STACK_VERIFY).as_deref() == Some(b"1"),
            tsc_clock: getenv(ENV_CLOCK).as_deref() != Some(b"monotonic"),
            rss_interval_ns: parse_rss_interval(getenv(ENV_RSS_INTERVAL_MS).as_deref()),
            heap_scan: getenv(ENV_HEAP_SCAN).as_deref() == Some(b"1"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_named_parents_children_record_when_one_is_named() {
        assert!(records_child_of(None, 42));
        assert!(records_child_of(Some(b"42"), 42));
        assert!(!records_child_of(Some(b"41"), 42));
        assert!(records_child_of(Some(b"not a pid"), 42));
    }

    #[test]
    fn depth_defaults_and_clamps() {
        assert_eq!(parse_depth(None), DEFAULT_DEPTH);
        assert_eq!(parse_depth(Some(b"12")), 12);
        assert_eq!(parse_depth(Some(b"0")), DEFAULT_DEPTH);
        assert_eq!(parse_depth(Some(b"lots")), DEFAULT_DEPTH);
        assert_eq!(parse_depth(Some(b"100000")), MAX_DEPTH_LIMIT);
    }

    #[test]
    fn rss_interval_defaults_and_zero_turns_it_off() {
        assert_eq!(parse_rss_interval(None), resident::DEFAULT_INTERVAL_NS);
        assert_eq!(parse_rss_interval(Some(b"250")), 250_000_000);
        assert_eq!(parse_rss_interval(Some(b"0")), 0);
        assert_eq!(parse_rss_interval(Some(b"often")), resident::DEFAULT_INTERVAL_NS);
    }
}
