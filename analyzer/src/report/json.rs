//! The JSON report (`--format json`). Its shape is documented in the README; fields are only
//! ever added, and `schema` changes only if one must be removed or changed.

use serde_json::{Value, json};

use super::Report;
use crate::group::{GroupKey, SortBy, size_class_bounds};
use crate::model::Summary;
use crate::reachability::{LeakKind, LeakKinds};
use crate::resident::ResidentMemory;
use crate::selection::Selection;
use crate::symbolize::Frame;

/// Version of the JSON shape.
pub const JSON_SCHEMA: u32 = 1;

/// One frame: `function`, `file`, `line` (null when unknown), `module` (path, or null),
/// `address` (hex string, since JSON numbers cannot hold every 64-bit address), `inlined`.
pub fn frame_json(frame: &Frame) -> Value {
    json!({
        "function": frame.function,
        "file": frame.file,
        "line": frame.line,
        "module": frame.module,
        "address": format!("{:#x}", frame.address),
        "inlined": frame.inlined,
    })
}

/// The `trace` object every JSON document of the analyzer starts with.
pub fn trace_json(s: &Summary) -> Value {
    json!({
        "path": s.path.display().to_string(),
        "pid": s.pid,
        "command": s.command,
        "start_unix_ns": s.start_unix_ns,
        "duration_ns": s.duration_ns,
        "events": s.events,
        "threads": s.threads,
        "complete": s.complete,
        "recording": s.recording,
    })
}

/// The `rss` object: how many samples of the resident set size, their peak and the last one at
/// or before `at_ns` (`at_bytes` null before the first); null for a trace without samples.
pub fn rss_json(memory: &ResidentMemory, at_ns: u64) -> Value {
    let Some(peak) = memory.peak() else { return Value::Null };
    let then = memory.at(at_ns);
    json!({
        "samples": memory.samples().len(),
        "peak_bytes": peak.bytes,
        "peak_at_ns": peak.at_ns,
        "at_bytes": then.map(|s| s.bytes),
        "at_sample_ns": then.map(|s| s.at_ns),
    })
}

/// The `leak_kinds` object: blocks and bytes outstanding at the end by kind (`not_scanned` too).
pub fn leak_kinds_json(kinds: &LeakKinds) -> Value {
    let mut v = json!({});
    for kind in LeakKind::ALL {
        let t = kinds.totals(kind);
        v[kind.json_key()] = json!({ "blocks": t.blocks, "bytes": t.bytes });
    }
    v
}

pub(super) fn render(report: &Report<'_>) -> String {
    let a = report.analysis;
    let s = a.summary();
    let t = &s.totals;
    let groups: Vec<Value> = report
        .shown()
        .iter()
        .map(|g| {
            let frames: Vec<Value> = report.frames_of(g).iter().map(frame_json).collect();
            let mut v = json!({
                "blocks": g.blocks,
                "bytes": g.bytes,
                "first_alloc_ns": g.first_alloc_ns,
                "last_alloc_ns": g.last_alloc_ns,
                "threads": g.threads.len(),
                "stacks": g.stacks.len(),
                "frames": frames,
            });
            match &g.key {
                GroupKey::Stack(id) => v["stack_id"] = json!(id.0),
                GroupKey::Function(name) => v["function"] = json!(name.as_ref()),
                GroupKey::Size(size) => v["size"] = json!(size),
                GroupKey::SizeClass(class) => {
                    let (min, max) = size_class_bounds(*class);
                    v["size_class"] = json!({ "min": min, "max": max });
                }
                GroupKey::Thread(index) => {
                    let info = a.thread(*index);
                    v["thread"] = json!({
                        "tid": info.map(|i| i.tid),
                        "name": info.and_then(|i| i.name.clone()),
                    });
                }
            }
            v
        })
        .collect();
    let selected = report.grouping.totals;
    // Outstanding at the moment (within the window) whatever the report counts.
    let counts_outstanding = report.selection == Selection::Outstanding && report.leak_kinds.is_none();
    let outstanding =
        if counts_outstanding { selected } else { a.outstanding_in(report.at_ns, &report.window).totals() };
    let mut doc = json!({
        "schema": JSON_SCHEMA,
        "trace": trace_json(s),
        "at": report.when,
        "at_ns": report.at_ns,
        "allocated_after_ns": report.window.after.as_ref().map(|e| e.ns),
        "allocated_before_ns": report.window.before.as_ref().map(|e| e.ns),
        "group_by": report.grouping.by.name(),
        "what": report.selection.name(),
        "ranked_by": if report.sort == SortBy::Blocks { "blocks" } else { "bytes" },
        "totals": {
            "allocations": t.allocations,
            "frees": t.frees,
            "unmatched_frees": t.unmatched_frees,
            "reordered_pairs": t.reordered_pairs,
            "bytes_allocated": t.bytes_allocated,
            "peak_bytes": t.peak_bytes,
            "peak_at_ns": t.peak_at_ns,
        },
        "outstanding": {
            "blocks": outstanding.blocks,
            "bytes": outstanding.bytes,
            "groups": if counts_outstanding {
                json!(report.grouping.len())
            } else {
                Value::Null
            },
        },
        "rss": rss_json(a.resident_memory(), report.at_ns),
        "selected": {
            "blocks": selected.blocks,
            "bytes": selected.bytes,
            "groups": report.grouping.len(),
        },
        "groups": groups,
    });
    if let Some(kinds) = a.leak_kinds() {
        doc["leak_kinds"] = leak_kinds_json(kinds);
    }
    if let Some(selected) = report.leak_kinds {
        doc["leak_kinds_selected"] = json!(selected.kinds().map(LeakKind::json_key).collect::<Vec<_>>());
    }
    let mut out = serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{}".to_string());
    out.push('\n');
    out
}
