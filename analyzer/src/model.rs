//! The analyzer's public value types: ids, blocks, threads, marks and the trace summary. Every
//! time is in nanoseconds since the start of the trace ([`Summary::origin_monotonic_ns`]).

use std::path::PathBuf;

/// A block (one allocation's lifetime). Ids are dense, in order of allocation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlockId(pub u32);

/// A recorded call stack (the recorder's stack node id; 0 is the empty stack).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StackId(pub u32);

/// A thread, as an index into [`crate::Analysis::threads`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ThreadIndex(pub u32);

/// One allocated block: when it came into being, when it was freed (if it was), where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    pub id: BlockId,
    pub address: u64,
    pub size: u64,
    /// Time of the allocation (ns since the start of the trace).
    pub alloc_ns: u64,
    /// Time of the free, or `None` if it was never freed during the trace.
    pub free_ns: Option<u64>,
    /// The thread that allocated it.
    pub thread: ThreadIndex,
    pub stack: StackId,
}

impl Block {
    /// Whether the block was outstanding at `t` (allocated at or before `t`, not freed by `t`).
    pub fn is_live_at(&self, t: u64) -> bool {
        crate::selection::Selection::Outstanding.counts(self.alloc_ns, self.free_ns, t, false)
    }
}

/// A recorded thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadInfo {
    /// The operating system's thread id.
    pub tid: u32,
    /// The thread's name, if the recorder saw one.
    pub name: Option<String>,
}

impl ThreadInfo {
    /// `name (tid)` or `tid`.
    pub fn label(&self) -> String {
        match &self.name {
            Some(name) => format!("{name} ({})", self.tid),
            None => self.tid.to_string(),
        }
    }
}

/// A user-placed mark (`leakview_mark`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    pub label: String,
    /// Time of the mark (ns since the start of the trace).
    pub at_ns: u64,
    /// 1 for the first mark with this label, 2 for the second, ...
    pub occurrence: u32,
}

/// Event counts by kind, as decoded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventCounts {
    pub alloc: u64,
    pub free: u64,
    pub realloc: u64,
    pub stack_node: u64,
    pub module_load: u64,
    pub module_unload: u64,
    pub thread_name: u64,
    pub mark: u64,
    pub resident_memory: u64,
    /// Heap scan at exit (format 2.2): regions read.
    pub scan_region: u64,
    /// Heap scan at exit: events listing the words that may point into the heap.
    pub references: u64,
    /// Heap scan at exit: its end.
    pub scan_end: u64,
}

impl EventCounts {
    /// All events.
    pub fn total(&self) -> u64 {
        self.alloc
            + self.free
            + self.realloc
            + self.stack_node
            + self.module_load
            + self.module_unload
            + self.thread_name
            + self.mark
            + self.resident_memory
            + self.scan_region
            + self.references
            + self.scan_end
    }

    /// Adds another count into this one.
    pub fn add(&mut self, other: &EventCounts) {
        self.alloc += other.alloc;
        self.free += other.free;
        self.realloc += other.realloc;
        self.stack_node += other.stack_node;
        self.module_load += other.module_load;
        self.module_unload += other.module_unload;
        self.thread_name += other.thread_name;
        self.mark += other.mark;
        self.resident_memory += other.resident_memory;
        self.scan_region += other.scan_region;
        self.references += other.references;
        self.scan_end += other.scan_end;
    }

    /// `(kind name, count)` pairs in a fixed order, for display.
    pub fn by_kind(&self) -> [(&'static str, u64); 12] {
        [
            ("alloc", self.alloc),
            ("free", self.free),
            ("realloc", self.realloc),
            ("stack-node", self.stack_node),
            ("module-load", self.module_load),
            ("module-unload", self.module_unload),
            ("thread-name", self.thread_name),
            ("mark", self.mark),
            ("rss-sample", self.resident_memory),
            ("scan-region", self.scan_region),
            ("scan-references", self.references),
            ("scan-end", self.scan_end),
        ]
    }
}

/// Heap totals over the whole trace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Every block that came into being, each successful realloc included (valgrind's "total
    /// heap usage" convention).
    pub allocations: u64,
    /// Frees matched to a block of this trace (including the release half of a moving or
    /// in-place realloc).
    pub frees: u64,
    /// Frees of addresses this trace never saw allocated (memory allocated before recording
    /// began, or double frees). Counted apart; not errors.
    pub unmatched_frees: u64,
    /// Allocations and frees of one address on two threads that the recorder's clock had
    /// swapped, applied in their true order (preload traces: FORMAT.md, "Ordering across
    /// threads"). Counted for the record; the other totals already reflect the true order.
    pub reordered_pairs: u64,
    /// Sum of the sizes of all blocks.
    pub bytes_allocated: u64,
    /// Maximum of live bytes over the trace.
    pub peak_bytes: u64,
    /// Blocks live at the peak.
    pub peak_blocks: u64,
    /// The first moment live bytes reached `peak_bytes` (ns since the start).
    pub peak_at_ns: u64,
}

/// Outstanding blocks and bytes at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveTotals {
    pub blocks: u64,
    pub bytes: u64,
}

/// What a trace is and what it holds, in one look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub path: PathBuf,
    pub pid: u32,
    pub parent_pid: u32,
    pub executable: String,
    /// The recorded command line.
    pub command: Vec<String>,
    /// Wall-clock start, ns since the Unix epoch.
    pub start_unix_ns: u64,
    /// CLOCK_MONOTONIC time that all `*_ns` times of the analyzer count from.
    pub origin_monotonic_ns: u64,
    /// From the start to the last event (or the recorder's end, whichever is later).
    pub duration_ns: u64,
    /// Events decoded.
    pub events: u64,
    pub event_counts: EventCounts,
    /// Distinct threads that wrote events.
    pub threads: u64,
    /// Modules (executable and shared objects) loaded during the trace.
    pub modules: u64,
    /// Distinct stacks defined.
    pub stacks: u64,
    /// The trace holds everything the recorder saw: it finished, nothing was truncated, lost,
    /// damaged or undecodable.
    pub complete: bool,
    /// The recorder finished cleanly (false when the program was killed or is still running).
    pub finished: bool,
    /// The trace was still being recorded when it was loaded: unfinished, and its process was
    /// running the recorded executable on this machine (the same pid, started at the same
    /// time); what was read is what was recorded so far.
    pub recording: bool,
    /// Recording stopped early (disk full or size limit).
    pub truncated: bool,
    /// Events the writer refused after recording stopped: a lower bound of the events lost (a
    /// recorder that saw recording stop stops offering events to the writer).
    pub lost_events: u64,
    /// Time of the last recorded event (from the start); for a truncated trace, about when
    /// recording stopped.
    pub last_event_ns: u64,
    /// Chunks that could not be read (damaged header or cut off).
    pub damaged_chunks: u64,
    /// Chunks whose tail could not be decoded.
    pub undecodable_chunks: u64,
    /// Size of the trace file.
    pub file_bytes: u64,
    /// Bytes of published event data.
    pub event_bytes: u64,
    pub totals: Totals,
    /// Outstanding at the end of the trace.
    pub outstanding_at_end: LiveTotals,
}

impl Summary {
    /// The recorded command line on one line (see `leakview_format::display_command`).
    pub fn command_line(&self) -> String {
        leakview_format::display_command(&self.command)
    }

    /// What ran: the command line, or the executable's path where no command was recorded.
    pub fn program(&self) -> String {
        if self.command.is_empty() { self.executable.clone() } else { self.command_line() }
    }

    /// The trace is only short of its end because it is still being recorded: nothing read
    /// was truncated, damaged or undecodable, so what was read is everything recorded so far.
    pub fn recorded_so_far(&self) -> bool {
        self.recording && !self.truncated && self.damaged_chunks == 0 && self.undecodable_chunks == 0
    }
}
