//! What the end-to-end tests share: the `leakview` binary run without inherited recorder
//! settings, and C fixtures compiled the way users build release code (-O2 -g, no frame
//! pointers) and recorded with the real preload library.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// `leakview` in `cwd` with `cache` as its cache directory (where it extracts its recorder),
/// no recorder settings from the test's environment, and stdin closed.
pub fn leakview_in(cwd: &Path, cache: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_leakview"));
    command
        .current_dir(cwd)
        .env("XDG_CACHE_HOME", cache)
        .env_remove("LEAKVIEW_PRELOAD_PATH")
        .env_remove("LEAKVIEW_OUTPUT")
        .env_remove("LD_PRELOAD")
        .stdin(Stdio::null());
    command
}

/// The fixture at `fixtures/<source>` compiled into `dir/<name>` at -O2 -g without frame
/// pointers, with leakview.h on the include path and `extra` arguments (defines); a `.cpp`
/// source with the C++ compiler.
pub fn compile_fixture(dir: &Path, source: &str, name: &str, extra: &[&str]) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let exe = dir.join(name);
    let compiler = if source.ends_with(".cpp") {
        std::env::var("CXX").unwrap_or_else(|_| "c++".into())
    } else {
        std::env::var("CC").unwrap_or_else(|_| "cc".into())
    };
    let out = Command::new(compiler)
        .args(["-O2", "-g", "-fomit-frame-pointer", "-o"])
        .arg(&exe)
        .arg(root.join("fixtures").join(source))
        .arg("-I")
        .arg(root.join("recorder/preload/include"))
        .args(extra)
        .output()
        .expect("the C compiler runs");
    assert!(out.status.success(), "compiling {source}: {}", String::from_utf8_lossy(&out.stderr));
    exe
}

/// The path of `program` if it is installed in /usr/bin, /bin or /usr/local/bin. Outside CI a
/// missing one is noted and the caller skips its check; under CI (`CI` set, where `.ci/run`
/// installs what the tests need) it fails the test, so CI never passes without checking.
pub fn installed(program: &str) -> Option<PathBuf> {
    let found = ["/usr/bin", "/bin", "/usr/local/bin"]
        .iter()
        .map(|d| Path::new(d).join(program))
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(std::env::var_os("CI").is_none(), "{program} is required under CI (.ci/run installs it)");
        eprintln!("note: {program} is not installed; skipping its check");
    }
    found
}

/// `leakview record` of a program that is still running, killed when dropped (a test that
/// fails half-way leaves nothing running).
pub struct Running(pub std::process::Child);

impl Running {
    /// Starts recording `exe` into `dir/<trace>` (cache in `dir/cache`), output discarded.
    pub fn record(dir: &Path, exe: &Path, trace: &str) -> Running {
        let child = leakview_in(dir, &dir.join("cache"))
            .args(["record", "--force", "-o", trace, "--"])
            .arg(exe)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("leakview runs");
        Running(child)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits (up to 30 s) until `path` exists.
pub fn wait_for_file(path: &Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !path.exists() {
        assert!(std::time::Instant::now() < deadline, "{} never appeared", path.display());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Records `exe` into `dir/<trace>` with `leakview record` (cache in `dir/cache`), checks that
/// the program printed `stdout`, and returns the trace's path.
pub fn record_fixture(dir: &Path, exe: &Path, trace: &str, stdout: &str) -> PathBuf {
    let out = leakview_in(dir, &dir.join("cache"))
        .args(["record", "--force", "-o", trace, "--"])
        .arg(exe)
        .output()
        .expect("leakview runs");
    assert!(out.status.success(), "recording {}: {}", exe.display(), String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), stdout);
    dir.join(trace)
}

/// A fixture recorded once for all the tests of a file: its directory and its trace.
pub type Recorded = (tempfile::TempDir, PathBuf);

/// `fixtures/<source>` compiled and recorded into `<trace>` the first time `cell` is asked
/// (see [`compile_fixture`] and [`record_fixture`]), the same recording every later time.
pub fn recorded_once(
    cell: &'static OnceLock<Recorded>,
    source: &str,
    trace: &str,
    stdout: &str,
) -> &'static Recorded {
    cell.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let name = source.trim_end_matches(".c");
        let exe = compile_fixture(dir.path(), source, name, &[]);
        let trace = record_fixture(dir.path(), &exe, trace, stdout);
        (dir, trace)
    })
}

/// The `<title>` texts of an SVG flame graph's frames (`name (N bytes, P%)`), in document order.
pub fn frame_titles(svg: &str) -> Vec<String> {
    svg.split("<title>")
        .skip(1)
        .filter_map(|s| s.split_once("</title>"))
        .map(|(t, _)| t.to_string())
        .collect()
}

/// `leakview ARGS` run with the test's environment, its output captured.
pub fn leakview(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_leakview")).args(args).output().expect("run leakview")
}

pub fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
