//! Separate debug information: `.gnu_debuglink` (next to the module, in `.debug/`, under a
//! debug dir; verified by build-id or CRC32), build-id directories, dwz supplementary files via
//! `.gnu_debugaltlink`, and files that changed since they were recorded.

mod symbolize_common;

use std::path::{Path, PathBuf};

use leakview_analyzer::symbolize::{Frame, ModuleInfo, SymbolizeOptions, SymbolizeWarning, Symbolizer};
use object::Object;
use symbolize_common::*;

/// The C fixture, its call sites, and a stripped copy (`--strip-all`: no DWARF, no `.symtab`)
/// with its debug info split off into `prog.debug`, all in `dir`.
struct Split {
    binary: PathBuf,
    stripped: PathBuf,
    debug: PathBuf,
    site0: u64,
    site1: u64,
}

fn split_fixture(dir: &Path, extra: &[&str]) -> Option<Split> {
    let binary = build_c_fixture(dir, "prog", extra)?;
    if !have_tool("objcopy") || !have_tool("strip") {
        return None;
    }
    let sites = c_call_sites(&binary);
    run("objcopy", &["--only-keep-debug", "prog", "prog.debug"], dir);
    let stripped = copy(&binary, dir, "stripped");
    run("strip", &["--strip-all", "stripped"], dir);
    Some(Split {
        binary,
        stripped,
        debug: dir.join("prog.debug"),
        site0: sites["site0"],
        site1: sites["site1"],
    })
}

fn add_debuglink(stripped: &Path, debug: &Path) {
    let link = format!("--add-gnu-debuglink={}", debug.display());
    run("objcopy", &[&link, &stripped.to_string_lossy()], stripped.parent().expect("dir"));
}

fn options(dirs: &[&Path]) -> SymbolizeOptions {
    SymbolizeOptions {
        debug_dirs: dirs.iter().map(|d| d.to_path_buf()).collect(),
        ..SymbolizeOptions::default()
    }
}

fn symbolize_sites(
    module: ModuleInfo,
    opts: SymbolizeOptions,
    split: &Split,
) -> (Symbolizer, Vec<Frame>, Vec<Frame>) {
    let (a0, a1) = (module.base + split.site0, module.base + split.site1);
    let symbolizer = Symbolizer::new(vec![module], opts);
    let mut out = symbolizer.symbolize(&[a0, a1]);
    let f0 = out.remove(&a0).expect("site0 symbolized");
    let f1 = out.remove(&a1).expect("site1 symbolized");
    (symbolizer, f0, f1)
}

fn assert_full(f0: &[Frame], f1: &[Frame]) {
    let source = data_dir().join("symbolize_fixture.c");
    let names: Vec<_> = f0.iter().map(Frame::display_name).collect();
    assert_eq!(names, ["fill_buffer", "outer_function"], "{f0:#?}");
    assert!(f0[0].inlined);
    assert_eq!(f0[0].line, Some(line_of(&source, "@inlined_call")));
    assert_eq!(f0[1].line, Some(line_of(&source, "@outer_call")));
    assert!(ends_with(&f0[0].file, "symbolize_fixture.c"));
    assert_eq!(f1.len(), 1);
    assert_eq!(f1[0].function.as_deref(), Some("plain_function"));
    assert_eq!(f1[0].line, Some(line_of(&source, "@plain_call")));
}

fn assert_module_offset_only(frames: &[Frame], module_name: &str, offset: u64) {
    assert_eq!(frames.len(), 1, "{frames:#?}");
    assert_eq!(frames[0].function, None);
    assert_eq!(frames[0].display_name(), format!("{module_name}+{offset:#x}"));
}

#[test]
fn stripped_binary_has_no_names_of_its_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(split) = split_fixture(dir.path(), &[]) else { return };
    let module = module_info(1, &split.stripped, FAKE_BASE, true);
    let (_, f0, f1) = symbolize_sites(module, options(&[]), &split);
    assert_module_offset_only(&f0, "stripped", split.site0);
    assert_module_offset_only(&f1, "stripped", split.site1);
}

#[test]
fn debuglink_next_to_the_module() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(split) = split_fixture(dir.path(), &[]) else { return };
    add_debuglink(&split.stripped, &split.debug);
    let module = module_info(1, &split.stripped, FAKE_BASE, true);
    let (symbolizer, f0, f1) = symbolize_sites(module, options(&[]), &split);
    assert_full(&f0, &f1);
    assert!(symbolizer.warnings().is_empty(), "{:?}", symbolizer.warnings());
}

#[test]
fn debuglink_in_dot_debug_and_under_a_debug_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(split) = split_fixture(dir.path(), &[]) else { return };
    add_debuglink(&split.stripped, &split.debug);

    let bin_dir = dir.path().join("bin");
    std::fs::create_dir_all(bin_dir.join(".debug")).expect("mkdir");
    let in_dot_debug = copy(&split.stripped, &bin_dir, "stripped");
    std::fs::rename(&split.debug, bin_dir.join(".debug").join("prog.debug")).expect("move");
    let module = module_info(1, &in_dot_debug, FAKE_BASE, true);
    let (_, f0, f1) = symbolize_sites(module, options(&[]), &split);
    assert_full(&f0, &f1);

    // `<debug_dir>/<module's folder>/prog.debug`
    let root = dir.path().join("debugroot");
    let mirrored = root.join(bin_dir.strip_prefix("/").expect("absolute temp dir"));
    std::fs::create_dir_all(&mirrored).expect("mkdir");
    std::fs::rename(bin_dir.join(".debug").join("prog.debug"), mirrored.join("prog.debug")).expect("move");
    let module = module_info(1, &in_dot_debug, FAKE_BASE, true);
    let (_, f0, _) = symbolize_sites(module.clone(), options(&[]), &split);
    assert_module_offset_only(&f0, "stripped", split.site0);
    let (_, f0, f1) = symbolize_sites(module, options(&[&root]), &split);
    assert_full(&f0, &f1);
}

#[test]
fn debuglink_verified_by_crc_when_there_is_no_build_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(split) = split_fixture(dir.path(), &["-Wl,--build-id=none"]) else { return };
    let bytes = std::fs::read(&split.binary).expect("read");
    let parsed = object::File::parse(&*bytes).expect("parse");
    assert_eq!(parsed.build_id().ok().flatten(), None, "fixture built without build-id");
    add_debuglink(&split.stripped, &split.debug);
    let module = module_info(1, &split.stripped, FAKE_BASE, false);
    let (_, f0, f1) = symbolize_sites(module.clone(), options(&[]), &split);
    assert_full(&f0, &f1);

    // Another build's debug file under the same name: the CRC differs, so it is not used.
    let other_dir = dir.path().join("other");
    std::fs::create_dir_all(&other_dir).expect("mkdir");
    build_c_fixture(&other_dir, "prog", &["-Wl,--build-id=none", "-DOTHER_BUILD=1", "-O1"])
        .expect("second build");
    run("objcopy", &["--only-keep-debug", "prog", "prog.debug"], &other_dir);
    std::fs::rename(other_dir.join("prog.debug"), &split.debug).expect("replace debug file");
    let (symbolizer, f0, _) = symbolize_sites(module, options(&[]), &split);
    assert_module_offset_only(&f0, "stripped", split.site0);
    let warnings = symbolizer.warnings();
    assert!(warnings.iter().any(|w| matches!(w, SymbolizeWarning::DebugFileMismatch { .. })), "{warnings:?}");
}

/// `root/.build-id/xx/yyyy.debug` for `binary`'s build-id, holding `debug`.
fn install_by_build_id(root: &Path, binary: &Path, debug: &Path) {
    let id = build_id(binary);
    let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let folder = root.join(".build-id").join(&hex[..2]);
    std::fs::create_dir_all(&folder).expect("mkdir");
    std::fs::copy(debug, folder.join(format!("{}.debug", &hex[2..]))).expect("copy");
}

#[test]
fn build_id_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(split) = split_fixture(dir.path(), &[]) else { return };
    let root = dir.path().join("debugroot");
    install_by_build_id(&root, &split.binary, &split.debug);
    std::fs::remove_file(&split.debug).expect("remove");

    // Build-id recorded, or read from the module's note.
    for recorded in [true, false] {
        let module = module_info(1, &split.stripped, FAKE_BASE, recorded);
        let (symbolizer, f0, f1) = symbolize_sites(module, options(&[&root]), &split);
        assert_full(&f0, &f1);
        assert!(symbolizer.warnings().is_empty(), "{:?}", symbolizer.warnings());
    }
}

#[test]
fn missing_module_file_still_symbolizes_by_recorded_build_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(split) = split_fixture(dir.path(), &[]) else { return };
    let root = dir.path().join("debugroot");
    install_by_build_id(&root, &split.binary, &split.debug);
    let module = module_info(1, &split.stripped, FAKE_BASE, true);
    std::fs::remove_file(&split.stripped).expect("remove");

    let (_, f0, f1) = symbolize_sites(module.clone(), options(&[&root]), &split);
    assert_full(&f0, &f1);

    // Without the debug dir nothing is known: module+offset and a warning, no error.
    let (symbolizer, f0, f1) = symbolize_sites(module, options(&[]), &split);
    assert_module_offset_only(&f0, "stripped", split.site0);
    assert_module_offset_only(&f1, "stripped", split.site1);
    assert!(matches!(symbolizer.warnings().as_slice(), [SymbolizeWarning::Unreadable { .. }]));
}

#[test]
fn changed_module_file_is_not_trusted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(split) = split_fixture(dir.path(), &[]) else { return };
    let mut module = module_info(1, &split.binary, FAKE_BASE, true);
    for byte in &mut module.build_id {
        *byte ^= 0xff;
    }
    let (symbolizer, f0, f1) = symbolize_sites(module, options(&[]), &split);
    assert_module_offset_only(&f0, "prog", split.site0);
    assert_module_offset_only(&f1, "prog", split.site1);
    let warnings = symbolizer.warnings();
    assert!(matches!(warnings.as_slice(), [SymbolizeWarning::BuildIdMismatch { .. }]), "{warnings:?}");
    assert!(warnings[0].to_string().contains("prog"));
}

#[test]
fn dwz_supplementary_file_via_debugaltlink() {
    let dir = tempfile::tempdir().expect("tempdir");
    if !have_tool("dwz") {
        return;
    }
    let Some(binary) = build_c_fixture(dir.path(), "prog", &[]) else { return };
    let sites = c_call_sites(&binary);
    // dwz moves what the two files share into `common.debug` and links both to it.
    build_c_fixture(dir.path(), "prog2", &["-DOTHER_BUILD=1"]).expect("second build");
    run("dwz", &["-m", "common.debug", "prog", "prog2"], dir.path());
    let bytes = std::fs::read(&binary).expect("read");
    let parsed = object::File::parse(&*bytes).expect("parse");
    let (alt_name, _) = parsed.gnu_debugaltlink().expect("notes").expect("dwz added an altlink");
    assert_eq!(alt_name, b"common.debug");

    let split = Split {
        binary: binary.clone(),
        stripped: binary.clone(),
        debug: binary.clone(),
        site0: sites["site0"],
        site1: sites["site1"],
    };
    let module = module_info(1, &binary, FAKE_BASE, true);
    let (symbolizer, f0, f1) = symbolize_sites(module.clone(), options(&[]), &split);
    assert_full(&f0, &f1);
    assert!(symbolizer.warnings().is_empty(), "{:?}", symbolizer.warnings());

    // Without the supplementary file: a warning, and never a panic.
    std::fs::remove_file(dir.path().join("common.debug")).expect("remove");
    let (symbolizer, f0, _) = symbolize_sites(module, options(&[]), &split);
    let outer = f0.last().and_then(|f| f.function.as_deref());
    assert_eq!(outer, Some("outer_function"), "the symbol table still names it: {f0:#?}");
    let warnings = symbolizer.warnings();
    assert!(
        warnings.iter().any(|w| matches!(w, SymbolizeWarning::MissingSupplementary { .. })),
        "{warnings:?}"
    );
}
