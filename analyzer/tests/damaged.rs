//! Damaged and incomplete traces load what is readable, say they are incomplete, and never panic.

mod common;

use common::TraceBuilder;
use leakview_analyzer::{Analysis, LoadError, LoadOptions, NoProgress};
use leakview_format::{ReadError, TraceReader};

fn busy_trace(b: &mut TraceBuilder, n: u64) {
    b.stack(1, 1, 0, 0x1000);
    for i in 0..n {
        let tid = 1 + (i % 3) as u32;
        b.alloc(tid, 10 + i * 3, 0x10_000 + i * 16, 8 + i % 64, 1);
        if i % 2 == 0 {
            b.free(tid, 11 + i * 3, 0x10_000 + i * 16);
        }
    }
}

fn load_bytes(bytes: Vec<u8>) -> Result<Analysis, LoadError> {
    let reader = TraceReader::from_bytes(bytes)?;
    Analysis::from_reader(&reader, &LoadOptions::default(), &NoProgress)
}

#[test]
fn a_trace_that_never_finished_loads_as_incomplete() {
    let mut b = TraceBuilder::new();
    busy_trace(&mut b, 3000);
    let trace = b.abandon();
    let a = Analysis::open(&trace.path, &LoadOptions::default(), &NoProgress).expect("loads");
    assert!(!a.summary().complete);
    assert!(!a.summary().finished);
    assert_eq!(a.totals().allocations, 3000);
    assert_eq!(a.summary().outstanding_at_end.blocks, 1500);
}

#[test]
fn a_file_cut_short_loads_what_is_left() {
    let mut b = TraceBuilder::new();
    busy_trace(&mut b, 3000);
    let trace = b.finish(20_000);
    let bytes = std::fs::read(&trace.path).expect("read");
    let full = load_bytes(bytes.clone()).expect("loads");
    assert!(full.summary().complete);
    // Cut inside the chunks in use (the file also holds reserved, still empty ones).
    let used = bytes.iter().rposition(|&x| x != 0).unwrap_or(bytes.len());
    let cut = load_bytes(bytes[..used * 2 / 3].to_vec()).expect("loads");
    assert!(!cut.summary().complete);
    assert!(cut.totals().allocations > 0);
    assert!(cut.totals().allocations < full.totals().allocations);
}

#[test]
fn garbage_in_chunks_never_panics() {
    let mut b = TraceBuilder::new();
    busy_trace(&mut b, 2000);
    let trace = b.finish(20_000);
    let bytes = std::fs::read(&trace.path).expect("read");
    let mut state = 0x1234_5678_9abc_def1u64;
    let mut incomplete = 0;
    for round in 0..200 {
        let mut damaged = bytes.clone();
        for _ in 0..(1 + round % 8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // Leave the header page alone half the time, so chunk decoding is what is tested.
            let lo = if round % 2 == 0 { 4096 } else { 0 };
            let at = lo + (state as usize) % (damaged.len() - lo);
            damaged[at] ^= (state >> 32) as u8 | 1;
        }
        match load_bytes(damaged) {
            Ok(a) => {
                if !a.summary().complete {
                    incomplete += 1;
                }
                let end = a.duration_ns();
                let _ = a.outstanding_at(end / 2);
                let _ = a.group(&a.outstanding_at(end), leakview_analyzer::GroupBy::Function);
            }
            Err(LoadError::Read(_)) => {}
            Err(other) => panic!("unexpected error {other}"),
        }
    }
    assert!(incomplete > 0, "no damage was ever noticed");
}

#[test]
fn files_that_are_not_traces_are_errors() {
    assert!(matches!(load_bytes(Vec::new()), Err(LoadError::Read(ReadError::Empty { .. }))));
    assert!(matches!(
        load_bytes(b"hello world, not a trace".to_vec()),
        Err(LoadError::Read(ReadError::NotATrace { .. }))
    ));
    let missing = Analysis::open("/nonexistent/trace.bin".as_ref(), &LoadOptions::default(), &NoProgress);
    assert!(matches!(missing, Err(LoadError::Read(ReadError::Io { .. }))));
}
