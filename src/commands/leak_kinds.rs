//! `--leak-kind` of `report` and `check`: the checks that it can be answered (a complete heap
//! scan in the trace, the moment the end), and the leak summary `stats` prints.

use std::fmt::Write;
use std::path::Path;

use anyhow::bail;
use leakview_analyzer::report::units::{bytes, duration, plural};
use leakview_analyzer::{Analysis, LeakKind, LeakKindSet};

/// Errs unless `kinds` (given with `--at at` resolved to `at_ns`) can be answered for the
/// trace at `trace`: leak kinds are known only for the blocks outstanding at the end, from a
/// complete heap scan.
pub fn require(
    analysis: &Analysis,
    trace: &Path,
    kinds: LeakKindSet,
    at: &str,
    at_ns: u64,
) -> anyhow::Result<()> {
    if at_ns != analysis.duration_ns() {
        bail!(
            "--leak-kind {} classifies the blocks outstanding at the end (the heap scan is taken at exit); it does not go with --at {}",
            names(kinds),
            at.trim()
        );
    }
    if analysis.heap_scan().is_none() {
        let why = if analysis.heap_scan_interrupted() {
            "its heap scan at exit did not complete"
        } else {
            "it was recorded without a heap scan (record with `leakview record --leak-kinds`)"
        };
        bail!("{} has no leak kinds: {why}", trace.display());
    }
    Ok(())
}

/// `definite,indirect`.
pub fn names(kinds: LeakKindSet) -> String {
    kinds.kinds().map(LeakKind::option_name).collect::<Vec<_>>().join(",")
}

/// `stats`' leak summary: the scan, then the blocks outstanding at the end by kind, like
/// valgrind's LEAK SUMMARY; or the line saying why there is none.
pub fn write_summary(w: &mut String, analysis: &Analysis) -> std::fmt::Result {
    let (Some(scan), Some(kinds)) = (analysis.heap_scan(), analysis.leak_kinds()) else {
        if analysis.heap_scan_interrupted() {
            return writeln!(w, "leak kinds   unknown: the heap scan at exit did not complete");
        }
        return writeln!(w, "leak kinds   not recorded (record with --leak-kinds)");
    };
    let t = scan.totals();
    writeln!(
        w,
        "leak kinds   heap scan at {}: {} read in {}, {}",
        duration(scan.at_ns()),
        bytes(t.bytes),
        plural(t.regions, "region", "regions"),
        plural(t.references, "reference", "references")
    )?;
    let shown: Vec<LeakKind> = LeakKind::ALL
        .into_iter()
        .filter(|&k| k != LeakKind::NotScanned || kinds.totals(k).blocks > 0)
        .collect();
    let sizes: Vec<String> = shown.iter().map(|&k| bytes(kinds.totals(k).bytes)).collect();
    let width = sizes.iter().map(String::len).max().unwrap_or(0);
    for (kind, size) in shown.iter().zip(&sizes) {
        let blocks = plural(kinds.totals(*kind).blocks, "block", "blocks");
        let after = if *kind == LeakKind::NotScanned { " (allocated after the scan began)" } else { "" };
        writeln!(w, "  {:<17}{size:>width$} in {blocks}{after}", kind.label())?;
    }
    Ok(())
}
