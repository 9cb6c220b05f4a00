//! One module per subcommand; `run` dispatches.

mod check;
mod demo;
mod diff;
mod leak_kinds;
mod library;
mod loading;
mod moment;
mod record;
mod report;
mod stats;
mod suspects;
mod view;
mod window;

use std::process::ExitCode;

use anyhow::bail;

use crate::cli::{Cli, Command};

/// Runs the parsed command line; `Err` means exit code 2.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Some(Command::Stats(args)) => stats::run(&args),
        Some(Command::Report(args)) => report::run(&args),
        Some(Command::Suspects(args)) => suspects::run(&args),
        Some(Command::Check(args)) => check::run(&args),
        Some(Command::Record(args)) => record::run(&args),
        Some(Command::Demo(args)) => demo::run(&args),
        Some(Command::Diff(args)) => diff::run(&args),
        Some(Command::View(args)) => view::run(&args.traces),
        Some(Command::Library) => library::run(),
        None if cli.traces.is_empty() => {
            bail!("no trace given; try `leakview demo`, `leakview record -- CMD` or `leakview --help`")
        }
        None => view::run(&cli.traces),
    }
}
