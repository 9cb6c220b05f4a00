//! A fast hasher for the analyzer's integer keys (addresses, stack and site ids), which need no
//! protection against adversarial collisions, and the address mix used to shard by address.

use std::hash::{BuildHasherDefault, Hasher};

/// Multiplicative (Fibonacci) mix: a bijection on `u64` whose high bits are well spread even
/// for aligned, clustered addresses.
pub(crate) fn mix(x: u64) -> u64 {
    (x ^ (x >> 29)).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// Hasher for integer keys.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IntHasher(u64);

impl Hasher for IntHasher {
    fn finish(&self) -> u64 {
        mix(self.0)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = mix(self.0 ^ u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = mix(self.0 ^ n);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

pub(crate) type IntMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<IntHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_is_a_bijection_on_samples() {
        let mut seen: Vec<u64> = (0..10_000u64).map(|i| mix(0x5555_0000_0000 + i * 16)).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 10_000);
        // High bits spread: aligned neighbours land in many top-byte buckets.
        let buckets: std::collections::HashSet<u64> =
            (0..1000u64).map(|i| mix(0x7f00_0000_0000 + i * 16) >> 56).collect();
        assert!(buckets.len() > 200);
    }
}
