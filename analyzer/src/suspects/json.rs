//! The suspects as JSON (`leakview suspects --format json`). Its shape is documented in the
//! README; fields are only ever added.

use serde_json::{Value, json};

use super::checkpoints;
use super::report::SuspectReport;
use crate::report::{JSON_SCHEMA, frame_json, trace_json};

pub(super) fn render(report: &SuspectReport<'_>) -> String {
    let suspects: Vec<Value> = report
        .shown()
        .iter()
        .map(|x| {
            let frames: Vec<Value> = report.analysis.stack_frames(x.stack).iter().map(frame_json).collect();
            let freed_lifetime = match (x.freed_lifetime_mean_ns, x.freed_lifetime_max_ns) {
                (Some(mean), Some(max)) => json!({ "mean": mean, "max": max }),
                _ => Value::Null,
            };
            json!({
                "verdict": x.verdict.name(),
                "blocks": x.blocks,
                "bytes": x.bytes,
                "allocations": x.allocations,
                "frees": x.frees,
                "freed_long_lived": x.freed_long_lived,
                "long_lived_ns": x.long_lived_ns,
                "freed_lifetime_ns": freed_lifetime,
                "survivor_age_ns": { "min": x.ages.min, "median": x.ages.median, "max": x.ages.max },
                "first_alloc_ns": x.first_alloc_ns,
                "last_alloc_ns": x.last_alloc_ns,
                "trend": {
                    "checkpoints_ns": checkpoints(x.stack_first_alloc_ns, report.at_ns),
                    "live_blocks": x.live_at_checkpoints,
                    "blocks_per_second": x.blocks_per_second(report.at_ns),
                    "r2": x.trend.r2,
                },
                "stack_id": x.stack.0,
                "stacks": x.stacks.len(),
                "stack_ids": x.stacks.iter().map(|s| s.0).collect::<Vec<u32>>(),
                "frames": frames,
            })
        })
        .collect();
    let doc = json!({
        "schema": JSON_SCHEMA,
        "trace": trace_json(report.analysis.summary()),
        "at": report.when,
        "at_ns": report.at_ns,
        "allocated_after_ns": report.window.after.as_ref().map(|e| e.ns),
        "allocated_before_ns": report.window.before.as_ref().map(|e| e.ns),
        "outstanding": {
            "blocks": report.totals.blocks,
            "bytes": report.totals.bytes,
            "stacks": report.recorded_stacks(),
            "suspects": report.suspects.len(),
        },
        "suspects": suspects,
    });
    let mut out = serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{}".to_string());
    out.push('\n');
    out
}
