//! End-to-end: what a recorded program does to its surroundings, and what they do to it. A
//! program that closes or reuses the trace's descriptor, runs under a file size or address space
//! limit, has its stderr pipe closed, or cannot record at all keeps its files and its behaviour;
//! the recorder stops or carries on, and says so once.

mod support;

use std::path::Path;

use support::{Attribution, Trace, compile, manifest_traces, record};

#[test]
fn a_program_that_closes_and_reuses_descriptors_keeps_its_files_and_its_trace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = dir.path().join("fixture");
    compile(&["closes_descriptors.c"], &exe, &[]);
    let data = dir.path().join("data.txt");
    let trace_path = dir.path().join("trace.bin");
    let data_arg = data.to_str().expect("utf-8 path");
    let output = record(&exe, &[data_arg], &trace_path, &dir.path().join("manifest"), None);
    assert_eq!(String::from_utf8_lossy(&output.stdout), "closes_descriptors: done\n");
    assert_eq!(String::from_utf8_lossy(&output.stderr), "", "the recorder warned");
    // Neither grown nor holed by the recorder, though it sits under the trace's old numbers.
    assert_eq!(std::fs::read_to_string(&data).expect("read data"), "start\nend\n");

    let trace = Trace::load(&trace_path);
    assert!(trace.complete, "trace not marked complete");
    let attribution = Attribution::new(&[&exe]);
    let leaks = attribution.leaks(&trace);
    assert_eq!(leaks.get("leak_after_close"), Some(&(100, 2400)), "leaks: {leaks:?}");
    assert_eq!(leaks.get("thread_leak"), Some(&(4, 160)), "leaks: {leaks:?}");
    // Every pair of the churn after the descriptors were closed: 2 x 200,000 + 4 x 1,000.
    assert_eq!(trace.counts.frees, 404_000);
    assert_eq!(trace.counts.allocations - trace.counts.frees, trace.outstanding.len() as u64);
}

#[test]
fn an_unwritable_output_leaves_one_warning_and_the_program_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = dir.path().join("fixture");
    compile(&["basic.c"], &exe, &[]);
    let output = std::process::Command::new(&exe)
        .env("LD_PRELOAD", support::preload_library())
        .env("LEAKVIEW_OUTPUT", dir.path().join("no-such-dir/trace.bin"))
        .output()
        .expect("run");
    assert!(output.status.success());
    assert_eq!(String::from_utf8_lossy(&output.stdout), "basic: done\n");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "stderr: {stderr}");
    assert!(stderr.starts_with("leakview: "), "stderr: {stderr}");
}

#[test]
fn a_warning_to_a_stderr_nobody_reads_does_not_end_the_program() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = dir.path().join("fixture");
    compile(&["basic.c"], &exe, &[]);
    // The recorder warns (it cannot create its trace) into a pipe whose reader is gone: the
    // write fails with EPIPE and must not bring the program down with SIGPIPE.
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let output = std::process::Command::new(&exe)
        .env("LD_PRELOAD", support::preload_library())
        .env("LEAKVIEW_OUTPUT", dir.path().join("no-such-dir/trace.bin"))
        .stderr(writer)
        .output()
        .expect("run");
    assert!(output.status.success(), "status {:?}", output.status);
    assert_eq!(String::from_utf8_lossy(&output.stdout), "basic: done\n");
}

/// Records `exe ARGS` into `trace` (warnings on its stderr, no manifest) under bash's
/// `ulimit LIMIT`, which only the program's process gets; fails unless it exits with 0.
fn record_under_limit(
    limit: &str,
    exe: &Path,
    args: &[&str],
    trace: &Path,
) -> (std::process::Output, String) {
    let output = std::process::Command::new("bash")
        .args(["-c", &format!("ulimit {limit} && LD_PRELOAD=\"$LIB\" exec \"$0\" \"$@\"")])
        .arg(exe)
        .args(args)
        .env("LIB", support::preload_library())
        .env("LEAKVIEW_OUTPUT", trace)
        .env_remove("LEAKVIEW_MANIFEST")
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "status {:?}, stderr: {stderr}", output.status);
    (output, stderr)
}

#[test]
fn a_file_size_limit_stops_the_recording_not_the_program() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = dir.path().join("churn");
    compile(&["churn.c"], &exe, &[]);
    let trace_path = dir.path().join("trace.bin");
    // `ulimit -f 1024`: files of at most 1 MiB; 200,000 pairs need about 2 MiB of trace. Past the
    // limit the kernel ends a writer with SIGXFSZ, so the recorder must not go there.
    let (_, stderr) = record_under_limit("-f 1024", &exe, &["200000"], &trace_path);
    assert_eq!(stderr.lines().count(), 1, "stderr: {stderr}");
    assert!(stderr.starts_with("leakview: cannot write the trace any more"), "stderr: {stderr}");

    assert!(std::fs::metadata(&trace_path).expect("trace").len() <= 1 << 20);
    let reader = leakview_format::TraceReader::open(&trace_path).expect("open trace");
    assert!(reader.header().truncated(), "the trace does not say it was cut short");
    let mut allocations = 0;
    for chunk in reader.chunks() {
        for event in reader.events(chunk) {
            if matches!(event.expect("decodes"), leakview_format::Event::Alloc { .. }) {
                allocations += 1;
            }
        }
    }
    assert!((10_000..200_000).contains(&allocations), "{allocations} allocations recorded");
}

#[test]
fn an_address_space_limit_leaves_room_to_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = dir.path().join("fixture");
    compile(&["basic.c"], &exe, &[]);
    let trace_path = dir.path().join("trace.bin");
    // `ulimit -v 2000000`: 2 GB of address space. The recorder's reservations (the trace's
    // mapping, the stack nodes) used to take what they wanted of it and then fail, leaving a
    // trace file behind and no recording.
    let (output, stderr) = record_under_limit("-v 2000000", &exe, &[], &trace_path);
    assert_eq!(stderr, "", "the recorder warned");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "basic: done\n");
    let traces: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .filter_map(|entry| entry.ok().map(|e| e.file_name()))
        .filter(|name| name.to_string_lossy().ends_with(".bin"))
        .collect();
    assert_eq!(traces, vec![std::ffi::OsString::from("trace.bin")]);
    let trace = Trace::load(&trace_path);
    assert!(trace.complete, "trace not marked complete");
    let leaks = Attribution::new(&[&exe]).leaks(&trace);
    assert_eq!(leaks.get("leak_malloc_blocks"), Some(&(5, 120)), "leaks: {leaks:?}");
    assert_eq!(leaks.get("deep_leak"), Some(&(1, 77)), "leaks: {leaks:?}");
}

#[test]
fn an_existing_output_file_is_never_overwritten() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = dir.path().join("fixture");
    compile(&["basic.c"], &exe, &[]);
    let trace_path = dir.path().join("trace.bin");
    std::fs::write(&trace_path, b"precious").expect("write");
    let manifest = dir.path().join("manifest");
    record(&exe, &[], &trace_path, &manifest, None);
    assert_eq!(std::fs::read(&trace_path).expect("read"), b"precious");
    let traces = manifest_traces(&manifest);
    assert_eq!(traces.len(), 1);
    let trace = Trace::load(&traces[0]);
    assert_eq!(traces[0], dir.path().join(format!("trace.{}.bin", trace.metadata.pid)));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&traces[0]).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn a_process_that_cannot_record_tells_the_manifest_not_the_programs_stderr() {
    // Under `leakview record` (which passes a manifest), a process whose trace cannot be
    // created says why in the manifest, for record to report once for the whole run; the
    // program's own stderr stays its own. Without a manifest the warning goes to stderr.
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = dir.path().join("fixture");
    compile(&["basic.c"], &exe, &[]);
    let unwritable = dir.path().join("missing-dir").join("trace.bin");
    let manifest = dir.path().join("manifest");
    std::fs::write(&manifest, b"").expect("manifest");
    let run = |manifest: Option<&Path>| {
        let mut command = std::process::Command::new(&exe);
        command.env("LD_PRELOAD", support::preload_library()).env("LEAKVIEW_OUTPUT", &unwritable);
        match manifest {
            Some(m) => command.env("LEAKVIEW_MANIFEST", m),
            None => command.env_remove("LEAKVIEW_MANIFEST"),
        };
        let output = command.output().expect("run");
        assert!(output.status.success());
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let stderr = run(Some(&manifest));
    assert!(!stderr.contains("leakview"), "{stderr}");
    let listed = std::fs::read_to_string(&manifest).expect("manifest");
    assert!(listed.starts_with("!cannot create trace ") && listed.ends_with('\n'), "{listed}");
    assert_eq!(listed.lines().count(), 1, "{listed}");
    let stderr = run(None);
    assert!(stderr.contains("leakview: recording disabled: cannot create trace"), "{stderr}");
}
