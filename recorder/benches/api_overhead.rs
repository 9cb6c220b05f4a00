//! Overhead of the in-process API's allocators on an allocation-heavy loop (64 live blocks,
//! sizes 16 B..1 KiB, 1000 alloc/free pairs per iteration), each called directly:
//!
//! - `adaptive_release`: `System` against `Adaptive<System>`. Benchmarks build without
//!   `debug_assertions`, where `Adaptive` is a pass-through: the two must cost the same.
//! - `diagnostic`: `Diagnostic<System>` with tracking disabled (the cost of the checks) and
//!   enabled (stack capture, registry insert and remove for every block).
//!
//! `cargo bench -p leakview --bench api_overhead`

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use leakview::{Adaptive, Diagnostic, LeakTracker};

const PAIRS: usize = 1000;
const LIVE: usize = 64;

static SYSTEM: System = System;
static ADAPTIVE: Adaptive = Adaptive::new(System);
static DIAGNOSTIC: Diagnostic = Diagnostic::new(System);

/// Allocates and frees `PAIRS` blocks of varying sizes, keeping up to `LIVE` alive.
#[inline(never)]
fn churn<A: GlobalAlloc>(allocator: &A) {
    let mut live: [(*mut u8, usize); LIVE] = [(std::ptr::null_mut(), 0); LIVE];
    for i in 0..PAIRS {
        let slot = i % LIVE;
        let (old, old_size) = live[slot];
        if !old.is_null() {
            // SAFETY: `old` came from `allocator` with this layout.
            unsafe { allocator.dealloc(old, Layout::from_size_align_unchecked(old_size, 8)) };
        }
        let size = 16usize << (i % 7);
        // SAFETY: a non-zero size and a power-of-two alignment.
        let layout = unsafe { Layout::from_size_align_unchecked(size, 8) };
        // SAFETY: a valid non-zero layout.
        let block = unsafe { allocator.alloc(layout) };
        assert!(!block.is_null());
        // SAFETY: the block holds at least one byte.
        unsafe { block.write(i as u8) };
        live[slot] = (black_box(block), size);
    }
    for (block, size) in live {
        if !block.is_null() {
            // SAFETY: as above.
            unsafe { allocator.dealloc(block, Layout::from_size_align_unchecked(size, 8)) };
        }
    }
}

fn adaptive_release(c: &mut Criterion) {
    let mut group = c.benchmark_group("adaptive_release");
    group.throughput(Throughput::Elements(PAIRS as u64));
    LeakTracker::enable();
    group.bench_function("system", |b| b.iter(|| churn(&SYSTEM)));
    group.bench_function("adaptive", |b| b.iter(|| churn(&ADAPTIVE)));
    LeakTracker::disable();
    group.finish();
}

fn diagnostic(c: &mut Criterion) {
    let mut group = c.benchmark_group("diagnostic");
    group.throughput(Throughput::Elements(PAIRS as u64));
    LeakTracker::disable();
    group.bench_function("system", |b| b.iter(|| churn(&SYSTEM)));
    group.bench_function("disabled", |b| b.iter(|| churn(&DIAGNOSTIC)));
    LeakTracker::enable();
    group.bench_function("tracking", |b| b.iter(|| churn(&DIAGNOSTIC)));
    LeakTracker::disable();
    LeakTracker::reset();
    group.finish();
}

criterion_group!(benches, adaptive_release, diagnostic);
criterion_main!(benches);
