//! The C fixture `tests/fixtures/leaky.c`, compiled with debug info, and its symbols'
//! addresses: synthetic traces point their stacks into it so that symbolization is real.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Compiles the fixture into `dir` and returns its path.
pub fn build_fixture(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/leaky.c");
    let exe = dir.join("leaky");
    let status = Command::new("cc")
        .args(["-g", "-O0", "-fno-omit-frame-pointer", "-o"])
        .arg(&exe)
        .arg(&src)
        .status()
        .expect("run cc");
    assert!(status.success(), "cc failed");
    exe
}

/// ELF virtual address of `symbol` in `exe`, from `nm`.
pub fn symbol_address(exe: &Path, symbol: &str) -> u64 {
    let out = Command::new("nm").arg(exe).output().expect("run nm");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|line| {
            let mut parts = line.split_whitespace();
            let addr = parts.next()?;
            let _kind = parts.next()?;
            (parts.next()? == symbol).then(|| u64::from_str_radix(addr, 16).ok()).flatten()
        })
        .unwrap_or_else(|| panic!("{symbol} not in nm output"))
}
