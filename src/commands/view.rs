//! `leakview TRACE` and `leakview view TRACE`: the terminal browser.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;

/// Opens the browser on one trace. Two traces (browsing their difference) are not supported yet.
pub fn run(traces: &[PathBuf]) -> anyhow::Result<ExitCode> {
    match traces {
        [trace] => {
            // A file that is not a trace is reported plainly, before the screen is taken over.
            leakview_format::TraceReader::open(trace)?;
            leakview_tui::browse(trace)?;
            Ok(ExitCode::SUCCESS)
        }
        [_, _] => {
            bail!("browsing the difference of two traces is not available yet; try `leakview diff A B`")
        }
        _ => bail!("give one trace to browse"),
    }
}
