//! Command-line syntax: every subcommand and its arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use leakview_analyzer::{LeakKindError, LeakKindSet};

use crate::recording::{DEFAULT_DEPTH, DEFAULT_RSS_INTERVAL_MS, MAX_DEPTH};

/// Find native memory leaks: record every allocation of a program, then see what was never freed.
#[derive(Debug, Parser)]
#[command(name = "leakview", version, about, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Trace to browse (two traces: browse their difference).
    #[arg(value_name = "TRACE", num_args = 0..=2)]
    pub traces: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a program with the recorder and write its trace.
    Record(RecordArgs),
    /// Record a small bundled leaky program and show its leaks.
    Demo(DemoArgs),
    /// Outstanding allocations at a moment (or every allocation, or the temporary ones),
    /// grouped and ranked.
    Report(ReportArgs),
    /// Stacks holding outstanding allocations, ranked by how much they look like leaks.
    Suspects(SuspectsArgs),
    /// Trace summary: header, counts, peak, outstanding at the end.
    Stats(StatsArgs),
    /// Exit 1 if any outstanding allocation is not suppressed (a CI gate).
    Check(CheckArgs),
    /// Compare what was outstanding (or allocated, or temporary) in two traces or at two
    /// moments of one.
    Diff(DiffArgs),
    /// Open the terminal browser on a trace.
    View(ViewArgs),
    /// Print the path of the recorder library, to preload it by hand
    /// (`LD_PRELOAD=$(leakview library) LEAKVIEW_OUTPUT=app-%p.bin ./app`).
    Library,
}

#[derive(Debug, Args)]
pub struct RecordArgs {
    /// Trace file to write (default: leakview-PROGRAM-PID.bin in the current directory; a
    /// directory: that name in it).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Maximum call-stack depth to capture (1 to 256 frames).
    #[arg(
        long,
        value_name = "N",
        default_value_t = DEFAULT_DEPTH,
        value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_DEPTH))
    )]
    pub depth: u32,
    /// Milliseconds between samples of the program's resident set size (RSS), taken while it
    /// allocates; 0 takes none.
    #[arg(long, value_name = "MS", default_value_t = DEFAULT_RSS_INTERVAL_MS)]
    pub rss_interval: u64,
    /// At exit, scan the program's memory for pointers to its heap blocks, so that reports can
    /// tell blocks that are lost (definitely, indirectly, possibly) from those still reachable,
    /// as valgrind's memcheck does (`stats`, `report --leak-kind`, `check --leak-kind`).
    #[arg(long)]
    pub leak_kinds: bool,
    /// Overwrite the output file if it exists.
    #[arg(long)]
    pub force: bool,
    /// Record only the program started (and programs it execs in its own process), not the
    /// processes it forks nor what they run.
    #[arg(long)]
    pub no_children: bool,
    /// The program and its arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, value_name = "CMD")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Write the demo trace to this file (default: ./leakview-demo.bin, or the next free
    /// leakview-demo-2.bin, -3... name; in the cache directory if the current one is read-only).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Print the report instead of opening the browser.
    #[arg(long)]
    pub no_tui: bool,
}

/// Narrows a moment's outstanding blocks to those allocated within a span of time.
#[derive(Debug, Args)]
pub struct WindowArgs {
    /// Only blocks allocated at or after this moment (same forms as --at: 10%, 1.5s, mark:LABEL...).
    #[arg(long, value_name = "WHEN")]
    pub allocated_after: Option<String>,
    /// Only blocks allocated before this moment (same forms as --at).
    #[arg(long, value_name = "WHEN")]
    pub allocated_before: Option<String>,
}

/// How outstanding allocations are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GroupBy {
    /// One group per full call stack.
    Stack,
    /// Every function on a stack credited with the stack's blocks (a bottom-up profile).
    Function,
    /// One group per exact size.
    Size,
    /// One group per power-of-two size class (64..127 bytes, 128..255 bytes, ...).
    SizeClass,
    /// One group per allocating thread.
    Thread,
}

/// Output format of `report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// A ranked list with symbolized stacks.
    Text,
    /// The JSON document the README describes (schema 1).
    Json,
    /// One line per stack, root first, with its bytes (blocks, ranked by blocks), heaviest first:
    /// input for flamegraph tools.
    Folded,
    /// An interactive flame graph (SVG, for a web browser) of every stack (--top: the heaviest),
    /// each frame as wide as the bytes (blocks, ranked by blocks) below it: `> leaks.svg`.
    Svg,
    /// The --top stacks merged into one call tree, outermost frame first, each frame with the
    /// bytes, blocks and share below it.
    Tree,
    /// The --top stacks merged into one call tree from the allocating frames out, each frame's
    /// callers below it (heaptrack's bottom-up view).
    BottomUp,
}

/// Which blocks `report` and `diff` count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum What {
    /// Blocks allocated by --at and not freed by then (leaks, at the end).
    Outstanding,
    /// Every block allocated by --at, freed or not: where the program allocates most.
    Allocated,
    /// Blocks freed before their thread allocated anything else (short-lived churn), by --at.
    Temporary,
}

impl From<What> for leakview_analyzer::Selection {
    fn from(what: What) -> Self {
        match what {
            What::Outstanding => leakview_analyzer::Selection::Outstanding,
            What::Allocated => leakview_analyzer::Selection::Allocated,
            What::Temporary => leakview_analyzer::Selection::Temporary,
        }
    }
}

/// How `report` ranks its groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RankBy {
    /// Most bytes first.
    Bytes,
    /// Most blocks (allocation calls) first.
    Blocks,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Moment to look at: end, peak, 0%..100%, a time from the start (1.5s, 250ms, 800us,
    /// 12345ns) or a mark (mark:LABEL, mark:LABEL#2).
    #[arg(long, value_name = "WHEN", default_value = "end")]
    pub at: String,
    /// Which blocks to count.
    #[arg(long, value_enum, default_value_t = What::Outstanding)]
    pub what: What,
    /// Rank groups by bytes or by blocks [default: bytes; with --what allocated or temporary,
    /// blocks].
    #[arg(long, value_enum, value_name = "FIGURE")]
    pub rank_by: Option<RankBy>,
    /// How to group the blocks (`--format folded`, `svg`, `tree` and `bottom-up`: stack only).
    #[arg(long, value_enum, default_value_t = GroupBy::Stack)]
    pub group_by: GroupBy,
    /// Show at most N groups, 0 for all [default: 20; with `--format folded` and `svg`, every
    /// stack].
    #[arg(long, value_name = "N")]
    pub top: Option<usize>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
    /// Only blocks outstanding at the end of these leak kinds (valgrind's): a comma-separated
    /// list of definite, indirect, possible, reachable, not-scanned; lost (definite,indirect),
    /// all. Needs a trace recorded with `record --leak-kinds`.
    #[arg(long, value_name = "KINDS", value_parser = leak_kinds)]
    pub leak_kind: Option<LeakKindSet>,
    #[command(flatten)]
    pub window: WindowArgs,
    /// Trace file written by `leakview record` or the leakview crate.
    pub trace: PathBuf,
}

/// Output format of `check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CheckFormat {
    /// The verdict and the largest leaking stacks.
    Text,
    /// The JSON document the README describes (schema 1): every leak, suppression hits and
    /// suggested suppressions.
    Json,
}

/// Output format of `suspects`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SuspectsFormat {
    /// Ranked suspects with their evidence and symbolized stacks.
    Text,
    /// The JSON document the README describes (schema 1).
    Json,
}

#[derive(Debug, Args)]
pub struct SuspectsArgs {
    /// Moment to look at: end, peak, 0%..100%, a time from the start (1.5s, 250ms, 800us,
    /// 12345ns) or a mark (mark:LABEL, mark:LABEL#2).
    #[arg(long, value_name = "WHEN", default_value = "end")]
    pub at: String,
    /// Show at most N suspects (0: all).
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub top: usize,
    /// Output format.
    #[arg(long, value_enum, default_value_t = SuspectsFormat::Text)]
    pub format: SuspectsFormat,
    #[command(flatten)]
    pub window: WindowArgs,
    /// Trace file written by `leakview record` or the leakview crate.
    pub trace: PathBuf,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Trace file written by `leakview record` or the leakview crate.
    pub trace: PathBuf,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Moment to check: end, peak, 0%..100%, a time from the start (1.5s, 250ms) or a mark
    /// (mark:LABEL, mark:LABEL#2).
    #[arg(long, value_name = "WHEN", default_value = "end")]
    pub at: String,
    /// Suppressions file: LeakSanitizer's `leak:PATTERN` lines, valgrind's `{ ... }` entries
    /// (`Memcheck:Leak`, as `valgrind --gen-suppressions=all` prints them), or both.
    #[arg(long, value_name = "FILE")]
    pub suppressions: Option<PathBuf>,
    /// Count the blocks the C, C++ and Rust runtimes keep for themselves (stdio buffers, locale
    /// and NSS data, the loader's link maps, ...) as leaks too.
    #[arg(long)]
    pub no_default_suppressions: bool,
    /// After a failed check, print `leak:` lines that would suppress its leaks (each with the
    /// leaks it matches), ready for a suppressions file (the JSON always has them).
    #[arg(long)]
    pub print_suppressions: bool,
    /// Output format; the exit code is the same for both.
    #[arg(long, value_enum, default_value_t = CheckFormat::Text)]
    pub format: CheckFormat,
    /// Fail only for blocks outstanding at the end of these leak kinds (`lost`: definitely or
    /// indirectly lost, as LeakSanitizer reports; same list as `report --leak-kind`). Needs a
    /// trace recorded with `record --leak-kinds`.
    #[arg(long, value_name = "KINDS", value_parser = leak_kinds)]
    pub leak_kind: Option<LeakKindSet>,
    #[command(flatten)]
    pub window: WindowArgs,
    /// Trace file written by `leakview record` or the leakview crate.
    pub trace: PathBuf,
}

/// A `--leak-kind` list.
fn leak_kinds(text: &str) -> Result<LeakKindSet, LeakKindError> {
    LeakKindSet::parse(text)
}

/// Grouping for `diff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiffGroupBy {
    /// One group per full call stack.
    Stack,
    /// Every function on a stack credited with the stack's blocks.
    Function,
}

/// Output format of `diff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiffFormat {
    /// A ranked list of what grew, shrank, appeared and went away.
    Text,
    /// JSON, one object per group with both sides' blocks and bytes.
    Json,
    /// A differential flame graph (SVG, for a web browser) of B's stacks, each frame as wide as
    /// B's bytes below it, red where B holds more than A, blue where less: `> diff.svg`.
    Svg,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// Moment of trace A (the first, or the only trace): end, peak, 0%..100%, 1.5s, mark:LABEL...
    #[arg(long, value_name = "WHEN", default_value = "end")]
    pub at_a: String,
    /// Moment of trace B (the second, or the only trace).
    #[arg(long, value_name = "WHEN", default_value = "end")]
    pub at_b: String,
    /// Which blocks to count on both sides (not with --tui).
    #[arg(long, value_enum, default_value_t = What::Outstanding)]
    pub what: What,
    /// How to group the blocks on both sides.
    #[arg(long, value_enum, default_value_t = DiffGroupBy::Stack)]
    pub group_by: DiffGroupBy,
    /// Output format.
    #[arg(long, value_enum, default_value_t = DiffFormat::Text)]
    pub format: DiffFormat,
    /// Show at most N groups, largest change first, 0 for all [default: 20; with `--format
    /// svg`, every stack].
    #[arg(long, value_name = "N")]
    pub top: Option<usize>,
    /// Exit 1 if any group is new or grew by more than --threshold bytes.
    #[arg(long)]
    pub fail_on_growth: bool,
    /// Growth in bytes a group may have before --fail-on-growth fails.
    #[arg(long, value_name = "BYTES", default_value_t = 0)]
    pub threshold: u64,
    /// Open the browser in diff mode.
    #[arg(long)]
    pub tui: bool,
    /// One trace (two moments of it) or two traces.
    #[arg(required = true, num_args = 1..=2, value_name = "TRACE")]
    pub traces: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ViewArgs {
    /// Trace to browse (two traces: browse their difference).
    #[arg(required = true, num_args = 1..=2, value_name = "TRACE")]
    pub traces: Vec<PathBuf>,
}
