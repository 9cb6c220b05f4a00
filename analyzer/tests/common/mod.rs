//! Writes synthetic traces with the real trace writer, one `ThreadStream` per simulated thread.

#![allow(dead_code)]

pub mod leaky_fixture;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use leakview_format::{Event, Segment, Segments, ThreadStream, TraceMetadata, TraceWriter, WriterOptions};

/// Monotonic time of the start of every synthetic trace; events are given relative to it.
pub const START: u64 = 1_000_000;

pub struct TraceBuilder {
    _dir: tempfile::TempDir,
    path: PathBuf,
    writer: TraceWriter,
    streams: HashMap<u32, ThreadStream>,
}

impl TraceBuilder {
    pub fn new() -> Self {
        Self::with_options(WriterOptions { chunk_size: 4096, ..WriterOptions::default() })
    }

    pub fn with_options(options: WriterOptions) -> Self {
        Self::recorded_by(leakview_format::RecorderKind::Synthetic, options)
    }

    /// A trace that says `kind` of recorder wrote it (the preload recorder's traces may hold
    /// events its clock swapped between threads, which the analyzer puts back in order).
    pub fn recorded_by(kind: leakview_format::RecorderKind, options: WriterOptions) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("trace.bin");
        let meta = TraceMetadata {
            pid: 4242,
            parent_pid: 1,
            executable: "/usr/bin/synthetic".into(),
            argv: vec!["synthetic".into(), "--leak".into()],
            start_unix_ns: 1_700_000_000_000_000_000,
            start_monotonic_ns: START,
            clock_id: 1,
            pointer_width: 8,
            arch: "x86_64".into(),
            recorder: "test".into(),
            recorder_kind: kind,
            max_stack_depth: 64,
            process_start_ticks: 0,
        };
        let writer = TraceWriter::create(&path, &meta, &options).expect("create trace");
        TraceBuilder { _dir: dir, path, writer, streams: HashMap::new() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn event(&mut self, tid: u32, event: Event<'_>) -> &mut Self {
        let stream = self.streams.entry(tid).or_insert_with(|| ThreadStream::new(tid));
        self.writer.append(stream, &event).expect("append");
        self
    }

    pub fn stack(&mut self, tid: u32, id: u32, parent: u32, ip: u64) -> &mut Self {
        self.event(tid, Event::StackNode { id, parent, ip })
    }

    pub fn alloc(&mut self, tid: u32, t: u64, addr: u64, size: u64, stack: u32) -> &mut Self {
        self.event(tid, Event::Alloc { ts: START + t, addr, size, align: 0, stack })
    }

    pub fn free(&mut self, tid: u32, t: u64, addr: u64) -> &mut Self {
        self.event(tid, Event::Free { ts: START + t, addr })
    }

    pub fn realloc(
        &mut self,
        tid: u32,
        t: u64,
        old_addr: u64,
        new_addr: u64,
        size: u64,
        stack: u32,
    ) -> &mut Self {
        self.event(tid, Event::Realloc { ts_free: START + t, ts: START + t, old_addr, new_addr, size, stack })
    }

    pub fn mark(&mut self, tid: u32, t: u64, label: &str) -> &mut Self {
        self.event(tid, Event::Mark { ts: START + t, label: label.as_bytes() })
    }

    pub fn thread_name(&mut self, tid: u32, t: u64, name: &str) -> &mut Self {
        self.event(tid, Event::ThreadName { ts: START + t, tid, name: name.as_bytes() })
    }

    pub fn module(
        &mut self,
        tid: u32,
        t: u64,
        id: u32,
        base: u64,
        path: &str,
        segments: &[Segment],
    ) -> &mut Self {
        self.event(
            tid,
            Event::ModuleLoad {
                ts: START + t,
                id,
                base,
                path: path.as_bytes(),
                build_id: &[],
                segments: Segments::Slice(segments),
            },
        )
    }

    /// Finishes the trace at `end` (relative) and returns its directory guard and path.
    pub fn finish(mut self, end: u64) -> Finished {
        for stream in self.streams.values_mut() {
            self.writer.release(stream);
        }
        self.writer.finish(START + end);
        drop(self.writer);
        Finished { _dir: self._dir, path: self.path }
    }

    /// Leaves the trace as a killed program would: nothing released or finished.
    pub fn abandon(self) -> Finished {
        drop(self.writer);
        Finished { _dir: self._dir, path: self.path }
    }
}

/// A written trace; the file lives as long as this value.
pub struct Finished {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
}
