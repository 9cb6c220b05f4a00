//! Argument errors as one line: clap renders a usage error as a paragraph (the error, a tip,
//! the usage, a pointer to `--help`); leakview prints it as `leakview: ERROR (tip: TIP); usage:
//! USAGE`, like its other errors, so that a script's log or a terminal shows the whole of it in
//! one line. Help and version requests are printed as clap renders them.

use std::process::ExitCode;

use clap::error::{Error, ErrorKind};

use crate::messages::say;

/// Prints `err` (from parsing the command line) and gives the exit code: 0 for `--help` and
/// `--version`, 2 for a usage error.
pub fn report(err: &Error) -> ExitCode {
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            // Help goes to stdout; a closed pipe (`leakview --help | head -1`) is not an error.
            let _ = err.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = err.print();
            ExitCode::from(2)
        }
        _ => {
            say!("leakview: {}", one_line(&err.render().to_string()));
            ExitCode::from(2)
        }
    }
}

/// clap's rendered error (`error: ...`, indented detail lines, `tip: ...` lines, `Usage: ...`
/// lines and `For more information, try '--help'.`) folded into one line.
pub fn one_line(rendered: &str) -> String {
    let mut message: Vec<&str> = Vec::new();
    let mut tips: Vec<&str> = Vec::new();
    let mut usage: Vec<&str> = Vec::new();
    let mut in_usage = false;
    for line in rendered.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            in_usage = false;
        } else if let Some(rest) = trimmed.strip_prefix("Usage:") {
            in_usage = true;
            usage.push(rest.trim());
        } else if in_usage {
            usage.push(trimmed);
        } else if let Some(tip) = trimmed.strip_prefix("tip:") {
            tips.push(tip.trim());
        } else if trimmed.starts_with("For more information") {
        } else {
            message.push(trimmed.strip_prefix("error:").map_or(trimmed, str::trim));
        }
    }
    let mut out = message.join(" ");
    if out.is_empty() {
        out.push_str("invalid arguments");
    }
    if !tips.is_empty() {
        out.push_str(&format!(" (tip: {})", tips.join("; ")));
    }
    if !usage.is_empty() {
        out.push_str(&format!("; usage: {}", usage.join(" | ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;
    use crate::cli::Cli;

    fn error_of(args: &[&str]) -> Error {
        match Cli::try_parse_from(args) {
            Ok(_) => panic!("{args:?} parsed"),
            Err(err) => err,
        }
    }

    fn folded(args: &[&str]) -> String {
        one_line(&error_of(args).render().to_string())
    }

    #[test]
    fn an_unknown_option_names_it_with_the_tip_and_the_usage() {
        let line = folded(&["leakview", "report", "--bogus", "t.bin"]);
        assert!(!line.contains('\n'), "{line}");
        assert!(line.starts_with("unexpected argument '--bogus' found"), "{line}");
        assert!(line.contains("(tip: "), "{line}");
        assert!(line.ends_with("; usage: leakview report [OPTIONS] <TRACE>"), "{line}");
    }

    #[test]
    fn a_missing_argument_is_named_on_the_same_line() {
        let line = folded(&["leakview", "record"]);
        assert!(line.starts_with("the following required arguments were not provided: <CMD>..."), "{line}");
        assert!(line.contains("usage: leakview record"), "{line}");
        assert!(!line.contains('\n'), "{line}");
    }

    #[test]
    fn an_invalid_value_keeps_the_possible_values_and_the_suggestion() {
        let line = folded(&["leakview", "report", "--group-by", "fn", "t.bin"]);
        assert!(line.starts_with("invalid value 'fn' for '--group-by"), "{line}");
        assert!(line.contains("[possible values: stack, function"), "{line}");
        assert!(line.contains("(tip: a similar value exists: 'function')"), "{line}");
    }

    #[test]
    fn several_usage_lines_are_joined() {
        let line = folded(&["leakview", "--bogus"]);
        assert!(line.contains("; usage: leakview [TRACE]... | leakview <COMMAND>"), "{line}");
    }

    #[test]
    fn help_and_version_are_not_usage_errors() {
        assert_eq!(error_of(&["leakview", "--help"]).kind(), ErrorKind::DisplayHelp);
        Cli::command().debug_assert();
    }

    #[test]
    fn text_without_a_message_still_says_something() {
        assert_eq!(one_line("\nFor more information, try '--help'.\n"), "invalid arguments");
    }
}
