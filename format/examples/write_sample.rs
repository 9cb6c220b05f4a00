//! Writes a small trace holding every event kind from two threads: a seed for the fuzzers and
//! a file to try `leakview stats` on. Usage: `cargo run -p leakview-format --example write_sample
//! -- OUT [preload]`; with `preload` the trace says the preload recorder wrote it, and thread 11
//! allocates at an address a moment before thread 10's free of it is timed (a pair of events
//! the preload recorder's clock can swap, which the analyzer puts back in order).

use leakview_format::{
    Event, RecorderKind, Segment, Segments, ThreadStream, TraceMetadata, TraceWriter, WriterOptions,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args_os().nth(1).ok_or("usage: write_sample OUT [preload]")?;
    let preload = std::env::args().nth(2).is_some_and(|a| a == "preload");
    let meta = TraceMetadata {
        pid: 1,
        executable: "/bin/sample".into(),
        argv: vec!["sample".into()],
        clock_id: 1,
        pointer_width: 8,
        arch: std::env::consts::ARCH.into(),
        recorder: "write_sample".into(),
        recorder_kind: if preload { RecorderKind::Preload } else { RecorderKind::Synthetic },
        max_stack_depth: 8,
        ..TraceMetadata::default()
    };
    let writer = TraceWriter::create(
        out.as_ref(),
        &meta,
        &WriterOptions { chunk_size: 4096, ..WriterOptions::default() },
    )?;
    let segments = [Segment { vaddr: 0, memsz: 0x1000, flags: 5 }];
    for tid in [10u32, 11] {
        let mut s = ThreadStream::new(tid);
        let base = 0x5555_0000_0000 + u64::from(tid) * 0x1000;
        let events = [
            Event::ModuleLoad {
                ts: 5,
                id: tid,
                base: 0x4000_0000,
                path: b"/bin/sample",
                build_id: &[1, 2, 3],
                segments: Segments::Slice(&segments),
            },
            Event::ThreadName { ts: 6, tid, name: b"main" },
            Event::StackNode { id: tid * 10 + 1, parent: 0, ip: 0x4000_0100 },
            Event::StackNode { id: tid * 10 + 2, parent: tid * 10 + 1, ip: 0x4000_0200 },
            Event::Alloc { ts: 10, addr: base, size: 32, align: 0, stack: tid * 10 + 2 },
            Event::Alloc { ts: 11, addr: base + 0x40, size: 100, align: 64, stack: tid * 10 + 1 },
            Event::Free { ts: 12, addr: base },
            Event::Alloc { ts: 13, addr: base, size: 16, align: 0, stack: tid * 10 + 2 },
            Event::Realloc {
                ts_free: 14,
                ts: 15,
                old_addr: base + 0x40,
                new_addr: base + 0x80,
                size: 300,
                stack: tid * 10 + 2,
            },
            Event::Mark { ts: 16, label: b"checkpoint" },
            Event::ModuleUnload { ts: 17, id: tid },
        ];
        for e in &events {
            writer.append(&mut s, e)?;
        }
        if preload {
            // Thread 10 frees 0x7000 at 19; thread 11 allocates it at 18.
            let swapped = if tid == 10 {
                [
                    Event::Alloc { ts: 17, addr: 0x7000, size: 8, align: 0, stack: 0 },
                    Event::Free { ts: 19, addr: 0x7000 },
                ]
            } else {
                [
                    Event::Alloc { ts: 18, addr: 0x7000, size: 8, align: 0, stack: 0 },
                    Event::Free { ts: 19, addr: base },
                ]
            };
            for e in &swapped {
                writer.append(&mut s, e)?;
            }
        }
        writer.release(&mut s);
    }
    writer.finish(20);
    Ok(())
}
