//! Suppression lines suggested for a failed check (`leakview check --print-suppressions`, like
//! valgrind's `--gen-suppressions`): for each leaking stack that no earlier line matches,
//! `leak:^FUNCTION$` of its innermost frame outside the runtimes' libraries and the standard
//! libraries' code compiled into the program (`std::vector`'s, Rust's `alloc::`) — the program's
//! code that asked for the block, not `strdup` or `operator new` — told with every leak it
//! matches.
//! A rule matches a stack with that function anywhere in it, so one line may cover several
//! leaks. Entry points (`main`, a thread's start) are never named: a rule for one would match
//! nearly every stack of the program, so a block allocated right in `main` gets the runtime
//! function that allocated it where there is one (`strdup`), and no line otherwise.

use std::collections::HashMap;

use crate::runtime_blocks::in_runtime_library;
use crate::suppress::Suppressions;
use crate::symbolize::Frame;

/// One suggested line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuggestedSuppression {
    /// `leak:^FUNCTION$`.
    pub line: String,
    /// The leaks it matches: indexes into the stacks given to [`suggest`].
    pub matches: Vec<usize>,
}

/// Lines that together match every stack of `leaks` (innermost frame first) that a line can
/// name ([`suppression_line`]), in the order of the first leak each one is for.
pub fn suggest(leaks: &[&[Frame]]) -> Vec<SuggestedSuppression> {
    let index = TextIndex::new(leaks);
    let mut suggested: Vec<SuggestedSuppression> = Vec::new();
    let mut covered = vec![false; leaks.len()];
    for (i, frames) in leaks.iter().enumerate() {
        if covered[i] {
            continue;
        }
        let Some(line) = suppression_line(frames) else { continue };
        let Ok(rule) = Suppressions::parse(&line) else { continue };
        let literal =
            line.strip_prefix("leak:^").and_then(|l| l.strip_suffix('$')).filter(|l| !l.contains('*'));
        let matches: Vec<usize> = match literal {
            Some(name) => index.leaks_with(name).to_vec(),
            None => (0..leaks.len()).filter(|&k| rule.matching_rule(leaks[k]).is_some()).collect(),
        };
        for &k in &matches {
            covered[k] = true;
        }
        suggested.push(SuggestedSuppression { line, matches });
    }
    suggested
}

/// The leaks each text a rule is matched against appears in (a frame's function, file and
/// module, and the shown name of a frame without a function): what `leak:^TEXT$` matches, found
/// without trying the rule on every leak's frames (a check with thousands of leaking stacks
/// would otherwise take time quadratic in them).
struct TextIndex {
    leaks_by_text: HashMap<String, Vec<usize>>,
}

impl TextIndex {
    fn new(leaks: &[&[Frame]]) -> TextIndex {
        let mut leaks_by_text: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, frames) in leaks.iter().enumerate() {
            for frame in frames.iter() {
                let unnamed = frame.function.is_none().then(|| frame.display_name());
                let texts = [&frame.function, &frame.file, &frame.module, &unnamed];
                for text in texts.into_iter().flatten() {
                    let holders = leaks_by_text.entry(text.clone()).or_default();
                    if holders.last() != Some(&i) {
                        holders.push(i);
                    }
                }
            }
        }
        TextIndex { leaks_by_text }
    }

    /// The leaks one of whose frames has `text` as its function, file, module or shown name, in
    /// order.
    fn leaks_with(&self, text: &str) -> &[usize] {
        self.leaks_by_text.get(text).map_or(&[], Vec::as_slice)
    }
}

/// The line suggested for one stack (innermost frame first): `leak:^NAME$` for its innermost
/// frame outside the runtimes' libraries and the standard libraries' code that is not an entry
/// point, else for the innermost frame if it is in the runtimes' libraries (and not an entry
/// point); `None` if neither.
pub fn suppression_line(frames: &[Frame]) -> Option<String> {
    let named = |f: &&Frame| !is_entry_point(f);
    let frame = frames
        .iter()
        .filter(named)
        .find(|f| !in_runtime_library(f) && !is_standard_library_code(f))
        .or_else(|| frames.first().filter(named).filter(|f| in_runtime_library(f)))?;
    // `#` would start a comment (C++ lambdas are `{lambda()#1}`): `*` matches it as well.
    Some(format!("leak:^{}$", frame.display_name().replace('#', "*")))
}

/// Code of the C++ or Rust standard library, instantiated or linked into the program
/// (`std::vector<...>::_M_realloc_insert`, `alloc::raw_vec::finish_grow`): on every stack that
/// grows a vector, so no rule names it. A C++ name may start with its return type (`void
/// std::...`).
fn is_standard_library_code(frame: &Frame) -> bool {
    const LIBRARIES: &[&str] = &["std::", "core::", "alloc::", "__gnu_cxx::"];
    let Some(function) = frame.function.as_deref() else { return false };
    let head = function.split('(').next().unwrap_or(function).trim_start_matches('<');
    let qualified = match head.split_once(' ') {
        Some((return_type, rest)) if !return_type.contains(['<', ',']) => rest.trim_start_matches('<'),
        _ => head,
    };
    LIBRARIES.iter().any(|lib| head.starts_with(lib) || qualified.starts_with(lib))
}

/// A process's or thread's entry point, on nearly every stack: `main` (a Rust program's
/// `crate::main` too), the C runtime's start, a thread's start.
fn is_entry_point(frame: &Frame) -> bool {
    let Some(function) = frame.function.as_deref() else { return false };
    const ENTRY_POINTS: &[&str] = &[
        "main",
        "_start",
        "__libc_start_main",
        "__libc_start_main_impl",
        "__libc_start_call_main",
        "start_thread",
        "clone",
        "clone3",
        "__clone",
        "__clone3",
    ];
    ENTRY_POINTS.contains(&function)
        || function.ends_with("::main")
        || function.starts_with("std::rt::lang_start")
        || function.ends_with("thread_start")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(function: Option<&str>, module: &str) -> Frame {
        Frame::in_module(function, module)
    }

    #[test]
    fn the_programs_innermost_frame_is_named_and_lines_cover_what_they_match() {
        let strdup_leak = [
            frame(Some("__GI___strndup"), "/lib/x86_64-linux-gnu/libc.so.6"),
            frame(Some("trim_dup"), "/app/server"),
            frame(Some("main"), "/app/server"),
        ];
        let request_leak = [frame(Some("handle_request"), "/app/server"), frame(Some("main"), "/app/server")];
        let cache_leak = [
            frame(Some("cache_put"), "/app/server"),
            frame(Some("handle_request"), "/app/server"),
            frame(Some("main"), "/app/server"),
        ];
        let leaks: [&[Frame]; 3] = [&request_leak, &strdup_leak, &cache_leak];
        let lines = suggest(&leaks);
        assert_eq!(
            lines,
            vec![
                // handle_request is on the cache leak's stack too: one line for both.
                SuggestedSuppression { line: "leak:^handle_request$".into(), matches: vec![0, 2] },
                SuggestedSuppression { line: "leak:^trim_dup$".into(), matches: vec![1] },
            ]
        );
        let file = lines.iter().map(|s| s.line.as_str()).collect::<Vec<_>>().join("\n");
        let rules = Suppressions::parse(&file).expect("the lines parse");
        assert!(leaks.iter().all(|frames| rules.matching_rule(frames).is_some()));
    }

    #[test]
    fn the_index_finds_what_the_rule_matches() {
        let a = [frame(Some("cache_put"), "/app/server"), frame(Some("handle_request"), "/app/server")];
        let b = [frame(Some("handle_request"), "/app/server"), frame(None, "/app/server")];
        let c = [frame(Some("other"), "/app/server"), frame(None, "/app/server")];
        let leaks: [&[Frame]; 3] = [&a, &b, &c];
        let index = TextIndex::new(&leaks);
        for name in ["cache_put", "handle_request", "other", "server+0x234", "/app/server", "absent"] {
            let rule = Suppressions::parse(&format!("leak:^{name}$")).expect("parses");
            let scanned: Vec<usize> =
                (0..leaks.len()).filter(|&k| rule.matching_rule(leaks[k]).is_some()).collect();
            assert_eq!(index.leaks_with(name), scanned.as_slice(), "{name}");
        }
    }

    #[test]
    fn entry_points_are_never_named() {
        let in_main = [
            frame(Some("main"), "/app/tool"),
            frame(Some("__libc_start_call_main"), "/lib/x86_64-linux-gnu/libc.so.6"),
            frame(Some("_start"), "/app/tool"),
        ];
        let strdup_in_main =
            [frame(Some("__GI___strdup"), "/lib/x86_64-linux-gnu/libc.so.6"), in_main[0].clone()];
        let rust_main = [
            frame(Some("tool::main"), "/app/tool"),
            frame(Some("std::rt::lang_start::{{closure}}"), "/app/tool"),
        ];
        let thread = [
            frame(Some("worker"), "/app/tool"),
            frame(Some("start_thread"), "/lib/x86_64-linux-gnu/libc.so.6"),
        ];
        let leaks: [&[Frame]; 4] = [&in_main, &strdup_in_main, &rust_main, &thread];
        let texts: Vec<String> = suggest(&leaks).into_iter().map(|s| s.line).collect();
        assert_eq!(texts, ["leak:^__GI___strdup$", "leak:^worker$"]);
    }

    #[test]
    fn standard_library_code_in_the_program_is_passed_over() {
        let vector = [
            frame(
                Some("void std::vector<int, std::allocator<int> >::_M_realloc_insert<int>(int&&)"),
                "/app/tool",
            ),
            frame(Some("Cache<int, std::string>::put(int)"), "/app/tool"),
        ];
        let rust = [
            frame(Some("alloc::raw_vec::finish_grow"), "/app/tool"),
            frame(Some("<alloc::vec::Vec<T> as core::clone::Clone>::clone"), "/app/tool"),
            frame(Some("tool::registry::Registry::add"), "/app/tool"),
        ];
        let only_library = [
            frame(Some("alloc::alloc::exchange_malloc"), "/app/tool"),
            frame(Some("tool::main"), "/app/tool"),
        ];
        let leaks: [&[Frame]; 3] = [&vector, &rust, &only_library];
        let texts: Vec<String> = suggest(&leaks).into_iter().map(|s| s.line).collect();
        assert_eq!(
            texts,
            ["leak:^Cache<int, std::string>::put(int)$", "leak:^tool::registry::Registry::add$"]
        );
    }

    #[test]
    fn unnamed_frames_and_comment_signs_still_make_a_matching_line() {
        let unnamed = [frame(None, "/app/stripped")];
        let lambda = [frame(Some("main::{lambda()#1}::operator()() const"), "/app/server")];
        let only_runtime = [frame(Some("_dl_new_object"), "/lib64/ld-linux-x86-64.so.2")];
        let leaks: [&[Frame]; 4] = [&unnamed, &lambda, &only_runtime, &[]];
        let lines = suggest(&leaks);
        let texts: Vec<&str> = lines.iter().map(|s| s.line.as_str()).collect();
        assert_eq!(
            texts,
            [
                "leak:^stripped+0x234$",
                "leak:^main::{lambda()*1}::operator()() const$",
                "leak:^_dl_new_object$"
            ]
        );
        for (line, frames) in lines.iter().zip(&leaks) {
            let rule = Suppressions::parse(&line.line).expect("parses");
            assert!(rule.matching_rule(frames).is_some(), "{} matches its own leak", line.line);
        }
    }
}
