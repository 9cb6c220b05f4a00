//! The events a trace holds, borrowed (zero-copy) from a chunk or from the caller.

use crate::varint;

/// One loadable segment of a module: its address relative to the module's base, size and
/// permission flags (ELF `PF_X` = 1, `PF_W` = 2, `PF_R` = 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Segment {
    pub vaddr: u64,
    pub memsz: u64,
    pub flags: u32,
}

/// The segments of a [`Event::ModuleLoad`]: a slice when writing, still-encoded bytes when read.
#[derive(Clone, Copy, Debug)]
pub enum Segments<'a> {
    Slice(&'a [Segment]),
    Encoded { count: u32, bytes: &'a [u8] },
}

impl<'a> Segments<'a> {
    pub fn len(&self) -> usize {
        match self {
            Segments::Slice(s) => s.len(),
            Segments::Encoded { count, .. } => *count as usize,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Iterates the segments; encoded segments were validated when the event was decoded.
    pub fn iter(&self) -> impl Iterator<Item = Segment> + 'a {
        let this = *self;
        let mut index = 0usize;
        let mut pos = 0usize;
        std::iter::from_fn(move || {
            if index >= this.len() {
                return None;
            }
            index += 1;
            match this {
                Segments::Slice(s) => s.get(index - 1).copied(),
                Segments::Encoded { bytes, .. } => {
                    let vaddr = varint::get(bytes, &mut pos)?;
                    let memsz = varint::get(bytes, &mut pos)?;
                    let flags = varint::get(bytes, &mut pos)?;
                    Some(Segment { vaddr, memsz, flags: flags as u32 })
                }
            }
        })
    }
}

impl PartialEq for Segments<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Segments<'_> {}

/// The kind of memory a heap scan read ([`Event::ScanRegion`]); the analyzer decides from it
/// which words are roots.
pub mod region_kind {
    /// A module's writable data (its `.data`, `.bss` and the like, file-backed).
    pub const MODULE_DATA: u8 = 0;
    /// The live part of a thread's stack (from its stack pointer up).
    pub const STACK: u8 = 1;
    /// The program break's heap (`[heap]`).
    pub const BRK_HEAP: u8 = 2;
    /// Other private anonymous memory: the allocator's arenas and large blocks, other threads'
    /// stacks, the program's own mappings, a module's `.bss` beyond its file.
    pub const ANONYMOUS: u8 = 3;
}

/// The words of a heap scan that look like heap pointers ([`Event::References`]): pairs of
/// (where the word is, its value), locations ascending. A slice when writing, still-encoded
/// bytes when read.
#[derive(Clone, Copy, Debug)]
pub enum References<'a> {
    Slice(&'a [(u64, u64)]),
    Encoded { count: u32, bytes: &'a [u8] },
}

impl<'a> References<'a> {
    pub fn len(&self) -> usize {
        match self {
            References::Slice(s) => s.len(),
            References::Encoded { count, .. } => *count as usize,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Iterates the (location, value) pairs; encoded pairs were validated when the event was
    /// decoded.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u64)> + 'a {
        let this = *self;
        let mut index = 0usize;
        let mut pos = 0usize;
        let (mut location, mut value) = (0u64, 0u64);
        std::iter::from_fn(move || {
            if index >= this.len() {
                return None;
            }
            index += 1;
            match this {
                References::Slice(s) => s.get(index - 1).copied(),
                References::Encoded { bytes, .. } => {
                    location = location.wrapping_add(varint::get(bytes, &mut pos)?);
                    value = value.wrapping_add(varint::unzigzag(varint::get(bytes, &mut pos)?) as u64);
                    Some((location, value))
                }
            }
        })
    }
}

impl PartialEq for References<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for References<'_> {}

/// One recorded event. Timestamps (`ts`) are CLOCK_MONOTONIC nanoseconds. Stack ids name nodes
/// defined by [`Event::StackNode`]; id 0 is the empty stack. The thread of an event is the thread
/// that owns the chunk it is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A block came into being. `align` is 0 for the allocator's default alignment.
    Alloc { ts: u64, addr: u64, size: u64, align: u64, stack: u32 },
    /// A block was released.
    Free { ts: u64, addr: u64 },
    /// `old_addr` was released at `ts_free` and `new_addr` (possibly equal) came into being at
    /// `ts` with `size` bytes.
    Realloc { ts_free: u64, ts: u64, old_addr: u64, new_addr: u64, size: u64, stack: u32 },
    /// Defines stack node `id` as return address `ip` called from node `parent` (0 = outermost).
    StackNode { id: u32, parent: u32, ip: u64 },
    /// A module (executable or shared object) is mapped with load bias `base`.
    ModuleLoad { ts: u64, id: u32, base: u64, path: &'a [u8], build_id: &'a [u8], segments: Segments<'a> },
    /// Module `id` was unmapped.
    ModuleUnload { ts: u64, id: u32 },
    /// Thread `tid` is called `name`.
    ThreadName { ts: u64, tid: u32, name: &'a [u8] },
    /// A user-placed label (`leakview_mark`).
    Mark { ts: u64, label: &'a [u8] },
    /// The process's resident set size was `bytes` (sampled by the recorder now and then).
    ResidentMemory { ts: u64, bytes: u64 },
    /// A heap scan at exit read the `len` bytes at `start`, memory of kind `kind` (see
    /// [`region_kind`]).
    ScanRegion { ts: u64, start: u64, len: u64, kind: u8 },
    /// Words a heap scan found that look like heap pointers.
    References { ts: u64, refs: References<'a> },
    /// A heap scan ended: `regions` regions and `bytes` bytes read, `references` words found.
    ScanEnd { ts: u64, regions: u64, bytes: u64, references: u64 },
}

/// The kind of an [`Event`], for counting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    Alloc,
    Free,
    Realloc,
    StackNode,
    ModuleLoad,
    ModuleUnload,
    ThreadName,
    Mark,
    ResidentMemory,
    ScanRegion,
    References,
    ScanEnd,
}

impl EventKind {
    pub const ALL: [EventKind; 12] = [
        EventKind::Alloc,
        EventKind::Free,
        EventKind::Realloc,
        EventKind::StackNode,
        EventKind::ModuleLoad,
        EventKind::ModuleUnload,
        EventKind::ThreadName,
        EventKind::Mark,
        EventKind::ResidentMemory,
        EventKind::ScanRegion,
        EventKind::References,
        EventKind::ScanEnd,
    ];

    pub fn name(self) -> &'static str {
        match self {
            EventKind::Alloc => "alloc",
            EventKind::Free => "free",
            EventKind::Realloc => "realloc",
            EventKind::StackNode => "stack-node",
            EventKind::ModuleLoad => "module-load",
            EventKind::ModuleUnload => "module-unload",
            EventKind::ThreadName => "thread-name",
            EventKind::Mark => "mark",
            EventKind::ResidentMemory => "rss-sample",
            EventKind::ScanRegion => "scan-region",
            EventKind::References => "scan-references",
            EventKind::ScanEnd => "scan-end",
        }
    }
}

impl Event<'_> {
    pub fn kind(&self) -> EventKind {
        match self {
            Event::Alloc { .. } => EventKind::Alloc,
            Event::Free { .. } => EventKind::Free,
            Event::Realloc { .. } => EventKind::Realloc,
            Event::StackNode { .. } => EventKind::StackNode,
            Event::ModuleLoad { .. } => EventKind::ModuleLoad,
            Event::ModuleUnload { .. } => EventKind::ModuleUnload,
            Event::ThreadName { .. } => EventKind::ThreadName,
            Event::Mark { .. } => EventKind::Mark,
            Event::ResidentMemory { .. } => EventKind::ResidentMemory,
            Event::ScanRegion { .. } => EventKind::ScanRegion,
            Event::References { .. } => EventKind::References,
            Event::ScanEnd { .. } => EventKind::ScanEnd,
        }
    }

    /// The event's time, if it has one (stack nodes do not).
    pub fn timestamp(&self) -> Option<u64> {
        match *self {
            Event::Alloc { ts, .. }
            | Event::Free { ts, .. }
            | Event::Realloc { ts, .. }
            | Event::ModuleLoad { ts, .. }
            | Event::ModuleUnload { ts, .. }
            | Event::ThreadName { ts, .. }
            | Event::Mark { ts, .. }
            | Event::ResidentMemory { ts, .. }
            | Event::ScanRegion { ts, .. }
            | Event::References { ts, .. }
            | Event::ScanEnd { ts, .. } => Some(ts),
            Event::StackNode { .. } => None,
        }
    }

    /// The earliest time the event carries (a realloc's release time), if any: a chunk's base
    /// timestamp must not be later than this for the event to be encoded exactly.
    pub fn earliest_timestamp(&self) -> Option<u64> {
        match *self {
            Event::Realloc { ts_free, ts, .. } => Some(ts_free.min(ts)),
            _ => self.timestamp(),
        }
    }

    /// An owned copy, for tests and tools that keep events around.
    pub fn to_owned_event(&self) -> OwnedEvent {
        match *self {
            Event::Alloc { ts, addr, size, align, stack } => {
                OwnedEvent::Alloc { ts, addr, size, align, stack }
            }
            Event::Free { ts, addr } => OwnedEvent::Free { ts, addr },
            Event::Realloc { ts_free, ts, old_addr, new_addr, size, stack } => {
                OwnedEvent::Realloc { ts_free, ts, old_addr, new_addr, size, stack }
            }
            Event::StackNode { id, parent, ip } => OwnedEvent::StackNode { id, parent, ip },
            Event::ModuleLoad { ts, id, base, path, build_id, segments } => OwnedEvent::ModuleLoad {
                ts,
                id,
                base,
                path: path.to_vec(),
                build_id: build_id.to_vec(),
                segments: segments.iter().collect(),
            },
            Event::ModuleUnload { ts, id } => OwnedEvent::ModuleUnload { ts, id },
            Event::ThreadName { ts, tid, name } => OwnedEvent::ThreadName { ts, tid, name: name.to_vec() },
            Event::Mark { ts, label } => OwnedEvent::Mark { ts, label: label.to_vec() },
            Event::ResidentMemory { ts, bytes } => OwnedEvent::ResidentMemory { ts, bytes },
            Event::ScanRegion { ts, start, len, kind } => OwnedEvent::ScanRegion { ts, start, len, kind },
            Event::References { ts, refs } => OwnedEvent::References { ts, refs: refs.iter().collect() },
            Event::ScanEnd { ts, regions, bytes, references } => {
                OwnedEvent::ScanEnd { ts, regions, bytes, references }
            }
        }
    }
}

/// An [`Event`] that owns its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OwnedEvent {
    Alloc { ts: u64, addr: u64, size: u64, align: u64, stack: u32 },
    Free { ts: u64, addr: u64 },
    Realloc { ts_free: u64, ts: u64, old_addr: u64, new_addr: u64, size: u64, stack: u32 },
    StackNode { id: u32, parent: u32, ip: u64 },
    ModuleLoad { ts: u64, id: u32, base: u64, path: Vec<u8>, build_id: Vec<u8>, segments: Vec<Segment> },
    ModuleUnload { ts: u64, id: u32 },
    ThreadName { ts: u64, tid: u32, name: Vec<u8> },
    Mark { ts: u64, label: Vec<u8> },
    ResidentMemory { ts: u64, bytes: u64 },
    ScanRegion { ts: u64, start: u64, len: u64, kind: u8 },
    References { ts: u64, refs: Vec<(u64, u64)> },
    ScanEnd { ts: u64, regions: u64, bytes: u64, references: u64 },
}

impl OwnedEvent {
    /// Borrows this event in the form the writer takes.
    pub fn as_event(&self) -> Event<'_> {
        match self {
            OwnedEvent::Alloc { ts, addr, size, align, stack } => {
                Event::Alloc { ts: *ts, addr: *addr, size: *size, align: *align, stack: *stack }
            }
            OwnedEvent::Free { ts, addr } => Event::Free { ts: *ts, addr: *addr },
            OwnedEvent::Realloc { ts_free, ts, old_addr, new_addr, size, stack } => Event::Realloc {
                ts_free: *ts_free,
                ts: *ts,
                old_addr: *old_addr,
                new_addr: *new_addr,
                size: *size,
                stack: *stack,
            },
            OwnedEvent::StackNode { id, parent, ip } => {
                Event::StackNode { id: *id, parent: *parent, ip: *ip }
            }
            OwnedEvent::ModuleLoad { ts, id, base, path, build_id, segments } => Event::ModuleLoad {
                ts: *ts,
                id: *id,
                base: *base,
                path,
                build_id,
                segments: Segments::Slice(segments),
            },
            OwnedEvent::ModuleUnload { ts, id } => Event::ModuleUnload { ts: *ts, id: *id },
            OwnedEvent::ThreadName { ts, tid, name } => Event::ThreadName { ts: *ts, tid: *tid, name },
            OwnedEvent::Mark { ts, label } => Event::Mark { ts: *ts, label },
            OwnedEvent::ResidentMemory { ts, bytes } => Event::ResidentMemory { ts: *ts, bytes: *bytes },
            OwnedEvent::ScanRegion { ts, start, len, kind } => {
                Event::ScanRegion { ts: *ts, start: *start, len: *len, kind: *kind }
            }
            OwnedEvent::References { ts, refs } => {
                Event::References { ts: *ts, refs: References::Slice(refs) }
            }
            OwnedEvent::ScanEnd { ts, regions, bytes, references } => {
                Event::ScanEnd { ts: *ts, regions: *regions, bytes: *bytes, references: *references }
            }
        }
    }
}
