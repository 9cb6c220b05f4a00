//! Encoding and decoding throughput, and size, on a realistic allocation mix.
//!
//! The workload imitates a recorded C/C++ program: mostly small sizes, most blocks dying young
//! (frees pick recently allocated blocks with a geometric bias), 7% reallocs, addresses from a
//! simulated size-class allocator that reuses freed blocks LIFO, ~2000 call sites with skewed
//! popularity, and 40–400 ns between events. Run: `cargo bench -p leakview-format --bench encode`
//! (`-- encode/reader_decode` for decoding alone).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use leakview_format::testing::XorShift;
use leakview_format::{
    DeltaState, OwnedEvent, RecorderKind, ThreadStream, TraceMetadata, TraceWriter, WriterOptions,
    encode_event,
};

const EVENTS: usize = 1_000_000;

/// A size-class allocator: freed blocks are reused LIFO, new ones come from a bump pointer.
struct FakeHeap {
    free_lists: std::collections::HashMap<u64, Vec<u64>>,
    bump: u64,
    mmap_bump: u64,
}

impl FakeHeap {
    fn alloc(&mut self, size: u64) -> u64 {
        if size > 128 * 1024 {
            self.mmap_bump -= size.div_ceil(4096) * 4096 + 4096;
            return self.mmap_bump + 16;
        }
        let class = size.max(1).div_ceil(16) * 16;
        if let Some(addr) = self.free_lists.get_mut(&class).and_then(Vec::pop) {
            return addr;
        }
        let addr = self.bump;
        self.bump += class + 16;
        addr
    }
    fn free(&mut self, addr: u64, size: u64) {
        if size <= 128 * 1024 {
            self.free_lists.entry(size.max(1).div_ceil(16) * 16).or_default().push(addr);
        }
    }
}

fn sample_size(rng: &mut XorShift) -> u64 {
    let (lo, hi) = match rng.below(100) {
        0..60 => (8.0f64, 64.0f64),
        60..85 => (64.0, 512.0),
        85..97 => (512.0, 4096.0),
        _ => (4096.0, 1_048_576.0),
    };
    (lo * (hi / lo).powf(rng.unit())) as u64
}

/// The realistic mix described in the module docs, `count` events long.
fn workload(count: usize) -> Vec<OwnedEvent> {
    let mut rng = XorShift::new(0x9e37_79b9_7f4a_7c15);
    let mut heap =
        FakeHeap { free_lists: Default::default(), bump: 0x5555_5555_0000, mmap_bump: 0x7f00_0000_0000 };
    let mut live: Vec<(u64, u64)> = Vec::new();
    let mut known_stacks = std::collections::HashSet::new();
    let mut next_node = 1u32;
    let mut ts = 1_000_000u64;
    let mut stack = 1u32;
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        ts += 40 + rng.below(360);
        if rng.below(100) >= 30 {
            stack = (2000.0 * rng.unit().powi(3)) as u32 + 1;
        }
        let roll = rng.below(100);
        if live.is_empty() || (roll < 48 && live.len() < 20_000) {
            if known_stacks.insert(stack) {
                for depth in 0..3 {
                    out.push(OwnedEvent::StackNode {
                        id: next_node,
                        parent: next_node.saturating_sub(1) * (depth > 0) as u32,
                        ip: 0x5555_0000_1000 + rng.below(0x40_0000),
                    });
                    next_node += 1;
                }
            }
            let size = sample_size(&mut rng);
            let addr = heap.alloc(size);
            live.push((addr, size));
            out.push(OwnedEvent::Alloc { ts, addr, size, align: 0, stack });
        } else {
            let back = ((-(rng.unit().max(1e-12)).ln() / 0.3) as usize).min(live.len() - 1);
            let idx = live.len() - 1 - back;
            let (addr, size) = live.remove(idx);
            if roll < 93 {
                heap.free(addr, size);
                out.push(OwnedEvent::Free { ts, addr });
            } else {
                let new_size = size + size / 2 + 16;
                heap.free(addr, size);
                let new_addr =
                    if new_size.div_ceil(16) == size.div_ceil(16) { addr } else { heap.alloc(new_size) };
                live.push((new_addr, new_size));
                out.push(OwnedEvent::Realloc {
                    ts_free: ts,
                    ts: ts + 30,
                    old_addr: addr,
                    new_addr,
                    size: new_size,
                    stack,
                });
                ts += 30;
            }
        }
    }
    out
}

fn metadata() -> TraceMetadata {
    TraceMetadata {
        recorder: "bench".into(),
        recorder_kind: RecorderKind::Synthetic,
        clock_id: 1,
        pointer_width: 8,
        ..TraceMetadata::default()
    }
}

fn bench_encode(c: &mut Criterion) {
    let events = workload(EVENTS);
    let borrowed: Vec<_> = events.iter().map(OwnedEvent::as_event).collect();

    // Size per event, as the writer lays it out in 64 KiB chunks.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("size.bin");
    let writer = TraceWriter::create(&path, &metadata(), &WriterOptions::default()).expect("create");
    let mut stream = ThreadStream::new(1);
    for e in &borrowed {
        writer.append(&mut stream, e).expect("append");
    }
    writer.finish(0);
    let reader = leakview_format::TraceReader::open(&path).expect("open");
    let body: usize = reader.chunks().iter().map(|c| c.body_len()).sum();
    let hot = events.iter().filter(|e| !matches!(e, OwnedEvent::StackNode { .. })).count();
    eprintln!(
        "workload: {} events ({} alloc/free/realloc); {:.2} bytes/event over all events, {:.2} per alloc/free/realloc event incl. stack nodes; file {} bytes",
        events.len(),
        hot,
        body as f64 / events.len() as f64,
        body as f64 / hot as f64,
        reader.file_len()
    );

    let mut group = c.benchmark_group("encode");
    group.throughput(Throughput::Elements(events.len() as u64));
    group.bench_function("codec_only", |b| {
        let mut buf = vec![0u8; 64 * 1024];
        b.iter(|| {
            let mut state = DeltaState::new(0);
            let mut used = 0;
            for e in &borrowed {
                match encode_event(&mut state, e, &mut buf[used..]) {
                    Some(n) => used += n,
                    None => {
                        state = DeltaState::new(0);
                        used = encode_event(&mut state, e, &mut buf).expect("fits in an empty chunk");
                    }
                }
            }
            black_box(used)
        })
    });
    group.bench_function("writer_append", |b| {
        let mut n = 0;
        b.iter_batched_ref(
            || {
                n += 1;
                let path = dir.path().join(format!("w{n}.bin"));
                let _ = std::fs::remove_file(&path);
                (
                    TraceWriter::create(&path, &metadata(), &WriterOptions::default()).expect("create"),
                    ThreadStream::new(1),
                    path,
                )
            },
            |(writer, stream, _)| {
                for e in &borrowed {
                    writer.append(stream, e).expect("append");
                }
            },
            criterion::BatchSize::PerIteration,
        )
    });
    group.bench_function("reader_decode", |b| {
        // Every event of the trace written above, as a reader of the whole trace goes through it.
        b.iter(|| {
            let mut sum = 0u64;
            for chunk in reader.chunks() {
                reader
                    .for_each_event(chunk, |e| {
                        sum = sum.wrapping_add(match e {
                            leakview_format::Event::Alloc { ts, addr, size, stack, .. } => {
                                ts ^ addr ^ size ^ u64::from(stack)
                            }
                            leakview_format::Event::Free { ts, addr } => ts ^ addr,
                            _ => 1,
                        })
                    })
                    .expect("decodes");
            }
            black_box(sum)
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench_encode
}
criterion_main!(benches);
