//! [`Column`]: a growable array of plain values for the lifetime store's large tables. Large
//! columns live in anonymous memory that asks the kernel for transparent huge pages, so filling
//! them costs one page fault per 2 MiB rather than one per 4 KiB (with 4 KiB pages, the faults of
//! a growing store were about a fifth of a load's CPU time). Address space is reserved up front;
//! only the pages written to become resident. Small columns, or a kernel that refuses the
//! mapping, use the heap.

use bytemuck::Pod;
use memmap2::{Advice, MmapMut, MmapOptions};

/// Columns with room for fewer bytes than this stay on the heap.
const MIN_MAPPED_BYTES: usize = 4 << 20;

#[derive(Debug)]
enum Storage<T> {
    Heap(Vec<T>),
    /// Room for `map.len() / size_of::<T>()` values; the first `len` are in use.
    Mapped {
        map: MmapMut,
        len: usize,
    },
}

/// A growable array of `T` (see the module doc).
#[derive(Debug)]
pub(crate) struct Column<T: Pod> {
    storage: Storage<T>,
}

impl<T: Pod> Default for Column<T> {
    fn default() -> Self {
        Column { storage: Storage::Heap(Vec::new()) }
    }
}

/// An anonymous mapping with room for `n` values of `T`, advised to use huge pages.
fn mapping<T: Pod>(n: usize) -> Option<MmapMut> {
    let bytes = n.checked_mul(std::mem::size_of::<T>())?;
    if bytes < MIN_MAPPED_BYTES {
        return None;
    }
    let map = MmapOptions::new().len(bytes).map_anon().ok()?;
    // Only advice: without huge pages the column works the same, with more page faults.
    let _ = map.advise(Advice::HugePage);
    Some(map)
}

impl<T: Pod> Column<T> {
    /// An empty column with room for `n` values before it grows.
    pub fn with_capacity(n: usize) -> Self {
        let storage = match mapping::<T>(n) {
            Some(map) => Storage::Mapped { map, len: 0 },
            None => Storage::Heap(Vec::with_capacity(n)),
        };
        Column { storage }
    }

    #[inline]
    pub fn len(&self) -> usize {
        match &self.storage {
            Storage::Heap(v) => v.len(),
            Storage::Mapped { len, .. } => *len,
        }
    }

    fn capacity(&self) -> usize {
        match &self.storage {
            Storage::Heap(v) => v.capacity(),
            Storage::Mapped { map, .. } => map.len() / std::mem::size_of::<T>().max(1),
        }
    }

    /// Bytes of memory the column holds (for a mapping: the part in use).
    pub fn heap_bytes(&self) -> usize {
        match &self.storage {
            Storage::Heap(v) => v.capacity() * std::mem::size_of::<T>(),
            Storage::Mapped { len, .. } => len * std::mem::size_of::<T>(),
        }
    }

    #[inline]
    pub fn as_slice(&self) -> &[T] {
        match &self.storage {
            Storage::Heap(v) => v,
            Storage::Mapped { map, len } => {
                let all: &[T] = bytemuck::cast_slice(&map[..]);
                &all[..*len]
            }
        }
    }

    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        match &mut self.storage {
            Storage::Heap(v) => v,
            Storage::Mapped { map, len } => {
                let all: &mut [T] = bytemuck::cast_slice_mut(&mut map[..]);
                &mut all[..*len]
            }
        }
    }

    #[inline]
    pub fn get(&self, i: usize) -> Option<&T> {
        self.as_slice().get(i)
    }

    #[inline]
    pub fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        self.as_mut_slice().get_mut(i)
    }

    /// Appends `value`.
    #[inline]
    pub fn push(&mut self, value: T) {
        match &mut self.storage {
            Storage::Heap(v) => {
                if v.len() == v.capacity() && v.len() * std::mem::size_of::<T>() >= MIN_MAPPED_BYTES {
                    self.grow();
                    return self.push(value);
                }
                v.push(value);
            }
            Storage::Mapped { map, len } => {
                let size = std::mem::size_of::<T>();
                let at = *len * size;
                match map.get_mut(at..at + size) {
                    Some(slot) => {
                        slot.copy_from_slice(bytemuck::bytes_of(&value));
                        *len += 1;
                    }
                    None => {
                        self.grow();
                        self.push(value);
                    }
                }
            }
        }
    }

    /// Moves the values into a column with twice the room.
    #[cold]
    fn grow(&mut self) {
        let want = (self.capacity() * 2).max(16);
        let mut bigger = Column::with_capacity(want);
        match &mut bigger.storage {
            Storage::Heap(v) => v.extend_from_slice(self.as_slice()),
            Storage::Mapped { map, len } => {
                let from = self.as_slice();
                let all: &mut [T] = bytemuck::cast_slice_mut(&mut map[..]);
                all[..from.len()].copy_from_slice(from);
                *len = from.len();
            }
        }
        *self = bigger;
    }

    /// Gives back the heap room not in use (a mapping's unused pages were never resident).
    pub fn shrink_to_fit(&mut self) {
        if let Storage::Heap(v) = &mut self.storage {
            v.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heap_and_mapped_columns_hold_what_was_pushed_and_grow() {
        // The first starts on the heap and moves to a mapping as it grows; the second is mapped
        // from the start and grows once.
        let big = MIN_MAPPED_BYTES / 8 + 1000;
        for start in [4usize, MIN_MAPPED_BYTES / 8] {
            let mut c: Column<u64> = Column::with_capacity(start);
            for i in 0..big as u64 {
                c.push(i * 7);
            }
            assert_eq!(c.len(), big);
            assert!(c.as_slice().iter().enumerate().all(|(i, &v)| v == i as u64 * 7));
            if let Some(v) = c.get_mut(3) {
                *v = 1;
            }
            assert_eq!(c.get(3), Some(&1));
            assert_eq!(c.get(big), None);
            assert!(matches!(c.storage, Storage::Mapped { .. }));
            assert!(c.heap_bytes() >= big * 8);
        }
        let mut small: Column<[u32; 5]> = Column::default();
        small.push([1, 2, 3, 4, 5]);
        small.shrink_to_fit();
        assert_eq!(small.as_slice(), &[[1, 2, 3, 4, 5]]);
    }
}
