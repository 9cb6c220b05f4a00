//! End-to-end: fixtures built with -O2 and no frame pointers run under the real preload
//! library; their traces must hold exactly the documented outstanding blocks per function,
//! with stacks that reach `main`.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use leakview_format::RecorderKind;
use support::{Attribution, Trace, compile, expect, manifest_traces, record, record_with, record_within};

fn run_fixture(dir: &Path, sources: &[&str], extra: &[&str], args: &[&str]) -> (std::path::PathBuf, Trace) {
    let exe = dir.join("fixture");
    compile(sources, &exe, extra);
    let trace_path = dir.join("trace.bin");
    record(&exe, args, &trace_path, &dir.join("manifest"), None);
    (exe, Trace::load(&trace_path))
}

#[test]
fn basic_allocation_functions_and_c_api() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (exe, trace) = run_fixture(dir.path(), &["basic.c"], &[], &[]);
    let attribution = Attribution::new(&[&exe]);
    assert_eq!(
        attribution.leaks(&trace),
        expect(&[
            ("leak_malloc_blocks", 5, 120),
            ("leak_calloc", 1, 160),
            ("grow_buffer", 1, 4096),
            ("leak_aligned", 3, 396),
            ("leak_page_aligned", 2, 1100),
            ("leak_zero_sized", 1, 0),
            ("leak_reallocarray", 1, 120),
            ("pool_carve", 1, 32),
            ("deep_leak", 1, 77),
        ])
    );
    assert_eq!(trace.marks, vec!["start".to_string(), "end".to_string()]);
    assert!(trace.complete, "trace not marked complete");

    let meta = &trace.metadata;
    assert_eq!(meta.recorder_kind, RecorderKind::Preload);
    assert!(meta.recorder.starts_with("leakview-preload "));
    assert_eq!(meta.clock_id, 1);
    assert_eq!(meta.pointer_width, 8);
    assert_eq!(meta.max_stack_depth, 128);
    assert_eq!(Path::new(&meta.executable), std::fs::canonicalize(&exe).expect("canonical").as_path());
    assert_eq!(meta.argv.len(), 1);
    assert_eq!(meta.parent_pid, std::process::id());

    // Alignment is recorded for the aligned functions.
    let aligns: Vec<u64> = trace
        .outstanding
        .iter()
        .filter(|b| attribution.allocating_function(&trace, b.stack) == "leak_aligned")
        .map(|b| b.align)
        .collect();
    let mut sorted = aligns.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, vec![32, 64, 128]);
}

#[test]
fn resident_memory_is_sampled_from_start_to_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = dir.path().join("fixture");
    compile(&["resident.c"], &exe, &[]);
    let interval = 10_000_000u64;
    let path = dir.path().join("trace.bin");
    record_with(&exe, &path, &dir.path().join("manifest"), &[("LEAKVIEW_RSS_INTERVAL_MS", "10")]);
    let trace = Trace::load(&path);
    assert!(trace.outstanding.is_empty(), "{:?}", trace.outstanding);
    let samples = &trace.resident;
    // The start, at least a few while the program allocates for about 100 ms, and the end.
    assert!(samples.len() >= 5, "{samples:?}");
    let (first, last) = (samples[0], samples[samples.len() - 1]);
    let (first_event, last_event) = trace.alloc_time_span().expect("allocations recorded");
    assert!(first.0 <= first_event && last.0 >= last_event, "{samples:?} around {first_event}..{last_event}");
    // The ones taken on the way are due one interval after the one before.
    for pair in samples[..samples.len() - 1].windows(2) {
        assert!(pair[1].0 - pair[0].0 >= interval, "samples closer than the interval: {pair:?}");
    }
    let big = 48u64 << 20;
    let peak = samples.iter().map(|s| s.1).max().unwrap_or(0);
    assert!(peak >= big, "peak RSS {peak} below the 48 MiB written");
    assert!(last.1 + (40 << 20) <= peak, "RSS at the end {} not 40 MiB below the peak {peak}", last.1);

    // 0 takes no samples.
    let off = dir.path().join("off.bin");
    record_with(&exe, &off, &dir.path().join("manifest"), &[("LEAKVIEW_RSS_INTERVAL_MS", "0")]);
    let trace = Trace::load(&off);
    assert!(trace.resident.is_empty(), "{:?}", trace.resident);
    assert!(trace.alloc_time_span().is_some());
}

#[test]
fn stacks_are_deep_without_frame_pointers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (exe, trace) = run_fixture(dir.path(), &["basic.c"], &[], &[]);
    let attribution = Attribution::new(&[&exe]);
    let deep = trace
        .outstanding
        .iter()
        .find(|b| attribution.allocating_function(&trace, b.stack) == "deep_leak")
        .expect("deep_leak block");
    let functions: Vec<String> = trace
        .frames(deep.stack)
        .into_iter()
        .filter_map(|ip| attribution.function(&trace, ip).map(|(_, f)| f))
        .collect();
    let recursion = functions.iter().filter(|f| *f == "deep_leak").count();
    assert_eq!(recursion, 31, "frames: {functions:?}");
    assert!(functions.iter().any(|f| f == "main"), "stack does not reach main: {functions:?}");
    // Every fixture allocation's stack reaches main.
    for block in &trace.outstanding {
        let function = attribution.allocating_function(&trace, block.stack);
        if function.starts_with('<') {
            continue;
        }
        let reaches_main = trace
            .frames(block.stack)
            .into_iter()
            .any(|ip| attribution.function(&trace, ip).is_some_and(|(_, f)| f == "main"));
        assert!(reaches_main, "stack of a {function} block does not reach main");
    }
}

#[test]
fn depth_limit_keeps_the_innermost_frames() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = dir.path().join("fixture");
    compile(&["basic.c"], &exe, &[]);
    let trace_path = dir.path().join("trace.bin");
    record(&exe, &[], &trace_path, &dir.path().join("manifest"), Some(8));
    let trace = Trace::load(&trace_path);
    assert_eq!(trace.metadata.max_stack_depth, 8);
    let attribution = Attribution::new(&[&exe]);
    let deep = trace
        .outstanding
        .iter()
        .find(|b| attribution.allocating_function(&trace, b.stack) == "deep_leak")
        .expect("deep_leak block");
    let frames = trace.frames(deep.stack);
    assert_eq!(frames.len(), 8);
    assert!(frames.iter().all(|&ip| attribution.function(&trace, ip).is_some_and(|(_, f)| f == "deep_leak")));
}

#[test]
fn threads_and_cross_thread_frees() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (exe, trace) = run_fixture(dir.path(), &["threads.c"], &[], &[]);
    let attribution = Attribution::new(&[&exe]);
    assert_eq!(attribution.leaks(&trace), expect(&[("worker_leak", 12, 576), ("producer_leak", 1, 500)]));
    let mut tids = trace.chunk_tids.clone();
    tids.sort_unstable();
    tids.dedup();
    assert!(tids.len() >= 8, "expected a chunk per thread (main + 7), got tids {tids:?}");
    // The 2000 hand-offs were freed by the consumer thread: no block of `produce` is left.
    let worker_tids: std::collections::BTreeSet<u32> = trace
        .outstanding
        .iter()
        .filter(|b| attribution.allocating_function(&trace, b.stack) == "worker_leak")
        .map(|b| b.tid)
        .collect();
    assert_eq!(worker_tids.len(), 4, "each worker leaks on its own thread");
    // Each worker's name, as it set it, is recorded for its tid.
    for tid in &worker_tids {
        let names: Vec<&str> =
            trace.thread_names.iter().filter(|(t, _)| t == tid).map(|(_, n)| n.as_str()).collect();
        assert_eq!(names.len(), 1, "names of {tid}: {names:?}");
        assert!(names[0].starts_with("worker-"), "{names:?}");
    }
    let main_tid = trace.metadata.pid;
    assert!(trace.thread_names.iter().any(|(t, n)| *t == main_tid && n == "fixture"));
    assert!(trace.complete);
}

#[test]
fn addresses_handed_between_threads_replay_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (exe, trace) = run_fixture(dir.path(), &["handoff.c"], &[], &[]);
    let attribution = Attribution::new(&[&exe]);
    assert_eq!(attribution.leaks(&trace), expect(&[("handoff_leak", 1, 777)]));
    // Every free's time precedes the next allocation of its address on any thread, or follows it
    // by less than the clock's skew window (FORMAT.md): no address comes into being while its
    // block is live, and no free misses its block.
    assert_eq!(trace.counts.allocated_while_live, 0);
    assert_eq!(trace.counts.unknown_frees, 0);
    eprintln!(
        "{} of {} cross-thread reuses came out swapped",
        trace.counts.swapped, trace.counts.cross_thread_reuses
    );
    assert!(trace.counts.allocations > 4 * 20_000 + 5_000, "{} allocations", trace.counts.allocations);
    assert_eq!(trace.counts.frees, trace.counts.allocations - trace.outstanding.len() as u64);
    // The fixture did exercise what it is for: addresses freed on one thread, reused on another.
    assert!(
        trace.counts.cross_thread_reuses > 2_500,
        "only {} cross-thread reuses",
        trace.counts.cross_thread_reuses
    );
}

#[test]
fn cpp_new_and_containers() {
    if !support::cpp_compiler_available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (exe, trace) = run_fixture(dir.path(), &["containers.cpp"], &[], &[]);
    let attribution = Attribution::new(&[&exe]);
    assert_eq!(
        attribution.leaks(&trace),
        expect(&[
            ("leak_array_new()", 1, 100),
            ("leak_vector()", 2, 280),
            ("leak_map()", 11, 448),
            ("leak_string()", 2, 133)
        ])
    );
}

/// Allocation functions looked up through a handle of the C library (ctypes, Dart FFI) make
/// blocks that are recorded like any other, and their frees through the handle are seen.
#[test]
#[cfg(target_arch = "x86_64")]
fn allocation_functions_found_through_a_libc_handle_are_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (exe, trace) = run_fixture(dir.path(), &["libc_handle.c"], &["-ldl"], &[]);
    let attribution = Attribution::new(&[&exe]);
    assert_eq!(
        attribution.leaks(&trace),
        expect(&[
            ("handle_malloc", 3, 120),
            ("handle_calloc", 1, 128),
            ("handle_realloc", 1, 300),
            ("handle_aligned", 1, 64),
        ])
    );
    let aligned = trace
        .outstanding
        .iter()
        .find(|b| attribution.allocating_function(&trace, b.stack) == "handle_aligned")
        .expect("handle_aligned block");
    assert_eq!((aligned.align, aligned.addr % 64), (64, 0));
    // The fixture's 20 allocations (and the C library's own), every free of a known block.
    assert!(trace.counts.allocations >= 20, "{:?}", trace.counts);
    assert_eq!(trace.counts.unknown_frees, 0, "{:?}", trace.counts);
    assert_eq!(trace.counts.allocations - trace.counts.frees, trace.outstanding.len() as u64);
}

#[test]
fn dlclosed_plugin_frames_resolve_to_the_plugin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugin = dir.path().join("plugin.so");
    compile(&["plugin.c"], &plugin, &["-shared", "-fPIC"]);
    let host = dir.path().join("host");
    compile(&["plugin_host.c"], &host, &["-ldl"]);
    let trace_path = dir.path().join("trace.bin");
    let plugin_arg = plugin.to_string_lossy().into_owned();
    record(&host, &[&plugin_arg], &trace_path, &dir.path().join("manifest"), None);
    let trace = Trace::load(&trace_path);
    let attribution = Attribution::new(&[&host, &plugin]);
    assert_eq!(attribution.leaks(&trace), expect(&[("plugin_leak", 3, 192), ("host_leak", 1, 16)]));

    let plugin_module =
        trace.modules.iter().find(|m| m.path.ends_with("plugin.so")).expect("ModuleLoad for the plugin");
    assert!(plugin_module.unloaded, "no ModuleUnload after dlclose");
    for block in &trace.outstanding {
        if attribution.allocating_function(&trace, block.stack) == "plugin_leak" {
            let innermost = trace.frames(block.stack)[0];
            assert_eq!(trace.module_of(innermost).map(|m| m.id), Some(plugin_module.id));
        }
    }
}

/// Builds fixture `program` linked with fixture `allocator` as `lib<name>.so` (a program with an
/// allocator of its own, found through its rpath): the program's path and the library's.
fn compile_with_allocator(dir: &Path, program: &str, allocator: &str, name: &str) -> (PathBuf, PathBuf) {
    let library = dir.join(format!("lib{name}.so"));
    compile(&[allocator], &library, &["-shared", "-fPIC"]);
    let exe = dir.join("fixture");
    let lib_dir = dir.to_string_lossy().into_owned();
    compile(
        &[program],
        &exe,
        &[&format!("-L{lib_dir}"), &format!("-l{name}"), &format!("-Wl,-rpath,{lib_dir}")],
    );
    (exe, library)
}

#[test]
fn a_program_keeps_its_own_allocator() {
    // The program links an allocator of its own (as with jemalloc), which counts the calls it
    // serves: under leakview each call must reach it, and the recorder must not add calls of its
    // own once a thread is set up.
    let dir = tempfile::tempdir().expect("tempdir");
    let (exe, allocator) =
        compile_with_allocator(dir.path(), "own_allocator_main.c", "own_allocator.c", "own");
    let plain = std::process::Command::new(&exe).env_remove("LD_PRELOAD").output().expect("run");
    assert!(plain.status.success());
    let served = String::from_utf8_lossy(&plain.stdout).into_owned();
    assert_eq!(served, "served: malloc 101, calloc 1, realloc 2, aligned 3, free 90\n");
    let trace_path = dir.path().join("trace.bin");
    let recorded = record(&exe, &[], &trace_path, &dir.path().join("manifest"), None);
    assert_eq!(String::from_utf8_lossy(&recorded.stdout), served);
    let trace = Trace::load(&trace_path);
    let attribution = Attribution::new(&[&exe, &allocator]);
    assert_eq!(
        attribution.leaks(&trace),
        expect(&[
            ("keep_some", 10, 770),
            ("keep_zeroed", 1, 100),
            ("keep_grown", 1, 4000),
            ("keep_aligned", 3, 600)
        ])
    );
}

#[test]
fn a_thread_whose_first_allocation_is_inside_its_own_stack_query_runs_on() {
    // glibc holds the thread's lock while it allocates inside pthread_getattr_np, which the
    // recorder also calls at a thread's first recorded allocation (every Rust program's main
    // thread queries itself first thing): this hung before the recorder marked the call.
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = dir.path().join("fixture");
    compile(&["stack_query.c"], &exe, &[]);
    let trace_path = dir.path().join("trace.bin");
    let output = record_within(&exe, &trace_path, &dir.path().join("manifest"), Duration::from_secs(20));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "stack_query: done\n");
    let trace = Trace::load(&trace_path);
    let attribution = Attribution::new(&[&exe]);
    assert_eq!(attribution.leaks(&trace), expect(&[("query_then_leak", 2, 128)]));
}

#[test]
fn fork_and_exec_write_their_own_traces() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = dir.path().join("fixture");
    compile(&["forking.c"], &exe, &[]);
    let trace_path = dir.path().join("trace.bin");
    let manifest = dir.path().join("manifest");
    record(&exe, &[], &trace_path, &manifest, None);
    let traces = manifest_traces(&manifest);
    assert_eq!(traces.len(), 4, "traces: {traces:?}");
    assert!(traces.contains(&trace_path), "parent trace missing from {traces:?}");
    let attribution = Attribution::new(&[&exe]);

    let parent = Trace::load(&trace_path);
    assert_eq!(attribution.leaks(&parent), expect(&[("before_fork_leak", 1, 50), ("parent_leak", 2, 200)]));
    assert!(parent.complete);

    let others: Vec<Trace> = traces.iter().filter(|p| **p != trace_path).map(|p| Trace::load(p)).collect();
    for trace in &others {
        let name = trace.path.file_name().and_then(|n| n.to_str()).expect("file name");
        assert!(name.starts_with("trace.") && name.ends_with(".bin"), "unexpected name {name}");
        assert_eq!(trace.metadata.parent_pid, parent.metadata.pid);
        assert_ne!(trace.metadata.pid, parent.metadata.pid);
        // A process started after its parent (clock ticks after boot, from /proc).
        assert!(trace.metadata.process_start_ticks >= parent.metadata.process_start_ticks);
    }
    assert!(parent.metadata.process_start_ticks > 0);
    let children: Vec<&Trace> = others.iter().filter(|t| t.metadata.argv.len() == 1).collect();
    assert_eq!(children.len(), 2, "a fork child and a raw fork child");
    for child in &children {
        assert_eq!(child.path, dir.path().join(format!("trace.{}.bin", child.metadata.pid)));
        assert!(child.complete);
    }
    let mut child_leaks: Vec<_> = children.iter().map(|t| attribution.leaks(t)).collect();
    child_leaks.sort();
    // The raw fork child freed its copy of before_fork_leak's block: not in its trace (the block
    // is its parent's) and not in the parent's (checked above).
    let mut expected = vec![expect(&[("child_leak", 1, 200)]), expect(&[("raw_child_leak", 1, 70)])];
    expected.sort();
    assert_eq!(child_leaks, expected);
    let execed = others
        .iter()
        .find(|t| t.metadata.argv.get(1).map(String::as_str) == Some("exec-child"))
        .expect("exec trace");
    assert_eq!(attribution.leaks(execed), expect(&[("exec_leak", 1, 300)]));
}

#[test]
fn weak_c_api_runs_without_leakview() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = dir.path().join("fixture");
    compile(&["basic.c"], &exe, &[]);
    let output = std::process::Command::new(&exe).env_remove("LD_PRELOAD").output().expect("run");
    assert!(output.status.success());
    assert_eq!(String::from_utf8_lossy(&output.stdout), "basic: done\n");
}

/// The stacks of all allocations, in order, as (module path, offset) frames.
fn relative_stacks(trace: &Trace) -> Vec<Vec<(String, u64)>> {
    let reader = leakview_format::TraceReader::open(&trace.path).expect("open");
    let mut stacks = Vec::new();
    for chunk in reader.chunks() {
        for event in reader.events(chunk) {
            if let leakview_format::Event::Alloc { stack, .. } = event.expect("decode") {
                let frames = trace
                    .frames(stack)
                    .into_iter()
                    .map(|ip| match trace.module_of(ip) {
                        Some(m) => (m.path.clone(), ip - m.base),
                        None => ("?".to_string(), ip),
                    })
                    .collect();
                stacks.push(frames);
            }
        }
    }
    stacks
}

/// Records `exe args` twice: with the recorder's caches (unwind rules learned per address,
/// whole stacks found again by hash) and with `LEAKVIEW_STACK_REUSE=0`, which steps every frame
/// with framehop and interns every stack frame by frame. Returns (cached, full).
fn record_cached_and_full(dir: &Path, exe: &Path, args: &[&str]) -> (Trace, Trace) {
    let cached_path = dir.join("cached.bin");
    record(exe, args, &cached_path, &dir.join("manifest"), None);
    let full_path = dir.join("full.bin");
    let output = std::process::Command::new(exe)
        .args(args)
        .env("LD_PRELOAD", support::preload_library())
        .env("LEAKVIEW_OUTPUT", &full_path)
        .env("LEAKVIEW_STACK_REUSE", "0")
        .output()
        .expect("run");
    assert!(output.status.success());
    (Trace::load(&cached_path), Trace::load(&full_path))
}

/// Checks that every allocation has the same stack in both traces (in the same order when the
/// program has one thread; as the same multiset of stacks otherwise, since threads interleave
/// differently from run to run). Returns the stacks.
fn assert_same_stacks(cached: &Trace, full: &Trace, ordered: bool) -> Vec<Vec<(String, u64)>> {
    let mut a = relative_stacks(cached);
    let mut b = relative_stacks(full);
    assert_eq!(a.len(), b.len());
    assert!(!a.is_empty());
    if !ordered {
        a.sort();
        b.sort();
    }
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert_eq!(x, y, "allocation {i}: the stack recorded with caching differs from the full unwind");
    }
    a
}

/// Compiles `fixture` and compares its cached and full recordings; returns the executable (in
/// a directory the caller removes) and the cached trace.
fn compare_cached_with_full_unwinds(
    fixture: &str,
    args: &[&str],
    expect_deep: bool,
) -> (std::path::PathBuf, Trace) {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = dir.path().join("fixture");
    compile(&[fixture], &exe, &[]);
    let (cached, full) = record_cached_and_full(dir.path(), &exe, args);
    let stacks = assert_same_stacks(&cached, &full, true);
    if expect_deep {
        let deep = stacks.iter().filter(|s| s.len() > 20).count();
        assert!(deep * 4 > stacks.len(), "expected mostly deep stacks, got {deep} of {}", stacks.len());
    }
    let keep = dir.keep();
    (keep.join("fixture"), cached)
}

#[test]
fn cached_unwinding_never_changes_a_stack() {
    let (exe, cached) = compare_cached_with_full_unwinds("stacks.c", &[], true);
    let attribution = Attribution::new(&[&exe]);
    let expected_bytes: u64 = (0..20000u64).step_by(4).map(|i| 16 + i % 200).sum();
    assert_eq!(attribution.leaks(&cached), expect(&[("alloc_leaf", 5000, expected_bytes)]));
    let _ = std::fs::remove_dir_all(exe.parent().expect("dir"));
}

#[test]
fn cached_unwinding_is_exact_in_an_allocation_loop() {
    let (exe, cached) = compare_cached_with_full_unwinds("churn.c", &["100000"], true);
    assert!(cached.counts.allocations >= 100_000);
    assert!(cached.outstanding.is_empty() || Attribution::new(&[&exe]).leaks(&cached).is_empty());
    let _ = std::fs::remove_dir_all(exe.parent().expect("dir"));
}

#[test]
fn cached_unwinding_is_exact_through_cpp_containers_and_exceptions() {
    if !support::cpp_compiler_available() {
        return;
    }
    let (exe, cached) = compare_cached_with_full_unwinds("containers.cpp", &[], false);
    assert_eq!(Attribution::new(&[&exe]).leaks(&cached).len(), 4);
    let _ = std::fs::remove_dir_all(exe.parent().expect("dir"));
}

#[test]
fn cached_unwinding_is_exact_on_several_threads() {
    let (exe, cached) = compare_cached_with_full_unwinds_unordered("threads.c");
    assert!(cached.counts.allocations > 2000);
    let _ = std::fs::remove_dir_all(exe.parent().expect("dir"));
}

fn compare_cached_with_full_unwinds_unordered(fixture: &str) -> (std::path::PathBuf, Trace) {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = dir.path().join("fixture");
    compile(&[fixture], &exe, &[]);
    let (cached, full) = record_cached_and_full(dir.path(), &exe, &[]);
    assert_same_stacks(&cached, &full, false);
    let keep = dir.keep();
    (keep.join("fixture"), cached)
}

#[test]
fn cached_unwinding_is_exact_across_dlopen_and_dlclose() {
    // Loading and unloading the plugin changes the module map: learned rules start over.
    let dir = tempfile::tempdir().expect("tempdir");
    let plugin = dir.path().join("plugin.so");
    compile(&["plugin.c"], &plugin, &["-shared", "-fPIC"]);
    let host = dir.path().join("host");
    compile(&["plugin_host.c"], &host, &["-ldl"]);
    let plugin_arg = plugin.to_string_lossy().into_owned();
    let (cached, full) = record_cached_and_full(dir.path(), &host, &[&plugin_arg]);
    let stacks = assert_same_stacks(&cached, &full, true);
    assert!(stacks.iter().flatten().any(|(module, _)| module.ends_with("plugin.so")));
}

/// Runs `program args` under the recorder with `LEAKVIEW_STACK_VERIFY=1` (every stack captured
/// with the caches is also unwound in full, in the same capture, and compared) and checks
/// that no stack differed. For runs that differ from one run to the next (signals, threads,
/// interpreters), where two recordings cannot be compared. At least 100 stacks must be
/// `min_depth` frames deep or more. Returns the trace.
fn record_verified(
    dir: &Path,
    program: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    min_depth: usize,
) -> Trace {
    let name = program.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let path = dir.join(format!("{name}-verified.bin"));
    let output = std::process::Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .env("LD_PRELOAD", support::preload_library())
        .env("LEAKVIEW_OUTPUT", &path)
        .env("LEAKVIEW_STACK_VERIFY", "1")
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{} failed: {stderr}", program.display());
    assert!(!stderr.contains("stack check failed"), "{}: {stderr}", program.display());
    // A good share of the stacks checked must have been kept stacks, or the check proves
    // little about them (a kept-stack lookup that never hits would pass it).
    let (checked, kept) = stack_checks(&stderr)
        .unwrap_or_else(|| panic!("{}: no stack check report: {stderr}", program.display()));
    eprintln!("{}: {kept} of {checked} checked stacks were kept stacks", program.display());
    assert!(
        checked > 1000 && kept * 4 > checked,
        "{}: {kept} of {checked} checked stacks were kept stacks",
        program.display()
    );
    let trace = Trace::load(&path);
    let deep = relative_stacks(&trace).iter().filter(|s| s.len() >= min_depth).count();
    assert!(deep > 100, "{}: only {deep} stacks of {min_depth} frames or more", program.display());
    trace
}

/// The numbers of the recorder's stack check report (`LEAKVIEW_STACK_VERIFY=1`): stacks
/// compared with the full unwind, and how many of them were found among kept stacks (summed
/// over the processes that wrote one).
fn stack_checks(stderr: &str) -> Option<(u64, u64)> {
    let mut total = None;
    for line in stderr.lines() {
        let Some(rest) = line.strip_prefix("leakview: stack check: ") else { continue };
        let numbers: Vec<u64> = rest.split(' ').filter_map(|word| word.parse().ok()).collect();
        if let [checked, kept] = numbers[..] {
            let (c, k) = total.unwrap_or((0, 0));
            total = Some((c + checked, k + kept));
        }
    }
    total
}

#[test]
fn cached_stacks_equal_full_unwinds_in_signal_handlers_and_threads() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (fixture, min_depth) in [("signals.c", 4), ("threads.c", 4), ("stacks.c", 20)] {
        let exe = dir.path().join(fixture.trim_end_matches(".c"));
        compile(&[fixture], &exe, &[]);
        let trace = record_verified(dir.path(), &exe, &[], &[], min_depth);
        assert!(trace.counts.allocations > 2000, "{fixture}: {} allocations", trace.counts.allocations);
    }
}

#[test]
fn cached_stacks_equal_full_unwinds_in_real_programs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let python = Path::new("/usr/bin/python3");
    if python.exists() {
        let script = "import json\nd = [{'k': str(i), 'v': list(range(i % 9))} for i in range(20000)]\n\
                      s = json.dumps(d)\nprint(len(s), len(json.loads(s)))";
        record_verified(dir.path(), python, &["-c", script], &[("PYTHONMALLOC", "malloc")], 8);
    } else {
        eprintln!("note: /usr/bin/python3 is not installed; skipped");
    }
    let sqlite = Path::new("/usr/bin/sqlite3");
    if sqlite.exists() {
        let sql = "create table t(id integer primary key, name text);\n\
                   with recursive n(i) as (select 1 union all select i + 1 from n where i < 20000)\n\
                   insert into t select i, 'name-' || i from n;\n\
                   create index t_name on t(name);\n\
                   select count(*) from t where name like 'name-1%';";
        record_verified(dir.path(), sqlite, &[":memory:", sql], &[], 8);
    } else {
        eprintln!("note: /usr/bin/sqlite3 is not installed; skipped");
    }
}

#[test]
fn signal_handlers_that_allocate_do_not_break_recording() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (exe, trace) = run_fixture(dir.path(), &["signals.c"], &[], &[]);
    let attribution = Attribution::new(&[&exe]);
    // The handler frees what it allocates, wherever the signal lands (see the next test).
    assert_eq!(attribution.leaks(&trace), expect(&[("busy_leak", 1, 64)]));
    assert!(trace.counts.allocations > 400_000);
}

#[test]
fn every_allocation_and_free_of_signal_handlers_is_recorded() {
    // Handlers run by a fast timer land anywhere, inside the recorder's hooks too, and
    // SIGUSR1 is raised from inside the allocator itself; the allocator is one a handler may
    // call at any moment. Before the handler wrapper, a handler's calls made while the thread
    // was in a hook passed through unrecorded: its frees of the main loop's blocks were lost
    // (about 2,000 false 1000-byte leaks a run), and so were most of its own leaks.
    let dir = tempfile::tempdir().expect("tempdir");
    let (exe, _) = compile_with_allocator(dir.path(), "signal_handlers.c", "signal_safe_allocator.c", "safe");
    let trace_path = dir.path().join("trace.bin");
    let output = record(&exe, &[], &trace_path, &dir.path().join("manifest"), None);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let runs: u64 = stdout
        .strip_prefix("handler runs: ")
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("unexpected output: {stdout}"));
    assert!(runs >= 200, "{runs}");
    let trace = Trace::load(&trace_path);
    let mut by_size = std::collections::BTreeMap::<u64, u64>::new();
    for block in &trace.outstanding {
        *by_size.entry(block.size).or_default() += 1;
    }
    assert_eq!(
        by_size,
        [(24, runs), (64, 1)].into_iter().collect(),
        "{runs} handler runs; stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(trace.counts.unknown_frees, 0, "stderr: {}", String::from_utf8_lossy(&output.stderr));
    let attribution = Attribution::new(&[&exe]);
    assert_eq!(attribution.leaks(&trace).get("main_leak"), Some(&(1, 64)));
}

#[test]
fn posix_spawn_and_vfork_children_are_fine() {
    let dir = tempfile::tempdir().expect("tempdir");
    let child = dir.path().join("child");
    compile(&["basic.c"], &child, &[]);
    let exe = dir.path().join("fixture");
    compile(&["spawn.c"], &exe, &[]);
    let trace_path = dir.path().join("trace.bin");
    let manifest = dir.path().join("manifest");
    let child_arg = child.to_string_lossy().into_owned();
    record(&exe, &[&child_arg], &trace_path, &manifest, None);
    let parent = Trace::load(&trace_path);
    let attribution = Attribution::new(&[&exe]);
    assert_eq!(attribution.leaks(&parent), expect(&[("spawn_leak", 1, 24)]));
    assert!(parent.complete);
    // Every spawned child (an exec'd image) wrote its own complete trace.
    let traces = manifest_traces(&manifest);
    assert_eq!(traces.len(), 5, "{traces:?}");
    let child_attribution = Attribution::new(&[&child]);
    for path in traces.iter().filter(|p| **p != trace_path) {
        let trace = Trace::load(path);
        assert!(trace.complete);
        assert_eq!(trace.metadata.parent_pid, parent.metadata.pid);
        assert_eq!(child_attribution.leaks(&trace).get("deep_leak"), Some(&(1, 77)));
    }
}

#[test]
fn threads_with_small_stacks_and_alternate_signal_stacks_get_full_stacks() {
    // 64, 96 (the program's own) and 128 KiB thread stacks, and a handler on a 64 KiB alternate
    // signal stack, leave the unwinder too little room below the hook: it runs on a side stack.
    // These allocations were recorded without a stack before.
    let dir = tempfile::tempdir().expect("tempdir");
    let (exe, trace) = run_fixture(dir.path(), &["small_stacks.c"], &[], &[]);
    let attribution = Attribution::new(&[&exe]);
    let leaks = attribution.leaks(&trace);
    assert_eq!(leaks.get("small_stack_leak"), Some(&(3, 600)));
    assert_eq!(leaks.get("altstack_leak"), Some(&(1, 77)));
    let caller = |size: u64| match size {
        77 => "on_usr1",
        _ => "body",
    };
    for block in trace.outstanding.iter().filter(|b| [77, 100, 200, 300].contains(&b.size)) {
        let names: Vec<String> = trace
            .frames(block.stack)
            .iter()
            .filter_map(|&ip| attribution.function(&trace, ip).map(|(_, f)| f))
            .collect();
        assert!(names.iter().any(|n| n == caller(block.size)), "{} bytes: {names:?}", block.size);
    }
}

#[test]
fn coroutines_on_stacks_the_program_made_get_full_stacks() {
    // swapcontext onto a 64 KiB stack from malloc and a 1 MiB one from mmap: stacks whose bounds
    // the recorder does not know. It walks a copy of them (these were recorded without a stack
    // before); the deep one needs more than the first copy's window.
    let dir = tempfile::tempdir().expect("tempdir");
    let (exe, trace) = run_fixture(dir.path(), &["coroutines.c"], &[], &[]);
    let attribution = Attribution::new(&[&exe]);
    assert_eq!(attribution.leaks(&trace), expect(&[("coroutine_leaf", 3, 333), ("deep_leaf", 1, 222)]));
    let names_of = |stack: u32| -> Vec<String> {
        trace
            .frames(stack)
            .iter()
            .filter_map(|&ip| attribution.function(&trace, ip).map(|(_, f)| f))
            .collect()
    };
    for block in trace.outstanding.iter().filter(|b| b.size == 111) {
        let names = names_of(block.stack);
        assert_eq!(names[..3], ["coroutine_leaf", "coroutine_middle", "shallow_body"], "{names:?}");
    }
    let deep = trace.outstanding.iter().find(|b| b.size == 222).expect("the deep block");
    let names = names_of(deep.stack);
    assert_eq!(names.first().map(String::as_str), Some("deep_leaf"), "{names:?}");
    // The default depth keeps the innermost 128 frames: deep_leaf and 127 levels of recursion.
    assert_eq!(names.iter().filter(|n| *n == "recurse").count(), 127, "{names:?}");
}

#[test]
fn a_killed_programs_trace_still_names_its_threads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = dir.path().join("fixture");
    compile(&["killed_threads.c"], &exe, &[]);
    let trace_path = dir.path().join("trace.bin");
    let status = std::process::Command::new(&exe)
        .env("LD_PRELOAD", support::preload_library())
        .env("LEAKVIEW_OUTPUT", &trace_path)
        .env_remove("LEAKVIEW_MANIFEST")
        .status()
        .expect("run");
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(libc::SIGKILL));
    let trace = Trace::load(&trace_path);
    assert!(!trace.complete);
    let names: Vec<&str> = trace.thread_names.iter().map(|(_, n)| n.as_str()).collect();
    assert!(names.contains(&"named-worker"), "{names:?}");
    assert!(names.contains(&"fixture"), "{names:?}");
}

/// The number after `label` on a line of `output` (`blocks made: 21784`).
fn printed_count(output: &str, label: &str) -> u64 {
    output
        .lines()
        .find_map(|line| line.strip_prefix(label)?.strip_prefix(": ")?.parse().ok())
        .unwrap_or_else(|| panic!("no `{label}: N` line in:\n{output}"))
}

/// The allocations (alloc and realloc events) of `trace` whose allocating function is the
/// fixture's own code, and the others, which the C library and the loader made on their own.
fn allocations_by_origin(trace: &Trace, attribution: &Attribution) -> (u64, u64) {
    let reader = leakview_format::TraceReader::open(&trace.path).expect("open");
    let mut by_stack = std::collections::HashMap::new();
    let (mut fixture, mut other) = (0, 0);
    for chunk in reader.chunks() {
        for event in reader.events(chunk) {
            let stack = match event.expect("decode") {
                leakview_format::Event::Alloc { stack, .. }
                | leakview_format::Event::Realloc { stack, .. } => stack,
                _ => continue,
            };
            let is_fixture = *by_stack
                .entry(stack)
                .or_insert_with(|| !attribution.allocating_function(trace, stack).starts_with('<'));
            if is_fixture {
                fixture += 1;
            } else {
                other += 1;
            }
        }
    }
    (fixture, other)
}

/// The recorder never changes what the allocation functions do: every function's edge cases
/// (zero sizes, overflowing sizes, bad and huge alignments, realloc(p, 0), failed reallocs,
/// errno on success and failure, zeroing, usable sizes, lookups through a libc handle and in
/// the global scope, a thread's first calls, many threads at once) print the same facts plainly
/// and recorded, with the same exit status. The trace holds every block the program made and
/// exactly the three it kept.
#[test]
fn the_allocation_functions_behave_the_same_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = dir.path().join("fixture");
    compile(&["allocator_contract.c"], &exe, &["-ldl"]);
    let plain = std::process::Command::new(&exe).env_remove("LD_PRELOAD").output().expect("run plainly");
    let plain_stdout = String::from_utf8_lossy(&plain.stdout).into_owned();
    // The C library keeps every promise the fixture checks (its exit status counts broken ones).
    assert!(plain.status.success(), "{:?} plainly:\n{plain_stdout}", plain.status);

    let trace_path = dir.path().join("trace.bin");
    let recorded = std::process::Command::new(&exe)
        .env("LD_PRELOAD", support::preload_library())
        .env("LEAKVIEW_OUTPUT", &trace_path)
        .env_remove("LEAKVIEW_MANIFEST")
        .env_remove("LEAKVIEW_DEPTH")
        .output()
        .expect("run recorded");
    let recorded_stdout = String::from_utf8_lossy(&recorded.stdout).into_owned();
    for (line, (a, b)) in (1..).zip(plain_stdout.lines().zip(recorded_stdout.lines())) {
        assert_eq!(a, b, "line {line} differs, plain vs recorded");
    }
    assert_eq!(plain.stdout, recorded.stdout, "plain:\n{plain_stdout}\nrecorded:\n{recorded_stdout}");
    assert_eq!(plain.stderr, recorded.stderr, "stderr: {}", String::from_utf8_lossy(&recorded.stderr));
    assert_eq!(plain.status.code(), recorded.status.code());

    let made = printed_count(&plain_stdout, "blocks made");
    let released = printed_count(&plain_stdout, "blocks released");
    assert_eq!(printed_count(&plain_stdout, "blocks kept"), 3);
    assert_eq!(made - released, 3);
    assert!(made > 20_000, "{made} blocks made");

    let trace = Trace::load(&trace_path);
    assert!(trace.complete);
    let attribution = Attribution::new(&[&exe]);
    let (fixture_allocations, other_allocations) = allocations_by_origin(&trace, &attribution);
    assert_eq!(fixture_allocations, made, "{other_allocations} other allocations");
    assert_eq!(trace.counts.allocations, fixture_allocations + other_allocations);
    // Every free found its block, and nothing else was released: with the three blocks left,
    // the fixture's releases are all there.
    assert_eq!(trace.counts.unknown_frees, 0, "{:?}", trace.counts);
    assert_eq!(trace.counts.allocated_while_live, 0, "{:?}", trace.counts);
    assert_eq!(trace.counts.frees, trace.counts.allocations - trace.outstanding.len() as u64);
    assert_eq!(attribution.leaks(&trace), expect(&[("keep_blocks", 3, 1001 + 3000 + 555)]));
    let kept: Vec<&support::Block> = trace
        .outstanding
        .iter()
        .filter(|b| attribution.allocating_function(&trace, b.stack) == "keep_blocks")
        .collect();
    let mut sizes: Vec<(u64, u64)> = kept.iter().map(|b| (b.size, b.align)).collect();
    sizes.sort_unstable();
    // posix_memalign(4096, 555), malloc(1001), realloc(malloc(100), 3000).
    assert_eq!(sizes, [(555, 4096), (1001, 0), (3000, 0)]);
    assert!(kept.iter().filter(|b| b.align == 4096).all(|b| b.addr % 4096 == 0));
    eprintln!("{made} blocks made by the program, {other_allocations} by the C library");
}
