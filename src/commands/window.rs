//! `--allocated-after` / `--allocated-before`: the allocation window of `report`, `suspects`
//! and `check`, resolved against a loaded trace.

use anyhow::bail;
use leakview_analyzer::{AllocWindow, Analysis, WindowEnd};

use super::moment;
use crate::cli::WindowArgs;

/// The window the arguments name, for a query at `at_ns`. A window that starts after the
/// moment, or ends before it starts, is a usage error: no block could be in it.
pub fn resolve(analysis: &Analysis, args: &WindowArgs, at_ns: u64) -> anyhow::Result<AllocWindow> {
    let end = |flag: &str, when: &Option<String>| -> anyhow::Result<Option<WindowEnd>> {
        when.as_ref()
            .map(|w| {
                let ns = moment::named(analysis.resolve_when(w), &format!("--{flag}"), w)?;
                Ok(WindowEnd { ns, when: w.trim().to_string() })
            })
            .transpose()
    };
    let window = AllocWindow {
        after: end("allocated-after", &args.allocated_after)?,
        before: end("allocated-before", &args.allocated_before)?,
    };
    if let Some(after) = &window.after {
        if after.ns > at_ns {
            bail!(
                "--allocated-after {} is later than the moment looked at: no block allocated then exists yet",
                after.when
            );
        }
        if let Some(before) = window.before.as_ref().filter(|b| b.ns <= after.ns) {
            bail!(
                "--allocated-before {} is not later than --allocated-after {}: the window is empty",
                before.when,
                after.when
            );
        }
    }
    Ok(window)
}
