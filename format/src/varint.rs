//! LEB128 varints and zig-zag mapping, the integer encoding of every event field.

/// The longest LEB128 encoding of a `u64`.
pub const MAX_VARINT_LEN: usize = 10;

/// Maps signed to unsigned so that small magnitudes stay small: 0, -1, 1, -2 → 0, 1, 2, 3.
#[inline]
pub fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

/// The inverse of [`zigzag`].
#[inline]
pub fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

/// Appends `value` at `out[*pos..]`; returns `None` (leaving `pos` unspecified) if it does not fit.
#[inline]
pub fn put(out: &mut [u8], pos: &mut usize, mut value: u64) -> Option<()> {
    loop {
        let slot = out.get_mut(*pos)?;
        *pos += 1;
        if value < 0x80 {
            *slot = value as u8;
            return Some(());
        }
        *slot = (value as u8) | 0x80;
        value >>= 7;
    }
}

/// Reads a varint at `input[*pos..]`; `None` on truncation or an encoding longer than a `u64`.
#[inline(always)]
pub fn get(input: &[u8], pos: &mut usize) -> Option<u64> {
    let start = *pos;
    if let Some(&bytes) = input.get(start..).and_then(|rest| rest.first_chunk::<8>())
        && let Some((value, len)) = from_word(u64::from_le_bytes(bytes))
    {
        *pos = start + len;
        return Some(value);
    }
    get_slow(input, pos)
}

/// Bytes a [`Window`] holds: [`WINDOW_REACH`] bytes in which its reads start, and room for a
/// whole varint after the last of them.
pub const WINDOW_LEN: usize = WINDOW_REACH + 8;
/// Positions a [`Window`] reads from lie below this (a power of two).
pub const WINDOW_REACH: usize = 64;

/// A fixed number of bytes of the input, read without checks against the input's end: an
/// event's decoder reads from one when the event is known to lie within its first
/// [`WINDOW_REACH`] bytes (the hot events are at most that long).
pub type Window = [u8; WINDOW_LEN];

/// [`get`] within a window, for decoders that defer errors: an encoding longer than a `u64`
/// sets `bad` (and reads as 0). The position is taken modulo [`WINDOW_REACH`] (callers read no
/// further), so no read can leave the window and none needs a bounds check.
#[inline(always)]
pub fn get_in_window(window: &Window, pos: &mut usize, bad: &mut bool) -> u64 {
    let start = *pos & (WINDOW_REACH - 1);
    let Some(&bytes) = window[start..].first_chunk::<8>() else {
        *bad = true;
        return 0;
    };
    let word = u64::from_le_bytes(bytes);
    if let Some((value, len)) = from_word(word) {
        *pos = start + len;
        return value;
    }
    // Nine or ten bytes: within the window too, since a read starts at most 64 bytes in.
    let mut at = start;
    let value = get_slow(window, &mut at);
    *pos = at;
    *bad |= value.is_none();
    value.unwrap_or(0)
}

/// The varint at the start of `word` (8 input bytes, little-endian) and its length, if it is at
/// most 8 bytes long; decoded without a loop (longer than two bytes: the 7-bit groups are
/// gathered pairwise, then in fours, then in eights).
#[inline(always)]
fn from_word(word: u64) -> Option<(u64, usize)> {
    // One and two bytes, the usual lengths, without the gathering steps and without a branch
    // on which of the two it is: which one comes next is as good as random (sizes, time and
    // address deltas on either side of 128), and a mispredicted branch costs more than
    // decoding both ways.
    if word & 0x8080 != 0x8080 {
        let second = (word >> 7) & 1;
        return Some(((word & 0x7f) | ((word >> 1) & 0x3f80 & second.wrapping_neg()), 1 + second as usize));
    }
    let stops = !word & 0x8080_8080_8080_8080;
    if stops == 0 {
        return None;
    }
    // The lowest stop bit ends the encoding: keep the bytes up to it.
    let kept = word & (stops ^ (stops - 1)) & 0x7f7f_7f7f_7f7f_7f7f;
    let x = ((kept & 0x7f00_7f00_7f00_7f00) >> 1) | (kept & 0x007f_007f_007f_007f);
    let x = ((x & 0x3fff_0000_3fff_0000) >> 2) | (x & 0x0000_3fff_0000_3fff);
    let x = ((x & 0x0fff_ffff_0000_0000) >> 4) | (x & 0x0000_0000_0fff_ffff);
    Some((x, (stops.trailing_zeros() / 8) as usize + 1))
}

/// [`get`] byte by byte: near the end of the input and for encodings longer than 8 bytes.
#[inline(never)]
fn get_slow(input: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    let mut shift = 0u32;
    loop {
        let byte = *input.get(*pos)?;
        *pos += 1;
        if shift == 63 && byte > 1 {
            return None;
        }
        value |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Some(value);
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
}

/// Bytes [`put`] uses for `value`.
pub fn encoded_len(value: u64) -> usize {
    let bits = 64 - (value | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_boundaries() {
        for value in [0, 1, 127, 128, 16383, 16384, u32::MAX as u64, u64::MAX - 1, u64::MAX] {
            let mut buf = [0u8; MAX_VARINT_LEN];
            let mut pos = 0;
            put(&mut buf, &mut pos, value).expect("fits");
            assert_eq!(pos, encoded_len(value), "length of {value}");
            let mut read = 0;
            assert_eq!(get(&buf, &mut read), Some(value));
            assert_eq!(read, pos);
        }
    }

    #[test]
    fn word_and_byte_paths_agree() {
        // Every encoding length, canonical or padded with continuation bytes, read with at least
        // 8 bytes available (the word path) and with nothing after it (the byte path).
        let mut values: Vec<u64> = (0..64).flat_map(|bit| [1u64 << bit, (1u64 << bit) - 1]).collect();
        values.extend([0x1234_5678_9abc_def0, u64::MAX, 300, 16_511]);
        for &value in &values {
            let mut canonical = [0u8; MAX_VARINT_LEN];
            let mut len = 0;
            put(&mut canonical, &mut len, value).expect("fits");
            let mut padded = canonical[..len].to_vec();
            if len < MAX_VARINT_LEN - 1 && value < 1 << 56 {
                // The same value with one more (zero) group: longer but equal.
                let last = padded.len() - 1;
                padded[last] |= 0x80;
                padded.push(0);
            }
            for encoding in [&canonical[..len], &padded[..]] {
                let mut roomy = encoding.to_vec();
                roomy.extend([0xffu8; 9]);
                let (mut a, mut b) = (0, 0);
                assert_eq!(get(&roomy, &mut a), Some(value), "{encoding:02x?}");
                assert_eq!(get(encoding, &mut b), Some(value), "{encoding:02x?}");
                assert_eq!((a, b), (encoding.len(), encoding.len()));
            }
        }
    }

    #[test]
    fn one_and_two_byte_encodings_read_whatever_follows() {
        // The word path decodes these two lengths without a branch between them: every value
        // below 2^14, followed by bytes with and without the continuation bit.
        for value in 0..1u64 << 14 {
            let mut buf = [0u8; 16];
            let mut len = 0;
            put(&mut buf, &mut len, value).expect("fits");
            for next in [0x00u8, 0x7f, 0x80, 0xff] {
                buf[len..].fill(next);
                let mut pos = 0;
                assert_eq!(get(&buf, &mut pos), Some(value), "{value} before {next:#x}");
                assert_eq!(pos, len);
            }
        }
    }

    #[test]
    fn zigzag_keeps_small_magnitudes_small() {
        assert_eq!(zigzag(0), 0);
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
        for v in [i64::MIN, -5, 0, 5, i64::MAX] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
    }

    #[test]
    fn rejects_truncated_and_overlong() {
        let mut pos = 0;
        assert_eq!(get(&[0x80, 0x80], &mut pos), None);
        let overlong = [0xff; 11];
        let mut pos = 0;
        assert_eq!(get(&overlong, &mut pos), None);
        let too_big = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        let mut pos = 0;
        assert_eq!(get(&too_big, &mut pos), None);
    }

    #[test]
    fn put_reports_lack_of_space() {
        let mut buf = [0u8; 1];
        let mut pos = 0;
        assert_eq!(put(&mut buf, &mut pos, 300), None);
    }
}
