//! `leakview`: record native memory allocations, find leaks, browse traces.
//!
//! This binary is thin: it parses arguments (`cli`), calls the libraries (`commands`) and maps
//! errors to exit codes: 0 ok, 1 leaks found (`check`, `diff --fail-on-growth`), 2 usage or
//! input error.

#![forbid(unsafe_code)]

mod cache_dir;
mod cli;
mod commands;
mod elf;
mod embedded;
mod messages;
mod recording;
mod supervise;
mod target_program;
mod trace_paths;
mod traces_written;
mod usage_error;

use std::process::ExitCode;

use clap::Parser;

use crate::messages::say;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage_error::report(&err),
    };
    match commands::run(cli) {
        Ok(code) => code,
        Err(err) => {
            say!("leakview: {err:#}");
            ExitCode::from(2)
        }
    }
}
