//! Helpers shared by the format crate's integration tests.
#![allow(dead_code)]

use std::path::Path;

use leakview_format::{
    OwnedEvent, RecorderKind, Segment, ThreadStream, TraceMetadata, TraceReader, TraceWriter, WriterOptions,
};

pub fn metadata() -> TraceMetadata {
    TraceMetadata {
        pid: 4242,
        parent_pid: 1,
        executable: "/usr/bin/example".into(),
        argv: vec!["example".into(), "--flag".into()],
        start_unix_ns: 1_763_000_000_000_000_000,
        start_monotonic_ns: 1_000,
        clock_id: 1,
        pointer_width: 8,
        arch: "x86_64".into(),
        recorder: "test".into(),
        recorder_kind: RecorderKind::Synthetic,
        max_stack_depth: 64,
        process_start_ticks: 0,
    }
}

pub fn small_chunks() -> WriterOptions {
    WriterOptions { chunk_size: 4096, ..WriterOptions::default() }
}

/// A deterministic mix of every event kind for one thread.
pub fn sample_events(thread: u64, count: usize) -> Vec<OwnedEvent> {
    let mut out = Vec::with_capacity(count);
    let mut ts = 1_000 + thread;
    let mut live: Vec<u64> = Vec::new();
    let mut next_addr = 0x5555_0000_0000 + thread * 0x1000_0000;
    for i in 0..count as u64 {
        ts += 1 + (i * 7919) % 900;
        let event = match i % 11 {
            0 => OwnedEvent::StackNode {
                id: (thread * 1_000_000 + i) as u32 + 1,
                parent: (i % 5) as u32,
                ip: 0x4000_0000 + i * 13,
            },
            1..=4 => {
                next_addr += 16 * (1 + i % 40);
                live.push(next_addr);
                OwnedEvent::Alloc {
                    ts,
                    addr: next_addr,
                    size: (i * 31) % 5000,
                    align: if i % 17 == 0 { 64 } else { 0 },
                    stack: (i % 97) as u32,
                }
            }
            5..=7 if !live.is_empty() => {
                let addr = live.swap_remove((i as usize * 13) % live.len());
                OwnedEvent::Free { ts, addr }
            }
            8 if !live.is_empty() => {
                let idx = (i as usize) % live.len();
                let old = live[idx];
                let new = if i % 2 == 0 { old } else { old + 0x777 };
                live[idx] = new;
                OwnedEvent::Realloc {
                    ts_free: ts,
                    ts: ts + 3,
                    old_addr: old,
                    new_addr: new,
                    size: i * 3,
                    stack: 7,
                }
            }
            9 => OwnedEvent::ModuleLoad {
                ts,
                id: i as u32,
                base: 0x7f00_0000_0000 + i,
                path: format!("/usr/lib/lib{i}.so").into_bytes(),
                build_id: vec![0xab; 20],
                segments: vec![
                    Segment { vaddr: 0, memsz: 0x2000, flags: 5 },
                    Segment { vaddr: 0x3000, memsz: 0x100, flags: 6 },
                ],
            },
            _ => match i % 4 {
                0 => OwnedEvent::Mark { ts, label: format!("mark {i}").into_bytes() },
                1 => OwnedEvent::ThreadName { ts, tid: thread as u32, name: b"worker".to_vec() },
                2 => OwnedEvent::ResidentMemory { ts, bytes: 4096 * i },
                _ => OwnedEvent::ModuleUnload { ts, id: i as u32 },
            },
        };
        if let OwnedEvent::Realloc { ts: t, .. } = event {
            ts = t;
        }
        out.push(event);
    }
    out
}

/// Writes each thread's events from its own OS thread, concurrently.
pub fn write_threads(path: &Path, per_thread: &[Vec<OwnedEvent>], options: &WriterOptions, finish: bool) {
    let writer = TraceWriter::create(path, &metadata(), options).expect("create");
    std::thread::scope(|s| {
        for (i, events) in per_thread.iter().enumerate() {
            let writer = &writer;
            s.spawn(move || {
                let mut stream = ThreadStream::new(100 + i as u32);
                for e in events {
                    writer.append(&mut stream, &e.as_event()).expect("append");
                }
                writer.release(&mut stream);
            });
        }
    });
    if finish {
        writer.finish(u64::MAX / 2);
    }
}

/// Every thread's events in order: chunks grouped by thread id, sorted by sequence number.
pub fn read_threads(reader: &TraceReader) -> std::collections::BTreeMap<u32, Vec<OwnedEvent>> {
    let mut chunks: Vec<_> = reader.chunks().to_vec();
    chunks.sort_by_key(|c| (c.tid, c.seq_in_thread));
    let mut out: std::collections::BTreeMap<u32, Vec<OwnedEvent>> = Default::default();
    for chunk in &chunks {
        let list = out.entry(chunk.tid).or_default();
        for event in reader.events(chunk) {
            list.push(event.expect("decodes").to_owned_event());
        }
    }
    out
}

/// Asserts two event lists are equal, reporting only the first difference.
pub fn assert_same_events(got: &[OwnedEvent], want: &[OwnedEvent], what: &str) {
    if let Some(i) = got.iter().zip(want).position(|(a, b)| a != b) {
        panic!(
            "{what}: first difference at event {i} of {}:\n got  {:?}\n want {:?}",
            want.len(),
            got[i],
            want[i]
        );
    }
    assert_eq!(got.len(), want.len(), "{what}: event counts differ");
}
