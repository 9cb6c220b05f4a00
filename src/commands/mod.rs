//! One module per subcommand; `run` dispatches.

mod check;
mod demo;
mod loading;
mod record;
mod report;
mod stats;
mod view;

use std::process::ExitCode;

use anyhow::bail;

use crate::cli::{Cli, Command};

/// Runs the parsed command line; `Err` means exit code 2.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Some(Command::Stats(args)) => stats::run(&args),
        Some(Command::Report(args)) => report::run(&args),
        Some(Command::Check(args)) => check::run(&args),
        Some(Command::Record(args)) => record::run(&args),
        Some(Command::Demo(args)) => demo::run(&args),
        Some(Command::View(args)) => view::run(&args.traces),
        Some(other) => bail!("`{}` is not available in this build yet", command_name(&other)),
        None if cli.traces.is_empty() => {
            bail!("no trace given; try `leakview demo`, `leakview record -- CMD` or `leakview --help`")
        }
        None => view::run(&cli.traces),
    }
}

fn command_name(command: &Command) -> &'static str {
    match command {
        Command::Record(_) => "record",
        Command::Demo(_) => "demo",
        Command::Report(_) => "report",
        Command::Stats(_) => "stats",
        Command::Check(_) => "check",
        Command::Diff(_) => "diff",
        Command::View(_) => "view",
    }
}
