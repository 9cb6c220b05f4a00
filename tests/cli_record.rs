//! End-to-end tests of `leakview record` and `leakview demo`, run through the real binary with the
//! recorder library it carries. Every test uses its own working directory; all share one cache
//! directory (`XDG_CACHE_HOME`), which also exercises concurrent extraction.

mod common;

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use leakview_format::{Event, TraceReader};

fn shared_cache() -> &'static Path {
    static CACHE: OnceLock<tempfile::TempDir> = OnceLock::new();
    CACHE.get_or_init(|| tempfile::tempdir().expect("cache tempdir")).path()
}

/// `leakview ARGS` in `cwd`, with a private cache directory and no inherited recorder settings.
fn leakview(cwd: &Path) -> Command {
    common::leakview_in(cwd, shared_cache())
}

fn run(command: &mut Command) -> Output {
    command.output().expect("leakview runs")
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Compiles a C program at -O2 without frame pointers into `dir`.
fn compile_c(dir: &Path, name: &str, source: &str, extra: &[&str]) -> Result<PathBuf, String> {
    let src = dir.join(format!("{name}.c"));
    fs::write(&src, source).map_err(|e| e.to_string())?;
    let exe = dir.join(name);
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = Command::new(cc)
        .args(["-O2", "-fomit-frame-pointer", "-o"])
        .arg(&exe)
        .arg(&src)
        .args(extra)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() { Ok(exe) } else { Err(String::from_utf8_lossy(&out.stderr).into_owned()) }
}

/// Allocates 100 blocks of sizes 77000..77100, frees all but the first 10, prints its pid.
const ALLOCATOR_PROGRAM: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
void *volatile blocks[100]; /* so the compiler keeps every allocation */
int main(void) {
    printf("pid=%d\n", (int)getpid());
    fflush(stdout);
    for (int i = 0; i < 100; i++) blocks[i] = malloc(77000 + i);
    for (int i = 10; i < 100; i++) free(blocks[i]);
    return 0;
}
"#;

fn trace_path_in_stderr(stderr: &str) -> Option<String> {
    let line = stderr.lines().find(|l| l.starts_with("leakview: trace written to "))?;
    let rest = line.strip_prefix("leakview: trace written to ")?;
    Some(rest.split(" (open it").next()?.to_string())
}

#[test]
fn exit_code_passes_through() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(leakview(dir.path()).args(["record", "-o", "t.bin", "--", "sh", "-c", "exit 3"]));
    assert_eq!(out.status.code(), Some(3), "stderr: {}", stderr_of(&out));
}

#[test]
fn exit_code_passes_through_when_stderr_is_a_pipe_nobody_reads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let status = leakview(dir.path())
        .args(["record", "-o", "t.bin", "--", "sh", "-c", "exit 7"])
        .stdout(Stdio::null())
        .stderr(writer)
        .status()
        .expect("leakview runs");
    assert_eq!(status.code(), Some(7), "status {status:?}");
    // leakview had something to say on stderr: where the trace went.
    assert!(dir.path().join("t.bin").exists());
}

#[test]
fn killing_signal_passes_through() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(leakview(dir.path()).args(["record", "-o", "t.bin", "--", "sh", "-c", "kill -TERM $$"]));
    assert_eq!(out.status.signal(), Some(15), "status {:?}, stderr: {}", out.status, stderr_of(&out));
}

#[test]
fn stdin_and_stdout_pass_through() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = leakview(dir.path())
        .args(["record", "-o", "t.bin", "--", "tr", "a-z", "A-Z"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"hello leakview\n").expect("write");
    }
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "stderr: {}", stderr_of(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "HELLO LEAKVIEW\n");
}

#[test]
fn interrupt_reaches_only_the_child() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The child announces it runs, then waits for `go` and exits 5. A SIGINT sent to leakview alone
    // meanwhile must not end leakview (in a terminal, Ctrl-C reaches the child directly).
    let script = "touch started; while [ ! -e go ]; do sleep 0.02; done; exit 5";
    let mut child = leakview(dir.path())
        .args(["record", "-o", "t.bin", "--", "sh", "-c", script])
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    wait_for_file(&dir.path().join("started"));
    let pid = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process(pid, rustix::process::Signal::INT).expect("kill -INT");
    rustix::process::kill_process(pid, rustix::process::Signal::QUIT).expect("kill -QUIT");
    fs::write(dir.path().join("go"), b"").expect("go");
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(5), "status {status:?}");
}

#[test]
fn ctrl_c_to_the_process_group_ends_both_with_sigint() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().expect("tempdir");
    // Like a terminal's Ctrl-C: SIGINT to the whole (foreground) process group. The child dies of
    // it, and leakview, which ignored it meanwhile, then dies of the same signal.
    let script = "touch started; while :; do sleep 0.02; done";
    let mut child = leakview(dir.path())
        .args(["record", "-o", "t.bin", "--", "sh", "-c", script])
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("spawn");
    wait_for_file(&dir.path().join("started"));
    let group = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process_group(group, rustix::process::Signal::INT).expect("kill -INT -pgid");
    let status = child.wait().expect("wait");
    assert_eq!(status.signal(), Some(2), "status {status:?}");
}

#[test]
fn terminate_is_forwarded_to_the_child() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = "touch started; while :; do sleep 0.02; done";
    let mut child = leakview(dir.path())
        .args(["record", "-o", "t.bin", "--", "sh", "-c", script])
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    wait_for_file(&dir.path().join("started"));
    let pid = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("kill -TERM");
    let status = child.wait().expect("wait");
    assert_eq!(status.signal(), Some(15), "status {status:?}");
}

fn wait_for_file(path: &Path) {
    // Not a timing assertion: only a bound on how long a broken run may hang the test.
    for _ in 0..3000 {
        if path.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("{} never appeared", path.display());
}

#[test]
fn a_rust_program_records_to_its_end() {
    // leakview itself is the Rust program: its main thread's first allocation comes from inside
    // pthread_getattr_np (the standard library's start-up), which once hung the recording.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = leakview(dir.path())
        .args(["record", "-o", "rust.bin", "--"])
        .arg(env!("CARGO_BIN_EXE_leakview"))
        .arg("--version")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("leakview runs");
    // Not a timing assertion: only a bound on how long a broken run may hang the test.
    for _ in 0..3000 {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    if child.try_wait().expect("wait").is_none() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("recording `leakview --version` did not end");
    }
    let out = child.wait_with_output().expect("output");
    assert!(out.status.success(), "stderr: {}", stderr_of(&out));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("leakview "));
    let reader = TraceReader::open(&dir.path().join("rust.bin")).expect("readable");
    assert!(reader.is_complete());
    let allocations = reader
        .chunks()
        .iter()
        .flat_map(|c| reader.events(c))
        .filter(|e| matches!(e, Ok(Event::Alloc { .. })))
        .count();
    assert!(allocations > 10, "{allocations} allocations recorded");
}

#[test]
fn refuses_to_overwrite_without_force_and_overwrites_with_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let trace = dir.path().join("t.bin");
    fs::write(&trace, b"precious").expect("write");
    let marker = dir.path().join("ran");
    let out = run(leakview(dir.path()).args(["record", "-o", "t.bin", "--", "touch"]).arg(&marker));
    assert_eq!(out.status.code(), Some(2));
    let stderr = stderr_of(&out);
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("--force"), "{stderr}");
    assert_eq!(fs::read(&trace).expect("kept"), b"precious");
    assert!(!marker.exists(), "the command must not run when the output is refused");

    let out =
        run(leakview(dir.path()).args(["record", "--force", "-o", "t.bin", "--", "touch"]).arg(&marker));
    assert!(out.status.success(), "stderr: {}", stderr_of(&out));
    assert!(marker.exists());
    let reader = TraceReader::open(&trace).expect("the old file was replaced by a trace");
    assert_eq!(reader.metadata().argv.first().map(String::as_str), Some("touch"));
}

#[test]
fn force_replaces_a_symlink_without_following_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("precious");
    fs::write(&target, b"keep me").expect("write");
    std::os::unix::fs::symlink(&target, dir.path().join("t.bin")).expect("symlink");
    let out = run(leakview(dir.path()).args(["record", "--force", "-o", "t.bin", "--", "true"]));
    assert!(out.status.success(), "stderr: {}", stderr_of(&out));
    assert_eq!(fs::read(&target).expect("target kept"), b"keep me");
    let meta = fs::symlink_metadata(dir.path().join("t.bin")).expect("trace exists");
    assert!(meta.file_type().is_file());
}

#[test]
fn default_output_is_named_after_program_and_pid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = compile_c(dir.path(), "allocs", ALLOCATOR_PROGRAM, &[]).expect("cc");
    let out = run(leakview(dir.path()).args(["record", "--"]).arg(&exe));
    assert!(out.status.success(), "stderr: {}", stderr_of(&out));
    let pid: u32 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .strip_prefix("pid=")
        .and_then(|p| p.parse().ok())
        .expect("the program prints its pid");
    let expected = format!("leakview-allocs-{pid}.bin");
    assert!(dir.path().join(&expected).is_file(), "missing {expected}");
    let stderr = stderr_of(&out);
    assert_eq!(trace_path_in_stderr(&stderr), Some(format!("./{expected}")), "{stderr}");
    assert!(stderr.contains(&format!("leakview ./{expected}")), "{stderr}");
}

#[test]
fn trace_has_mode_0600_pid_argv_and_the_allocations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = compile_c(dir.path(), "allocs", ALLOCATOR_PROGRAM, &[]).expect("cc");
    let out = run(leakview(dir.path())
        .args(["record", "-o", "allocs.bin", "--depth", "32", "--"])
        .arg(&exe)
        .args(["alpha", "beta"]));
    assert!(out.status.success(), "stderr: {}", stderr_of(&out));
    let trace = dir.path().join("allocs.bin");
    assert_eq!(fs::metadata(&trace).expect("trace").mode() & 0o777, 0o600);

    let pid: u32 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .strip_prefix("pid=")
        .and_then(|p| p.parse().ok())
        .expect("the program prints its pid");
    let reader = TraceReader::open(&trace).expect("readable");
    let meta = reader.metadata();
    assert_eq!(meta.pid, pid);
    assert_eq!(meta.argv, vec![exe.to_string_lossy().into_owned(), "alpha".into(), "beta".into()]);
    assert_eq!(meta.max_stack_depth, 32);
    assert!(reader.is_complete(), "the recorder finished the trace");

    let mut ours = HashSet::new();
    let mut ours_freed = 0;
    for chunk in reader.chunks() {
        for event in reader.events(chunk) {
            match event.expect("decodes") {
                Event::Alloc { addr, size, .. } if (77000..77100).contains(&size) => {
                    assert!(ours.insert(addr), "address {addr:#x} allocated twice while live");
                }
                Event::Free { addr, .. } if ours.contains(&addr) => ours_freed += 1,
                _ => {}
            }
        }
    }
    assert_eq!(ours.len(), 100, "the program's 100 tagged allocations");
    assert_eq!(ours_freed, 90, "of which it freed 90");
}

/// Prints a line (stdio allocates stdout's buffer and keeps it), looks up its user (NSS keeps
/// its modules), and with an argument keeps a copy of it: the program's one leak.
const RUNTIME_STATE_PROGRAM: &str = r#"
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
char *volatile kept;
int main(int argc, char **argv) {
    struct passwd *me = getpwuid(getuid());
    printf("user %s\n", me ? me->pw_name : "?");
    if (argc > 1) kept = strdup(argv[1]);
    return 0;
}
"#;

#[test]
fn check_leaves_out_what_the_c_runtime_keeps_unless_asked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = compile_c(dir.path(), "runtime", RUNTIME_STATE_PROGRAM, &["-g"]).expect("cc");
    let check = |trace: &str, extra: &[&str]| run(leakview(dir.path()).arg("check").args(extra).arg(trace));

    let out = run(leakview(dir.path()).args(["record", "-o", "clean.bin", "--"]).arg(&exe));
    assert!(out.status.success(), "stderr: {}", stderr_of(&out));
    let clean = check("clean.bin", &[]);
    let text = String::from_utf8_lossy(&clean.stdout);
    assert_eq!(clean.status.code(), Some(0), "{text}");
    assert!(text.contains("all the runtimes' own"), "{text}");
    assert!(text.contains("not counted: "), "{text}");
    // Counted, stdout's buffer alone is a leak.
    let counted = check("clean.bin", &["--no-default-suppressions"]);
    let text = String::from_utf8_lossy(&counted.stdout);
    assert_eq!(counted.status.code(), Some(1), "{text}");
    assert!(text.contains("_IO_file_doallocate"), "{text}");

    let out = run(leakview(dir.path()).args(["record", "-o", "leak.bin", "--"]).arg(&exe).arg("a copy"));
    assert!(out.status.success(), "stderr: {}", stderr_of(&out));
    let leak = check("leak.bin", &[]);
    let text = String::from_utf8_lossy(&leak.stdout);
    assert_eq!(leak.status.code(), Some(1), "{text}");
    assert!(text.starts_with("leaks: 7 B in 1 block"), "{text}");
    assert!(text.contains("main"), "{text}");
    assert!(!text.contains("_IO_file_doallocate"), "{text}");
}

/// `source` compiled with `-g` into `dir/<name>` and recorded into `dir/<name>.bin`.
fn recorded_c(dir: &Path, name: &str, source: &str) {
    let exe = compile_c(dir, name, source, &["-g"]).expect("cc");
    let out = run(leakview(dir).args(["record", "-o", &format!("{name}.bin"), "--"]).arg(&exe));
    assert!(out.status.success(), "stderr: {}", stderr_of(&out));
}

/// Leaks 100 bytes in `keep_one`, a `strdup` copy in `name_copy` (twice) and 7 bytes right in
/// `main`.
const SUPPRESSIBLE_PROGRAM: &str = r#"
#include <stdlib.h>
#include <string.h>
void *volatile sink; /* so the compiler keeps every allocation */
volatile int calls; /* work after each call, so neither is a tail call */
__attribute__((noinline)) static void *keep_one(size_t n) { void *p = malloc(n); calls++; return p; }
__attribute__((noinline)) static char *name_copy(const char *s) { char *p = strdup(s); calls++; return p; }
int main(void) {
    sink = keep_one(100);
    sink = name_copy("first");
    sink = name_copy("second");
    sink = malloc(7);
    return 0;
}
"#;

#[test]
fn printed_suppressions_pass_the_check_but_for_what_main_allocates() {
    let dir = tempfile::tempdir().expect("tempdir");
    recorded_c(dir.path(), "leaks", SUPPRESSIBLE_PROGRAM);
    let printed = run(leakview(dir.path()).args(["check", "--print-suppressions", "leaks.bin"]));
    let text = String::from_utf8_lossy(&printed.stdout).into_owned();
    assert_eq!(printed.status.code(), Some(1), "{text}");
    assert!(text.starts_with("leaks: 120 B in 4 blocks outstanding"), "{text}");
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("leak:")).collect();
    let rules: Vec<&str> = lines.iter().map(|l| l.split_whitespace().next().unwrap_or_default()).collect();
    assert_eq!(rules, ["leak:^keep_one$", "leak:^name_copy$"], "{text}");
    assert!(text.contains("# no line for #"), "the block allocated in main gets none: {text}");

    fs::write(dir.path().join("suggested.supp"), lines.join("\n")).expect("write");
    let again = run(leakview(dir.path()).args(["check", "--suppressions", "suggested.supp", "leaks.bin"]));
    let text = String::from_utf8_lossy(&again.stdout);
    assert_eq!(again.status.code(), Some(1), "{text}");
    assert!(text.starts_with("leaks: 7 B in 1 block"), "only main's block is left: {text}");
    assert!(text.contains("suppressed: 113 B in 3 blocks"), "{text}");

    // The same verdicts as JSON, with every leak and the suggestions' leaks by index.
    let json = |extra: &[&str]| {
        let out = run(leakview(dir.path()).args(["check", "--format", "json"]).args(extra).arg("leaks.bin"));
        assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr_of(&out));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("one JSON document")
    };
    let doc = json(&[]);
    assert_eq!(doc["passed"], false);
    assert_eq!(doc["leaked"], serde_json::json!({ "blocks": 4, "bytes": 120 }));
    let leaks = doc["leaks"].as_array().expect("leaks");
    assert_eq!(leaks.iter().map(|l| l["bytes"].as_u64().unwrap_or(0)).sum::<u64>(), 120);
    let suggested = doc["suggested_suppressions"].as_array().expect("suggestions");
    let lines: Vec<&str> = suggested.iter().filter_map(|s| s["line"].as_str()).collect();
    assert_eq!(lines, ["leak:^keep_one$", "leak:^name_copy$"], "{doc:#}");
    for s in suggested {
        let function =
            s["line"].as_str().unwrap_or_default().trim_start_matches("leak:^").trim_end_matches('$');
        let matched = s["leaks"].as_array().expect("indexes");
        assert!(!matched.is_empty());
        for index in matched {
            let frames = &leaks[index.as_u64().expect("index") as usize]["frames"];
            let on_stack = frames.as_array().expect("frames").iter().any(|f| f["function"] == function);
            assert!(on_stack, "{function} is on the stack of leak {index}: {doc:#}");
        }
    }
    let doc = json(&["--suppressions", "suggested.supp"]);
    assert_eq!(doc["leaked"], serde_json::json!({ "blocks": 1, "bytes": 7 }));
    assert_eq!(doc["suppressed"], serde_json::json!({ "blocks": 3, "bytes": 113 }));
    let hits: Vec<(&str, u64)> = doc["suppressions"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|r| (r["pattern"].as_str().unwrap_or_default(), r["bytes"].as_u64().unwrap_or(0)))
        .collect();
    assert_eq!(hits, [("^keep_one$", 100), ("^name_copy$", 13)]);
}

/// Leaks one block from each of twelve functions.
const TWELVE_LEAKS_PROGRAM: &str = r#"
#include <stdlib.h>
void *volatile sink;
volatile int calls;
#define LEAK(n) __attribute__((noinline)) static void leak_##n(void) { sink = malloc(100 + n); calls++; }
LEAK(1) LEAK(2) LEAK(3) LEAK(4) LEAK(5) LEAK(6) LEAK(7) LEAK(8) LEAK(9) LEAK(10) LEAK(11) LEAK(12)
int main(void) {
    leak_1(); leak_2(); leak_3(); leak_4(); leak_5(); leak_6();
    leak_7(); leak_8(); leak_9(); leak_10(); leak_11(); leak_12();
    return 0;
}
"#;

#[test]
fn suggestions_for_leaks_past_the_listed_ones_say_where_to_find_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    recorded_c(dir.path(), "twelve", TWELVE_LEAKS_PROGRAM);
    let out = run(leakview(dir.path()).args(["check", "--print-suppressions", "twelve.bin"]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("… and 2 stacks more"), "{text}");
    let rules = text.lines().filter(|l| l.starts_with("leak:^leak_")).count();
    assert_eq!(rules, 12, "one line per function, the unlisted ones too: {text}");
    assert!(text.contains("# leaks after #10 are not listed above; `--format json` has them all"), "{text}");
}

#[test]
fn a_directory_that_takes_no_trace_is_refused_before_the_program_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let marker = dir.path().join("ran");
    // `-o` into it, and the working directory for the default name.
    for (cwd, output) in [(dir.path(), Some("/proc/leakview-test.bin")), (Path::new("/proc"), None)] {
        let mut command = leakview(cwd);
        command.arg("record");
        if let Some(output) = output {
            command.args(["-o", output]);
        }
        let out = run(command.args(["--", "touch"]).arg(&marker));
        assert_eq!(out.status.code(), Some(2), "{output:?}");
        let stderr = stderr_of(&out);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains("cannot create traces in /proc: "), "{stderr}");
        assert!(!marker.exists(), "the command must not run when no trace can be written");
    }
}

#[test]
fn missing_command_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(leakview(dir.path()).args(["record", "--", "leakview-no-such-command-xyz", "arg"]));
    assert_eq!(out.status.code(), Some(2));
    let stderr = stderr_of(&out);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("command not found: leakview-no-such-command-xyz"), "{stderr}");
}

#[test]
fn non_executable_file_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("notes.txt");
    fs::write(&file, b"not a program").expect("write");
    fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = run(leakview(dir.path()).args(["record", "--", "./notes.txt"]));
    assert_eq!(out.status.code(), Some(2));
    let stderr = stderr_of(&out);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("not executable"), "{stderr}");
}

#[test]
fn statically_linked_program_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = "#include <stdio.h>\nint main(void) { return fopen(\"ran\", \"w\") == 0; }\n";
    let exe = match compile_c(dir.path(), "static", source, &["-static"]) {
        Ok(exe) => exe,
        Err(why) => {
            eprintln!("note: skipping the static-binary check: `cc -static` does not work here: {why}");
            return;
        }
    };
    let out = run(leakview(dir.path()).args(["record", "--"]).arg(&exe));
    assert_eq!(out.status.code(), Some(2));
    let stderr = stderr_of(&out);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("statically linked") && stderr.contains("LD_PRELOAD"), "{stderr}");
    assert!(!dir.path().join("ran").exists(), "the program must not run");
}

#[test]
fn setuid_program_of_another_user_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let program = if rustix::process::geteuid().is_root() {
        // As root, a copy of `true` made setuid to `nobody` changes identity when run.
        let copy = dir.path().join("suid-true");
        fs::copy("/bin/true", &copy).expect("copy /bin/true");
        let chown = Command::new("chown").args(["65534:65534"]).arg(&copy).status().expect("chown");
        assert!(chown.success());
        fs::set_permissions(&copy, fs::Permissions::from_mode(0o4755)).expect("chmod");
        copy
    } else {
        match ["/usr/bin/passwd", "/bin/su", "/usr/bin/su"]
            .iter()
            .map(PathBuf::from)
            .find(|p| fs::metadata(p).is_ok_and(|m| m.mode() & 0o4000 != 0 && m.uid() == 0))
        {
            Some(path) => path,
            None => {
                eprintln!("note: skipping the setuid check: no setuid-root program found");
                return;
            }
        }
    };
    let out = run(leakview(dir.path()).args(["record", "--"]).arg(&program).arg("--help"));
    assert_eq!(out.status.code(), Some(2));
    let stderr = stderr_of(&out);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("setuid") && stderr.contains("LD_PRELOAD"), "{stderr}");
}

#[test]
fn bad_arguments_are_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    for depth in ["0", "257", "100000", "-1"] {
        let out = run(leakview(dir.path()).args(["record", "--depth", depth, "--", "true"]));
        assert_eq!(out.status.code(), Some(2), "--depth {depth}: {}", stderr_of(&out));
        assert!(stderr_of(&out).contains("1..=256"), "--depth {depth}: {}", stderr_of(&out));
    }
    let out = run(leakview(dir.path()).args(["record", "-o", "missing-dir/t.bin", "--", "true"]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("does not exist"));
    let out = run(leakview(dir.path())
        .args(["record", "--", "true"])
        .env("LEAKVIEW_PRELOAD_PATH", "/no/such/lib.so"));
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("LEAKVIEW_PRELOAD_PATH"));
}

#[test]
fn the_deepest_depth_accepted_is_the_recorders_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(leakview(dir.path()).args(["record", "--depth", "256", "-o", "t.bin", "--", "true"]));
    assert!(out.status.success(), "stderr: {}", stderr_of(&out));
    let trace = TraceReader::open(&dir.path().join("t.bin")).expect("trace");
    assert_eq!(trace.metadata().max_stack_depth, 256, "the recorder keeps the depth asked for");
}

#[test]
fn fork_children_get_their_own_traces() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = r#"
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
void *volatile sink; /* so the compiler keeps every allocation */
int main(void) {
    sink = malloc(4242);
    pid_t child = fork();
    if (child == 0) { sink = malloc(4343); _exit(0); }
    waitpid(child, NULL, 0);
    free(sink);
    return 0;
}
"#;
    let exe = compile_c(dir.path(), "forks", source, &[]).expect("cc");
    let out = run(leakview(dir.path()).args(["record", "-o", "forks.bin", "--"]).arg(&exe));
    assert!(out.status.success(), "stderr: {}", stderr_of(&out));
    let stderr = stderr_of(&out);
    assert!(stderr.contains("2 traces written"), "{stderr}");
    let names: Vec<String> = fs::read_dir(dir.path())
        .expect("list")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.starts_with("forks.") && n.ends_with(".bin"))
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    for name in &names {
        assert!(stderr.contains(&format!("./{name}")), "{name} listed in: {stderr}");
    }
    let has_alloc_of = |reader: &TraceReader, wanted: u64| {
        reader.chunks().iter().any(|chunk| {
            reader.events(chunk).any(|e| matches!(e, Ok(Event::Alloc { size, .. }) if size == wanted))
        })
    };
    let parent = TraceReader::open(&dir.path().join("forks.bin")).expect("parent trace");
    let child_name = names.iter().find(|n| *n != "forks.bin").expect("child trace");
    let child = TraceReader::open(&dir.path().join(child_name)).expect("child trace");
    assert_eq!(child_name, &format!("forks.{}.bin", child.metadata().pid));
    assert_eq!(child.metadata().parent_pid, parent.metadata().pid);
    assert!(has_alloc_of(&parent, 4242) && !has_alloc_of(&parent, 4343), "parent holds its own block only");
    assert!(has_alloc_of(&child, 4343) && !has_alloc_of(&child, 4242), "child holds its own block only");
}

#[test]
fn a_child_that_outlives_the_recording_says_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The child waits until `leakview record` has finished (its list of traces is deleted then),
    // starts recording with its first allocation, and writes `done` to its stderr (a file)
    // afterwards.
    let source = r#"
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
void *volatile sink; /* so the compiler keeps every allocation */
int main(void) {
    if (fork() != 0) return 0;
    int err = open("child-stderr.txt", O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(err, 2);
    const char *manifest = getenv("LEAKVIEW_MANIFEST");
    for (int i = 0; manifest && access(manifest, F_OK) == 0 && i < 3000; i++) usleep(10000);
    sink = malloc(4545);
    write(2, "done\n", 5);
    return 0;
}
"#;
    let exe = compile_c(dir.path(), "daemon", source, &[]).expect("cc");
    let out =
        run(leakview(dir.path()).args(["record", "-o", "daemon.bin", "--"]).arg(&exe).stderr(Stdio::null()));
    assert!(out.status.success(), "status {:?}", out.status);
    let child_stderr = dir.path().join("child-stderr.txt");
    let mut said = String::new();
    // Not a timing assertion: only a bound on how long a broken run may hang the test.
    for _ in 0..3000 {
        said = fs::read_to_string(&child_stderr).unwrap_or_default();
        if said.contains("done") {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(said, "done\n", "the child's stderr holds its own words only");
    let child_trace = fs::read_dir(dir.path())
        .expect("list")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .any(|n| n.starts_with("daemon.") && n != "daemon.bin" && n.ends_with(".bin"));
    assert!(child_trace, "the child recorded into its own trace");
}

/// The sizes of the trace's allocations whose size is one of `wanted`, in trace order.
fn allocations_sized(reader: &TraceReader, wanted: &[u64]) -> Vec<u64> {
    let mut sizes = Vec::new();
    for chunk in reader.chunks() {
        for event in reader.events(chunk) {
            if let Ok(Event::Alloc { size, .. }) = event
                && wanted.contains(&size)
            {
                sizes.push(size);
            }
        }
    }
    sizes
}

#[test]
fn an_image_replaced_by_exec_leaves_a_complete_trace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = r#"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
void *volatile sink; /* so the compiler keeps every allocation */
int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "again") == 0) { sink = malloc(8888); return 0; }
    sink = malloc(7777);
    char *args[] = {argv[0], "again", NULL};
    execv(argv[0], args);
    return 1;
}
"#;
    let exe = compile_c(dir.path(), "reexec", source, &[]).expect("cc");
    let out = run(leakview(dir.path()).args(["record", "-o", "reexec.bin", "--"]).arg(&exe));
    assert!(out.status.success(), "stderr: {}", stderr_of(&out));
    assert!(stderr_of(&out).contains("2 traces written"), "{}", stderr_of(&out));
    let before = TraceReader::open(&dir.path().join("reexec.bin")).expect("trace of the first image");
    let pid = before.metadata().pid;
    let after =
        TraceReader::open(&dir.path().join(format!("reexec.{pid}.bin"))).expect("trace of the exec'd image");
    assert_eq!(after.metadata().pid, pid);
    assert_eq!(allocations_sized(&before, &[7777, 8888]), [7777]);
    assert_eq!(allocations_sized(&after, &[7777, 8888]), [8888]);
    assert!(before.is_complete(), "the replaced image's trace is marked complete: {:?}", before.header());
    assert!(before.header().end_timestamp <= after.metadata().start_monotonic_ns);
    let header = before.header();
    assert_eq!(header.chunks_reserved, header.chunks_claimed, "the replaced image's trace is trimmed");
    assert_eq!(
        before.file_len(),
        leakview_format::layout::chunk_offset(header.chunks_claimed, header.chunk_size)
    );
    assert!(after.is_complete());
}

#[test]
fn embedded_library_is_extracted_privately() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(leakview(dir.path()).args(["record", "-o", "t.bin", "--", "true"]));
    assert!(out.status.success(), "stderr: {}", stderr_of(&out));
    let root = shared_cache().join("leakview");
    // One directory per build (beside the file that says when the cache was last tidied).
    let versions: Vec<PathBuf> = fs::read_dir(&root)
        .expect("cache root")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(versions.len(), 1, "{versions:?}");
    let version_dir = &versions[0];
    let name = version_dir.file_name().expect("name").to_string_lossy().into_owned();
    assert!(name.starts_with(&format!("{}-", env!("CARGO_PKG_VERSION"))), "{name}");
    assert_eq!(fs::metadata(version_dir).expect("dir").mode() & 0o777, 0o700);
    let library = fs::read(version_dir.join("libleakview_preload.so")).expect("library extracted");
    assert_eq!(library.get(..4), Some(&b"\x7fELF"[..]));
}

#[test]
fn the_printed_library_records_a_program_preloaded_by_hand() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(leakview(dir.path()).arg("library"));
    assert!(out.status.success(), "stderr: {}", stderr_of(&out));
    let library = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(library.is_absolute() && library.ends_with("libleakview_preload.so"), "{library:?}");
    assert!(library.starts_with(shared_cache()), "extracted into the cache: {library:?}");
    // Asked again, the same extracted file.
    let again = run(leakview(dir.path()).arg("library"));
    assert_eq!(again.stdout, out.stdout);

    let exe = compile_c(dir.path(), "allocs", ALLOCATOR_PROGRAM, &[]).expect("cc");
    let out = run(Command::new(&exe)
        .current_dir(dir.path())
        .env("LD_PRELOAD", &library)
        .env("LEAKVIEW_OUTPUT", dir.path().join("by-hand-%p.bin")));
    assert!(out.status.success(), "stderr: {}", stderr_of(&out));
    let pid =
        String::from_utf8_lossy(&out.stdout).trim().strip_prefix("pid=").map(str::to_string).expect("pid");
    let reader = TraceReader::open(&dir.path().join(format!("by-hand-{pid}.bin"))).expect("the trace");
    let ours = reader
        .chunks()
        .iter()
        .flat_map(|chunk| reader.events(chunk))
        .filter(|e| matches!(e, Ok(Event::Alloc { size: 77000..77100, .. })))
        .count();
    assert_eq!(ours, 100, "the program's 100 tagged allocations");
}

#[test]
fn a_directory_as_the_output_takes_the_default_name_inside_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let traces = dir.path().join("traces");
    fs::create_dir(&traces).expect("mkdir");
    let exe = compile_c(dir.path(), "allocs", ALLOCATOR_PROGRAM, &[]).expect("cc");
    let pid_of = |out: &Output| {
        String::from_utf8_lossy(&out.stdout).trim().strip_prefix("pid=").map(str::to_string).expect("pid")
    };

    // `-o DIR` and `-o DIR/`.
    for output in ["traces", "traces/"] {
        let out = run(leakview(dir.path()).args(["record", "-o", output, "--"]).arg(&exe));
        assert!(out.status.success(), "stderr: {}", stderr_of(&out));
        let expected = format!("leakview-allocs-{}.bin", pid_of(&out));
        TraceReader::open(&traces.join(&expected)).expect("the trace, named by default, in the directory");
        assert_eq!(trace_path_in_stderr(&stderr_of(&out)), Some(format!("./traces/{expected}")));
    }

    // `LEAKVIEW_OUTPUT=DIR` with the library preloaded by hand.
    let library = run(leakview(dir.path()).arg("library"));
    let library = PathBuf::from(String::from_utf8_lossy(&library.stdout).trim());
    let out = run(Command::new(&exe)
        .current_dir(dir.path())
        .env("LD_PRELOAD", &library)
        .env("LEAKVIEW_OUTPUT", &traces));
    assert!(out.status.success(), "stderr: {}", stderr_of(&out));
    TraceReader::open(&traces.join(format!("leakview-allocs-{}.bin", pid_of(&out))))
        .expect("the trace, named by default, in the directory");
    assert_eq!(fs::read_dir(&traces).expect("list").count(), 3, "nothing else written there");
}

#[test]
fn preload_path_override_is_used() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Extract the embedded library once, then record with a copy of it named by the override.
    let out = run(leakview(dir.path()).args(["record", "-o", "first.bin", "--", "true"]));
    assert!(out.status.success(), "stderr: {}", stderr_of(&out));
    let extracted = fs::read_dir(shared_cache().join("leakview"))
        .expect("cache")
        .filter_map(|e| e.ok().map(|e| e.path().join("libleakview_preload.so")))
        .find(|p| p.is_file())
        .expect("extracted library");
    let copy = dir.path().join("libcopy.so");
    fs::copy(&extracted, &copy).expect("copy");
    let out = run(leakview(dir.path())
        .args(["record", "-o", "second.bin", "--", "sh", "-c", "echo $LD_PRELOAD"])
        .env("LEAKVIEW_PRELOAD_PATH", &copy));
    assert!(out.status.success(), "stderr: {}", stderr_of(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), copy.to_string_lossy());
    TraceReader::open(&dir.path().join("second.bin")).expect("recorded through the override");
}

#[test]
fn existing_ld_preload_entries_are_kept_after_the_recorder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(leakview(dir.path())
        .args(["record", "-o", "t.bin", "--", "sh", "-c", "echo $LD_PRELOAD"])
        .env("LD_PRELOAD", "libm.so.6"));
    assert!(out.status.success(), "stderr: {}", stderr_of(&out));
    let value = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let (first, rest) = value.split_once(':').expect("two entries");
    assert!(first.ends_with("/libleakview_preload.so"), "{value}");
    assert_eq!(rest, "libm.so.6");
}

#[test]
fn demo_never_overwrites_an_explicit_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("mine.bin"), b"mine").expect("write");
    let out = run(leakview(dir.path()).args(["demo", "--no-tui", "-o", "mine.bin"]));
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stderr_of(&out).lines().count(), 1, "{}", stderr_of(&out));
    assert_eq!(fs::read(dir.path().join("mine.bin")).expect("kept"), b"mine");
}

#[test]
fn demo_shows_the_known_leaks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(leakview(dir.path()).args(["demo", "--no-tui"]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = stderr_of(&out);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    assert!(dir.path().join("leakview-demo.bin").is_file(), "the trace is kept: {stderr}");
    // The leaks documented at the top of fixtures/demo/leaky.c: each a group of the report (its
    // header line `#N  SIZE  BLOCKS ...`, then its stack) with that many blocks and that function.
    let groups: Vec<&str> = stdout.split("\n#").skip(1).collect();
    let has_group = |blocks: &str, function: &str| {
        groups.iter().any(|g| {
            g.lines().next().is_some_and(|header| header.contains(&format!(" {blocks} ")))
                && g.contains(function)
        })
    };
    for (blocks, function) in
        [("20 blocks", "handle_request"), ("16 blocks", "cache_put"), ("6 blocks", "reload_config")]
    {
        assert!(has_group(blocks, function), "no group of {blocks} in {function} in:\n{stdout}");
    }
    let cache_groups = groups.iter().filter(|g| g.contains("cache_put") && g.contains("16 blocks")).count();
    assert_eq!(cache_groups, 2, "cache entries and their values:\n{stdout}");
}

#[test]
fn demo_twice_keeps_both_traces() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("leakview-demo.bin"), b"an earlier trace").expect("write");
    let out = run(leakview(dir.path()).args(["demo", "--no-tui"]));
    assert!(out.status.success(), "stderr: {}", stderr_of(&out));
    assert_eq!(fs::read(dir.path().join("leakview-demo.bin")).expect("kept"), b"an earlier trace");
    TraceReader::open(&dir.path().join("leakview-demo-2.bin")).expect("the next free name");
    assert!(stderr_of(&out).contains("./leakview-demo-2.bin"), "{}", stderr_of(&out));
}

/// `--no-children` records the program started and the image it execs, not the process it
/// forks (nor what that one runs); without it, all three record.
#[test]
fn no_children_records_only_the_started_process_and_its_execs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = r#"
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
void *volatile sink; /* so the compiler keeps every allocation */
int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "child") == 0) { sink = malloc(4343); return 0; }
    if (argc > 1 && strcmp(argv[1], "again") == 0) { sink = malloc(8888); return 0; }
    sink = malloc(4242);
    pid_t child = fork();
    if (child == 0) {
        char *args[] = {argv[0], "child", NULL};
        execv(argv[0], args);
        _exit(1);
    }
    waitpid(child, NULL, 0);
    char *args[] = {argv[0], "again", NULL};
    execv(argv[0], args);
    return 1;
}
"#;
    let exe = compile_c(dir.path(), "family", source, &[]).expect("cc");
    let sizes_recorded = |stem: &str| -> Vec<u64> {
        let mut sizes = Vec::new();
        for entry in fs::read_dir(dir.path()).expect("list").filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(&format!("{stem}.")) && name.ends_with(".bin") {
                let reader = TraceReader::open(&entry.path()).expect("trace");
                sizes.extend(allocations_sized(&reader, &[4242, 4343, 8888]));
            }
        }
        sizes.sort_unstable();
        sizes
    };

    let all = run(leakview(dir.path()).args(["record", "-o", "all.bin", "--"]).arg(&exe));
    assert!(all.status.success(), "stderr: {}", stderr_of(&all));
    assert!(stderr_of(&all).contains("3 traces written"), "{}", stderr_of(&all));
    assert_eq!(sizes_recorded("all"), [4242, 4343, 8888]);

    let own = run(leakview(dir.path()).args(["record", "--no-children", "-o", "own.bin", "--"]).arg(&exe));
    assert!(own.status.success(), "stderr: {}", stderr_of(&own));
    assert!(stderr_of(&own).contains("2 traces written"), "{}", stderr_of(&own));
    assert_eq!(sizes_recorded("own"), [4242, 8888]);
}

/// A shell script that opens its own file under descriptor 3 (`exec 3>file`, the number the
/// trace's file got when it was created) and allocates enough for the trace to grow: the
/// script's file holds exactly what it wrote, and the trace is complete.
#[test]
fn a_shell_that_takes_descriptor_3_keeps_its_file() {
    let Some(bash) = common::installed("bash") else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let script = "exec 3>out.txt; echo one >&3; i=0; \
                  while [ $i -lt 40000 ]; do a[$i]=value-$i; i=$((i+1)); done; unset a; echo two >&3";
    let out = run(leakview(dir.path())
        .args(["record", "--no-children", "-o", "t.bin", "--"])
        .arg(&bash)
        .args(["-c", script]));
    assert!(out.status.success(), "status {:?}, stderr: {}", out.status, stderr_of(&out));
    assert_eq!(fs::read_to_string(dir.path().join("out.txt")).expect("the script's file"), "one\ntwo\n");
    let reader = TraceReader::open(&dir.path().join("t.bin")).expect("trace");
    assert!(reader.is_complete(), "trace not complete");
    let allocations = reader
        .chunks()
        .iter()
        .flat_map(|chunk| reader.events(chunk))
        .filter(|event| matches!(event, Ok(Event::Alloc { .. })))
        .count();
    assert!(allocations > 40_000, "{allocations} allocations recorded");
}
