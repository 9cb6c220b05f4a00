//! Emitters: where `LeakTracker::emit` sends the outstanding blocks. [`ConsoleEmitter`] prints a
//! readable report on stderr, largest first; [`JsonEmitter`] writes the JSON shape of
//! `leakview report --format json` (`"schema": 1`, groups of blocks with the same stack). Any
//! type implementing [`LeaksEmitter`] can be used.

use std::collections::{BTreeSet, HashMap};
use std::io::{self, Write};
use std::path::PathBuf;

use serde_json::{Value, json};

use super::leak::{Frame, Leak, SummaryLine, bytes_text};
use super::state;

/// Version of the JSON shape (the analyzer's `leakview report --format json` schema).
pub const JSON_SCHEMA: u32 = 1;

/// Receives the outstanding blocks when [`LeakTracker::emit`](super::LeakTracker::emit) is
/// called.
pub trait LeaksEmitter {
    /// Reports `leaks` (oldest first).
    fn emit(&self, leaks: &[Leak]) -> io::Result<()>;
}

/// Blocks allocated with the same stack.
pub(crate) struct Group<'a> {
    pub leaks: Vec<&'a Leak>,
    pub bytes: usize,
}

impl Group<'_> {
    fn first(&self) -> &Leak {
        self.leaks[0]
    }
}

/// Groups leaks by stack, largest total first (ties: more blocks first, then oldest first).
pub(crate) fn group(leaks: &[Leak]) -> Vec<Group<'_>> {
    let mut index: HashMap<&[usize], usize> = HashMap::new();
    let mut groups: Vec<Group<'_>> = Vec::new();
    for leak in leaks {
        let key = leak.backtrace.addresses();
        match index.get(key) {
            Some(&i) => {
                groups[i].leaks.push(leak);
                groups[i].bytes += leak.size;
            }
            None => {
                index.insert(key, groups.len());
                groups.push(Group { leaks: vec![leak], bytes: leak.size });
            }
        }
    }
    groups.sort_by(|a, b| {
        b.bytes
            .cmp(&a.bytes)
            .then(b.leaks.len().cmp(&a.leaks.len()))
            .then(a.first().timestamp.cmp(&b.first().timestamp))
    });
    groups
}

/// A readable report on stderr: a summary line, then each allocation site, largest first,
/// with its frames from the program's own code outward (allocator and leading standard-library
/// frames are left out, runs of standard-library frames between the program's own are counted,
/// not listed, and the runtime's start-up frames are left out; `Leak::backtrace` has them all).
#[derive(Debug, Clone)]
pub struct ConsoleEmitter {
    max_frames: usize,
}

impl ConsoleEmitter {
    /// A report with at most 8 frames per allocation site.
    pub fn new() -> ConsoleEmitter {
        ConsoleEmitter { max_frames: 8 }
    }

    /// Shows at most `max_frames` frames per allocation site (default 8).
    pub fn with_max_frames(max_frames: usize) -> ConsoleEmitter {
        ConsoleEmitter { max_frames }
    }

    /// The report as text.
    pub fn render(&self, leaks: &[Leak]) -> String {
        let total: usize = leaks.iter().map(|l| l.size).sum();
        if leaks.is_empty() {
            return "leakview: no leaks\n".to_string();
        }
        let groups = group(leaks);
        let mut out = format!(
            "leakview: {} leaked {}, {} in total, from {} allocation {}\n",
            leaks.len(),
            if leaks.len() == 1 { "block" } else { "blocks" },
            bytes_text(total),
            groups.len(),
            if groups.len() == 1 { "site" } else { "sites" },
        );
        for g in &groups {
            let sizes: BTreeSet<usize> = g.leaks.iter().map(|l| l.size).collect();
            let size_text = match (sizes.first(), sizes.last()) {
                (Some(a), Some(b)) if a == b && g.leaks.len() > 1 => format!(" of {}", bytes_text(*a)),
                _ => String::new(),
            };
            out.push_str(&format!(
                "\n{} in {} {}{}\n",
                bytes_text(g.bytes),
                g.leaks.len(),
                if g.leaks.len() == 1 { "block" } else { "blocks" },
                size_text
            ));
            let backtrace = &g.first().backtrace;
            let range = backtrace.summary_range();
            let (lines, rest) = backtrace.summary_lines(self.max_frames);
            if lines.is_empty() {
                out.push_str("    (no stack)\n");
            } else if range.start > 0 {
                out.push_str(&format!(
                    "    ({} standard-library {} above)\n",
                    range.start,
                    plural(range.start)
                ));
            }
            for line in lines {
                match line {
                    SummaryLine::Frame(frame) => out.push_str(&format!("    at {frame}\n")),
                    SummaryLine::Library(count) => {
                        out.push_str(&format!("    ({count} standard-library {})\n", plural(count)));
                    }
                }
            }
            if rest > 0 {
                out.push_str(&format!("    ... {rest} more {}\n", plural(rest)));
            }
        }
        out
    }
}

impl Default for ConsoleEmitter {
    fn default() -> ConsoleEmitter {
        ConsoleEmitter::new()
    }
}

impl LeaksEmitter for ConsoleEmitter {
    fn emit(&self, leaks: &[Leak]) -> io::Result<()> {
        let text = self.render(leaks);
        let mut stderr = io::stderr().lock();
        stderr.write_all(text.as_bytes())?;
        stderr.flush()
    }
}

/// Writes the leaks as JSON to a file (created or replaced on each emit), in the shape of
/// `leakview report --format json`: `"schema": 1`, `"outstanding"` totals and `"groups"` of
/// blocks with the same stack, largest first, each with `blocks`, `bytes`, `first_alloc_ns`,
/// `last_alloc_ns` (from when tracking started), `threads` and `frames` (innermost first,
/// allocator frames trimmed; each `function`, `file`, `line`, `module`, `address`, `inlined`).
#[derive(Debug, Clone)]
pub struct JsonEmitter {
    path: PathBuf,
}

impl JsonEmitter {
    /// Writes to `path` on each emit.
    pub fn new(path: impl Into<PathBuf>) -> JsonEmitter {
        JsonEmitter { path: path.into() }
    }

    /// The JSON document for `leaks`.
    pub fn render(&self, leaks: &[Leak]) -> Value {
        let epoch = state::epoch_ns();
        let relative = |ts: u64| ts.saturating_sub(epoch);
        let groups: Vec<Value> = group(leaks)
            .iter()
            .map(|g| {
                let threads: BTreeSet<u64> = g.leaks.iter().map(|l| l.thread).collect();
                let first = g.leaks.iter().map(|l| l.timestamp).min().unwrap_or(0);
                let last = g.leaks.iter().map(|l| l.timestamp).max().unwrap_or(0);
                let frames: Vec<Value> = g.first().backtrace.user_frames().iter().map(frame_json).collect();
                json!({
                    "blocks": g.leaks.len(),
                    "bytes": g.bytes,
                    "first_alloc_ns": relative(first),
                    "last_alloc_ns": relative(last),
                    "threads": threads.len(),
                    "frames": frames,
                })
            })
            .collect();
        let bytes: usize = leaks.iter().map(|l| l.size).sum();
        json!({
            "schema": JSON_SCHEMA,
            "source": "in-process",
            "group_by": "stack",
            "outstanding": { "blocks": leaks.len(), "bytes": bytes, "groups": groups.len() },
            "groups": groups,
        })
    }
}

fn plural(frames: usize) -> &'static str {
    if frames == 1 { "frame" } else { "frames" }
}

/// One frame, as the analyzer's JSON report writes it.
fn frame_json(frame: &Frame) -> Value {
    json!({
        "function": frame.function,
        "file": frame.file,
        "line": frame.line,
        "module": frame.module,
        "address": format!("{:#x}", frame.address),
        "inlined": frame.inlined,
    })
}

impl LeaksEmitter for JsonEmitter {
    fn emit(&self, leaks: &[Leak]) -> io::Result<()> {
        let mut text = serde_json::to_string_pretty(&self.render(leaks)).map_err(io::Error::other)?;
        text.push('\n');
        std::fs::write(&self.path, text)
    }
}
