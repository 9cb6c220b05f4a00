//! In-process leak checking with `Adaptive`: leaks a little on purpose, prints the console
//! report and writes the JSON one, then shows what `verify_no_leaks` says.
//!
//! ```text
//! cargo run -p leakview --example leak_report -- /tmp/leaks.json
//! ```
//!
//! In a release build (`--release`) `Adaptive` tracks nothing and the report is empty.

use std::alloc::System;
use std::collections::HashMap;
use std::process::ExitCode;

use leakview::{Adaptive, ConsoleEmitter, JsonEmitter, LeakTracker};

#[global_allocator]
static ALLOCATOR: Adaptive = Adaptive::new(System);

struct Session {
    name: String,
    buffer: Vec<u8>,
}

/// Registers sessions in a map it then forgets: every entry leaks. Returns the bytes held.
#[inline(never)]
fn open_sessions(count: usize) -> usize {
    let mut sessions = HashMap::new();
    for i in 0..count {
        sessions.insert(i, Session { name: format!("session-{i}"), buffer: vec![0; 4096] });
    }
    let held = sessions.values().map(|s| s.name.len() + s.buffer.len()).sum();
    std::mem::forget(sessions);
    held
}

/// Allocates and frees: nothing of this is reported.
#[inline(never)]
fn tidy_work() -> usize {
    let words: Vec<String> = (0..100).map(|i| i.to_string()).collect();
    words.iter().map(String::len).sum()
}

fn main() -> ExitCode {
    let json = std::env::args_os().nth(1).unwrap_or_else(|| "leaks.json".into());
    LeakTracker::enable_in_debug();
    std::hint::black_box(tidy_work());
    let held = open_sessions(3);
    let sessions_seen: usize = LeakTracker::leaks().len();

    if let Err(err) = LeakTracker::emit(&ConsoleEmitter::new()) {
        eprintln!("leak_report: {err}");
        return ExitCode::from(2);
    }
    if let Err(err) = LeakTracker::emit(&JsonEmitter::new(&json)) {
        eprintln!("leak_report: cannot write {}: {err}", json.to_string_lossy());
        return ExitCode::from(2);
    }
    // (Printing allocates stdout's buffer, which lives as long as the program: done last.)
    println!("{held} bytes of sessions opened and forgotten");
    match LeakTracker::verify_no_leaks_in_debug() {
        Ok(()) => println!("no leaks ({sessions_seen} tracked blocks)"),
        Err(err) => println!("\n{err}"),
    }
    ExitCode::SUCCESS
}
