//! What the tracker reports: [`Leak`] (one outstanding block), its [`Backtrace`] (return
//! addresses captured cheaply, symbolized into [`Frame`]s on first use), and [`LeakError`]
//! (what `verify_no_leaks` returns).

use std::fmt;
use std::sync::OnceLock;

use super::symbolize;

/// One tracked block that is still outstanding.
#[derive(Clone, Debug)]
pub struct Leak {
    /// Address of the block.
    pub address: usize,
    /// Size in bytes, as requested.
    pub size: usize,
    /// Alignment, as requested.
    pub align: usize,
    /// The OS id of the thread that allocated it (Linux: the kernel thread id, as in `gettid`).
    pub thread: u64,
    /// When it was allocated: `CLOCK_MONOTONIC` nanoseconds (the clock of leakview traces).
    pub timestamp: u64,
    /// Where it was allocated.
    pub backtrace: Backtrace,
}

/// A call stack: return addresses, innermost first, symbolized on first use.
#[derive(Clone, Default)]
pub struct Backtrace {
    addresses: Vec<usize>,
    frames: OnceLock<Vec<Frame>>,
}

/// One symbolized frame. Frames are innermost first; an address in inlined code gives several
/// frames, all but the outermost marked `inlined`. Unknown fields are `None` (the frame is then
/// identified by `module` and `address`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Demangled function name.
    pub function: Option<String>,
    /// Source file.
    pub file: Option<String>,
    /// Line in the source file.
    pub line: Option<u32>,
    /// Path of the executable or shared object.
    pub module: Option<String>,
    /// The return address this frame was resolved from.
    pub address: usize,
    /// Inlined into the next frame.
    pub inlined: bool,
}

impl Backtrace {
    pub(crate) fn from_addresses(addresses: Vec<usize>) -> Backtrace {
        Backtrace { addresses, frames: OnceLock::new() }
    }

    /// Return addresses, innermost first (allocator frames included).
    pub fn addresses(&self) -> &[usize] {
        &self.addresses
    }

    /// Every frame, symbolized (on the first call; later calls reuse the result).
    pub fn frames(&self) -> &[Frame] {
        self.frames.get_or_init(|| symbolize::resolve(&self.addresses))
    }

    /// The frames from the first one that is not the allocator's or leakview's: where the
    /// program allocated.
    pub fn user_frames(&self) -> &[Frame] {
        let frames = self.frames();
        &frames[symbolize::allocator_prefix_len(frames)..]
    }

    /// Up to `max` frames summarising where the block came from: the user frames, starting at
    /// the first frame outside the standard library if there is one, and ending at the last
    /// such frame before the Rust runtime's own start-up frames (as Rust's short backtraces do).
    pub fn summary_frames(&self, max: usize) -> &[Frame] {
        let range = self.summary_range();
        let frames = &self.user_frames()[range.clone()];
        &frames[..frames.len().min(max)]
    }

    /// Where [`Backtrace::summary_frames`] lies within [`Backtrace::user_frames`].
    pub(crate) fn summary_range(&self) -> std::ops::Range<usize> {
        let frames = self.user_frames();
        let library = frames.iter().take_while(|f| symbolize::is_library_frame(f)).count();
        let start = if library < frames.len() { library } else { 0 };
        let end =
            frames[start..].iter().position(symbolize::is_runtime_start).map_or(frames.len(), |i| start + i);
        let end = if end == start { frames.len() } else { end };
        // Leave out the standard library's frames that call into the last frame of the program
        // (`FnOnce::call_once` and the like, between `main` and the runtime).
        let end = match frames[start..end].iter().rposition(|f| !symbolize::is_library_frame(f)) {
            Some(last) => start + last + 1,
            None => end,
        };
        start..end
    }

    /// The summary's frames, at most `max` of them, with each run of standard-library frames
    /// between two frames of the program collapsed into a count (all shown when the summary has
    /// nothing else); and how many frames of the summary are left after the last line.
    pub(crate) fn summary_lines(&self, max: usize) -> (Vec<SummaryLine<'_>>, usize) {
        let frames = &self.user_frames()[self.summary_range()];
        let mut lines = Vec::new();
        if frames.iter().all(symbolize::is_library_frame) {
            let shown = frames.len().min(max);
            lines.extend(frames[..shown].iter().map(SummaryLine::Frame));
            return (lines, frames.len() - shown);
        }
        let (mut shown, mut covered, mut library_run) = (0, 0, 0);
        for frame in frames {
            if symbolize::is_library_frame(frame) {
                library_run += 1;
                continue;
            }
            if shown == max {
                break;
            }
            if library_run > 0 {
                lines.push(SummaryLine::Library(library_run));
                covered += library_run;
                library_run = 0;
            }
            lines.push(SummaryLine::Frame(frame));
            shown += 1;
            covered += 1;
        }
        (lines, frames.len() - covered)
    }

    /// Whether any frame's function name contains `pattern`.
    pub fn has_function(&self, pattern: &str) -> bool {
        self.frames().iter().any(|f| f.function.as_deref().is_some_and(|name| name.contains(pattern)))
    }
}

/// One line of a [`Backtrace`]'s summary.
pub(crate) enum SummaryLine<'a> {
    Frame(&'a Frame),
    /// This many standard-library frames, left out.
    Library(usize),
}

impl fmt::Debug for Backtrace {
    /// The return addresses (symbolized frames are in [`Backtrace::frames`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.addresses.iter().map(|a| format!("{a:#x}"))).finish()
    }
}

impl PartialEq for Backtrace {
    fn eq(&self, other: &Backtrace) -> bool {
        self.addresses == other.addresses
    }
}

impl Eq for Backtrace {}

impl fmt::Display for Frame {
    /// `function (file:line)`, falling back to `module+address` pieces when unknown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.function {
            Some(name) => f.write_str(name)?,
            None => write!(f, "{:#x}", self.address)?,
        }
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, " ({file}:{line})"),
            (Some(file), None) => write!(f, " ({file})"),
            _ => match &self.module {
                Some(module) => write!(f, " (in {})", module.rsplit('/').next().unwrap_or(module)),
                None => Ok(()),
            },
        }
    }
}

/// Outstanding blocks found by `LeakTracker::verify_no_leaks`. Its `Display` lists the count,
/// the total bytes and each block's size and top frames; so does its `Debug` (what `unwrap` and
/// `expect` print). When the process-wide registry was checked and some blocks came from other
/// threads than the checking one, it ends with a note saying so (in a test suite running in
/// parallel, those may be other tests' blocks).
#[derive(thiserror::Error)]
#[error("{}", describe(self))]
pub struct LeakError {
    /// The outstanding blocks, oldest first.
    pub leaks: Vec<Leak>,
    /// Their total size in bytes.
    pub total_bytes: usize,
    /// The checking thread, when the process-wide registry was checked.
    checked_on: Option<u64>,
}

impl LeakError {
    /// The blocks of a scope's registry.
    pub(crate) fn new(leaks: Vec<Leak>) -> LeakError {
        let total_bytes = leaks.iter().map(|l| l.size).sum();
        LeakError { leaks, total_bytes, checked_on: None }
    }

    /// The blocks of the process-wide registry, checked on thread `thread`.
    pub(crate) fn process_wide(leaks: Vec<Leak>, thread: u64) -> LeakError {
        LeakError { checked_on: Some(thread), ..LeakError::new(leaks) }
    }

    /// How many of the blocks were allocated on threads other than the checking one, when the
    /// process-wide registry was checked.
    fn count_from_other_threads(&self) -> usize {
        match self.checked_on {
            Some(thread) => self.leaks.iter().filter(|l| l.thread != thread).count(),
            None => 0,
        }
    }

    /// Number of outstanding blocks.
    pub fn count(&self) -> usize {
        self.leaks.len()
    }
}

impl fmt::Debug for LeakError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&describe(self))
    }
}

/// Most blocks a `LeakError` lists one by one.
const LISTED: usize = 20;
/// Frames shown per block.
const FRAMES_PER_LEAK: usize = 5;

fn describe(error: &LeakError) -> String {
    let leaks = &error.leaks;
    let mut out = format!(
        "leakview: {} leaked {}, {} in total",
        leaks.len(),
        if leaks.len() == 1 { "allocation" } else { "allocations" },
        bytes_text(error.total_bytes)
    );
    for leak in leaks.iter().take(LISTED) {
        out.push_str(&format!(
            "\n  {} (align {}) at {:#x}, thread {}",
            bytes_text(leak.size),
            leak.align,
            leak.address,
            leak.thread
        ));
        let (lines, _) = leak.backtrace.summary_lines(FRAMES_PER_LEAK);
        if lines.is_empty() {
            out.push_str("\n      (no stack)");
        }
        // The program's own frames: the standard library's between them are left out.
        for line in lines {
            if let SummaryLine::Frame(frame) = line {
                out.push_str(&format!("\n      at {frame}"));
            }
        }
    }
    if leaks.len() > LISTED {
        out.push_str(&format!("\n  ... and {} more", leaks.len() - LISTED));
    }
    let others = error.count_from_other_threads();
    if others > 0 {
        out.push_str(&format!(
            "\nnote: {others} of them {} allocated on other threads: the process-wide registry holds \
every thread's blocks (tests running in parallel see each other's); `LeakGuard`, \
`assert_no_leaks` and `LeakTracker::run_scoped` check the calling thread's only",
            if others == 1 { "was" } else { "were" }
        ));
    }
    out
}

/// `1 byte`, `12 bytes`, `1.5 KiB (1536 bytes)`.
pub(crate) fn bytes_text(bytes: usize) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes == 1 {
        return "1 byte".to_string();
    }
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {} ({bytes} bytes)", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leak(size: usize, frames: Vec<Frame>) -> Leak {
        let backtrace = Backtrace::from_addresses(frames.iter().map(|f| f.address).collect());
        let _ = backtrace.frames.set(frames);
        Leak { address: 0x1000 + size, size, align: 8, thread: 42, timestamp: 1, backtrace }
    }

    fn frame(name: &str, line: u32) -> Frame {
        Frame {
            function: Some(name.to_string()),
            file: Some("src/lib.rs".to_string()),
            line: Some(line),
            module: Some("/bin/app".to_string()),
            address: line as usize,
            inlined: false,
        }
    }

    #[test]
    fn error_lists_count_bytes_sizes_and_frames() {
        let err = LeakError::new(vec![
            leak(24, vec![frame("__rust_alloc", 1), frame("alloc::raw_vec::grow", 2), frame("app::make", 3)]),
            leak(2048, vec![frame("app::other", 4)]),
        ]);
        assert_eq!(err.count(), 2);
        assert_eq!(err.total_bytes, 2072);
        let text = err.to_string();
        assert!(text.contains("2 leaked allocations, 2.0 KiB (2072 bytes) in total"), "{text}");
        assert!(text.contains("24 bytes (align 8)"), "{text}");
        assert!(text.contains("at app::make (src/lib.rs:3)"), "{text}");
        assert!(text.contains("at app::other (src/lib.rs:4)"), "{text}");
        assert!(!text.contains("__rust_alloc"), "{text}");
        assert!(!text.contains("raw_vec"), "{text}");
        assert_eq!(format!("{err:?}"), text);
    }

    fn library(name: &str, line: u32) -> Frame {
        Frame { file: Some("/rustc/0123abcd/library/core/src/iter.rs".to_string()), ..frame(name, line) }
    }

    /// A block allocated in a closure that an iterator of the standard library calls.
    fn through_an_iterator() -> Leak {
        leak(
            1,
            vec![
                frame("__rust_alloc", 1),
                frame("app::parse::{{closure}}", 10),
                library("core::option::Option<T>::map", 11),
                library("<core::iter::adapters::map::Map<I,F> as Iterator>::next", 12),
                library("alloc::vec::Vec<T,A>::extend_desugared", 13),
                frame("app::parse", 14),
                frame("app::leaky_parse", 15),
                frame("app::main", 16),
                library("core::ops::function::FnOnce::call_once", 17),
                library("std::sys::backtrace::__rust_begin_short_backtrace", 18),
                library("std::rt::lang_start::{{closure}}", 19),
            ],
        )
    }

    #[test]
    fn the_error_names_the_programs_frames_past_the_standard_librarys() {
        let text = LeakError::new(vec![through_an_iterator()]).to_string();
        let names: Vec<&str> = text.lines().filter_map(|l| l.trim().strip_prefix("at ")).collect();
        assert_eq!(
            names,
            [
                "app::parse::{{closure}} (src/lib.rs:10)",
                "app::parse (src/lib.rs:14)",
                "app::leaky_parse (src/lib.rs:15)",
                "app::main (src/lib.rs:16)",
            ],
            "{text}"
        );
    }

    #[test]
    fn summaries_end_at_the_programs_last_frame() {
        let leak = through_an_iterator();
        let summary: Vec<_> = leak.backtrace.summary_frames(20).iter().map(|f| f.line).collect();
        assert_eq!(summary, (10..=16).map(Some).collect::<Vec<_>>());
        let (lines, rest) = leak.backtrace.summary_lines(2);
        assert_eq!(lines.len(), 3, "two frames and the run of library frames between them");
        assert!(matches!(lines[1], SummaryLine::Library(3)));
        assert_eq!(rest, 2);
    }

    #[test]
    fn summaries_keep_library_frames_when_nothing_else_is_there() {
        let only_std = leak(8, vec![frame("std::thread::spawn", 1)]);
        assert_eq!(only_std.backtrace.summary_frames(3).len(), 1);
        let none = leak(8, Vec::new());
        assert!(none.backtrace.summary_frames(3).is_empty());
        assert!(LeakError::new(vec![none]).to_string().contains("(no stack)"));
    }

    #[test]
    fn byte_counts_read_well() {
        assert_eq!(bytes_text(1), "1 byte");
        assert_eq!(bytes_text(1023), "1023 bytes");
        assert_eq!(bytes_text(1536), "1.5 KiB (1536 bytes)");
        assert_eq!(bytes_text(3 << 20), "3.0 MiB (3145728 bytes)");
    }
}
