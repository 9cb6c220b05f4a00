//! Symbolization of a C program built with full DWARF: inline chains, files and lines, the
//! symbol-table fallback, compressed debug sections, and the module+offset fallbacks.

mod symbolize_common;

use std::path::Path;

use leakview_analyzer::symbolize::{Frame, SymbolizeOptions, SymbolizeWarning, Symbolizer};
use object::{Object, ObjectSection};
use symbolize_common::*;

fn no_debug_dirs() -> SymbolizeOptions {
    SymbolizeOptions { debug_dirs: Vec::new(), ..SymbolizeOptions::default() }
}

/// Checks the frames of the C fixture's two call sites against the source.
fn assert_full_frames(frames0: &[Frame], frames1: &[Frame], module: &Path) {
    let source = data_dir().join("symbolize_fixture.c");
    let names: Vec<_> = frames0.iter().map(Frame::display_name).collect();
    assert_eq!(names, ["fill_buffer", "outer_function"], "{frames0:#?}");
    assert!(frames0[0].inlined && !frames0[1].inlined);
    assert_eq!(frames0[0].line, Some(line_of(&source, "@inlined_call")));
    assert_eq!(frames0[1].line, Some(line_of(&source, "@outer_call")));
    for frame in frames0.iter().chain(frames1) {
        assert!(ends_with(&frame.file, "symbolize_fixture.c"), "{frame:?}");
        assert_eq!(frame.module.as_deref(), Some(&*module.to_string_lossy()));
    }
    assert_eq!(frames1.len(), 1, "{frames1:#?}");
    assert_eq!(frames1[0].function.as_deref(), Some("plain_function"));
    assert_eq!(frames1[0].line, Some(line_of(&source, "@plain_call")));
    assert!(!frames1[0].inlined);
}

#[test]
fn inline_chain_function_file_and_line_from_dwarf() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(binary) = build_c_fixture(dir.path(), "prog", &[]) else { return };
    let sites = c_call_sites(&binary);
    let module = module_info(1, &binary, FAKE_BASE, true);
    let (a0, a1) = (FAKE_BASE + sites["site0"], FAKE_BASE + sites["site1"]);

    let symbolizer = Symbolizer::new(vec![module], no_debug_dirs());
    let out = symbolizer.symbolize(&[a0, a1, a0]);
    assert_eq!(out.len(), 2);
    assert_full_frames(&out[&a0], &out[&a1], &binary);
    for frame in &out[&a0] {
        assert_eq!(frame.address, a0);
        assert_eq!(frame.module_offset, Some(sites["site0"]));
    }
    assert!(symbolizer.warnings().is_empty(), "{:?}", symbolizer.warnings());

    // A second call with overlapping addresses gives the same answer (from the cache).
    let again = symbolizer.symbolize(&[a1, a0 + 0x10_0000_0000, a0]);
    assert_eq!(again[&a0], out[&a0]);
    assert_eq!(again[&a1], out[&a1]);
    assert_eq!(again[&(a0 + 0x10_0000_0000)][0].display_name(), format!("{:#x}", a0 + 0x10_0000_0000));
}

#[test]
fn without_reading_module_files_every_frame_is_module_plus_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(binary) = build_c_fixture(dir.path(), "prog", &[]) else { return };
    let sites = c_call_sites(&binary);
    let module = module_info(1, &binary, FAKE_BASE, true);
    let a0 = FAKE_BASE + sites["site0"];
    let options = SymbolizeOptions { read_module_files: false, ..no_debug_dirs() };
    let out = Symbolizer::new(vec![module], options).symbolize(&[a0]);
    let frames = &out[&a0];
    assert_eq!(frames.len(), 1, "{frames:#?}");
    assert_eq!((frames[0].function.as_deref(), frames[0].line), (None, None));
    assert_eq!(frames[0].module_offset, Some(sites["site0"]));
    assert_eq!(frames[0].module.as_deref(), Some(&*binary.to_string_lossy()));
}

#[test]
fn build_id_read_from_the_file_when_not_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(binary) = build_c_fixture(dir.path(), "prog", &[]) else { return };
    let sites = c_call_sites(&binary);
    let module = module_info(1, &binary, FAKE_BASE, false);
    let a1 = FAKE_BASE + sites["site1"];
    let out = Symbolizer::new(vec![module], no_debug_dirs()).symbolize(&[a1]);
    assert_eq!(out[&a1][0].function.as_deref(), Some("plain_function"));
}

#[test]
fn compressed_debug_sections() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(binary) = build_c_fixture(dir.path(), "prog_gz", &["-gz"]) else { return };
    let bytes = std::fs::read(&binary).expect("read");
    let file = object::File::parse(&*bytes).expect("parse");
    let info = file.section_by_name(".debug_info").expect(".debug_info");
    let compressed = info.compressed_file_range().expect("range");
    assert_ne!(
        compressed.format,
        object::CompressionFormat::None,
        "the fixture's debug sections are compressed"
    );

    let sites = c_call_sites(&binary);
    let module = module_info(1, &binary, FAKE_BASE, true);
    let (a0, a1) = (FAKE_BASE + sites["site0"], FAKE_BASE + sites["site1"]);
    let out = Symbolizer::new(vec![module], no_debug_dirs()).symbolize(&[a0, a1]);
    assert_full_frames(&out[&a0], &out[&a1], &binary);
}

#[test]
fn symbol_table_names_without_dwarf() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(binary) = build_c_fixture(dir.path(), "prog", &[]) else { return };
    if !have_tool("strip") {
        return;
    }
    let sites = c_call_sites(&binary);
    let stripped = copy(&binary, dir.path(), "prog_nodebug");
    run("strip", &["--strip-debug", "prog_nodebug"], dir.path());
    let module = module_info(1, &stripped, FAKE_BASE, true);
    let (a0, a1) = (FAKE_BASE + sites["site0"], FAKE_BASE + sites["site1"]);

    let symbolizer = Symbolizer::new(vec![module], no_debug_dirs());
    let out = symbolizer.symbolize(&[a0, a1]);
    // The inlined helper leaves no symbol: its caller is named.
    assert_eq!(out[&a0].len(), 1);
    assert_eq!(out[&a0][0].function.as_deref(), Some("outer_function"));
    assert_eq!(out[&a1][0].function.as_deref(), Some("plain_function"));
    assert_eq!(out[&a1][0].file, None);
    assert_eq!(out[&a1][0].line, None);
    assert!(matches!(symbolizer.warnings().as_slice(), [SymbolizeWarning::NoDebugInfo { .. }]));
}

#[test]
fn no_symbols_at_all_falls_back_to_module_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(binary) = build_c_fixture(dir.path(), "prog", &[]) else { return };
    if !have_tool("strip") {
        return;
    }
    let sites = c_call_sites(&binary);
    let stripped = copy(&binary, dir.path(), "prog_bare");
    run("strip", &["--strip-all", "prog_bare"], dir.path());
    let module = module_info(1, &stripped, FAKE_BASE, true);
    let a1 = FAKE_BASE + sites["site1"];

    let out = Symbolizer::new(vec![module], no_debug_dirs()).symbolize(&[a1]);
    let frame = &out[&a1][0];
    assert_eq!(out[&a1].len(), 1);
    assert_eq!(frame.function, None);
    assert_eq!(frame.display_name(), format!("prog_bare+{:#x}", sites["site1"]));
}

#[test]
fn addresses_outside_the_code_and_outside_any_module() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(binary) = build_c_fixture(dir.path(), "prog", &[]) else { return };
    let module = module_info(1, &binary, FAKE_BASE, true);
    let symbolizer = Symbolizer::new(vec![module], no_debug_dirs());
    // Offset 1 is in the ELF header (first PT_LOAD), where no function lives.
    let header = FAKE_BASE + 1;
    let outside = 0x1000;
    let out = symbolizer.symbolize(&[header, outside]);
    assert_eq!(out[&header][0].display_name(), "prog+0x1");
    assert_eq!(out[&outside][0].display_name(), "0x1000");
    assert_eq!(out[&outside][0].module, None);
}

#[test]
fn same_file_at_several_bases_is_opened_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(binary) = build_c_fixture(dir.path(), "prog", &[]) else { return };
    let sites = c_call_sites(&binary);
    let bases = [FAKE_BASE, FAKE_BASE + 0x1_0000_0000, FAKE_BASE + 0x2_0000_0000];
    let modules = bases.iter().zip(1..).map(|(&b, id)| module_info(id, &binary, b, true)).collect();
    let missing = dir.path().join("gone.so");
    let mut gone: Vec<_> = (10..13)
        .map(|id| {
            let mut m = module_info(id, &binary, 0x7000_0000_0000 + u64::from(id) * 0x1_0000_0000, true);
            m.path = missing.clone();
            m
        })
        .collect();
    let mut all: Vec<_> = modules;
    all.append(&mut gone);
    let gone_addr = 0x7000_0000_0000 + 10 * 0x1_0000_0000 + sites["site1"];
    let symbolizer = Symbolizer::new(all, no_debug_dirs());
    let addrs: Vec<u64> =
        bases.iter().flat_map(|b| [b + sites["site0"], b + sites["site1"]]).chain([gone_addr]).collect();
    let out = symbolizer.symbolize(&addrs);
    for b in bases {
        assert_eq!(out[&(b + sites["site0"])][1].function.as_deref(), Some("outer_function"));
        assert_eq!(out[&(b + sites["site1"])][0].function.as_deref(), Some("plain_function"));
    }
    assert_eq!(out[&gone_addr][0].display_name(), format!("gone.so+{:#x}", sites["site1"]));
    // The three modules of the missing file share one file, so one warning.
    let warnings = symbolizer.warnings();
    assert!(matches!(warnings.as_slice(), [SymbolizeWarning::Unreadable { .. }]), "{warnings:?}");
}

#[test]
fn damaged_module_files_degrade_without_panicking() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(binary) = build_c_fixture(dir.path(), "prog", &[]) else { return };
    let sites = c_call_sites(&binary);
    let bytes = std::fs::read(&binary).expect("read");
    let cuts = [0, 16, 64, 200, bytes.len() / 3, bytes.len() / 2, bytes.len() - 100];
    for (i, &cut) in cuts.iter().enumerate() {
        let damaged = dir.path().join(format!("damaged{i}"));
        std::fs::write(&damaged, &bytes[..cut]).expect("write");
        let mut module = module_info(1, &binary, FAKE_BASE, true);
        module.path = damaged;
        let symbolizer = Symbolizer::new(vec![module], no_debug_dirs());
        let addrs = [FAKE_BASE + sites["site0"], FAKE_BASE + sites["site1"], FAKE_BASE + 1];
        let out = symbolizer.symbolize(&addrs);
        for addr in addrs {
            assert!(!out[&addr].is_empty(), "cut at {cut}: every address gets a frame");
        }
    }
    // Not an object file at all.
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "plain text").expect("write");
    let mut module = module_info(1, &binary, FAKE_BASE, true);
    module.path = text;
    let symbolizer = Symbolizer::new(vec![module], no_debug_dirs());
    let addr = FAKE_BASE + sites["site1"];
    assert_eq!(
        symbolizer.symbolize(&[addr])[&addr][0].display_name(),
        format!("notes.txt+{:#x}", sites["site1"])
    );
    assert!(matches!(symbolizer.warnings().as_slice(), [SymbolizeWarning::Unreadable { .. }]));
}

#[test]
fn corrupt_dwarf_degrades_without_panicking() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(binary) = build_c_fixture(dir.path(), "prog", &[]) else { return };
    let sites = c_call_sites(&binary);
    let bytes = std::fs::read(&binary).expect("read");
    let file = object::File::parse(&*bytes).expect("parse");
    let sections = [".debug_info", ".debug_abbrev", ".debug_line", ".debug_str", ".debug_rnglists"];
    let ranges: Vec<(usize, usize)> = sections
        .iter()
        .filter_map(|name| file.section_by_name(name)?.file_range())
        .map(|(start, size)| (usize::try_from(start).expect("offset"), usize::try_from(size).expect("size")))
        .collect();
    assert!(ranges.len() >= 3, "the fixture has DWARF sections");
    for (i, &(start, size)) in ranges.iter().enumerate() {
        for pattern in [0x00u8, 0xff, 0x7f] {
            let mut damaged_bytes = bytes.clone();
            // Keep the first bytes of the section (unit headers) and break what follows, or
            // break everything.
            let from = if pattern == 0x7f { start } else { start + size.min(12) };
            for (j, b) in damaged_bytes[from..start + size].iter_mut().enumerate() {
                *b = pattern ^ (j as u8 & 0x11);
            }
            let damaged = dir.path().join(format!("corrupt{i}_{pattern:02x}"));
            std::fs::write(&damaged, &damaged_bytes).expect("write");
            let mut module = module_info(1, &binary, FAKE_BASE, true);
            module.path = damaged;
            let symbolizer = Symbolizer::new(vec![module], no_debug_dirs());
            let addrs = [FAKE_BASE + sites["site0"], FAKE_BASE + sites["site1"]];
            let out = symbolizer.symbolize(&addrs);
            for addr in addrs {
                assert!(!out[&addr].is_empty());
            }
        }
    }
}

#[test]
fn assembly_functions_without_a_type_are_named_by_their_label() {
    // A label with no `.type` is a NOTYPE symbol: the DWARF reader's own symbol fallback knows
    // only typed functions and named the C function before it.
    let dir = tempfile::tempdir().expect("tempdir");
    if !have_tool("cc") || !have_tool("nm") {
        return;
    }
    let source = dir.path().join("asm.c");
    std::fs::write(
        &source,
        "int before(int x) { return x * 3; }\n\
         __asm__(\".text\\n.globl untyped_label\\nuntyped_label:\\n nop\\n nop\\n nop\\n nop\\n ret\\n\");\n\
         int main(void) { return before(1) - 3; }\n",
    )
    .expect("write the source");
    run("cc", &["-g", "-O1", "-o", "asm", "asm.c"], dir.path());
    let binary = dir.path().join("asm");
    let symbols = nm_symbols(&binary);
    let (label, _) = symbols["untyped_label"];
    let module = module_info(1, &binary, FAKE_BASE, true);
    let probe = FAKE_BASE + label + 3;
    let out = Symbolizer::new(vec![module], no_debug_dirs()).symbolize(&[probe]);
    assert_eq!(out[&probe][0].function.as_deref(), Some("untyped_label"), "{:?}", out[&probe]);
}
