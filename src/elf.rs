//! Just enough ELF reading to tell whether LD_PRELOAD can reach a program: its class (32/64-bit),
//! machine, and whether it asks for a dynamic loader (a `PT_INTERP` program header). A statically
//! linked program (static-pie included) has none, and no preloaded library is ever loaded into it.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// What matters about an ELF executable for preloading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElfInfo {
    pub is_64_bit: bool,
    /// `e_machine` (62 = x86-64, 183 = AArch64, 3 = i386, ...).
    pub machine: u16,
    pub has_interpreter: bool,
}

const PT_INTERP: u32 = 3;
/// Program headers are read only from this much of the file; real ones sit in the first page.
const MAX_HEADER_BYTES: u64 = 1 << 20;
/// What is read first: the ELF header and, in every real program, its program headers.
const FIRST_READ: u64 = 4096;

/// Reads the ELF headers of `path`; `Ok(None)` if it is not an ELF file (a script, for example).
/// Only the first page is read unless the program headers lie beyond it.
pub fn inspect_file(path: &Path) -> io::Result<Option<ElfInfo>> {
    let mut file = File::open(path)?;
    let mut prefix = Vec::new();
    (&mut file).take(FIRST_READ).read_to_end(&mut prefix)?;
    if let Some(info) = inspect(&prefix) {
        return Ok(Some(info));
    }
    match program_headers_end(&prefix) {
        Some(end) if end > prefix.len() as u64 && end <= MAX_HEADER_BYTES => {
            file.take(end - prefix.len() as u64).read_to_end(&mut prefix)?;
            Ok(inspect(&prefix))
        }
        _ => Ok(None),
    }
}

/// Parses an ELF header and its program headers from the start of a file. `None` if the bytes are
/// not a little- or big-endian ELF file whose program headers lie within `bytes`.
pub fn inspect(bytes: &[u8]) -> Option<ElfInfo> {
    // `program_headers` checked the magic, the class (byte 4) and the byte order (byte 5).
    let ProgramHeaders { phoff, phentsize, phnum } = program_headers(bytes)?;
    let is_64_bit = *bytes.get(4)? == 2;
    let read = Reader { bytes, little_endian: *bytes.get(5)? == 1 };
    let machine = read.u16(18)?;
    let mut has_interpreter = false;
    for index in 0..u64::from(phnum) {
        let offset = usize::try_from(phoff.checked_add(index.checked_mul(u64::from(phentsize))?)?).ok()?;
        // The whole entry must be present, not just its type field.
        bytes.get(offset..offset.checked_add(usize::from(phentsize.max(4)))?)?;
        let p_type = read.u32(offset)?;
        has_interpreter |= p_type == PT_INTERP;
    }
    Some(ElfInfo { is_64_bit, machine, has_interpreter })
}

/// Where the program header table lies, from an ELF header.
struct ProgramHeaders {
    phoff: u64,
    phentsize: u16,
    phnum: u16,
}

fn program_headers(bytes: &[u8]) -> Option<ProgramHeaders> {
    if bytes.get(..4)? != b"\x7fELF" {
        return None;
    }
    let little_endian = match bytes.get(5)? {
        1 => true,
        2 => false,
        _ => return None,
    };
    let read = Reader { bytes, little_endian };
    match bytes.get(4)? {
        2 => Some(ProgramHeaders { phoff: read.u64(32)?, phentsize: read.u16(54)?, phnum: read.u16(56)? }),
        1 => Some(ProgramHeaders {
            phoff: u64::from(read.u32(28)?),
            phentsize: read.u16(42)?,
            phnum: read.u16(44)?,
        }),
        _ => None,
    }
}

/// The file offset just past the program header table of the ELF header in `bytes`.
fn program_headers_end(bytes: &[u8]) -> Option<u64> {
    let ProgramHeaders { phoff, phentsize, phnum } = program_headers(bytes)?;
    phoff.checked_add(u64::from(phnum).checked_mul(u64::from(phentsize.max(4)))?)
}

/// The `e_machine` of programs this build of leakview records, if known.
pub fn native_machine() -> Option<u16> {
    match std::env::consts::ARCH {
        "x86_64" => Some(62),
        "aarch64" => Some(183),
        "x86" => Some(3),
        "arm" => Some(40),
        "riscv64" => Some(243),
        _ => None,
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    little_endian: bool,
}

impl Reader<'_> {
    fn array<const N: usize>(&self, offset: usize) -> Option<[u8; N]> {
        let slice = self.bytes.get(offset..offset.checked_add(N)?)?;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        Some(out)
    }

    fn u16(&self, offset: usize) -> Option<u16> {
        let a = self.array(offset)?;
        Some(if self.little_endian { u16::from_le_bytes(a) } else { u16::from_be_bytes(a) })
    }

    fn u32(&self, offset: usize) -> Option<u32> {
        let a = self.array(offset)?;
        Some(if self.little_endian { u32::from_le_bytes(a) } else { u32::from_be_bytes(a) })
    }

    fn u64(&self, offset: usize) -> Option<u64> {
        let a = self.array(offset)?;
        Some(if self.little_endian { u64::from_le_bytes(a) } else { u64::from_be_bytes(a) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal little-endian ELF64 header with the given program header types.
    fn elf64(types: &[u32]) -> Vec<u8> {
        let mut bytes = vec![0u8; 64];
        bytes[..4].copy_from_slice(b"\x7fELF");
        bytes[4] = 2;
        bytes[5] = 1;
        bytes[18..20].copy_from_slice(&62u16.to_le_bytes());
        bytes[32..40].copy_from_slice(&64u64.to_le_bytes());
        bytes[54..56].copy_from_slice(&56u16.to_le_bytes());
        bytes[56..58].copy_from_slice(&(types.len() as u16).to_le_bytes());
        for t in types {
            let mut ph = vec![0u8; 56];
            ph[..4].copy_from_slice(&t.to_le_bytes());
            bytes.extend(ph);
        }
        bytes
    }

    #[test]
    fn finds_the_interpreter_header() {
        let info = inspect(&elf64(&[6, 3, 1])).expect("elf");
        assert_eq!(info, ElfInfo { is_64_bit: true, machine: 62, has_interpreter: true });
    }

    #[test]
    fn static_programs_have_no_interpreter() {
        let info = inspect(&elf64(&[1, 1, 2])).expect("elf");
        assert!(!info.has_interpreter);
    }

    #[test]
    fn reads_32_bit_headers() {
        let mut bytes = vec![0u8; 52];
        bytes[..4].copy_from_slice(b"\x7fELF");
        bytes[4] = 1;
        bytes[5] = 1;
        bytes[18..20].copy_from_slice(&3u16.to_le_bytes());
        bytes[28..32].copy_from_slice(&52u32.to_le_bytes());
        bytes[42..44].copy_from_slice(&32u16.to_le_bytes());
        bytes[44..46].copy_from_slice(&1u16.to_le_bytes());
        let mut ph = vec![0u8; 32];
        ph[..4].copy_from_slice(&PT_INTERP.to_le_bytes());
        bytes.extend(ph);
        assert_eq!(inspect(&bytes), Some(ElfInfo { is_64_bit: false, machine: 3, has_interpreter: true }));
    }

    #[test]
    fn scripts_and_truncated_files_are_not_elf() {
        assert_eq!(inspect(b"#!/bin/sh\necho hi\n"), None);
        let full = elf64(&[3]);
        for len in 0..full.len() {
            assert_eq!(inspect(&full[..len]), None, "prefix of {len} bytes");
        }
    }

    #[test]
    fn program_headers_beyond_the_first_page_are_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut bytes = elf64(&[]);
        let far = 3 * FIRST_READ;
        bytes[32..40].copy_from_slice(&far.to_le_bytes());
        bytes[56..58].copy_from_slice(&2u16.to_le_bytes());
        bytes.resize(far as usize, 0);
        let mut headers = vec![0u8; 2 * 56];
        headers[56..60].copy_from_slice(&PT_INTERP.to_le_bytes());
        bytes.extend(&headers);
        let path = dir.path().join("far");
        std::fs::write(&path, &bytes).expect("write");
        let info = inspect_file(&path).expect("readable").expect("elf");
        assert!(info.has_interpreter);
        // Cut inside the table: not an ELF file leakview can judge.
        std::fs::write(&path, &bytes[..bytes.len() - 8]).expect("write");
        assert_eq!(inspect_file(&path).expect("readable"), None);
    }

    #[test]
    fn this_test_binary_is_dynamically_linked_native_code() {
        let exe = std::env::current_exe().expect("current exe");
        let info = inspect_file(&exe).expect("readable").expect("elf");
        assert!(info.has_interpreter);
        assert_eq!(Some(info.machine), native_machine());
    }
}
