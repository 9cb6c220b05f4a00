//! Shared helpers of the browser's screen tests: a small but varied in-memory trace, a test
//! terminal and scripted key presses.

#![allow(dead_code)]

pub mod trace;

use std::collections::HashMap;

use leakview_tui::source::{DataSource, FrameInfo, Mark, MemoryAllocation};
use leakview_tui::{App, MemorySource, Theme};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

const MS: u64 = 1_000_000;

fn frame(function: &str, location: &str, module: &str) -> FrameInfo {
    FrameInfo {
        function: function.to_string(),
        location: Some(location.to_string()),
        module: Some(module.to_string()),
        inlined: false,
    }
}

/// A 10-second "server": a steady leak (1 KiB every 100 ms, never freed), a bounded cache
/// (4 KiB every 50 ms, each freed 2 s later), a burst of header buffers between the marks
/// `load-start` and `load-end` (freed at 6 s: the peak is at the end of the burst), and a worker
/// thread whose scratch buffers are freed quickly except every tenth.
pub fn server_source() -> MemorySource {
    let (stacks, allocations, marks, threads) = server_parts();
    MemorySource::new("./server --port 8080", 10_000 * MS, stacks, allocations, marks, threads)
}

/// [`server_source`] as a load of it taken at `end_ns`, while it was still being recorded:
/// what happened after `end_ns` is not there yet.
pub fn server_source_until(end_ns: u64) -> MemorySource {
    let (stacks, allocations, marks, threads) = server_parts();
    let allocations = allocations
        .into_iter()
        .filter(|a| a.alloc_ns <= end_ns)
        .map(|a| MemoryAllocation { free_ns: a.free_ns.filter(|&f| f <= end_ns), ..a })
        .collect();
    let marks = marks.into_iter().filter(|m| m.at_ns <= end_ns).collect();
    MemorySource::new("./server --port 8080", end_ns, stacks, allocations, marks, threads)
}

type Parts = (Vec<Vec<FrameInfo>>, Vec<MemoryAllocation>, Vec<Mark>, HashMap<u32, String>);

/// The stacks, allocations, marks and thread names of [`server_source`].
fn server_parts() -> Parts {
    let main = frame("main", "src/main.c:12", "server");
    let handle = frame("handle_request", "src/server.c:88", "server");
    let stacks = vec![
        vec![frame("leak_buffer", "src/server.c:42", "server"), handle.clone(), main.clone()],
        vec![frame("cache_insert", "src/cache.c:17", "server"), handle.clone(), main.clone()],
        vec![frame("parse_header", "src/http.c:130", "libhttp.so"), handle, main],
        vec![
            frame("worker_scratch", "src/worker.c:55", "server"),
            frame("worker_loop", "src/worker.c:20", "server"),
        ],
    ];
    let mut allocations = Vec::new();
    let mut address = 0x5555_0000_0000u64;
    let mut next_address = || {
        address += 0x1000;
        address
    };
    for i in 1..=100u64 {
        allocations.push(MemoryAllocation {
            address: next_address(),
            size: 1024,
            alloc_ns: i * 100 * MS - MS,
            free_ns: None,
            tid: 100,
            stack: 0,
        });
    }
    for i in 1..200u64 {
        let at = i * 50 * MS;
        allocations.push(MemoryAllocation {
            address: next_address(),
            size: 4096,
            alloc_ns: at,
            free_ns: Some(at + 2_000 * MS),
            tid: 100,
            stack: 1,
        });
    }
    for i in 0..200u64 {
        allocations.push(MemoryAllocation {
            address: next_address(),
            size: 64 << (i % 4),
            alloc_ns: 4_000 * MS + i * 5 * MS,
            free_ns: Some(6_000 * MS),
            tid: 100,
            stack: 2,
        });
    }
    for i in 0..50u64 {
        let at = i * 200 * MS + 7 * MS;
        allocations.push(MemoryAllocation {
            address: next_address(),
            size: 256,
            alloc_ns: at,
            free_ns: if i % 10 == 9 { None } else { Some(at + 150 * MS) },
            tid: 101,
            stack: 3,
        });
    }
    let marks = vec![
        Mark { at_ns: 2_000 * MS, label: "warmup-done".into() },
        Mark { at_ns: 4_000 * MS, label: "load-start".into() },
        Mark { at_ns: 6_000 * MS, label: "load-end".into() },
    ];
    let threads = HashMap::from([(100, "main".to_string()), (101, "worker".to_string())]);
    (stacks, allocations, marks, threads)
}

/// An app over `source` with the colour theme.
pub fn app<S: DataSource>(source: S) -> App<S> {
    App::new(source, Theme::colour())
}

pub fn terminal(width: u16, height: u16) -> Terminal<TestBackend> {
    Terminal::new(TestBackend::new(width, height)).expect("a test terminal")
}

/// Draws `app` and returns the terminal, for snapshotting its backend.
pub fn draw<S: DataSource>(app: &mut App<S>, terminal: &mut Terminal<TestBackend>) {
    terminal.draw(|f| app.draw(f)).expect("drawing into a test backend");
}

pub fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

pub fn shift(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::SHIFT)
}

/// Presses each character of `text` as a key.
pub fn typed(text: &str) -> Vec<KeyEvent> {
    text.chars().map(|c| key(KeyCode::Char(c))).collect()
}

/// Sends `keys`, drawing after each one as the terminal runner does.
pub fn press<S: DataSource>(app: &mut App<S>, terminal: &mut Terminal<TestBackend>, keys: &[KeyEvent]) {
    for k in keys {
        app.handle_key(*k);
        draw(app, terminal);
    }
}

/// A C++ program whose only leak comes from a templated function with a long demangled name
/// (return type, template arguments, parameters), allocated 40 stack frames deep.
pub fn templated_source() -> MemorySource {
    let long = "std::pair<std::__cxx11::basic_string<char>, std::unordered_map<std::__cxx11::basic_string<char>, \
                double>> app::storage::Registry<std::__cxx11::basic_string<char>, double>::build_index<double>(int, \
                std::allocator<char> const&)";
    let mut frames = vec![FrameInfo {
        function: long.to_string(),
        location: Some("app/registry.hpp:120".to_string()),
        module: Some("app".to_string()),
        inlined: false,
    }];
    frames.extend((0..40).map(|i| frame(&format!("step_{i}"), "app/main.cpp:9", "app")));
    let allocations = (0..5u64)
        .map(|i| MemoryAllocation {
            address: 0x1000 * (i + 1),
            size: 512,
            alloc_ns: (i + 1) * MS,
            free_ns: None,
            tid: 1,
            stack: 0,
        })
        .collect();
    MemorySource::new("./app", 10 * MS, vec![frames], allocations, vec![], HashMap::new())
}
