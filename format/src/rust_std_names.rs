//! The Rust standard library's own blocks: what it allocates for itself and keeps (stdout's and
//! stdin's buffers, the test harness's captured output, its stack-overflow bookkeeping of each
//! thread, the symbolization cache a printed backtrace leaves). Shared by the analyzer's `check`
//! and the in-process tracker's `verify_no_leaks`, so both leave out the same blocks.
//!
//! A block is the standard library's when one of its keeping functions lies among the
//! standard-library frames at the allocating end of its stack: from the innermost frame up to
//! the first frame of other code. A `Display` impl of the program that leaks while `println!`
//! formats it has the program's frame first, so its leak still counts.
//!
//! Frames are matched by source file and function name, whichever the debug info gives: inlined
//! frames of line-tables-only builds carry short names (`stdout`), others full paths
//! (`std::io::stdio::stdout::{closure#0}`).

/// A frame as far as these rules look at it.
#[derive(Debug, Clone, Copy, Default)]
pub struct FrameName<'a> {
    pub function: Option<&'a str>,
    pub file: Option<&'a str>,
}

/// Keeping functions: a source file of the standard library (a path fragment) and the function
/// names in it whose allocations it keeps (empty: every function of the file or directory).
const KEEPERS: &[(&str, &[&str])] = &[
    (
        "/library/std/src/io/stdio.rs",
        &["stdout", "stdin", "print_to", "_print", "_eprint", "set_output_capture", "try_set_output_capture"],
    ),
    // the panic message the default hook writes into the harness's captured output
    ("/library/std/src/panicking.rs", &["default_hook"]),
    ("/library/std/src/sys/pal/unix/stack_overflow", &[]),
    ("/backtrace/src/symbolize/gimli", &[]),
];

/// The same functions by full path, for frames without a source file.
const KEEPER_PATHS: &[&str] = &[
    "std::io::stdio::stdout",
    "std::io::stdio::stdin",
    "std::io::stdio::print_to",
    "std::io::stdio::_print",
    "std::io::stdio::_eprint",
    "std::io::stdio::set_output_capture",
    "std::io::stdio::try_set_output_capture",
    "std::panicking::default_hook",
    "std::sys::pal::unix::stack_overflow::",
    "std::backtrace_rs::symbolize::gimli::",
];

/// Name prefixes of the standard library's crates and of the crates it embeds (its backtrace
/// symbolizer's), for frames without a source file.
const LIBRARY_CRATES: &[&str] = &[
    "std::",
    "core::",
    "alloc::",
    "gimli::",
    "addr2line::",
    "object::",
    "miniz_oxide::",
    "adler2::",
    "hashbrown::",
    "rustc_demangle::",
];

/// Whether the frame is the Rust standard library's code: its source is the toolchain's
/// (`/rustc/<hash>/`, or `/rust/deps/` for the crates the standard library embeds) or its name is
/// in `std`, `core`, `alloc` or one of those crates.
pub fn is_rust_library_frame(frame: FrameName<'_>) -> bool {
    frame.file.is_some_and(|file| file.starts_with("/rustc/") || file.starts_with("/rust/deps/"))
        || frame.function.is_some_and(|name| {
            let path = name.strip_prefix('<').unwrap_or(name);
            LIBRARY_CRATES.iter().any(|krate| path.starts_with(krate))
        })
}

/// Whether the frame is one of the standard library's keeping functions.
pub fn is_rust_std_keeper(frame: FrameName<'_>) -> bool {
    let Some(name) = frame.function else { return false };
    // A method's path starts with its type's: `<std::...::Cache>::new`.
    let path_name = name.strip_prefix('<').unwrap_or(name);
    if KEEPER_PATHS.iter().any(|path| under_path(path_name, path)) {
        return true;
    }
    let Some(file) = frame.file else { return false };
    KEEPERS.iter().any(|(fragment, names)| {
        file.contains(fragment) && (names.is_empty() || names.iter().any(|n| names_function(name, n)))
    })
}

/// Whether a block allocated with these frames (innermost first) is the standard library's own.
pub fn is_rust_std_own_block<'a>(frames: impl IntoIterator<Item = FrameName<'a>>) -> bool {
    frames.into_iter().take_while(|&f| is_rust_library_frame(f)).any(is_rust_std_keeper)
}

/// `name` is `path` or an item inside it (`path::{closure#0}`, `path::<T>`), or `path` ends with
/// `::` and `name` lies under it.
fn under_path(name: &str, path: &str) -> bool {
    match name.strip_prefix(path) {
        Some(rest) => path.ends_with("::") || rest.is_empty() || rest.starts_with("::"),
        None => false,
    }
}

/// Whether `name` (full or short, with or without generics and closures) names the function
/// `function`: one of its path segments, generics aside, is `function`.
fn names_function(name: &str, function: &str) -> bool {
    name.split("::").any(|segment| segment.split('<').next() == Some(function))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STDIO: &str = "/rustc/0123/library/std/src/io/stdio.rs";

    fn frame<'a>(function: &'a str, file: Option<&'a str>) -> FrameName<'a> {
        FrameName { function: Some(function), file }
    }

    #[test]
    fn keepers_are_found_by_full_path_or_by_file_and_short_name() {
        assert!(is_rust_std_keeper(frame("std::io::stdio::_print", None)));
        assert!(is_rust_std_keeper(frame("std::io::stdio::print_to::<std::io::stdio::Stdout>", None)));
        assert!(is_rust_std_keeper(frame("std::io::stdio::stdout::{closure#0}", None)));
        assert!(is_rust_std_keeper(frame("stdout", Some(STDIO))));
        assert!(is_rust_std_keeper(frame("print_to<std::io::stdio::Stdout>", Some(STDIO))));
        assert!(is_rust_std_keeper(frame(
            "std::sys::pal::unix::stack_overflow::thread_info::set_current_info",
            None
        )));
        assert!(is_rust_std_keeper(frame("<std::backtrace_rs::symbolize::gimli::Cache>::new", None)));
        // Not keepers: the program's buffer filled by a stdin method, look-alike names.
        assert!(!is_rust_std_keeper(frame("<std::io::stdio::Stdin>::read_line", Some(STDIO))));
        assert!(!is_rust_std_keeper(frame("std::io::stdio::stdin_locked_elsewhere", None)));
        assert!(!is_rust_std_keeper(frame("my_app::stdout", Some("/home/me/src/main.rs"))));
    }

    #[test]
    fn only_keepers_at_the_allocating_end_count() {
        let alloc = frame("alloc::raw_vec::finish_grow", Some("/rustc/0123/library/alloc/src/raw_vec.rs"));
        let print = frame("std::io::stdio::_print", Some(STDIO));
        let main = frame("app::main", Some("/home/me/src/main.rs"));
        assert!(is_rust_std_own_block([alloc, print, main]));
        // The program's Display impl leaked while println! formatted it.
        let display = frame("<app::Report as core::fmt::Display>::fmt", Some("/home/me/src/report.rs"));
        assert!(!is_rust_std_own_block([alloc, display, print, main]));
        assert!(!is_rust_std_own_block([alloc, main]));
        assert!(!is_rust_std_own_block([]));
    }
}
