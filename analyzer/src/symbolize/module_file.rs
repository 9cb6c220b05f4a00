//! One module file opened for symbolization: decides where its DWARF and its symbols come from
//! (the file itself, a build-id or debuglink debug file, a dwz supplementary file), opens them
//! once, and answers lookups by ELF virtual address.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use addr2line::Loader;

use super::debug_files::{self, DebugFile};
use super::demangle::demangle;
use super::elf_file::{self, ElfInfo};
use super::symbol_table::SymbolTable;
use super::warnings::{SymbolizeWarning, hex};

/// A frame before it is tied to a runtime address: what the debug info says about one level of
/// the (possibly inlined) call chain.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct SourceFrame {
    pub function: Option<String>,
    pub file: Option<String>,
    pub line: Option<u32>,
}

/// The symbol table is read on first need: modules with full DWARF rarely need it.
enum Symbols {
    NotRead { candidates: Vec<PathBuf> },
    Read(SymbolTable),
}

/// The opened debug information of one module file.
pub(crate) struct ModuleFile {
    dwarf: Option<Loader>,
    symbols: Symbols,
    /// Raw name → readable name: many addresses share a function, demangle each name once.
    demangled: HashMap<Box<str>, Box<str>>,
}

/// Names the vDSO and similar in-memory objects have no file behind them.
fn is_virtual(path: &Path) -> bool {
    let text = path.as_os_str().to_string_lossy();
    text.starts_with('[')
        || text.starts_with("linux-vdso")
        || text.starts_with("linux-gate")
        || text.is_empty()
}

impl ModuleFile {
    /// A module with nothing to look up in.
    pub fn empty() -> Self {
        ModuleFile { dwarf: None, symbols: Symbols::Read(SymbolTable::default()), demangled: HashMap::new() }
    }

    /// Opens the module at `path`, recorded with `recorded_build_id` (empty if unknown), and
    /// locates its debug information. Problems are appended to `warnings`; they never fail.
    pub fn open(
        path: &Path,
        recorded_build_id: &[u8],
        debug_dirs: &[PathBuf],
        warnings: &mut Vec<SymbolizeWarning>,
    ) -> Self {
        if is_virtual(path) {
            return Self::empty();
        }
        let (own, problem) = match elf_file::read_info(path) {
            Ok(info) => usable_info(path, info, recorded_build_id),
            Err(err) => (
                None,
                Some(SymbolizeWarning::Unreadable { path: path.to_path_buf(), reason: err.to_string() }),
            ),
        };
        let build_id = match (recorded_build_id, &own) {
            ([], Some(info)) => info.build_id.clone(),
            ([], None) => None,
            (recorded, _) => Some(recorded.to_vec()),
        };

        let separate =
            find_separate_debug_file(path, own.as_ref(), build_id.as_deref(), debug_dirs, warnings);
        if own.is_none() && separate.is_none() {
            warnings.extend(problem);
            return Self::empty();
        }

        let dwarf_file: Option<(&Path, &ElfInfo)> = match (&own, &separate) {
            (Some(info), _) if info.has_dwarf => Some((path, info)),
            (_, Some(debug)) if debug.info.has_dwarf => Some((&debug.path, &debug.info)),
            _ => None,
        };
        let dwarf = match dwarf_file {
            Some((dwarf_path, info)) => open_dwarf(path, dwarf_path, info, debug_dirs, warnings),
            None => {
                warnings.push(SymbolizeWarning::NoDebugInfo { path: path.to_path_buf() });
                None
            }
        };

        let mut candidates = Vec::new();
        candidates.extend(separate.map(|debug| debug.path));
        if own.is_some() {
            candidates.push(path.to_path_buf());
        }
        ModuleFile { dwarf, symbols: Symbols::NotRead { candidates }, demangled: HashMap::new() }
    }

    /// The call chain at ELF virtual address `probe`, innermost first; empty when nothing is
    /// known there.
    pub fn lookup(&mut self, probe: u64) -> Vec<SourceFrame> {
        let mut frames = self.dwarf_frames(probe);
        let needs_name = frames.last().is_none_or(|outer| outer.function.is_none());
        if needs_name && let Some(name) = self.symbol_name(probe) {
            match frames.last_mut() {
                Some(outer) => outer.function = Some(name),
                None => frames.push(SourceFrame { function: Some(name), ..Default::default() }),
            }
        }
        frames
    }

    fn dwarf_frames(&mut self, probe: u64) -> Vec<SourceFrame> {
        let Some(loader) = &self.dwarf else { return Vec::new() };
        let mut frames = Vec::new();
        if let Ok(mut iter) = loader.find_frames(probe) {
            // A damaged unit ends the chain early; what was read so far is still right.
            while let Ok(Some(frame)) = iter.next() {
                let function = frame
                    .function
                    .as_ref()
                    .and_then(|f| f.raw_name().ok())
                    .map(|raw| readable(&mut self.demangled, &raw));
                let (file, line) =
                    frame.location.map(|loc| (loc.file.map(str::to_owned), loc.line)).unwrap_or_default();
                frames.push(SourceFrame { function, file, line });
            }
        }
        // Line tables without function entries (assembly, some toolchains).
        if frames.is_empty()
            && let Ok(Some(loc)) = loader.find_location(probe)
            && (loc.file.is_some() || loc.line.is_some())
        {
            frames.push(SourceFrame { function: None, file: loc.file.map(str::to_owned), line: loc.line });
        }
        frames
    }

    fn symbol_name(&mut self, probe: u64) -> Option<String> {
        if let Symbols::NotRead { candidates } = &self.symbols {
            let table = candidates
                .iter()
                .filter_map(|path| elf_file::read_symbols(path).ok())
                .find(|table| !table.is_empty())
                .unwrap_or_default();
            self.symbols = Symbols::Read(table);
        }
        let Symbols::Read(table) = &self.symbols else { return None };
        table.lookup(probe).map(|entry| readable(&mut self.demangled, &entry.name))
    }
}

/// The demangled form of `raw`, computed once per name.
fn readable(memo: &mut HashMap<Box<str>, Box<str>>, raw: &str) -> String {
    if let Some(known) = memo.get(raw) {
        return known.to_string();
    }
    let readable = demangle(raw).into_owned();
    memo.insert(raw.into(), readable.as_str().into());
    readable
}

/// The module's own info if it is the file that was recorded, with the reason when it is not.
fn usable_info(path: &Path, info: ElfInfo, recorded: &[u8]) -> (Option<ElfInfo>, Option<SymbolizeWarning>) {
    if recorded.is_empty() || info.build_id.as_deref() == Some(recorded) {
        return (Some(info), None);
    }
    let warning = SymbolizeWarning::BuildIdMismatch {
        path: path.to_path_buf(),
        expected: hex(recorded),
        found: info.build_id.as_deref().map(hex).unwrap_or_else(|| "none".to_owned()),
    };
    (None, Some(warning))
}

/// A separate debug file, unless the module itself has DWARF: by build-id first, then by the
/// module's debuglink.
fn find_separate_debug_file(
    path: &Path,
    own: Option<&ElfInfo>,
    build_id: Option<&[u8]>,
    debug_dirs: &[PathBuf],
    warnings: &mut Vec<SymbolizeWarning>,
) -> Option<DebugFile> {
    if own.is_some_and(|info| info.has_dwarf) {
        return None;
    }
    if let Some(found) = build_id.and_then(|id| debug_files::find_by_build_id(id, debug_dirs)) {
        return Some(found);
    }
    let own = own?;
    let link = own.debuglink.as_ref()?;
    debug_files::find_by_debuglink(path, link, own.build_id.as_deref(), debug_dirs, warnings)
}

/// Opens the DWARF of `dwarf_path` (the module or its debug file) with its supplementary file.
fn open_dwarf(
    module: &Path,
    dwarf_path: &Path,
    info: &ElfInfo,
    debug_dirs: &[PathBuf],
    warnings: &mut Vec<SymbolizeWarning>,
) -> Option<Loader> {
    let sup = info.altlink.as_ref().and_then(|link| {
        let found = debug_files::find_altlink(dwarf_path, link, debug_dirs);
        if found.is_none() {
            warnings.push(SymbolizeWarning::MissingSupplementary {
                path: module.to_path_buf(),
                name: link.path.display().to_string(),
            });
        }
        found
    });
    let loaded = match &sup {
        Some(sup) => Loader::new_with_sup(dwarf_path, Some(sup)).or_else(|_| Loader::new(dwarf_path)),
        None => Loader::new(dwarf_path),
    };
    match loaded {
        Ok(loader) => Some(loader),
        Err(err) => {
            warnings.push(SymbolizeWarning::Unreadable {
                path: dwarf_path.to_path_buf(),
                reason: err.to_string(),
            });
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_modules_are_recognised() {
        assert!(is_virtual(Path::new("linux-vdso.so.1")));
        assert!(is_virtual(Path::new("[vdso]")));
        assert!(is_virtual(Path::new("")));
        assert!(!is_virtual(Path::new("/usr/lib/libc.so.6")));
    }

    #[test]
    fn missing_file_gives_one_warning_and_no_frames() {
        let mut warnings = Vec::new();
        let mut file = ModuleFile::open(Path::new("/nonexistent/leakview/libx.so"), &[], &[], &mut warnings);
        assert!(matches!(warnings.as_slice(), [SymbolizeWarning::Unreadable { .. }]));
        assert!(file.lookup(0x1234).is_empty());
    }
}
