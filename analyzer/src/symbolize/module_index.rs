//! Address → module lookup in O(log n). The modules' segments are flattened into disjoint
//! intervals, each owned by the module that [`super::Symbolizer::module_for`] picks: among the
//! modules containing an address, the one loaded last (the later in the list on a tie).

use std::collections::BTreeMap;

use super::ModuleInfo;

/// Disjoint, sorted `[start, end)` intervals, each with the index of its module.
#[derive(Debug, Default)]
pub(crate) struct ModuleIndex {
    intervals: Vec<(u64, u64, usize)>,
}

impl ModuleIndex {
    pub fn new(modules: &[ModuleInfo]) -> Self {
        // (position, is_start, key): ends sort before starts at the same position.
        let mut events: Vec<(u64, bool, (u64, usize))> = Vec::new();
        for (index, module) in modules.iter().enumerate() {
            for segment in &module.segments {
                let start = module.base.wrapping_add(segment.vaddr);
                let Some(end) = start.checked_add(segment.memsz) else { continue };
                if end > start {
                    let key = (module.loaded_ns, index);
                    events.push((start, true, key));
                    events.push((end, false, key));
                }
            }
        }
        events.sort_unstable();

        let mut intervals: Vec<(u64, u64, usize)> = Vec::new();
        // Counts, because one module's segments may overlap each other.
        let mut active: BTreeMap<(u64, usize), usize> = BTreeMap::new();
        let mut i = 0;
        while i < events.len() {
            let position = events[i].0;
            while i < events.len() && events[i].0 == position {
                let (_, is_start, key) = events[i];
                if is_start {
                    *active.entry(key).or_default() += 1;
                } else if let Some(count) = active.get_mut(&key) {
                    *count -= 1;
                    if *count == 0 {
                        active.remove(&key);
                    }
                }
                i += 1;
            }
            let (Some((&(_, owner), _)), Some(&(next, _, _))) = (active.last_key_value(), events.get(i))
            else {
                continue;
            };
            match intervals.last_mut() {
                Some(last) if last.1 == position && last.2 == owner => last.1 = next,
                _ => intervals.push((position, next, owner)),
            }
        }
        ModuleIndex { intervals }
    }

    /// Index of the module that owns `addr`.
    pub fn lookup(&self, addr: u64) -> Option<usize> {
        let after = self.intervals.partition_point(|&(start, _, _)| start <= addr);
        let &(_, end, owner) = self.intervals.get(after.checked_sub(1)?)?;
        (addr < end).then_some(owner)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use leakview_format::Segment;
    use proptest::prelude::*;

    use super::*;

    fn module(base: u64, loaded_ns: u64, segments: &[(u64, u64)]) -> ModuleInfo {
        ModuleInfo {
            id: 0,
            path: PathBuf::from("/m"),
            build_id: Vec::new(),
            base,
            segments: segments.iter().map(|&(vaddr, memsz)| Segment { vaddr, memsz, flags: 5 }).collect(),
            loaded_ns,
            unloaded_ns: None,
        }
    }

    fn naive(modules: &[ModuleInfo], addr: u64) -> Option<usize> {
        modules
            .iter()
            .enumerate()
            .filter(|(_, m)| m.contains(addr))
            .max_by_key(|(_, m)| m.loaded_ns)
            .map(|(i, _)| i)
    }

    #[test]
    fn later_module_wins_and_gaps_are_empty() {
        let modules =
            vec![module(0x1000, 1, &[(0, 0x1000), (0x2000, 0x100)]), module(0x1800, 5, &[(0, 0x100)])];
        let index = ModuleIndex::new(&modules);
        assert_eq!(index.lookup(0x1000), Some(0));
        assert_eq!(index.lookup(0x1800), Some(1));
        assert_eq!(index.lookup(0x18ff), Some(1));
        assert_eq!(index.lookup(0x1900), Some(0));
        assert_eq!(index.lookup(0x2000), None);
        assert_eq!(index.lookup(0x3000), Some(0));
        assert_eq!(index.lookup(0x3100), None);
        assert_eq!(index.lookup(0), None);
    }

    proptest! {
        #[test]
        fn agrees_with_a_linear_scan(
            specs in prop::collection::vec(
                (0u64..64, 0u64..4, prop::collection::vec((0u64..32, 0u64..24), 0..4)),
                0..6,
            ),
            probes in prop::collection::vec(0u64..128, 1..64),
        ) {
            let modules: Vec<ModuleInfo> =
                specs.iter().map(|(base, ns, segs)| module(*base, *ns, segs)).collect();
            let index = ModuleIndex::new(&modules);
            for addr in probes {
                prop_assert_eq!(index.lookup(addr), naive(&modules, addr), "addr {}", addr);
            }
        }
    }
}
