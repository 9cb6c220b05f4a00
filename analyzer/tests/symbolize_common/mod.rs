//! Shared helpers for the symbolization tests: building the fixtures with the system's tools,
//! running them to learn real return addresses, and describing them as recorded modules.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use leakview_analyzer::symbolize::ModuleInfo;
use leakview_format::Segment;
use object::{Object, ObjectSegment, SegmentFlags};

/// Where fixtures pretend to be loaded (page aligned, like a PIE under ASLR).
pub const FAKE_BASE: u64 = 0x5555_0000_0000;

/// The fixture sources.
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("data")
}

/// Whether `tool` can be run; prints a note when it cannot, so a skipped test says why.
pub fn have_tool(tool: &str) -> bool {
    let ok = Command::new(tool).arg("--version").output().is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("note: `{tool}` is not available; skipping this test");
    }
    ok
}

/// Runs a command and panics with its output if it fails.
pub fn run(program: &str, args: &[&str], dir: &Path) -> String {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `file` copied to `dir/name`.
pub fn copy(file: &Path, dir: &Path, name: &str) -> PathBuf {
    let to = dir.join(name);
    std::fs::copy(file, &to).expect("copy fixture");
    to
}

/// Defined symbols from `nm`, by (mangled) name: address and size.
pub fn nm_symbols(binary: &Path) -> HashMap<String, (u64, u64)> {
    let dir = binary.parent().expect("binary has a folder");
    let out = run("nm", &["-S", "--defined-only", &binary.to_string_lossy()], dir);
    out.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields.as_slice() {
                [addr, size, _kind, name] => Some((
                    (*name).to_owned(),
                    (u64::from_str_radix(addr, 16).ok()?, u64::from_str_radix(size, 16).ok()?),
                )),
                [addr, _kind, name] => Some(((*name).to_owned(), (u64::from_str_radix(addr, 16).ok()?, 0))),
                _ => None,
            }
        })
        .collect()
}

/// The `name 0xHEX` lines a fixture prints.
pub fn printed_addresses(binary: &Path) -> HashMap<String, u64> {
    let dir = binary.parent().expect("binary has a folder");
    let out = run(&binary.to_string_lossy(), &[], dir);
    out.lines()
        .filter_map(|line| {
            let (name, value) = line.split_once(' ')?;
            let hex = value.trim().trim_start_matches("0x");
            Some((name.to_owned(), u64::from_str_radix(hex, 16).ok()?))
        })
        .collect()
}

/// Runs the fixture and turns the return addresses it printed into ELF virtual addresses:
/// the load bias is the printed runtime address of `anchor` minus its address in `nm`.
pub fn call_site_svmas(binary: &Path, anchor_printed: &str, anchor_symbol: &str) -> HashMap<String, u64> {
    let printed = printed_addresses(binary);
    let symbols = nm_symbols(binary);
    let anchor = printed[anchor_printed];
    let (anchor_svma, _) = symbols[anchor_symbol];
    let bias = anchor - anchor_svma;
    printed.into_iter().filter(|(k, _)| k.starts_with("site")).map(|(k, v)| (k, v - bias)).collect()
}

/// The line of the source line that contains `marker`.
pub fn line_of(source: &Path, marker: &str) -> u32 {
    let text = std::fs::read_to_string(source).expect("read fixture source");
    let index = text.lines().position(|l| l.contains(marker)).expect("marker in source");
    u32::try_from(index + 1).expect("small line number")
}

/// `binary` as the recorder would describe it loaded at `base`: its PT_LOAD segments and,
/// if `with_build_id`, its GNU build-id.
pub fn module_info(id: u32, binary: &Path, base: u64, with_build_id: bool) -> ModuleInfo {
    let bytes = std::fs::read(binary).expect("read binary");
    let file = object::File::parse(&*bytes).expect("parse binary");
    let segments = file
        .segments()
        .map(|s| Segment {
            vaddr: s.address(),
            memsz: s.size(),
            flags: match s.flags() {
                SegmentFlags::Elf { p_flags } => p_flags,
                _ => 0,
            },
        })
        .collect();
    let build_id = if with_build_id {
        file.build_id().expect("notes").expect("fixture has a build-id").to_vec()
    } else {
        Vec::new()
    };
    ModuleInfo {
        id,
        path: binary.to_path_buf(),
        build_id,
        base,
        segments,
        loaded_ns: u64::from(id),
        unloaded_ns: None,
    }
}

/// The GNU build-id of `binary`.
pub fn build_id(binary: &Path) -> Vec<u8> {
    let bytes = std::fs::read(binary).expect("read binary");
    let file = object::File::parse(&*bytes).expect("parse binary");
    file.build_id().expect("notes").expect("fixture has a build-id").to_vec()
}

/// Compiles the C fixture with `cc -g -O2` plus `extra` flags into `dir/name`, or `None` (with
/// a note) when there is no C compiler.
pub fn build_c_fixture(dir: &Path, name: &str, extra: &[&str]) -> Option<PathBuf> {
    if !have_tool("cc") || !have_tool("nm") {
        return None;
    }
    let source = data_dir().join("symbolize_fixture.c");
    let out = dir.join(name);
    let mut args = vec!["-g", "-O2", "-Wl,--build-id"];
    args.extend_from_slice(extra);
    let source_text = source.to_string_lossy().into_owned();
    let out_text = out.to_string_lossy().into_owned();
    args.extend_from_slice(&["-o", &out_text, &source_text]);
    run("cc", &args, dir);
    Some(out)
}

/// The C fixture's two call sites as ELF virtual addresses: `site0` (inside the inlined helper)
/// and `site1` (in the plain function).
pub fn c_call_sites(binary: &Path) -> HashMap<String, u64> {
    call_site_svmas(binary, "outer_function", "outer_function")
}

/// Tests whose file name ends with `name`.
pub fn ends_with(file: &Option<String>, name: &str) -> bool {
    file.as_deref().is_some_and(|f| f.ends_with(name))
}
