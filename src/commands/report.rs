//! `leakview report`: what was outstanding at a moment, grouped and ranked, as text, JSON or
//! folded stacks.

use std::process::ExitCode;

use leakview_analyzer::{GroupBy, Report};

use super::loading::{self, Bars};
use super::{moment, window};
use crate::cli::{self, ReportArgs, ReportFormat};
use crate::messages;

pub fn run(args: &ReportArgs) -> anyhow::Result<ExitCode> {
    let bars = Bars::new();
    let analysis = loading::load(&args.trace, &bars)?;
    let at_ns = moment::named(analysis.resolve_when(&args.at), "--at", &args.at)?;
    let by = match args.group_by {
        cli::GroupBy::Stack => GroupBy::Stack,
        cli::GroupBy::Function => GroupBy::Function,
        cli::GroupBy::Size => GroupBy::Size,
        cli::GroupBy::SizeClass => GroupBy::SizeClass,
        cli::GroupBy::Thread => GroupBy::Thread,
    };
    let window = window::resolve(&analysis, &args.window, at_ns)?;
    let report = Report::new(&analysis, args.at.trim(), at_ns, &window, by, args.top, &bars);
    let text = match args.format {
        ReportFormat::Text => report.to_text(),
        ReportFormat::Json => report.to_json(),
        ReportFormat::Folded => report.to_folded(),
    };
    drop(bars);
    messages::print_result(&text, "report")?;
    Ok(ExitCode::SUCCESS)
}
