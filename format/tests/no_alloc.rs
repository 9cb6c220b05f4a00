//! The writer runs inside malloc hooks: after creation, appending (including claiming chunks
//! and growing the file) must never allocate through the global allocator.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use leakview_format::{ThreadStream, TraceWriter};

struct CountingAllocator;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

fn note() {
    if COUNTING.with(Cell::get) {
        COUNT.with(|c| c.set(c.get() + 1));
    }
}

// SAFETY: forwards every call unchanged to the system allocator; only counts.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note();
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

#[test]
fn appending_never_allocates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.bin");
    let events = common::sample_events(0, 300_000);
    let writer = TraceWriter::create(&path, &common::metadata(), &common::small_chunks()).expect("create");
    let mut stream = ThreadStream::new(7);
    COUNTING.with(|c| c.set(true));
    for e in &events {
        writer.append(&mut stream, &e.as_event()).expect("append");
    }
    writer.release(&mut stream);
    writer.finish(1);
    COUNTING.with(|c| c.set(false));
    let allocations = COUNT.with(Cell::get);
    assert!(writer.used_len() > 1 << 20, "the test must cross many chunk claims and file growth steps");
    assert_eq!(allocations, 0, "the writer allocated {allocations} times while appending");
}
