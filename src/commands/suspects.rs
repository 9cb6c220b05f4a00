//! `leakview suspects`: the stacks holding outstanding allocations at a moment, ranked by how
//! much they look like leaks, each with the evidence for its verdict.

use std::process::ExitCode;

use leakview_analyzer::SuspectReport;

use super::loading::{self, Bars};
use super::{moment, window};
use crate::cli::{SuspectsArgs, SuspectsFormat};
use crate::messages;

pub fn run(args: &SuspectsArgs) -> anyhow::Result<ExitCode> {
    let bars = Bars::new();
    let analysis = loading::load(&args.trace, &bars)?;
    let at_ns = moment::named(analysis.resolve_when(&args.at), "--at", &args.at)?;
    let window = window::resolve(&analysis, &args.window, at_ns)?;
    let report = SuspectReport::new(&analysis, args.at.trim(), at_ns, &window, args.top, &bars);
    let text = match args.format {
        SuspectsFormat::Text => report.to_text(),
        SuspectsFormat::Json => report.to_json(),
    };
    drop(bars);
    messages::print_result(&text, "report")?;
    Ok(ExitCode::SUCCESS)
}
