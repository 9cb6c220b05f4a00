//! leakview analyzer: replays a trace into allocation lifetimes, answers "what was outstanding
//! at moment T", groups and ranks it, symbolizes stacks and renders reports.
//!
//! ```no_run
//! use leakview_analyzer::{Analysis, GroupBy, LoadOptions, NoProgress};
//!
//! let analysis = Analysis::open("trace.bin".as_ref(), &LoadOptions::default(), &NoProgress)?;
//! let t = analysis.resolve_when("peak")?;
//! let snapshot = analysis.outstanding_at(t);
//! let grouping = analysis.group(&snapshot, GroupBy::Stack);
//! for group in grouping.top(5) {
//!     println!("{} bytes in {} blocks", group.bytes, group.blocks);
//!     for frame in analysis.stack_frames(group.stacks[0]).iter() {
//!         println!("    {}", frame.display_name());
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Every time in this API is in nanoseconds since the start of the trace.
//!
//! Modules: `load` (the replay of a trace into lifetimes), `lifetimes` (28-byte lifetime storage),
//! `index` (checkpoints, timeline, peak), `when` (moments), `window` (allocation windows),
//! `selection` (outstanding, allocated or temporary blocks), `group` (grouping and ranking),
//! `frames` + `trim` (symbol cache, allocator-frame trimming), `alike` (stacks that read the
//! same), `symbolize` (addresses to frames), `suppress` (LeakSanitizer-style suppressions), `suspects` (leak suspects ranked with their
//! evidence), `heap_scan` (the heap scan at exit) + `reachability` (memcheck's leak kinds from
//! it), `report` (text, JSON, folded).

#![forbid(unsafe_code)]

mod alike;
mod analysis;
pub mod call_tree;
pub mod check;
mod check_json;
pub mod diff;
mod error;
mod frames;
pub mod group;
mod hashing;
mod heap_scan;
mod index;
mod lifetimes;
mod liveness;
mod load;
mod model;
mod over_time;
mod progress;
pub mod reachability;
pub mod report;
pub mod resident;
mod runtime_blocks;
mod selection;
mod stacks;
mod suggest;
pub mod suppress;
pub mod suspects;
pub mod symbolize;
pub mod timeline;
mod trim;
pub mod when;
mod window;

pub use alike::ShownStackId;
pub use analysis::{Analysis, LoadOptions};
pub use call_tree::{CallTreeLine, TreeOrder, TreePart, call_tree_lines};
pub use check::{CheckOutcome, RuntimeBlocks, check};
pub use diff::{Comparison, Diff, DiffBy, DiffGroup, DiffReport, DiffStatus, Side};
pub use error::{LoadError, WhenError};
pub use frames::Frames;
pub use group::{Group, GroupBy, GroupKey, Grouping, Snapshot, SortBy, size_class, size_class_bounds};
pub use hashing::{IntHasher, IntMap, IntSet};
pub use heap_scan::{HeapScan, ScanRegion, ScanTotals};
pub use model::{
    Block, BlockId, EventCounts, LiveTotals, Mark, StackId, Summary, ThreadIndex, ThreadInfo, Totals,
};
pub use progress::{NoProgress, Progress, Stage};
pub use reachability::{LeakKind, LeakKindError, LeakKindSet, LeakKinds};
pub use report::{FlameGraphError, Report, ReportSpec};
pub use resident::{ResidentMemory, ResidentSample};
pub use selection::Selection;
pub use stacks::MAX_STACK_DEPTH;
pub use suggest::{SuggestedSuppression, suppression_line};
pub use suppress::{SuppressionError, Suppressions};
pub use suspects::{Suspect, SuspectReport, Verdict};
pub use symbolize::{Frame, ModuleInfo, SymbolizeOptions};
pub use timeline::{Timeline, TimelinePoint};
pub use trim::is_trimmed_frame;
pub use when::{When, format_duration, parse_duration};
pub use window::{AllocWindow, WindowEnd};
