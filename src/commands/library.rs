//! `leakview library`: where the recorder library this binary carries is, for programs that
//! cannot be started through `leakview record` (a service manager, a container's entry point):
//! extracted into the cache directory if need be, its path printed on stdout.

use std::process::ExitCode;

use crate::embedded;

pub fn run() -> anyhow::Result<ExitCode> {
    let path = embedded::preload_library()?;
    println!("{}", path.display());
    Ok(ExitCode::SUCCESS)
}
