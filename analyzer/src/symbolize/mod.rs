//! Turns return addresses into readable frames: function, file, line, module, with inline
//! frames expanded. Each unique address is symbolized once; modules are processed in parallel.
//! Missing files or debug info degrade to `module+0xOFFSET`, never to an error.
//!
//! Public surface (stable; callers depend on it): [`ModuleInfo`], [`Frame`],
//! [`SymbolizeOptions`], [`Symbolizer::new`], [`Symbolizer::symbolize`]; also
//! [`Symbolizer::warnings`], [`SymbolizeWarning`] and [`demangle`].
//!
//! Internals: `module_index` maps addresses to modules, `module_file` opens one module's debug
//! information (found by `debug_files`, read with `elf_file` and addr2line), `symbol_table`
//! covers code without DWARF, `demangle` makes names readable (C++ through `demangle_cpp` and
//! `cpp_conventions`).

mod cpp_conventions;
mod debug_files;
mod demangle;
mod demangle_cpp;
mod elf_file;
mod module_file;
mod module_index;
mod symbol_table;
mod warnings;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError, RwLock};

use leakview_format::Segment;
use rayon::prelude::*;

pub use demangle::demangle;
pub use warnings::SymbolizeWarning;

use module_file::{ModuleFile, SourceFrame};
use module_index::ModuleIndex;

/// A module (executable or shared object) as the recorder saw it mapped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleInfo {
    /// Recorder-assigned id (unique within a trace).
    pub id: u32,
    pub path: PathBuf,
    /// GNU build-id; empty if unknown.
    pub build_id: Vec<u8>,
    /// Load bias: runtime address = `base` + ELF virtual address.
    pub base: u64,
    /// Loadable segments, addresses relative to `base`.
    pub segments: Vec<Segment>,
    /// CLOCK_MONOTONIC ns when it was loaded and (if it was) unloaded.
    pub loaded_ns: u64,
    pub unloaded_ns: Option<u64>,
}

impl ModuleInfo {
    /// Whether runtime address `addr` lies in one of the module's segments.
    pub fn contains(&self, addr: u64) -> bool {
        self.segments.iter().any(|s| {
            let start = self.base.wrapping_add(s.vaddr);
            addr >= start && addr < start.wrapping_add(s.memsz)
        })
    }

    /// The file name of the module's path.
    pub fn file_name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.path.display().to_string())
    }
}

/// One frame of a symbolized stack. Several frames can share one `address` when functions were
/// inlined there: they are listed innermost first, all but the last with `inlined: true`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Frame {
    /// Demangled function name, if known.
    pub function: Option<String>,
    pub file: Option<String>,
    pub line: Option<u32>,
    /// Path of the module the address is in, if any.
    pub module: Option<String>,
    /// The runtime return address.
    pub address: u64,
    /// Offset of the address in its module's file (ELF virtual address), if the module is known.
    pub module_offset: Option<u64>,
    /// This frame was inlined into the next one (same address).
    pub inlined: bool,
}

impl Frame {
    /// `function`, or `module+0xOFFSET`, or `0xADDRESS`: the best short name available.
    pub fn display_name(&self) -> String {
        if let Some(f) = &self.function {
            return f.clone();
        }
        match (self.module_name(), self.module_offset) {
            (Some(name), Some(off)) => format!("{name}+{off:#x}"),
            _ => format!("{:#x}", self.address),
        }
    }

    /// The file name of the frame's module (`libc.so.6` for `/usr/lib/x86_64-linux-gnu/libc.so.6`),
    /// as frames show it, if the module is known.
    pub fn module_name(&self) -> Option<&str> {
        self.module.as_deref().map(|m| m.rsplit('/').find(|part| !part.is_empty()).unwrap_or(m))
    }

    /// Whether the frame holds `needle` (given in lower case), ASCII case-insensitively, in its
    /// function, its source file's path, its module's file name or its display name: what the
    /// browsers' filters match. The module's directories are left out: they say where a program
    /// was installed (the demo runs from `~/.cache/leakview/`), not which code allocated.
    pub fn contains_text(&self, needle: &str) -> bool {
        let hit = |text: Option<&str>| text.is_some_and(|t| t.to_ascii_lowercase().contains(needle));
        hit(self.function.as_deref())
            || hit(self.file.as_deref())
            || hit(self.module_name())
            || self.display_name().to_ascii_lowercase().contains(needle)
    }
}

/// Where to look for symbols and separate debug information.
#[derive(Clone, Debug)]
pub struct SymbolizeOptions {
    /// Roots searched for `.build-id/xx/yyyy.debug` and debuglink files (default `/usr/lib/debug`).
    pub debug_dirs: Vec<PathBuf>,
    /// Whether the modules' files are read at all (default yes). Without them every frame is
    /// `module+0xOFFSET`: for tools that need no names, such as the fuzz targets, where a trace
    /// naming a real library would otherwise parse its debug information on every input.
    pub read_module_files: bool,
}

impl Default for SymbolizeOptions {
    fn default() -> Self {
        SymbolizeOptions { debug_dirs: vec![PathBuf::from("/usr/lib/debug")], read_module_files: true }
    }
}

/// Symbolizes addresses against a trace's modules.
///
/// Each distinct module file (path and build-id) is opened once, on first use, and kept open;
/// each address is symbolized once and remembered, so later calls only do new work. Calls may
/// come from several threads at once.
pub struct Symbolizer {
    modules: Vec<ModuleInfo>,
    /// Each module's path as frames show it.
    module_names: Vec<String>,
    options: SymbolizeOptions,
    index: ModuleIndex,
    /// For each module, the slot in `files` of its file.
    file_of_module: Vec<usize>,
    /// Opened files; `None` until first needed.
    files: Vec<Mutex<Option<ModuleFile>>>,
    cache: RwLock<HashMap<u64, Vec<Frame>>>,
    warnings: Mutex<Vec<SymbolizeWarning>>,
}

impl Symbolizer {
    pub fn new(modules: Vec<ModuleInfo>, options: SymbolizeOptions) -> Self {
        let index = ModuleIndex::new(&modules);
        let mut slots: HashMap<(&PathBuf, &[u8]), usize> = HashMap::new();
        let file_of_module: Vec<usize> = modules
            .iter()
            .map(|m| {
                let next = slots.len();
                *slots.entry((&m.path, &m.build_id[..])).or_insert(next)
            })
            .collect();
        let files = (0..slots.len()).map(|_| Mutex::new(None)).collect();
        let module_names = modules.iter().map(|m| m.path.display().to_string()).collect();
        Symbolizer {
            modules,
            module_names,
            options,
            index,
            file_of_module,
            files,
            cache: RwLock::new(HashMap::new()),
            warnings: Mutex::new(Vec::new()),
        }
    }

    /// The module containing `addr`; when several did over time (a library unloaded and another
    /// loaded at the same place), the one loaded last.
    pub fn module_for(&self, addr: u64) -> Option<&ModuleInfo> {
        self.index.lookup(addr).and_then(|i| self.modules.get(i))
    }

    /// Symbolizes each of `addresses` (return addresses, as recorded; the lookup uses
    /// `address - 1` so the call instruction is found). Every input address gets at least one
    /// frame in the result.
    pub fn symbolize(&self, addresses: &[u64]) -> HashMap<u64, Vec<Frame>> {
        let mut result: HashMap<u64, Vec<Frame>> = HashMap::with_capacity(addresses.len());
        let mut by_file: HashMap<usize, Vec<(u64, usize)>> = HashMap::new();
        let mut queued: HashSet<u64> = HashSet::new();
        {
            let cache = self.cache.read().unwrap_or_else(PoisonError::into_inner);
            for &addr in addresses {
                if result.contains_key(&addr) || queued.contains(&addr) {
                    continue;
                }
                if let Some(frames) = cache.get(&addr) {
                    result.insert(addr, frames.clone());
                } else if let Some(module) = self.index.lookup(addr) {
                    queued.insert(addr);
                    by_file.entry(self.file_of_module[module]).or_default().push((addr, module));
                } else {
                    result.insert(addr, vec![self.fallback_frame(addr, None)]);
                }
            }
        }

        let fresh: Vec<(u64, Vec<Frame>)> = by_file
            .into_par_iter()
            .flat_map_iter(|(slot, addrs)| self.symbolize_in_file(slot, addrs))
            .collect();

        let mut cache = self.cache.write().unwrap_or_else(PoisonError::into_inner);
        for (addr, frames) in fresh {
            cache.insert(addr, frames.clone());
            result.insert(addr, frames);
        }
        result
    }

    /// Problems met so far (files missing or changed since recording, missing debug info...),
    /// each reported once per module file.
    pub fn warnings(&self) -> Vec<SymbolizeWarning> {
        self.warnings.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Symbolizes `addrs` (each with its module's index), all in the file of `slot`.
    fn symbolize_in_file(&self, slot: usize, mut addrs: Vec<(u64, usize)>) -> Vec<(u64, Vec<Frame>)> {
        let mut guard = self.files[slot].lock().unwrap_or_else(PoisonError::into_inner);
        let file = guard.get_or_insert_with(|| {
            let Some(&(_, module)) = addrs.first() else { return ModuleFile::empty() };
            if !self.options.read_module_files {
                return ModuleFile::empty();
            }
            let info = &self.modules[module];
            let mut found = Vec::new();
            let file = ModuleFile::open(&info.path, &info.build_id, &self.options.debug_dirs, &mut found);
            self.warnings.lock().unwrap_or_else(PoisonError::into_inner).extend(found);
            file
        });
        // Ascending addresses walk the debug info in order.
        addrs.sort_unstable_by_key(|&(addr, module)| addr.wrapping_sub(self.modules[module].base));
        addrs
            .into_iter()
            .map(|(addr, module)| {
                let info = &self.modules[module];
                let svma = addr.wrapping_sub(info.base);
                let source = file.lookup(svma.saturating_sub(1));
                (addr, self.frames(addr, module, source))
            })
            .collect()
    }

    /// Frames for `addr` in `module` from what the debug info said, innermost first.
    fn frames(&self, addr: u64, module: usize, source: Vec<SourceFrame>) -> Vec<Frame> {
        if source.is_empty() {
            return vec![self.fallback_frame(addr, Some(module))];
        }
        let base = self.modules[module].base;
        let outermost = source.len() - 1;
        source
            .into_iter()
            .enumerate()
            .map(|(i, s)| Frame {
                function: s.function,
                file: s.file,
                line: s.line,
                module: Some(self.module_names[module].clone()),
                address: addr,
                module_offset: Some(addr.wrapping_sub(base)),
                inlined: i < outermost,
            })
            .collect()
    }

    /// The frame shown when nothing is known: `module+0xOFFSET`, or the bare address.
    fn fallback_frame(&self, addr: u64, module: Option<usize>) -> Frame {
        Frame {
            function: None,
            file: None,
            line: None,
            module: module.map(|m| self.module_names[m].clone()),
            address: addr,
            module_offset: module.map(|m| addr.wrapping_sub(self.modules[m].base)),
            inlined: false,
        }
    }
}

#[cfg(test)]
impl Frame {
    /// A frame of `function` (or an unnamed one) in `module` at offset 0x234, without file or
    /// line: what the frame-rule tests look at.
    pub(crate) fn in_module(function: Option<&str>, module: &str) -> Frame {
        Frame {
            function: function.map(str::to_string),
            file: None,
            line: None,
            module: Some(module.to_string()),
            address: 0x1000,
            module_offset: Some(0x234),
            inlined: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(id: u32, base: u64, loaded_ns: u64) -> ModuleInfo {
        ModuleInfo {
            id,
            path: PathBuf::from(format!("/lib/libm{id}.so")),
            build_id: vec![],
            base,
            segments: vec![Segment { vaddr: 0x1000, memsz: 0x1000, flags: 5 }],
            loaded_ns,
            unloaded_ns: None,
        }
    }

    #[test]
    fn unknown_addresses_fall_back_to_module_offset_or_address() {
        let s = Symbolizer::new(vec![module(1, 0x10_0000, 0)], SymbolizeOptions::default());
        let out = s.symbolize(&[0x10_1234, 0x99]);
        assert_eq!(out[&0x10_1234][0].display_name(), "libm1.so+0x1234");
        assert_eq!(out[&0x99][0].display_name(), "0x99");
    }

    #[test]
    fn later_module_wins_when_addresses_were_reused() {
        let s = Symbolizer::new(
            vec![module(1, 0x10_0000, 5), module(2, 0x10_0000, 9)],
            SymbolizeOptions::default(),
        );
        assert_eq!(s.module_for(0x10_1000).map(|m| m.id), Some(2));
        assert_eq!(s.module_for(0x10_0fff).map(|m| m.id), None);
    }

    #[test]
    fn vdso_is_not_opened_and_not_warned_about() {
        let mut vdso = module(1, 0x7fff_0000, 0);
        vdso.path = PathBuf::from("linux-vdso.so.1");
        let s = Symbolizer::new(vec![vdso], SymbolizeOptions::default());
        let out = s.symbolize(&[0x7fff_1010]);
        assert_eq!(out[&0x7fff_1010][0].display_name(), "linux-vdso.so.1+0x1010");
        assert!(s.warnings().is_empty());
    }

    fn frame(function: Option<&str>, file: Option<&str>, module: Option<&str>) -> Frame {
        Frame {
            function: function.map(str::to_string),
            file: file.map(str::to_string),
            line: None,
            module: module.map(str::to_string),
            address: 0x1234,
            module_offset: Some(0x234),
            inlined: false,
        }
    }

    #[test]
    fn module_names_are_file_names() {
        assert_eq!(frame(None, None, Some("/usr/lib/libc.so.6")).module_name(), Some("libc.so.6"));
        assert_eq!(frame(None, None, Some("prog")).module_name(), Some("prog"));
        assert_eq!(frame(None, None, Some("/opt/app/")).module_name(), Some("app"));
        assert_eq!(frame(None, None, None).module_name(), None);
    }

    #[test]
    fn text_is_found_in_what_a_frame_shows_but_not_in_its_modules_directories() {
        let f = frame(Some("cache_put"), Some("./src/Store.c"), Some("/root/.cache/leakview/1-ab/demo"));
        for needle in ["cache_put", "put", "src/store", "store.c", "demo"] {
            assert!(f.contains_text(needle), "{needle}");
        }
        for needle in [".cache", "leakview", "root", "cache_get"] {
            assert!(!f.contains_text(needle), "{needle}");
        }
        let anonymous = frame(None, None, Some("/opt/lib/libhttp.so"));
        assert!(anonymous.contains_text("libhttp.so+0x234"));
        assert!(!anonymous.contains_text("opt"));
    }

    #[test]
    fn duplicates_and_empty_input() {
        let s = Symbolizer::new(vec![module(1, 0x10_0000, 0)], SymbolizeOptions::default());
        assert!(s.symbolize(&[]).is_empty());
        let out = s.symbolize(&[0x10_1001, 0x10_1001, 0x5]);
        assert_eq!(out.len(), 2);
        assert_eq!(out[&0x10_1001].len(), 1);
        // The missing module file is reported once, however often it is asked about.
        let _ = s.symbolize(&[0x10_1002]);
        assert_eq!(s.warnings().len(), 1, "{:?}", s.warnings());
    }
}
