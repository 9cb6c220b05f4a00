//! What leakview writes for the user: a command's result on stdout and its messages on stderr.
//! A reader that went away is never an error: a result piped into `head` stops quietly, and a
//! message to a closed stderr (or a pipe nobody reads any more, as in
//! `leakview record -- CMD 2>&1 | head -1`) is dropped, so that `record` still exits the way the
//! recorded program did.

use std::io::Write;

use anyhow::Context;

/// Writes `line` and a newline to stderr in one write, ignoring write errors.
pub fn write_line(line: std::fmt::Arguments<'_>) {
    let text = format!("{line}\n");
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// `eprintln!` that ignores write errors (see [`write_line`]).
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::messages::write_line(format_args!($($arg)*))
    };
}
pub(crate) use say;

/// Writes a command's result, `text`, to stdout. A closed pipe ends the output quietly; any other
/// write error is `cannot write the {what}`.
pub fn print_result(text: &str, what: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.with_context(|| format!("cannot write the {what}")),
    }
}
