//! `leakview check`: a CI gate. Exit 1 with a short report if any block outstanding at the
//! moment (with `--leak-kind`, of those kinds) is not suppressed (nor, by default, the
//! runtimes' own), 0 otherwise (2 on usage or
//! input errors, via `main`).

use std::process::ExitCode;

use leakview_analyzer::{RuntimeBlocks, Suppressions, check};

use super::loading::{self, Bars};
use super::{leak_kinds, moment, window};
use crate::cli::{CheckArgs, CheckFormat};
use crate::messages::{self, say};

pub fn run(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let suppressions = match &args.suppressions {
        Some(path) => Suppressions::load(path)?,
        None => Suppressions::default(),
    };
    let bars = Bars::new();
    let analysis = loading::load(&args.trace, &bars)?;
    let at_ns = moment::named(analysis.resolve_when(&args.at), "--at", &args.at)?;
    let runtime =
        if args.no_default_suppressions { RuntimeBlocks::Counted } else { RuntimeBlocks::NotCounted };
    if let Some(kinds) = args.leak_kind {
        leak_kinds::require(&analysis, &args.trace, kinds, &args.at, at_ns)?;
    }
    let window = window::resolve(&analysis, &args.window, at_ns)?;
    let outcome = check(&analysis, at_ns, &window, &suppressions, runtime, args.leak_kind, &bars);
    drop(bars);
    let text = match args.format {
        CheckFormat::Json => outcome.to_json(&analysis, args.at.trim()),
        CheckFormat::Text if args.print_suppressions => {
            outcome.to_text(&analysis, args.at.trim()) + &outcome.suggestions_text(&analysis)
        }
        CheckFormat::Text => outcome.to_text(&analysis, args.at.trim()),
    };
    messages::print_result(&text, "report")?;
    let summary = analysis.summary();
    if summary.recorded_so_far() {
        say!(
            "leakview: note: {} is still being recorded (pid {} is running); checked what was recorded so far",
            args.trace.display(),
            summary.pid
        );
    } else if !summary.complete {
        say!("leakview: warning: {} is incomplete; checked what could be read", args.trace.display());
    }
    Ok(if outcome.passed() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
