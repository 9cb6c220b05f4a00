//! Every command that reads a trace (`report`, `suspects`, `stats`, `check`, `diff`, `view`)
//! refuses a path that cannot hold one with a one-line error naming it once, and exit code 2:
//! a directory, a FIFO (which is never opened: that would wait for a writer forever), an empty
//! file.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The commands that read a trace, as argument lists ending with the trace path.
const READING_COMMANDS: [&[&str]; 7] =
    [&["report"], &["suspects"], &["stats"], &["check"], &["diff"], &["view"], &[]];

/// `leakview ARGS PATH`, killed (and the test failed) if it has not finished after a minute: a
/// command that opens a FIFO would wait forever.
fn leakview_on(args: &[&str], path: &Path) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_leakview"))
        .args(args)
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run leakview");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("leakview {args:?} {} did not finish", path.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// Runs every reading command on `path` and checks the one-line error says `says` and names the
/// path once.
fn every_command_refuses(path: &Path, says: &str) {
    let shown = path.to_str().expect("utf-8");
    for args in READING_COMMANDS {
        let out = leakview_on(args, path);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "leakview {args:?} {shown}: {err}");
        assert!(err.starts_with("leakview: "), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: one line: {err}");
        assert_eq!(err.matches(shown).count(), 1, "{args:?}: the path once: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn a_directory_is_not_a_trace() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sub = dir.path().join("traces");
    std::fs::create_dir(&sub).expect("mkdir");
    every_command_refuses(&sub, "is a directory, not a trace");
}

#[test]
fn a_fifo_is_refused_without_being_opened() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fifo = dir.path().join("trace.fifo");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
        0,
    )
    .expect("mkfifo");
    every_command_refuses(&fifo, "is not a regular file (a pipe?); save the trace to a file first");
}

#[test]
fn an_empty_file_is_named_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let empty = dir.path().join("empty.bin");
    std::fs::write(&empty, b"").expect("write");
    every_command_refuses(&empty, "is empty");
}
