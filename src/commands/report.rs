//! `leakview report`: what was outstanding at a moment (or allocated up to it, or temporary),
//! grouped and ranked, as text, JSON, folded stacks, a flame graph SVG or a call tree (top down
//! or bottom up).

use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::ValueEnum;
use leakview_analyzer::{GroupBy, Report, ReportSpec, Selection, SortBy, TreeOrder};

use super::loading::{self, Bars};
use super::{leak_kinds, moment, window};
use crate::cli::{self, RankBy, ReportArgs, ReportFormat, What};
use crate::messages;

/// Groups shown by the text and JSON reports when `--top` is not given.
const DEFAULT_TOP: usize = 20;

pub fn run(args: &ReportArgs) -> anyhow::Result<ExitCode> {
    if matches!(
        args.format,
        ReportFormat::Folded | ReportFormat::Svg | ReportFormat::Tree | ReportFormat::BottomUp
    ) && args.group_by != cli::GroupBy::Stack
    {
        let name = args.group_by.to_possible_value().map(|v| v.get_name().to_string()).unwrap_or_default();
        let (format, prints) = match args.format {
            ReportFormat::Tree => ("tree", "merges stacks into a call tree"),
            ReportFormat::BottomUp => ("bottom-up", "merges stacks into a call tree"),
            ReportFormat::Svg => ("svg", "draws stacks"),
            _ => ("folded", "prints one line per stack"),
        };
        bail!("--format {format} {prints}; it does not go with --group-by {name}");
    }
    if let Some(kinds) = args.leak_kind
        && args.what != What::Outstanding
    {
        let what = args.what.to_possible_value().map(|v| v.get_name().to_string()).unwrap_or_default();
        bail!(
            "--leak-kind {} classifies outstanding blocks; it does not go with --what {what}",
            leak_kinds::names(kinds)
        );
    }
    // Folded stacks feed flamegraph tools, which want every stack unless told otherwise; so does
    // the flame graph.
    let every_stack = matches!(args.format, ReportFormat::Folded | ReportFormat::Svg);
    let top = args.top.unwrap_or(if every_stack { 0 } else { DEFAULT_TOP });
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
    if let Some(kinds) = args.leak_kind {
        leak_kinds::require(&analysis, &args.trace, kinds, &args.at, at_ns)?;
    }
    let window = window::resolve(&analysis, &args.window, at_ns)?;
    let selection = Selection::from(args.what);
    // How many blocks matters most for churn; how many bytes for what is held.
    let sort = match (args.rank_by, selection) {
        (Some(RankBy::Bytes), _) | (None, Selection::Outstanding) => SortBy::Bytes,
        (Some(RankBy::Blocks), _) | (None, _) => SortBy::Blocks,
    };
    let spec = ReportSpec {
        when: args.at.trim().to_string(),
        at_ns,
        window,
        selection,
        by,
        sort,
        top,
        leak_kinds: args.leak_kind,
    };
    let report = Report::build(&analysis, &spec, &bars);
    let text = match args.format {
        ReportFormat::Text => report.to_text(),
        ReportFormat::Json => report.to_json(),
        ReportFormat::Folded => first_lines(report.to_folded(), top),
        ReportFormat::Svg => report.to_flamegraph_svg(top).context("report --format svg")?,
        ReportFormat::Tree => report.to_tree(TreeOrder::TopDown),
        ReportFormat::BottomUp => report.to_tree(TreeOrder::BottomUp),
    };
    drop(bars);
    messages::print_result(&text, "report")?;
    Ok(ExitCode::SUCCESS)
}

/// The first `n` lines of `text` (all of them when `n` is 0). Folded output has one line per
/// stack, heaviest first, so these are the `n` heaviest stacks.
fn first_lines(text: String, n: usize) -> String {
    if n == 0 {
        return text;
    }
    text.split_inclusive('\n').take(n).collect()
}

#[cfg(test)]
mod tests {
    use super::first_lines;

    #[test]
    fn first_lines_keeps_whole_lines() {
        let folded = "a;b 30\na;c 20\nd 10\n".to_string();
        assert_eq!(first_lines(folded.clone(), 0), folded);
        assert_eq!(first_lines(folded.clone(), 2), "a;b 30\na;c 20\n");
        assert_eq!(first_lines(folded.clone(), 5), folded);
    }
}
