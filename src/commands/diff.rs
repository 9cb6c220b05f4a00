//! `leakview diff`: what was outstanding in trace A against trace B (or at two moments of one
//! trace), matched by symbolized stacks, as text or JSON; with `--fail-on-growth`, a CI gate
//! that exits 1 when a group is new or grew by more than `--threshold` bytes. With `--tui`, the
//! diff browser opens at the same moments instead.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use leakview_analyzer::report::units::{bytes, plural};
use leakview_analyzer::{Analysis, Comparison, DiffBy, DiffReport, Selection, Side, format_duration};

use super::loading::{self, Bars};
use super::moment;
use crate::cli::{DiffArgs, DiffFormat, DiffGroupBy};
use crate::messages::{self, say};

/// Groups shown by the text and JSON diffs when `--top` is not given.
const DEFAULT_TOP: usize = 20;

pub fn run(args: &DiffArgs) -> anyhow::Result<ExitCode> {
    let by = match args.group_by {
        DiffGroupBy::Stack => DiffBy::Stack,
        DiffGroupBy::Function => DiffBy::Function,
    };
    if args.format == DiffFormat::Svg && by != DiffBy::Stack {
        bail!("--format svg draws stacks; it does not go with --group-by function");
    }
    if args.tui {
        return browse(args, by);
    }
    let bars = Bars::new();
    let load = |path: &Path| loading::load(path, &bars).map(Arc::new);
    let comparison = match args.traces.as_slice() {
        [one] => Comparison::one_trace(load(one)?),
        [a, b] => Comparison::new(load(a)?, load(b)?),
        _ => bail!("give one trace (two moments of it) or two traces to compare"),
    };
    let at_a = moment::named(comparison.resolve_when(Side::A, &args.at_a), "--at-a", &args.at_a)?;
    let at_b = moment::named(comparison.resolve_when(Side::B, &args.at_b), "--at-b", &args.at_b)?;
    if comparison.is_one_trace() && at_a == at_b {
        bail!(
            "one trace is compared at two moments, and --at-a {} and --at-b {} are the same one ({}); \
             give another, e.g. --at-a mark:LABEL, --at-a 50% or --at-a peak",
            args.at_a,
            args.at_b,
            format_duration(at_a)
        );
    }
    let diff = comparison.diff_selected(at_a, at_b, by, Selection::from(args.what), &bars);
    // The flame graph draws every stack unless told otherwise.
    let top = args.top.unwrap_or(if args.format == DiffFormat::Svg { 0 } else { DEFAULT_TOP });
    let report = DiffReport::new(&comparison, &diff, &args.at_a, &args.at_b, top);
    let text = match args.format {
        DiffFormat::Text => report.to_text(),
        DiffFormat::Json => report.to_json(),
        DiffFormat::Svg => report.to_flamegraph_svg().context("diff --format svg")?,
    };
    drop(bars);
    messages::print_result(&text, "diff")?;
    warn_if_incomplete(&comparison);
    if args.fail_on_growth {
        let failing = diff.grown_over(args.threshold);
        if !failing.is_empty() {
            let growth: u64 = failing.iter().map(|g| g.growth_bytes()).sum();
            say!(
                "leakview: {} new or grew by more than {} ({} in all)",
                plural(failing.len() as u64, "group is", "groups are"),
                bytes(args.threshold),
                bytes(growth),
            );
            return Ok(ExitCode::from(1));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `--tui`: the diff browser at the moments and grouping asked for.
fn browse(args: &DiffArgs, by: DiffBy) -> anyhow::Result<ExitCode> {
    if args.fail_on_growth {
        bail!("--fail-on-growth is a gate for scripts; it does not go with --tui");
    }
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        bail!("the diff browser needs a terminal; leave out --tui for the text diff");
    }
    // A file that is not a trace is reported plainly, before the screen is taken over.
    for trace in &args.traces {
        loading::open_reader(trace)?;
    }
    let (a, b) = match args.traces.as_slice() {
        [one] => (one.clone(), None),
        [a, b] => (a.clone(), Some(b.clone())),
        _ => bail!("give one trace (two moments of it) or two traces to compare"),
    };
    leakview_tui::browse_diff(leakview_tui::DiffRequest {
        a,
        b,
        at_a: args.at_a.clone(),
        at_b: args.at_b.clone(),
        by,
        what: Selection::from(args.what),
    })?;
    Ok(ExitCode::SUCCESS)
}

fn warn_if_incomplete(comparison: &Comparison) {
    let sides: Vec<&Analysis> =
        if comparison.is_one_trace() { vec![comparison.a()] } else { vec![comparison.a(), comparison.b()] };
    for analysis in sides {
        let summary = analysis.summary();
        if !summary.complete {
            say!("leakview: warning: {} is incomplete; compared what could be read", summary.path.display());
        }
    }
}
