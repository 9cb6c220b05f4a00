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

/// Reads the ELF headers of `path`; `Ok(None)` if it is not an ELF file (a script, for example).
pub fn inspect_file(path: &Path) -> io::Result<Option<ElfInfo>> {
    let file = File::open(path)?;
    let mut prefix = Vec::new();
    file.take(MAX_HEADER_BYTES).read_to_end(&mut prefix)?;
    Ok(inspect(&prefix))
}

/// Parses an ELF header and its program headers from the start of a file. `None` if the bytes are
/// not a little- or big-endian ELF file whose program headers lie within `bytes`.
pub fn inspect(bytes: &[u8]) -> Option<ElfInfo> {
    if bytes.get(..4)? != b"\x7fELF" {
        return None;
    }
    let is_64_bit = match bytes.get(4)? {
        1 => false,
        2 => true,
        _ => return None,
    };
    let little_endian = match bytes.get(5)? {
        1 => true,
        2 => false,
        _ => return None,
    };
    let read = Reader { bytes, little_endian };
    let machine = read.u16(18)?;
    let (phoff, phentsize, phnum) = if is_64_bit {
        (read.u64(32)?, read.u16(54)?, read.u16(56)?)
    } else {
        (u64::from(read.u32(28)?), read.u16(42)?, read.u16(44)?)
    };
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
    fn this_test_binary_is_dynamically_linked_native_code() {
        let exe = std::env::current_exe().expect("current exe");
        let info = inspect_file(&exe).expect("readable").expect("elf");
        assert!(info.has_interpreter);
        assert_eq!(Some(info.machine), native_machine());
    }
}
