//! `leakview TRACE` and `leakview view TRACE`: the terminal browser. With two traces
//! (`leakview A.bin B.bin`), the browser of their difference, both at their ends.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use leakview_analyzer::{DiffBy, Selection};
use leakview_tui::DiffRequest;

use super::loading;

/// Opens the browser on one trace, or the diff browser on two.
pub fn run(traces: &[PathBuf]) -> anyhow::Result<ExitCode> {
    // A file that is not a trace is reported plainly, before the screen is taken over.
    for trace in traces {
        loading::open_reader(trace)?;
    }
    match traces {
        [trace] => leakview_tui::browse(trace)?,
        [a, b] => {
            if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
                bail!("the diff browser needs a terminal; try `leakview diff A B` for the text diff");
            }
            leakview_tui::browse_diff(DiffRequest {
                a: a.clone(),
                b: Some(b.clone()),
                at_a: "end".into(),
                at_b: "end".into(),
                by: DiffBy::Stack,
                what: Selection::Outstanding,
            })?;
        }
        _ => bail!("give one trace to browse, or two to browse their difference"),
    }
    Ok(ExitCode::SUCCESS)
}
