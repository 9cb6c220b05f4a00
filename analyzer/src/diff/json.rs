//! The JSON diff (`leakview diff --format json`). Its shape is documented in the README's "Diff"
//! section; fields are only ever added, and `schema` changes only if one must be removed or
//! changed. Frames have the report JSON's shape ([`crate::report::frame_json`]).

use serde_json::{Value, json};

use super::{DiffKey, DiffReport, DiffStatus};
use crate::analysis::Analysis;
use crate::report::{JSON_SCHEMA, frame_json};

fn trace_json(analysis: &Analysis) -> Value {
    crate::report::trace_json(analysis.summary())
}

pub(super) fn render(report: &DiffReport<'_>) -> String {
    let (c, d) = (report.comparison, report.diff);
    let groups: Vec<Value> = report
        .shown()
        .iter()
        .map(|g| {
            let mut v = json!({
                "status": g.status.name(),
                "blocks_a": g.blocks_a,
                "bytes_a": g.bytes_a,
                "blocks_b": g.blocks_b,
                "bytes_b": g.bytes_b,
                "change_bytes": g.change_bytes(),
                "change_blocks": g.change_blocks(),
                "stacks_a": g.stacks_a.len(),
                "stacks_b": g.stacks_b.len(),
                "frames": g.frames.iter().map(frame_json).collect::<Vec<_>>(),
            });
            if let DiffKey::Function(key) = &g.key {
                v["function"] = json!(key.to_string());
            }
            v
        })
        .collect();
    let counts = d.counts();
    let statuses: serde_json::Map<String, Value> =
        DiffStatus::ALL.iter().map(|&s| (s.name().to_string(), json!(counts.get(s)))).collect();
    let doc = json!({
        "schema": JSON_SCHEMA,
        "one_trace": c.is_one_trace(),
        "trace_a": trace_json(c.a()),
        "trace_b": trace_json(c.b()),
        "at_a": report.when_a,
        "at_a_ns": d.at_a_ns,
        "at_b": report.when_b,
        "at_b_ns": d.at_b_ns,
        "group_by": d.by.name(),
        "what": d.selection.name(),
        "totals": {
            "blocks_a": d.totals_a.blocks,
            "bytes_a": d.totals_a.bytes,
            "blocks_b": d.totals_b.blocks,
            "bytes_b": d.totals_b.bytes,
            "change_bytes": d.change_bytes(),
            "change_blocks": d.change_blocks(),
        },
        "statuses": statuses,
        "group_count": d.groups.len(),
        "groups": groups,
    });
    let mut out = serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{}".to_string());
    out.push('\n');
    out
}
