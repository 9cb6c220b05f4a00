//! Reads what symbolization needs from an ELF file without mapping it: its build-id, its links
//! to separate debug files, whether it carries DWARF, and its function symbols. Only the parts
//! that are used are read (through `object`'s `ReadCache`), so large files stay cheap.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use object::elf::{
    SHF_EXECINSTR, SHN_LORESERVE, SHN_UNDEF, SHN_XINDEX, SHT_DYNSYM, SHT_SYMTAB, STB_GLOBAL, STB_WEAK,
    STT_FUNC, STT_GNU_IFUNC, STT_NOTYPE,
};
use object::read::ReadCache;
use object::read::elf::{ElfFile, FileHeader, SectionHeader, SectionTable, Sym};
use object::{Endianness, FileKind, Object, ObjectSection, SectionIndex};

use super::symbol_table::{SymbolEntry, SymbolTable};

/// Why an ELF file could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ElfError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("not an ELF file")]
    NotElf,
    #[error("malformed ELF: {0}")]
    Malformed(#[from] object::Error),
}

/// `.gnu_debuglink`: the file name of a separate debug file and the CRC32 of its contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DebugLink {
    pub file_name: PathBuf,
    pub crc: u32,
}

/// `.gnu_debugaltlink`: the supplementary (dwz) file shared by several debug files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AltLink {
    pub path: PathBuf,
    pub build_id: Vec<u8>,
}

/// What an ELF file says about where its debug information is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ElfInfo {
    pub build_id: Option<Vec<u8>>,
    pub debuglink: Option<DebugLink>,
    pub altlink: Option<AltLink>,
    /// The file has a `.debug_info` (or `.zdebug_info`) section with contents.
    pub has_dwarf: bool,
}

type Cache = ReadCache<File>;

/// Reads the build-id, debug links and presence of DWARF of the ELF file at `path`.
pub(crate) fn read_info(path: &Path) -> Result<ElfInfo, ElfError> {
    let cache = ReadCache::new(File::open(path)?);
    match FileKind::parse(&cache)? {
        FileKind::Elf32 => info_of::<object::elf::FileHeader32<Endianness>>(&cache),
        FileKind::Elf64 => info_of::<object::elf::FileHeader64<Endianness>>(&cache),
        _ => Err(ElfError::NotElf),
    }
}

/// Reads the function symbols of the ELF file at `path`: `.symtab`, or `.dynsym` when the file
/// has no (or an empty) `.symtab`.
pub(crate) fn read_symbols(path: &Path) -> Result<SymbolTable, ElfError> {
    let cache = ReadCache::new(File::open(path)?);
    match FileKind::parse(&cache)? {
        FileKind::Elf32 => symbols_of::<object::elf::FileHeader32<Endianness>>(&cache),
        FileKind::Elf64 => symbols_of::<object::elf::FileHeader64<Endianness>>(&cache),
        _ => Err(ElfError::NotElf),
    }
}

fn info_of<Elf: FileHeader<Endian = Endianness>>(cache: &Cache) -> Result<ElfInfo, ElfError> {
    let file = ElfFile::<Elf, &Cache>::parse(cache)?;
    // A damaged note or link section only loses that piece of information.
    let build_id = file.build_id().ok().flatten().filter(|id| !id.is_empty()).map(<[u8]>::to_vec);
    let debuglink = file
        .gnu_debuglink()
        .ok()
        .flatten()
        .map(|(name, crc)| DebugLink { file_name: PathBuf::from(OsStr::from_bytes(name)), crc });
    let altlink = file.gnu_debugaltlink().ok().flatten().map(|(path, build_id)| AltLink {
        path: PathBuf::from(OsStr::from_bytes(path)),
        build_id: build_id.to_vec(),
    });
    let has_dwarf = file
        .section_by_name(".debug_info")
        .and_then(|section| section.file_range())
        .is_some_and(|(_, size)| size > 0);
    Ok(ElfInfo { build_id, debuglink, altlink, has_dwarf })
}

fn symbols_of<Elf: FileHeader<Endian = Endianness>>(cache: &Cache) -> Result<SymbolTable, ElfError> {
    let file = ElfFile::<Elf, &Cache>::parse(cache)?;
    let endian = file.endian();
    let sections = file.elf_section_table();
    for wanted in [SHT_SYMTAB, SHT_DYNSYM] {
        let Some(table) = sections.iter().find(|s| s.sh_type(endian) == wanted) else {
            continue;
        };
        let symbols: &[Elf::Sym] = table.data_as_array(endian, cache)?;
        let strings = sections.section(SectionIndex(table.sh_link(endian) as usize))?.data(endian, cache)?;
        let entries: Vec<SymbolEntry> =
            symbols.iter().filter_map(|sym| function_entry::<Elf>(sym, endian, sections, strings)).collect();
        if !entries.is_empty() {
            return Ok(SymbolTable::new(entries));
        }
    }
    Ok(SymbolTable::default())
}

/// The table entry for `sym` if it defines a function (or a code label).
fn function_entry<'a, Elf: FileHeader<Endian = Endianness>>(
    sym: &Elf::Sym,
    endian: Endianness,
    sections: &SectionTable<'a, Elf, &'a Cache>,
    strings: &[u8],
) -> Option<SymbolEntry> {
    // Defined in a section (object's `is_definition` also wants a size for a NOTYPE symbol,
    // which an assembly label lacks).
    let section = sym.st_shndx(endian);
    if section == SHN_UNDEF || (section >= SHN_LORESERVE && section != SHN_XINDEX) {
        return None;
    }
    let is_code = match sym.st_type() {
        STT_FUNC | STT_GNU_IFUNC => true,
        STT_NOTYPE => sections
            .section(SectionIndex(usize::from(sym.st_shndx(endian))))
            .is_ok_and(|s| s.sh_flags(endian).into() & u64::from(SHF_EXECINSTR) != 0),
        _ => false,
    };
    if !is_code {
        return None;
    }
    let start = usize::try_from(sym.st_name(endian)).ok()?;
    let rest = strings.get(start..)?;
    let name = &rest[..rest.iter().position(|&b| b == 0)?];
    let rank = match sym.st_bind() {
        STB_GLOBAL => 0,
        STB_WEAK => 1,
        _ => 2,
    };
    Some(SymbolEntry {
        address: sym.st_value(endian).into(),
        size: sym.st_size(endian).into(),
        rank,
        name: String::from_utf8_lossy(name).into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_non_elf_files_are_errors_not_panics() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("missing");
        assert!(matches!(read_info(&missing), Err(ElfError::Io(_))));
        let text = dir.path().join("text");
        std::fs::write(&text, b"just some text, certainly not an object file").expect("write");
        assert!(read_info(&text).is_err());
        assert!(read_symbols(&text).is_err());
        let empty = dir.path().join("empty");
        std::fs::write(&empty, b"").expect("write");
        assert!(read_info(&empty).is_err());
    }

    #[test]
    fn truncated_elf_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let exe = std::env::current_exe().expect("current exe");
        let bytes = std::fs::read(&exe).expect("read test binary");
        let cut = dir.path().join("cut");
        std::fs::write(&cut, &bytes[..200.min(bytes.len())]).expect("write");
        // Either an error or a result without symbols; never a panic.
        if let Ok(table) = read_symbols(&cut) {
            assert!(table.is_empty());
        }
    }

    #[test]
    fn reads_this_test_binary() {
        let exe = std::env::current_exe().expect("current exe");
        let info = read_info(&exe).expect("test binary is ELF");
        assert!(info.has_dwarf, "test binaries are built with debug info");
        let symbols = read_symbols(&exe).expect("symbols");
        assert!(!symbols.is_empty());
    }
}
