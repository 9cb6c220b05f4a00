//! Build script of the `leakview` binary: builds what the binary carries inside it, so that the
//! result of `cargo install --path .` is self-sufficient (see `src/embedded.rs`, which extracts them
//! at run time).
//!
//! - `libleakview_preload.so`: a nested `cargo build --release -p leakview-preload` (debug info
//!   stripped) with its own target directory (`<target>/embedded-preload`, shared by all profiles
//!   of the outer build, so it is rebuilt only when the recorder's sources change and never waits
//!   on the outer build's lock).
//!   The nested cargo gets a cleaned environment: the variables the outer cargo sets for build
//!   scripts (and clippy's workspace wrapper) would otherwise leak into it.
//! - The demo program: `fixtures/demo/*.c` compiled with `$CC` (or `cc`) at `-O2 -g` without frame
//!   pointers, like most C code in the wild.
//!
//! Both are copied into `OUT_DIR`; `LEAKVIEW_EMBED_HASH` (a hash of both) names the per-user cache
//! directory they are extracted to.

use std::env;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Set in the nested cargo's environment; seeing it here means the nested build recursed.
const NESTED_MARKER: &str = "LEAKVIEW_EMBEDDED_PRELOAD_BUILD";

fn main() {
    if env::var_os(NESTED_MARKER).is_some() {
        fail("the nested build of leakview-preload tried to build leakview-cli itself (recursion)");
    }
    let root = PathBuf::from(env_or_fail("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env_or_fail("OUT_DIR"));

    emit_rerun_triggers(&root);

    let preload = build_preload_library(&root, &out_dir);
    let demo = build_demo_program(&root, &out_dir);

    let mut hash = Fnv64::new();
    for path in [&preload, &demo] {
        let bytes = fs::read(path).unwrap_or_else(|e| fail(&format!("reading {}: {e}", path.display())));
        hash.update(&(bytes.len() as u64).to_le_bytes());
        hash.update(&bytes);
    }
    println!("cargo:rustc-env=LEAKVIEW_EMBED_HASH={:016x}", hash.finish());
}

/// Everything whose change must rebuild the embedded library or demo. Directories are scanned
/// recursively by cargo; `target` folders are left out so builds inside them do not retrigger us.
fn emit_rerun_triggers(root: &Path) {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=Cargo.lock");
    println!("cargo:rerun-if-changed=Cargo.toml");
    println!("cargo:rerun-if-changed=fixtures/demo");
    for dir in ["recorder", "recorder/preload", "format"] {
        let Ok(entries) = fs::read_dir(root.join(dir)) else { continue };
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let skipped = ["target", "tests", "benches", "fuzz", "preload"];
            if path.is_dir() && skipped.contains(&name) {
                continue;
            }
            if let Ok(relative) = path.strip_prefix(root) {
                println!("cargo:rerun-if-changed={}", relative.display());
            }
        }
    }
    println!("cargo:rerun-if-env-changed=CC");
    println!("cargo:rerun-if-env-changed=RUSTFLAGS");
}

fn build_preload_library(root: &Path, out_dir: &Path) -> PathBuf {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let target = env_or_fail("TARGET");
    let host = env_or_fail("HOST");
    let nested_target_dir = nested_target_dir(out_dir, &target);

    let mut command = Command::new(cargo);
    command
        .arg("build")
        .arg("--release")
        .arg("--package")
        .arg("leakview-preload")
        .arg("--manifest-path")
        .arg(root.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&nested_target_dir);
    if target != host {
        command.arg("--target").arg(&target);
    }
    clean_nested_cargo_env(&mut command);
    command.env(NESTED_MARKER, "1");
    // Without debug info: the recorder's own frames never appear in a recorded stack, and its
    // debug sections were 6.9 of the library's 7.8 MB, carried in every leakview binary and
    // written to the cache at a build's first run (see `src/embedded.rs`). The symbol table
    // stays (for profilers).
    command.env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo");
    // One optimisation unit across the recorder's crates: the hooks, the engine and the encoder
    // are inlined into each other and their statics reached without the GOT (40-59 instructions
    // fewer per allocation on the workloads of bench/instructions.sh, BENCHMARKS.md).
    command.env("CARGO_PROFILE_RELEASE_LTO", "fat");
    command.env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1");
    // Our stdout carries `cargo:` directives: keep the nested cargo's output away from it.
    command.stdout(Stdio::null()).stderr(Stdio::piped());
    let output =
        command.output().unwrap_or_else(|e| fail(&format!("could not run cargo for leakview-preload: {e}")));
    if !output.status.success() {
        fail(&format!(
            "building leakview-preload (the recorder library embedded in leakview) failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }

    let mut built = nested_target_dir;
    if target != host {
        built.push(&target);
    }
    built.push("release");
    built.push("libleakview_preload.so");
    let embedded = out_dir.join("libleakview_preload.so");
    copy_if_changed(&built, &embedded);
    embedded
}

/// `<target>/embedded-preload`, found from `OUT_DIR` (`<target>/[<triple>/]<profile>/build/<pkg>/out`);
/// falls back to a folder inside `OUT_DIR` if the layout is not the usual one.
fn nested_target_dir(out_dir: &Path, target: &str) -> PathBuf {
    let build_dir = out_dir.ancestors().find(|p| p.file_name().is_some_and(|n| n == "build"));
    let mut target_root = build_dir.and_then(Path::parent).and_then(Path::parent).map(Path::to_path_buf);
    if let Some(dir) = &target_root
        && dir.file_name().is_some_and(|n| n == target)
    {
        target_root = dir.parent().map(Path::to_path_buf);
    }
    match target_root {
        Some(dir) => dir.join("embedded-preload"),
        None => out_dir.join("embedded-preload"),
    }
}

/// Removes what the outer cargo sets for build scripts (or what a wrapper like clippy sets) and what
/// would change the nested build's meaning; keeps the user's own settings (CARGO_HOME, network,
/// registries, RUSTFLAGS, RUSTC_WRAPPER).
fn clean_nested_cargo_env(command: &mut Command) {
    const EXACT: &[&str] = &[
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_CRATE_NAME",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_BUILD_DIR",
        "CARGO_BUILD_RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_RUSTC_CURRENT_DIR",
        "OUT_DIR",
        "TARGET",
        "HOST",
        "PROFILE",
        "OPT_LEVEL",
        "DEBUG",
        "NUM_JOBS",
        "RUSTC_LINKER",
        "RUSTDOC",
        "CLIPPY_ARGS",
        "CLIPPY_CONF_DIR",
        "__CARGO_FIX_PLZ",
        "__CARGO_DEFAULT_LIB_METADATA",
    ];
    const PREFIXES: &[&str] =
        &["CARGO_PKG_", "CARGO_CFG_", "CARGO_FEATURE_", "CARGO_MANIFEST_", "CARGO_BIN_", "DEP_"];
    for (key, _) in env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        if EXACT.contains(&key) || PREFIXES.iter().any(|p| key.starts_with(p)) {
            command.env_remove(key);
        }
    }
}

/// Compiles `fixtures/demo/*.c` into one executable.
fn build_demo_program(root: &Path, out_dir: &Path) -> PathBuf {
    let demo_dir = root.join("fixtures/demo");
    let mut sources: Vec<PathBuf> = fs::read_dir(&demo_dir)
        .unwrap_or_else(|e| fail(&format!("reading {}: {e}", demo_dir.display())))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "c"))
        .collect();
    sources.sort();
    if sources.is_empty() {
        fail(&format!("no C sources in {}", demo_dir.display()));
    }
    let compiler = env::var("CC").ok().filter(|cc| !cc.trim().is_empty()).unwrap_or_else(|| "cc".into());
    let mut words = compiler.split_whitespace();
    let program = words.next().unwrap_or("cc");
    let output = out_dir.join("leakview-demo");
    let result = Command::new(program)
        .args(words)
        .args(["-O2", "-g", "-fomit-frame-pointer", "-pthread", "-Wall", "-Wextra"])
        // Compiled from the repository root with relative source paths and the root mapped to `.`,
        // the debug info names `fixtures/demo/leaky.c` wherever leakview was built.
        .arg(format!("-fdebug-prefix-map={}=.", root.display()))
        .current_dir(root)
        .arg("-o")
        .arg(&output)
        .args(sources.iter().map(|source| source.strip_prefix(root).unwrap_or(source)))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap_or_else(|e| {
            fail(&format!("could not run the C compiler `{compiler}` (set CC to another one): {e}"))
        });
    let diagnostics = String::from_utf8_lossy(&result.stderr);
    if !result.status.success() {
        fail(&format!("compiling the demo program with `{compiler}` failed:\n{diagnostics}"));
    }
    for line in diagnostics.lines().filter(|l| !l.trim().is_empty()) {
        println!("cargo:warning=demo: {line}");
    }
    output
}

fn copy_if_changed(from: &Path, to: &Path) {
    let new = fs::read(from).unwrap_or_else(|e| fail(&format!("reading {}: {e}", from.display())));
    if fs::read(to).ok().as_deref() != Some(&new[..]) {
        fs::write(to, &new).unwrap_or_else(|e| fail(&format!("writing {}: {e}", to.display())));
    }
}

fn env_or_fail(key: &str) -> String {
    env::var(key).unwrap_or_else(|_| fail(&format!("cargo did not set {key}")))
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(1);
}

/// FNV-1a, 64 bits: enough to tell two builds' embedded files apart in a cache directory name.
struct Fnv64(u64);

impl Fnv64 {
    fn new() -> Self {
        Fnv64(0xcbf2_9ce4_8422_2325)
    }

    fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}
