//! `leakview check --format json`: the verdict as one document for CI tools (what valgrind's
//! `--xml` is for), shaped like the report's JSON (its `trace` object and frames). Its shape is
//! documented in the README; fields are only ever added.

use serde_json::{Value, json};

use crate::analysis::Analysis;
use crate::check::CheckOutcome;
use crate::group::GroupKey;
use crate::model::LiveTotals;
use crate::reachability::LeakKind;
use crate::report::{JSON_SCHEMA, frame_json, leak_kinds_json, trace_json};
use crate::suppress::RuleKind;

fn totals_json(totals: &LiveTotals) -> Value {
    json!({ "blocks": totals.blocks, "bytes": totals.bytes })
}

/// The document for `outcome`, checked at the moment the user named `when`.
pub(crate) fn render(outcome: &CheckOutcome, analysis: &Analysis, when: &str) -> String {
    let leaks: Vec<Value> = outcome
        .leaks
        .iter()
        .map(|g| {
            let frames =
                g.stacks.first().map(|&s| analysis.stack_frames(s)).unwrap_or_else(|| Vec::new().into());
            json!({
                "blocks": g.blocks,
                "bytes": g.bytes,
                "first_alloc_ns": g.first_alloc_ns,
                "last_alloc_ns": g.last_alloc_ns,
                "stack_id": match g.key { GroupKey::Stack(id) => Some(id.0), _ => None },
                "stacks": g.stacks.len(),
                "frames": frames.iter().map(frame_json).collect::<Vec<Value>>(),
            })
        })
        .collect();
    let rules: Vec<Value> = outcome
        .rule_hits
        .iter()
        .map(|(rule, hits)| {
            let syntax = match rule.kind {
                RuleKind::LeakSanitizer => "leak",
                RuleKind::Valgrind(_) => "valgrind",
            };
            json!({
                "pattern": rule.pattern,
                "line": rule.line,
                "syntax": syntax,
                "blocks": hits.blocks,
                "bytes": hits.bytes,
            })
        })
        .collect();
    let suggested: Vec<Value> = outcome
        .suggested_suppressions(analysis)
        .into_iter()
        .map(|s| json!({ "line": s.line, "leaks": s.matches }))
        .collect();
    let mut doc = json!({
        "schema": JSON_SCHEMA,
        "trace": trace_json(analysis.summary()),
        "at": when,
        "at_ns": outcome.at_ns,
        "allocated_after_ns": outcome.window.after.as_ref().map(|e| e.ns),
        "allocated_before_ns": outcome.window.before.as_ref().map(|e| e.ns),
        "passed": outcome.passed(),
        "outstanding": totals_json(&outcome.outstanding),
        "leaked": totals_json(&outcome.leaked),
        "runtime": totals_json(&outcome.runtime),
        "suppressed": totals_json(&outcome.suppressed),
        "leaks": leaks,
        "suppressions": rules,
        "suggested_suppressions": suggested,
    });
    if let Some(kinds) = analysis.leak_kinds() {
        doc["leak_kinds"] = leak_kinds_json(kinds);
    }
    if let Some(checked) = outcome.leak_kinds {
        doc["leak_kinds_checked"] = json!(checked.kinds().map(LeakKind::json_key).collect::<Vec<_>>());
        doc["other_kinds"] = totals_json(&outcome.other_kinds);
    }
    let mut out = serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{}".to_string());
    out.push('\n');
    out
}
