//! The process's writable private memory, from `/proc/self/maps` text, as the heap scan at exit
//! reads it: each mapping's range and kind ([`leakview_format::region_kind`]), without
//! allocating (the caller supplies the storage).

use leakview_format::region_kind;

/// One writable private mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Area {
    pub start: u64,
    pub end: u64,
    pub kind: u8,
}

/// One line of `/proc/self/maps`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapsLine<'a> {
    pub start: u64,
    pub end: u64,
    pub readable: bool,
    pub writable: bool,
    pub private: bool,
    /// Device and inode: which file, if any (0, 0 for anonymous memory).
    pub file: (u64, u64),
    pub path: &'a [u8],
}

fn hex(field: &[u8]) -> Option<u64> {
    let mut value = 0u64;
    if field.is_empty() || field.len() > 16 {
        return None;
    }
    for &c in field {
        let digit = (c as char).to_digit(16)?;
        value = (value << 4) | u64::from(digit);
    }
    Some(value)
}

fn decimal(field: &[u8]) -> Option<u64> {
    if field.is_empty() {
        return None;
    }
    field.iter().try_fold(0u64, |v, &c| {
        let digit = (c as char).to_digit(10)?;
        v.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// Parses `start-end perms offset major:minor inode [path]`; `None` for anything else.
pub fn parse_line(line: &[u8]) -> Option<MapsLine<'_>> {
    let mut fields = line.splitn(6, |&b| b == b' ');
    let range = fields.next()?;
    let perms = fields.next()?;
    let _offset = fields.next()?;
    let device = fields.next()?;
    let inode = decimal(fields.next()?)?;
    let path = fields.next().map_or(&[][..], |p| p.trim_ascii_start());
    let dash = range.iter().position(|&b| b == b'-')?;
    let (start, end) = (hex(&range[..dash])?, hex(&range[dash + 1..])?);
    let colon = device.iter().position(|&b| b == b':')?;
    let device = (hex(&device[..colon])? << 32) | hex(&device[colon + 1..])?;
    if perms.len() < 4 || end <= start {
        return None;
    }
    Some(MapsLine {
        start,
        end,
        readable: perms[0] == b'r',
        writable: perms[1] == b'w',
        private: perms[3] == b'p',
        file: (device, inode),
        path,
    })
}

/// The kind of a readable, writable, private mapping, or `None` when the scan leaves it out
/// (the kernel's special mappings: vdso, vvar, vsyscall).
pub fn kind_of(line: &MapsLine<'_>) -> Option<u8> {
    match line.path {
        b"[heap]" => Some(region_kind::BRK_HEAP),
        b"[stack]" => Some(region_kind::STACK),
        p if p.is_empty() || p.starts_with(b"[anon") => Some(region_kind::ANONYMOUS),
        p if p.starts_with(b"[") => None,
        _ if line.file.1 != 0 => Some(region_kind::MODULE_DATA),
        _ => Some(region_kind::ANONYMOUS),
    }
}

/// Collects the areas a heap scan reads from the text of `/proc/self/maps` into `out`, leaving
/// out the mappings of the file `own` (the recorder's library) and the anonymous mapping right
/// after one of them (its `.bss` beyond the file); the number of areas, or `None` if `out` was
/// too small.
pub fn collect(maps: &[u8], own: (u64, u64), out: &mut [Area]) -> Option<usize> {
    let mut count = 0;
    let mut own_end = None;
    for line in maps.split(|&b| b == b'\n') {
        let Some(line) = parse_line(line) else { continue };
        let follows_own = own_end == Some(line.start) && line.file.1 == 0 && line.path.is_empty();
        let is_own = own.1 != 0 && line.file == own;
        own_end = is_own.then_some(line.end);
        if is_own || follows_own || !(line.readable && line.writable && line.private) {
            continue;
        }
        let Some(kind) = kind_of(&line) else { continue };
        *out.get_mut(count)? = Area { start: line.start, end: line.end, kind };
        count += 1;
    }
    Some(count)
}

/// The area holding `address`, by binary search over areas sorted by start.
pub fn find(areas: &[Area], address: u64) -> Option<usize> {
    let i = areas.partition_point(|a| a.start <= address).checked_sub(1)?;
    (address < areas[i].end).then_some(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPS: &[u8] = b"\
55d0c0000000-55d0c0001000 r--p 00000000 08:01 1234 /usr/bin/prog
55d0c0003000-55d0c0004000 rw-p 00002000 08:01 1234 /usr/bin/prog
55d0c0004000-55d0c0006000 rw-p 00000000 00:00 0 
55d0c1000000-55d0c1021000 rw-p 00000000 00:00 0                          [heap]
7f0000000000-7f0000021000 rw-p 00000000 00:00 0 
7f0000100000-7f0000101000 rw-s 00000000 08:01 99 /tmp/trace.bin
7f0000200000-7f0000201000 rw-p 00003000 08:01 777 /opt/libleakview_preload.so
7f0000201000-7f0000203000 rw-p 00000000 00:00 0 
7f0000300000-7f0000301000 r-xp 00000000 08:01 555 /usr/lib/libc.so.6
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]
7ffd00100000-7ffd00102000 r--p 00000000 00:00 0                          [vvar]
";

    #[test]
    fn writable_private_memory_is_kept_with_its_kind_and_the_recorders_own_left_out() {
        let mut out = [Area::default(); 16];
        let n = collect(MAPS, ((0x08 << 32) | 0x01, 777), &mut out).expect("fits");
        let got: Vec<(u64, u8)> = out[..n].iter().map(|a| (a.start, a.kind)).collect();
        assert_eq!(
            got,
            vec![
                (0x55d0_c000_3000, region_kind::MODULE_DATA),
                (0x55d0_c000_4000, region_kind::ANONYMOUS),
                (0x55d0_c100_0000, region_kind::BRK_HEAP),
                (0x7f00_0000_0000, region_kind::ANONYMOUS),
                (0x7ffd_0000_0000, region_kind::STACK),
            ]
        );
        assert_eq!(find(&out[..n], 0x55d0_c100_0010), Some(2));
        assert_eq!(find(&out[..n], 0x55d0_c100_0000 - 1), None);
        assert_eq!(find(&out[..n], 0x7ffd_0002_0ff8), Some(4));
        assert_eq!(find(&out[..n], 0x10), None);
    }

    #[test]
    fn too_little_room_or_garbage_is_no_panic() {
        let mut out = [Area::default(); 2];
        assert_eq!(collect(MAPS, (0, 0), &mut out), None);
        assert_eq!(collect(b"garbage\n-\n12-4 rw-p\nzz-yy rw-p 0 0:0 0\n", (0, 0), &mut out), Some(0));
        assert_eq!(parse_line(b"1000-0fff rw-p 00000000 00:00 0"), None);
    }
}
