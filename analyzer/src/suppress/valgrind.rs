//! Valgrind's suppression entries, so that a project's existing `.supp` files (or what
//! `valgrind --gen-suppressions=all` prints) work with `leakview check`:
//!
//! ```text
//! {
//!    name
//!    Memcheck:Leak
//!    match-leak-kinds: definite
//!    fun:malloc
//!    fun:make_leak
//!    ...
//!    obj:/usr/lib/libfoo.so.1
//! }
//! ```
//!
//! Only `Memcheck:Leak` entries suppress anything; entries for other errors or tools are read
//! and skipped. Frame lines match a leak's stack from the allocation on, as in valgrind: `fun:`
//! a function, `obj:` a module, `src:FILE[:LINE]` a source location, `...` any number of frames
//! (all with `*` and `?` wildcards, over the whole name); the entry matches when its lines are
//! used up, whatever frames follow. Valgrind's stacks start at the allocation function
//! (`malloc`, `operator new`), which leakview's stacks leave out: leading lines naming
//! allocation functions match that call. leakview does not tell leak kinds apart, so
//! `match-leak-kinds:` is read and not applied.

use leakview_format::allocator_names::is_allocator_function;

use super::names::{function_matches, glibc_export_names, glob_matches, is_below_main, module_matches};
use crate::symbolize::{Frame, demangle};

/// One frame line of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameLine {
    /// `fun:PATTERN`
    Function(String),
    /// `obj:PATTERN`
    Module(String),
    /// `src:FILE` or `src:FILE:LINE`
    Source { file: String, line: Option<u32> },
    /// `...`
    AnyFrames,
}

/// A `Memcheck:Leak` entry: its name and frame lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub frames: Vec<FrameLine>,
}

/// Why an entry could not be read: the line (index into the entry's lines; their count for the
/// closing `}`) and what is wrong.
#[derive(Debug)]
pub(super) struct EntryError {
    pub at: usize,
    pub why: &'static str,
}

/// Reads the lines between `{` and `}` (blank and comment lines already left out): `None` for
/// an entry of another error kind or tool.
pub(super) fn parse_entry(lines: &[&str]) -> Result<Option<Entry>, EntryError> {
    let name = lines.first().ok_or(EntryError { at: 0, why: "is an entry without a name" })?;
    let kind = lines.get(1).ok_or(EntryError { at: 0, why: "is an entry without a `TOOL:KIND` line" })?;
    let (tools, kind) = kind
        .split_once(':')
        .ok_or(EntryError { at: 1, why: "is not a `TOOL:KIND` line such as `Memcheck:Leak`" })?;
    let for_memcheck = tools.split(',').any(|tool| tool.trim().eq_ignore_ascii_case("memcheck"));
    if !for_memcheck || kind.trim() != "Leak" {
        return Ok(None);
    }
    let mut frames = Vec::new();
    for (at, line) in lines.iter().enumerate().skip(2) {
        if at == 2 && line.starts_with("match-leak-kinds:") {
            continue;
        }
        frames.push(
            parse_frame_line(line)
                .ok_or(EntryError { at, why: "is not a frame line (`fun:`, `obj:`, `src:` or `...`)" })?,
        );
    }
    if frames.is_empty() {
        return Err(EntryError { at: lines.len(), why: "ends an entry without frame lines" });
    }
    Ok(Some(Entry { name: name.to_string(), frames }))
}

fn parse_frame_line(line: &str) -> Option<FrameLine> {
    if line == "..." {
        return Some(FrameLine::AnyFrames);
    }
    let (kind, pattern) = line.split_once(':')?;
    let pattern = pattern.trim();
    if pattern.is_empty() {
        return None;
    }
    match kind.trim() {
        "fun" => Some(FrameLine::Function(pattern.to_string())),
        "obj" => Some(FrameLine::Module(pattern.to_string())),
        "src" => Some(match pattern.rsplit_once(':') {
            Some((file, line)) if !file.is_empty() && line.parse::<u32>().is_ok() => {
                FrameLine::Source { file: file.to_string(), line: line.parse().ok() }
            }
            _ => FrameLine::Source { file: pattern.to_string(), line: None },
        }),
        _ => None,
    }
}

/// The allocation functions valgrind's stacks start with (its replacements of them).
const ALLOCATION_FUNCTIONS: &[&str] = &[
    "malloc",
    "calloc",
    "realloc",
    "reallocarray",
    "memalign",
    "posix_memalign",
    "aligned_alloc",
    "valloc",
    "pvalloc",
    "_Znwm",
    "_Znam",
    "_Znwj",
    "_Znaj",
    "_ZnwmRKSt9nothrow_t",
    "_ZnamRKSt9nothrow_t",
    "_ZnwmSt11align_val_t",
    "_ZnamSt11align_val_t",
    "_ZnwmSt11align_val_tRKSt9nothrow_t",
    "_ZnamSt11align_val_tRKSt9nothrow_t",
    "operator new(unsigned long)",
    "operator new[](unsigned long)",
    "__builtin_new",
    "__builtin_vec_new",
];

/// Whether `line` can stand for the allocation call at the top of valgrind's stack.
fn names_the_allocation(line: &FrameLine) -> bool {
    match line {
        FrameLine::Function(pattern) if pattern.contains(['*', '?']) => {
            ALLOCATION_FUNCTIONS.iter().any(|name| glob_matches(pattern, name))
        }
        FrameLine::Function(name) => is_allocator_function(name) || is_allocator_function(&demangle(name)),
        // Valgrind's replacements live in its preload object.
        FrameLine::Module(pattern) => pattern.contains("vgpreload"),
        FrameLine::Source { .. } | FrameLine::AnyFrames => false,
    }
}

/// Whether `frame` is in the GNU C library (whose functions go by aliases).
fn in_glibc(frame: &Frame) -> bool {
    frame
        .module_name()
        .is_some_and(|m| ["libc.so", "libm.so", "libpthread.so", "ld-linux"].iter().any(|l| m.starts_with(l)))
}

fn line_matches(line: &FrameLine, frame: &Frame) -> bool {
    match line {
        // Valgrind's frame for the code that calls `main` (with `--show-below-main=no`).
        FrameLine::Function(pattern) if pattern == "(below main)" => {
            frame.function.as_deref().is_some_and(is_below_main)
        }
        FrameLine::Function(pattern) => {
            let name = frame.function.as_deref().unwrap_or("???");
            function_matches(pattern, name)
                || (in_glibc(frame)
                    && glibc_export_names(name).any(|exported| function_matches(pattern, &exported)))
        }
        FrameLine::Module(pattern) => frame.module.as_deref().is_some_and(|m| module_matches(pattern, m)),
        FrameLine::Source { file, line } => {
            let name = frame.file.as_deref().map(|f| f.rsplit('/').next().unwrap_or(f));
            name.is_some_and(|name| glob_matches(file, name)) && line.is_none_or(|l| frame.line == Some(l))
        }
        FrameLine::AnyFrames => true,
    }
}

/// Whether the frame lines `lines` match a leak whose stack, as leakview shows it (innermost
/// first, the allocation functions left out), is `frames`.
pub fn stack_matches(lines: &[FrameLine], frames: &[Frame]) -> bool {
    // Positions in the stack as valgrind sees it: 0 is the allocation call, k > 0 is
    // `frames[k - 1]`, `frames.len() + 1` is past the outermost frame.
    let mut known: Vec<Option<bool>> = vec![None; (lines.len() + 1) * (frames.len() + 2)];
    Matcher { lines, frames, known: &mut known }.from(0, 0)
}

/// The memoised state of [`stack_matches`].
struct Matcher<'a> {
    lines: &'a [FrameLine],
    frames: &'a [Frame],
    /// Whether lines `i..` match from position `at`, at `i * (frames.len() + 2) + at`.
    known: &'a mut [Option<bool>],
}

impl Matcher<'_> {
    /// Whether lines `i..` match the stack from position `at` on.
    fn from(&mut self, i: usize, at: usize) -> bool {
        let Some(line) = self.lines.get(i) else { return true };
        let slot = i * (self.frames.len() + 2) + at;
        if let Some(answer) = self.known[slot] {
            return answer;
        }
        let answer = match line {
            FrameLine::AnyFrames => (at..=self.frames.len() + 1).any(|k| self.from(i + 1, k)),
            // The allocation call: one line or several (`malloc` under `operator new`, `realloc`
            // under `reallocarray`).
            _ if at == 0 => names_the_allocation(line) && (self.from(i + 1, 1) || self.from(i + 1, 0)),
            _ => {
                self.frames.get(at - 1).is_some_and(|frame| line_matches(line, frame))
                    && self.from(i + 1, at + 1)
            }
        };
        self.known[slot] = Some(answer);
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(function: Option<&str>, module: &str) -> Frame {
        Frame {
            function: function.map(str::to_string),
            file: Some("/src/app.c".into()),
            line: Some(12),
            module: Some(module.to_string()),
            address: 0x10,
            module_offset: Some(0x10),
            inlined: false,
        }
    }

    fn entry(text: &str) -> Entry {
        let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        parse_entry(&lines).expect("parses").expect("a leak entry")
    }

    fn matches(entry_text: &str, frames: &[Frame]) -> bool {
        stack_matches(&entry(entry_text).frames, frames)
    }

    fn stack() -> Vec<Frame> {
        vec![
            frame(Some("make_leak"), "/bin/app"),
            frame(None, "/usr/lib/libfoo.so.1"),
            frame(Some("main"), "/bin/app"),
            frame(Some("__libc_start_main"), "/lib/libc.so.6"),
        ]
    }

    #[test]
    fn entries_parse_and_other_kinds_are_skipped() {
        let e = entry(
            "name\nMemcheck:Leak\nmatch-leak-kinds: definite\nfun:malloc\n...\nobj:*libfoo*\nsrc:app.c:12\n",
        );
        assert_eq!(e.name, "name");
        assert_eq!(
            e.frames,
            vec![
                FrameLine::Function("malloc".into()),
                FrameLine::AnyFrames,
                FrameLine::Module("*libfoo*".into()),
                FrameLine::Source { file: "app.c".into(), line: Some(12) },
            ]
        );
        assert_eq!(parse_entry(&["cond", "Memcheck:Cond", "fun:f"]).expect("parses"), None);
        assert_eq!(parse_entry(&["race", "Helgrind:Race", "fun:f"]).expect("parses"), None);
        assert_eq!(parse_entry(&["param", "Memcheck:Param", "write(buf)", "fun:f"]).expect("parses"), None);
        assert!(parse_entry(&["both", "Memcheck,Helgrind:Leak", "fun:malloc"]).expect("parses").is_some());
        assert_eq!(parse_entry(&["bad", "Memcheck:Leak", "function:f"]).map(|_| ()).expect_err("bad").at, 2);
        assert_eq!(parse_entry(&["bad", "no kind"]).map(|_| ()).expect_err("bad").at, 1);
        assert!(parse_entry(&["empty", "Memcheck:Leak"]).is_err());
        assert!(parse_entry(&["only a name"]).is_err());
    }

    #[test]
    fn frames_match_from_the_allocation_on() {
        let frames = stack();
        assert!(matches("n\nMemcheck:Leak\nfun:malloc\nfun:make_leak\n", &frames));
        assert!(matches(
            "n\nMemcheck:Leak\nfun:malloc\nfun:make_leak\nobj:*/libfoo.so*\nfun:main\n",
            &frames
        ));
        assert!(matches("n\nMemcheck:Leak\nfun:*alloc\nfun:make_leak\n", &frames));
        assert!(matches("n\nMemcheck:Leak\nfun:_Znwm\nfun:make_leak\n", &frames));
        assert!(matches(
            "n\nMemcheck:Leak\nobj:/usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so\nfun:make_leak\n",
            &frames
        ));
        // Several lines for the allocation call.
        assert!(matches("n\nMemcheck:Leak\nfun:realloc\nfun:reallocarray\nfun:make_leak\n", &frames));
        // `...` skips any number of frames, none included.
        assert!(matches("n\nMemcheck:Leak\nfun:malloc\n...\nfun:main\n", &frames));
        assert!(matches("n\nMemcheck:Leak\nfun:malloc\n...\nfun:make_leak\n", &frames));
        assert!(matches("n\nMemcheck:Leak\n...\nfun:main\n", &frames));
        // An unnamed frame is `???`.
        assert!(matches("n\nMemcheck:Leak\nfun:malloc\nfun:make_leak\nfun:*\nfun:main\n", &frames));
        assert!(matches("n\nMemcheck:Leak\nfun:malloc\nsrc:app.c:12\n", &frames));
        assert!(matches("n\nMemcheck:Leak\nfun:malloc\nsrc:app.c\n", &frames));
        // Valgrind's `(below main)`, and glibc's aliases in glibc only.
        let mut libc = frames.clone();
        libc[0] = frame(Some("__GI___strdup"), "/lib/x86_64-linux-gnu/libc.so.6");
        libc[3] = frame(Some("__libc_start_main_impl"), "/lib/x86_64-linux-gnu/libc.so.6");
        assert!(matches(
            "n\nMemcheck:Leak\nfun:malloc\nfun:strdup\n...\nfun:main\nfun:(below main)\n",
            &libc
        ));
        let mut app = frames.clone();
        app[0] = frame(Some("__strdup"), "/bin/app");
        assert!(!matches("n\nMemcheck:Leak\nfun:malloc\nfun:strdup\n", &app));
    }

    #[test]
    fn frames_that_differ_do_not_match() {
        let frames = stack();
        // The allocation call must come first, as in valgrind.
        assert!(!matches("n\nMemcheck:Leak\nfun:make_leak\n", &frames));
        assert!(!matches("n\nMemcheck:Leak\nfun:malloc\nfun:main\n", &frames));
        assert!(!matches("n\nMemcheck:Leak\nfun:malloc\nfun:make_leak\nobj:*/libbar.so*\n", &frames));
        assert!(!matches("n\nMemcheck:Leak\nfun:malloc\nfun:make_leak\nfun:other\n", &frames));
        assert!(!matches("n\nMemcheck:Leak\nfun:malloc\nsrc:app.c:13\n", &frames));
        // Longer than the stack.
        let long = "n\nMemcheck:Leak\nfun:malloc\n...\nfun:__libc_start_main\nfun:_start\n";
        assert!(!matches(long, &frames));
        assert!(matches("n\nMemcheck:Leak\nfun:malloc\n...\nfun:__libc_start_main\n...\n", &frames));
    }

    #[test]
    fn what_valgrind_generates_for_cpp_matches_leakviews_frames() {
        // valgrind --gen-suppressions=all on a C++ program (g++ -O0 -g), and the frames leakview
        // showed for the same block: DWARF names, some without a parameter list.
        let generated = "<insert_a_suppression_name_here>\nMemcheck:Leak\nmatch-leak-kinds: indirect\nfun:_Znwm\n\
            fun:_ZNSt15__new_allocatorIiE8allocateEmPKv\nfun:_ZNSt6vectorIiSaIiEEC1EmRKS0_\nfun:_ZN3FooC1Ev\n\
            fun:_ZL4makev\nfun:main\n";
        let at = |f: &str| frame(Some(f), "/tmp/cx");
        let frames = vec![
            at("std::__new_allocator<int>::allocate(unsigned long, void const*)"),
            at("std::vector<int, std::allocator<int> >::vector(unsigned long, std::allocator<int> const&)"),
            at("Foo::Foo()"),
            at("make"),
            at("main"),
        ];
        assert!(matches(generated, &frames));
        let mut other = frames.clone();
        other[3] = at("make_other");
        assert!(!matches(generated, &other));
    }
}
