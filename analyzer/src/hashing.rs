//! A fast hasher for the analyzer's integer keys (addresses, stack and site ids), which need no
//! protection against adversarial collisions, the address mix, and [`AddrMap`], the small
//! open-addressing table that holds the live blocks while a trace is replayed.

use std::hash::{BuildHasherDefault, Hasher};

/// Multiplicative (Fibonacci) mix: a bijection on `u64` whose high bits are well spread even
/// for aligned, clustered addresses.
pub(crate) fn mix(x: u64) -> u64 {
    (x ^ (x >> 29)).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// Hasher for integer keys: one multiply per word instead of SipHash, for maps whose keys need no
/// protection against adversarial collisions (the browser's per-stack tables use it too).
#[derive(Debug, Default, Clone, Copy)]
pub struct IntHasher(u64);

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

/// A `HashMap` with [`IntHasher`].
pub type IntMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<IntHasher>>;
/// A `HashSet` with [`IntHasher`].
pub type IntSet<K> = std::collections::HashSet<K, BuildHasherDefault<IntHasher>>;

/// A map from non-zero `u64` keys (addresses) to `u64` values: linear probing over one array of
/// (key, value) slots, Fibonacci hashing (good spread for aligned, clustered addresses) and
/// backward-shift deletion, so it never accumulates tombstones. At most half full.
#[derive(Debug)]
pub(crate) struct AddrMap {
    slots: Vec<(u64, u64)>,
    len: usize,
    shift: u32,
}

impl Default for AddrMap {
    fn default() -> Self {
        AddrMap::with_capacity(0)
    }
}

impl AddrMap {
    /// An empty map that holds `n` keys before it grows.
    pub fn with_capacity(n: usize) -> Self {
        let slots = (n.max(8) * 2).next_power_of_two();
        AddrMap { slots: vec![(0, 0); slots], len: 0, shift: 64 - slots.trailing_zeros() }
    }

    /// Bytes of the slot array.
    pub fn bytes(&self) -> usize {
        self.slots.len() * std::mem::size_of::<(u64, u64)>()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.len
    }

    #[inline]
    fn home(&self, key: u64) -> usize {
        (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> self.shift) as usize
    }

    #[inline]
    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    /// The value of `key` (non-zero).
    #[inline]
    pub fn get(&self, key: u64) -> Option<u64> {
        let mask = self.mask();
        let mut i = self.home(key);
        loop {
            let (k, v) = self.slots[i];
            if k == key {
                return Some(v);
            }
            if k == 0 {
                return None;
            }
            i = (i + 1) & mask;
        }
    }

    /// Reads `key`'s home slot, so that a lookup soon after finds it in the cache (a batch of
    /// these, independent of each other, overlaps the memory latencies).
    #[inline(always)]
    pub fn touch(&self, key: u64) -> u64 {
        self.slots[self.home(key)].0
    }

    /// Sets the value of `key` (non-zero; zero is ignored); returns the previous value.
    #[inline(always)]
    pub fn insert(&mut self, key: u64, value: u64) -> Option<u64> {
        if key == 0 {
            return None;
        }
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let mask = self.mask();
        let mut i = self.home(key);
        loop {
            let k = self.slots[i].0;
            if k == key {
                return Some(std::mem::replace(&mut self.slots[i].1, value));
            }
            if k == 0 {
                self.slots[i] = (key, value);
                self.len += 1;
                return None;
            }
            i = (i + 1) & mask;
        }
    }

    /// Removes `key` and returns its value.
    #[inline]
    pub fn remove(&mut self, key: u64) -> Option<u64> {
        if key == 0 {
            return None;
        }
        let mask = self.mask();
        let mut i = self.home(key);
        loop {
            let k = self.slots[i].0;
            if k == key {
                break;
            }
            if k == 0 {
                return None;
            }
            i = (i + 1) & mask;
        }
        let value = self.slots[i].1;
        // Shift later members of the probe run back into the hole when that is on their way
        // from their home slot.
        let mut hole = i;
        let mut j = i;
        loop {
            j = (j + 1) & mask;
            let k = self.slots[j].0;
            if k == 0 {
                break;
            }
            let home = self.home(k);
            if (j.wrapping_sub(home) & mask) >= (j.wrapping_sub(hole) & mask) {
                self.slots[hole] = self.slots[j];
                hole = j;
            }
        }
        self.slots[hole] = (0, 0);
        self.len -= 1;
        Some(value)
    }

    #[cold]
    #[inline(never)]
    fn grow(&mut self) {
        let old = std::mem::take(&mut self.slots);
        *self = AddrMap::with_capacity(old.len());
        for (k, v) in old {
            if k != 0 {
                self.insert(k, v);
            }
        }
    }
}

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

    #[test]
    fn addr_map_agrees_with_a_std_map() {
        let mut ours = AddrMap::default();
        let mut std_map = std::collections::HashMap::new();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for step in 0..200_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Few distinct, clustered keys, so probe runs collide, wrap and shift back.
            let key = 0x5555_0000 + (x % 3000) * 16;
            if x.is_multiple_of(3) {
                assert_eq!(ours.remove(key), std_map.remove(&key), "step {step}");
            } else {
                assert_eq!(ours.insert(key, step), std_map.insert(key, step), "step {step}");
            }
            assert_eq!(ours.len(), std_map.len());
        }
        for (&k, &v) in &std_map {
            assert_eq!(ours.get(k), Some(v));
        }
        assert_eq!(ours.get(0x1234), None);
        assert_eq!(ours.insert(0, 1), None);
        assert_eq!(ours.remove(0), None);
    }
}
