//! Demangled names from real C++ (namespaces, class templates) and Rust (legacy and v0
//! mangling) binaries, from DWARF and from the symbol table alone.

mod symbolize_common;

use std::path::Path;

use leakview_analyzer::symbolize::{SymbolizeOptions, Symbolizer};
use symbolize_common::*;

fn symbolize_one(binary: &Path, svma: u64) -> Vec<leakview_analyzer::symbolize::Frame> {
    let module = module_info(1, binary, FAKE_BASE, true);
    let symbolizer = Symbolizer::new(
        vec![module],
        SymbolizeOptions { debug_dirs: Vec::new(), ..SymbolizeOptions::default() },
    );
    let addr = FAKE_BASE + svma;
    symbolizer.symbolize(&[addr]).remove(&addr).expect("every address gets frames")
}

#[test]
fn cpp_namespaces_and_templates_are_demangled() {
    let dir = tempfile::tempdir().expect("tempdir");
    if !have_tool("g++") || !have_tool("nm") || !have_tool("strip") {
        return;
    }
    let source = data_dir().join("symbolize_fixture.cpp");
    run("g++", &["-g", "-O2", "-o", "cprog", &source.to_string_lossy()], dir.path());
    let binary = dir.path().join("cprog");
    let sites = call_site_svmas(&binary, "anchor", "_ZN16leakview_fixture6detail4makeEi");

    let grab = symbolize_one(&binary, sites["site0"]);
    assert_eq!(
        grab.last().and_then(|f| f.function.as_deref()),
        Some("leakview_fixture::Pool<int>::grab(unsigned long)"),
        "{grab:#?}"
    );
    assert_eq!(grab.last().and_then(|f| f.line), Some(line_of(&source, "@grab_call")));
    let make = symbolize_one(&binary, sites["site1"]);
    assert_eq!(make.last().and_then(|f| f.function.as_deref()), Some("leakview_fixture::detail::make(int)"));
    assert_eq!(make.last().and_then(|f| f.line), Some(line_of(&source, "@make_call")));
    // A templated constructor keeps its first parameter (c++filt's reading).
    let holder_name = "leakview_fixture::Holder<long>::Holder<double>(double, int)";
    let holder = symbolize_one(&binary, sites["site2"]);
    assert_eq!(holder.last().and_then(|f| f.function.as_deref()), Some(holder_name), "{holder:#?}");

    // The same names from the symbol table alone.
    let nodebug = copy(&binary, dir.path(), "cprog_nodebug");
    run("strip", &["--strip-debug", "cprog_nodebug"], dir.path());
    let grab = symbolize_one(&nodebug, sites["site0"]);
    assert_eq!(grab.len(), 1);
    assert_eq!(grab[0].function.as_deref(), Some("leakview_fixture::Pool<int>::grab(unsigned long)"));
    assert_eq!(grab[0].line, None);
    let holder = symbolize_one(&nodebug, sites["site2"]);
    assert_eq!(holder[0].function.as_deref(), Some(holder_name));
}

/// Builds the Rust fixture with `mangling` (`-C symbol-mangling-version`; `None` for the default,
/// legacy scheme) and checks its function's name, with and without DWARF.
fn check_rust_fixture(mangling: Option<&str>, mangled_prefix: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    if !have_tool("rustc") || !have_tool("nm") || !have_tool("strip") {
        return;
    }
    let source = data_dir().join("symbolize_fixture.rs");
    let source_text = source.to_string_lossy();
    let mut args = vec!["-g", "-C", "opt-level=1", "--crate-name", "leakview_rust_fixture"];
    let mangling = mangling.map(|m| format!("symbol-mangling-version={m}"));
    if let Some(mangling) = &mangling {
        args.extend_from_slice(&["-C", mangling]);
    }
    args.extend_from_slice(&["-o", "rprog", &source_text]);
    run("rustc", &args, dir.path());
    let binary = dir.path().join("rprog");
    let symbols = nm_symbols(&binary);
    let (mangled, &(start, _)) = symbols
        .iter()
        .find(|(name, _)| name.contains("outer_rust_function"))
        .expect("the fixture's function is in the symbol table");
    assert!(mangled.starts_with(mangled_prefix), "{mangled}");

    let expected = "leakview_rust_fixture::outer_rust_function";
    // A "return address" one past the function's first byte looks up that first byte.
    let frames = symbolize_one(&binary, start + 1);
    assert_eq!(frames.last().and_then(|f| f.function.as_deref()), Some(expected), "{frames:#?}");
    assert!(ends_with(&frames.last().expect("a frame").file, "symbolize_fixture.rs"));

    let nodebug = copy(&binary, dir.path(), "rprog_nodebug");
    run("strip", &["--strip-debug", "rprog_nodebug"], dir.path());
    let frames = symbolize_one(&nodebug, start + 1);
    assert_eq!(frames[0].function.as_deref(), Some(expected));
}

#[test]
fn rust_legacy_names_are_demangled_without_hash() {
    check_rust_fixture(None, "_ZN");
}

#[test]
fn rust_v0_names_are_demangled() {
    check_rust_fixture(Some("v0"), "_R");
}
