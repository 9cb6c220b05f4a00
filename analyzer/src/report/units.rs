//! Human-readable numbers: byte sizes in binary units, counts with thousands separators,
//! durations, shares.

/// `512 B`, `1.5 KiB`, `3.2 MiB`, `1.0 GiB`.
pub fn bytes(n: u64) -> String {
    match binary_units(n) {
        None => format!("{n} B"),
        Some((value, unit)) => format!("{value:.1} {unit}"),
    }
}

/// The sizes `low..=high` as `128 B..<256 B`: the upper end is written as the first size past
/// the range, so that rounding to a binary unit never makes neighbouring ranges seem to overlap
/// (`4.0 KiB..<8.0 KiB`, not `4.0 KiB..8.0 KiB` for 4096..=8191). One size reads `64 B`;
/// a range up to the largest size reads `8.0 EiB..`.
pub fn size_range(low: u64, high: u64) -> String {
    if low == high {
        return bytes(low);
    }
    match high.checked_add(1) {
        Some(end) => format!("{}..<{}", bytes(low), bytes(end)),
        None => format!("{}..", bytes(low)),
    }
}

/// `n` bytes as a value in KiB, MiB, ... EiB (the largest unit that keeps the value at or above
/// 1), or `None` below 1 KiB.
pub fn binary_units(n: u64) -> Option<(f64, &'static str)> {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return None;
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    Some((value, UNITS[unit]))
}

/// `1,234,567`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `1 block`, `3 blocks`.
pub fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", count(n), if n == 1 { one } else { many })
}

/// `part` as a percentage of `whole`, `12.5%`.
pub fn share(part: u64, whole: u64) -> String {
    if whole == 0 { "-".to_string() } else { format!("{:.1}%", part as f64 * 100.0 / whole as f64) }
}

/// A duration in the units `WHEN` accepts (`1.5s`, `250ms`, `800us`, `120ns`).
pub fn duration(ns: u64) -> String {
    crate::when::format_duration(ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(5 << 20), "5.0 MiB");
        assert_eq!(bytes(u64::MAX), "16.0 EiB");
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(plural(1, "block", "blocks"), "1 block");
        assert_eq!(plural(2, "block", "blocks"), "2 blocks");
        assert_eq!(share(1, 8), "12.5%");
        assert_eq!(share(1, 0), "-");
    }

    #[test]
    fn size_ranges_name_their_end_exclusively() {
        assert_eq!(size_range(128, 255), "128 B..<256 B");
        assert_eq!(size_range(512, 1023), "512 B..<1.0 KiB");
        assert_eq!(size_range(4096, 8191), "4.0 KiB..<8.0 KiB");
        assert_eq!(size_range(1, 1), "1 B");
        assert_eq!(size_range(1 << 63, u64::MAX), "8.0 EiB..");
    }
}
