//! Reading what the engine needs from a loaded object's program headers, in memory: loadable
//! segments, the GNU build-id note and the location of `.eh_frame_hdr` / `.eh_frame`.
//! Every read stays inside the ranges the program headers describe.

use leakview_format::Segment;

pub const PT_LOAD: u32 = 1;
pub const PT_NOTE: u32 = 4;
pub const PT_GNU_EH_FRAME: u32 = 0x6474_e550;
const NT_GNU_BUILD_ID: u32 = 3;

/// One program header, in the form the engine uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProgramHeader {
    pub kind: u32,
    pub flags: u32,
    pub vaddr: u64,
    pub memsz: u64,
}

/// Loadable segments, relative to the load bias.
pub fn segments(headers: &[ProgramHeader]) -> impl Iterator<Item = Segment> + '_ {
    headers.iter().filter(|h| h.kind == PT_LOAD).map(|h| Segment {
        vaddr: h.vaddr,
        memsz: h.memsz,
        flags: h.flags,
    })
}

/// The address range `[start, end)` (relative to the bias) covered by the loadable segments.
pub fn load_range(headers: &[ProgramHeader]) -> Option<(u64, u64)> {
    let mut loads = headers.iter().filter(|h| h.kind == PT_LOAD);
    let first = loads.next()?;
    let (mut lo, mut hi) = (first.vaddr, first.vaddr.saturating_add(first.memsz));
    for h in loads {
        lo = lo.min(h.vaddr);
        hi = hi.max(h.vaddr.saturating_add(h.memsz));
    }
    Some((lo, hi))
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// The GNU build-id inside one PT_NOTE segment's bytes.
pub fn build_id_in_notes(notes: &[u8]) -> Option<&[u8]> {
    let mut pos = 0usize;
    while pos + 12 <= notes.len() {
        let namesz = u32_at(notes, pos)? as usize;
        let descsz = u32_at(notes, pos + 4)? as usize;
        let kind = u32_at(notes, pos + 8)?;
        let name_start = pos + 12;
        let desc_start = name_start.checked_add(align4(namesz))?;
        let desc_end = desc_start.checked_add(descsz)?;
        if desc_end > notes.len() {
            return None;
        }
        if kind == NT_GNU_BUILD_ID && namesz == 4 && &notes[name_start..name_start + 4] == b"GNU\0" {
            return Some(&notes[desc_start..desc_end]);
        }
        pos = desc_start.checked_add(align4(descsz))?;
    }
    None
}

/// Where `.eh_frame` starts, decoded from an `.eh_frame_hdr` that is mapped at `hdr_addr`.
/// Supports the encodings linkers emit (absolute or pc-relative, 4 or 8 bytes).
pub fn eh_frame_address(hdr: &[u8], hdr_addr: u64) -> Option<u64> {
    const DW_EH_PE_ABSPTR: u8 = 0x00;
    const DW_EH_PE_UDATA4: u8 = 0x03;
    const DW_EH_PE_UDATA8: u8 = 0x04;
    const DW_EH_PE_SDATA4: u8 = 0x0b;
    const DW_EH_PE_SDATA8: u8 = 0x0c;
    const DW_EH_PE_PCREL: u8 = 0x10;
    if hdr.len() < 4 || hdr[0] != 1 {
        return None;
    }
    let encoding = hdr[1];
    let field = &hdr[4..];
    let value: u64 = match encoding & 0x0f {
        DW_EH_PE_ABSPTR | DW_EH_PE_UDATA8 => u64::from_le_bytes(field.get(..8)?.try_into().ok()?),
        DW_EH_PE_SDATA8 => i64::from_le_bytes(field.get(..8)?.try_into().ok()?) as u64,
        DW_EH_PE_UDATA4 => u64::from(u32::from_le_bytes(field.get(..4)?.try_into().ok()?)),
        DW_EH_PE_SDATA4 => i64::from(i32::from_le_bytes(field.get(..4)?.try_into().ok()?)) as u64,
        _ => return None,
    };
    match encoding & 0x70 {
        0 => Some(value),
        DW_EH_PE_PCREL => Some(hdr_addr.wrapping_add(4).wrapping_add(value)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(name: &[u8], kind: u32, desc: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&(name.len() as u32).to_le_bytes());
        out.extend_from_slice(&(desc.len() as u32).to_le_bytes());
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(name);
        out.resize(align4(out.len()), 0);
        out.extend_from_slice(desc);
        out.resize(align4(out.len()), 0);
        out
    }

    #[test]
    fn finds_the_gnu_build_id_after_other_notes() {
        let mut notes = note(b"GNU\0", 1, &[0; 16]);
        notes.extend(note(b"GNU\0", 3, &[0xab, 0xcd, 0xef, 0x01, 0x23]));
        assert_eq!(build_id_in_notes(&notes), Some(&[0xab, 0xcd, 0xef, 0x01, 0x23][..]));
    }

    #[test]
    fn truncated_notes_are_rejected() {
        let notes = note(b"GNU\0", 3, &[1; 20]);
        assert_eq!(build_id_in_notes(&notes[..notes.len() - 8]), None);
        assert_eq!(build_id_in_notes(&[]), None);
    }

    #[test]
    fn decodes_pc_relative_eh_frame_pointer() {
        let mut hdr = vec![1u8, 0x1b, 0x03, 0x3b];
        hdr.extend_from_slice(&(-0x100i32).to_le_bytes());
        assert_eq!(eh_frame_address(&hdr, 0x5000), Some(0x5000 + 4 - 0x100));
        hdr[0] = 2;
        assert_eq!(eh_frame_address(&hdr, 0x5000), None);
    }

    #[test]
    fn load_range_spans_all_loadable_segments() {
        let headers = [
            ProgramHeader { kind: PT_LOAD, flags: 5, vaddr: 0x1000, memsz: 0x500 },
            ProgramHeader { kind: PT_NOTE, flags: 4, vaddr: 0x9000, memsz: 0x10 },
            ProgramHeader { kind: PT_LOAD, flags: 6, vaddr: 0x3000, memsz: 0x200 },
        ];
        assert_eq!(load_range(&headers), Some((0x1000, 0x3200)));
        assert_eq!(segments(&headers).count(), 2);
    }
}
