//! End-to-end tests of the browser: the real `leakview` binary runs in a pseudo-terminal (a
//! private tmux server), keys are sent to it and the screen it draws is read back. Skipped, with
//! a note, where tmux is not installed. The diff browser runs on `fixtures/diff/leaks.c` built in
//! its two variants and recorded with `leakview record`.

mod common;
#[path = "../tui/tests/common/trace.rs"]
mod trace;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{Running, compile_fixture, leakview_in, wait_for_file};
use std::time::{Duration, Instant};

/// A tmux server of our own (its own socket), killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn available() -> bool {
        Command::new("tmux").arg("-V").output().is_ok_and(|o| o.status.success())
    }

    fn new(name: &str) -> Self {
        Tmux { socket: format!("leakview-test-{name}-{}", std::process::id()) }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux").arg("-L").arg(&self.socket).args(args).output().expect("tmux runs")
    }

    /// Starts `command` (run by `sh -c`) in a 100x30 window; the shell reports the exit status
    /// and stays a while so the screen after exit can be read.
    fn start(&self, command: &str) {
        let script = format!("{command}; echo \"leakview exited with $?\"; sleep 60");
        let out = self.run(&["new-session", "-d", "-x", "100", "-y", "30", "sh", "-c", &script]);
        assert!(out.status.success(), "tmux new-session: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Starts `leakview ARGS` without colour in an xterm-like terminal (see [`Tmux::start`]).
    fn start_leakview(&self, args: &[&str]) {
        let mut command =
            format!("NO_COLOR=1 TERM=xterm-256color {}", shell_quote(env!("CARGO_BIN_EXE_leakview")));
        for arg in args {
            command.push(' ');
            command.push_str(&shell_quote(arg));
        }
        self.start(&command);
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p"]).stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys"];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    /// Waits until the screen contains `text`; the screen as last read otherwise.
    fn wait_for(&self, text: &str) -> Result<String, String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let screen = self.screen();
            if screen.contains(text) {
                return Ok(screen);
            }
            if Instant::now() > deadline {
                return Err(screen);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the screen no longer contains `text`.
    fn expect_gone(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.screen().contains(text) {
            assert!(Instant::now() < deadline, "the screen kept showing {text:?}:\n{}", self.screen());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn expect(&self, text: &str) -> String {
        self.wait_for(text)
            .unwrap_or_else(|screen| panic!("the screen never showed {text:?}; it shows:\n{screen}"))
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.run(&["kill-server"]);
    }
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[test]
fn browser_scrubs_groups_drills_down_and_quits_cleanly() {
    if !Tmux::available() {
        eprintln!("note: tmux is not installed; skipping the pseudo-terminal test of the browser");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let trace = dir.path().join("server.bin");
    trace::write_server_trace(&trace);
    let tmux = Tmux::new("browse");
    tmux.start_leakview(&[&trace.to_string_lossy()]);

    // Opens at the end of the trace, ranked by bytes.
    // (A screen is read while it may still be drawing, so every check waits for its text.)
    tmux.expect("Live heap");
    tmux.expect("server --port 8080");
    tmux.expect("At 10.000s · by stack · 3 groups");
    tmux.expect("server+0x1800");
    tmux.expect("T 10.000s 100%");

    // The peak: the burst of header buffers from libhttp.so is outstanding.
    tmux.keys(&["p"]);
    tmux.expect("At 5.999s · by stack · 4 groups");
    tmux.expect("libhttp.so+0x2a00");

    // Home, then the marks: load-start is at 4 s.
    tmux.keys(&["Home", "m", "m"]);
    tmux.expect("T 4.000s 40%");

    // Grouping by function, then size, then thread (each thread named and its tid), then back
    // to stacks.
    tmux.keys(&["g"]);
    tmux.expect("by function");
    tmux.keys(&["g", "g"]);
    tmux.expect("At 4.000s · by thread · 2 groups");
    tmux.expect("worker (101)");
    tmux.keys(&["g"]);
    tmux.expect("At 4.000s · by stack");

    // Drill into the top group: its allocations and the selected one's stack.
    tmux.keys(&["End", "Enter"]);
    tmux.expect("40 blocks at 10.000s");
    tmux.expect("Stack of 0x");
    tmux.keys(&["Escape"]);
    tmux.expect("3 groups");

    // The help overlay comes from the key table.
    tmux.keys(&["?"]);
    tmux.expect("group by stack, function, size");
    // Esc closes it. (A key sent right after Esc would arrive as Alt+key, as in any terminal.)
    tmux.keys(&["Escape"]);
    tmux.expect_gone("group by stack, function, size");

    // q quits with status 0 and the terminal is given back (the browser's screen is gone).
    tmux.keys(&["q"]);
    let screen = tmux.expect("leakview exited with 0");
    assert!(!screen.contains("Live heap"), "the alternate screen was left:\n{screen}");
}

/// Builds `fixtures/diff/leaks.c` (variant B with `-DVARIANT_B`) and records it into `dir`.
fn record_diff_variant(dir: &Path, variant_b: bool) -> PathBuf {
    let name = if variant_b { "b" } else { "a" };
    let defines: &[&str] = if variant_b { &["-DVARIANT_B"] } else { &[] };
    let exe = compile_fixture(dir, "diff/leaks.c", &format!("leaks_{name}"), defines);
    let trace = format!("{name}.bin");
    let out = leakview_in(dir, &dir.join("cache"))
        .args(["record", "--force", "-o", &trace, "--"])
        .arg(&exe)
        .output()
        .expect("leakview runs");
    assert!(out.status.success(), "recording {name}: {}", String::from_utf8_lossy(&out.stderr));
    dir.join(trace)
}

/// The browser opened on a trace while its program runs (`fixtures/growing.c`, which leaks in
/// two steps the test lets it take): it says it is recording, shows each step's leaks as the
/// trace grows, and once the program has ended shows the finished trace.
#[test]
fn browser_follows_a_trace_while_it_is_recorded() {
    if !Tmux::available() {
        eprintln!("note: tmux is not installed; skipping the pseudo-terminal test of following");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let exe = compile_fixture(d, "growing.c", "growing", &[]);
    let mut recording = Running::record(d, &exe, "live.bin");
    wait_for_file(&d.join("ready"));
    let tmux = Tmux::new("follow");
    tmux.start_leakview(&[&d.join("live.bin").to_string_lossy()]);

    tmux.expect("● recording");
    let screen = tmux.expect("leak_before");
    assert!(screen.contains("live 9.8 KiB · 10 blocks"), "{screen}");
    assert!(!screen.contains("leak_after"), "{screen}");

    // The second step: its leaks appear while the program still runs.
    std::fs::write(d.join("step"), "").expect("step");
    wait_for_file(&d.join("ready2"));
    let screen = tmux.expect("leak_after");
    assert!(screen.contains("● recording"), "{screen}");

    // The program ends: the finished trace, no longer recording.
    std::fs::write(d.join("finish"), "").expect("finish");
    let status = recording.0.wait().expect("leakview record ends");
    assert!(status.success(), "{status:?}");
    tmux.expect_gone("● recording");
    let screen = tmux.expect("live 68.4 KiB · 30 blocks");
    assert!(!screen.contains("trace cut short"), "{screen}");

    tmux.keys(&["q"]);
    tmux.expect("leakview exited with 0");
}

#[test]
fn diff_browser_shows_statuses_and_scrubs_each_side() {
    if !Tmux::available() {
        eprintln!("note: tmux is not installed; skipping the pseudo-terminal test of the diff browser");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let a = record_diff_variant(dir.path(), false);
    let b = record_diff_variant(dir.path(), true);
    let (a, b) = (a.to_string_lossy(), b.to_string_lossy());
    let tmux = Tmux::new("diff");
    tmux.start_leakview(&[&a, &b]);

    // Both traces at their ends; every status reads without colour, by its marker and name.
    tmux.expect("a.bin → b.bin");
    tmux.expect("5 groups · 1 new 1 fixed 1 grew 1 shrank 1 same");
    for row in ["- fixed", "+ new", "↑ grew", "↓ shrank", "= same"] {
        tmux.expect(row);
    }
    for function in ["leak_fixed", "leak_added", "leak_growing", "leak_shrinking", "leak_unchanged"] {
        tmux.expect(function);
    }
    // The selected (first) group: fixed, so its stack comes from A.
    tmux.expect("stack in A");
    tmux.expect("▶ A a.bin");

    // Side B back to its start: nothing outstanding in B, so A's four leaks all read fixed.
    tmux.keys(&["b", "Home"]);
    tmux.expect("▶ B b.bin · T 0s 0%");
    tmux.expect("4 groups · 4 fixed");

    // Back to B's end, then the filter.
    tmux.keys(&["End", "/", "g", "r", "o", "w", "Enter"]);
    tmux.expect("1 group · 1 grew");
    tmux.expect("filter \"grow\"");

    // The help overlay comes from the diff key table.
    tmux.keys(&["?"]);
    tmux.expect("scrub side A / side B");
    tmux.keys(&["Escape"]);
    tmux.expect_gone("scrub side A / side B");

    tmux.keys(&["q"]);
    let screen = tmux.expect("leakview exited with 0");
    assert!(!screen.contains("top frame"), "the alternate screen was left:\n{screen}");

    // Two moments of one trace: at the mark "warmup" and at the end of variant A.
    let tmux = Tmux::new("diff-moments");
    tmux.start_leakview(&["diff", "--tui", "--at-a", "mark:warmup", "--at-b", "end", &a]);
    tmux.expect("a.bin at two moments");
    tmux.expect("1 new 1 fixed 1 grew 2 same");
    let screen = tmux.expect("scratch_fill");
    // The list's row of a function (the part of a line left of the details pane).
    let row = |function: &str| {
        let mut list = screen.lines().filter_map(|l| l.split("││").next());
        list.find(|l| l.contains(function)).unwrap_or("").to_string()
    };
    assert!(row("leak_fixed").contains("+ new"), "{screen}");
    assert!(row("scratch_fill").contains("- fixed"), "{screen}");
    assert!(row("leak_growing").contains("↑ grew"), "{screen}");
    tmux.keys(&["q"]);
    tmux.expect("leakview exited with 0");

    // `--what` opens the diff browser on allocated blocks; `w` moves on to the temporary ones.
    let tmux = Tmux::new("diff-allocated");
    tmux.start_leakview(&[
        "diff",
        "--tui",
        "--what",
        "allocated",
        "--at-a",
        "mark:warmup",
        "--at-b",
        "end",
        &a,
    ]);
    tmux.expect("groups of allocated blocks");
    tmux.keys(&["w"]);
    tmux.expect("groups of temporary blocks");
    tmux.keys(&["q"]);
    tmux.expect("leakview exited with 0");
}

#[test]
fn a_file_that_is_not_a_trace_is_an_error_before_any_screen() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bogus = dir.path().join("bogus.bin");
    std::fs::write(&bogus, b"this is not a trace").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_leakview")).arg(&bogus).output().expect("leakview runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("not a leakview trace"), "{stderr}");
}

#[test]
fn without_a_terminal_the_browser_says_so() {
    let dir = tempfile::tempdir().expect("temp dir");
    let trace = dir.path().join("server.bin");
    trace::write_server_trace(&trace);
    let out =
        Command::new(env!("CARGO_BIN_EXE_leakview")).arg("view").arg(&trace).output().expect("leakview runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("needs a terminal"), "{stderr}");
}
