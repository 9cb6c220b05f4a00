//! The process's resident set size (RSS) as the timeline charts it: one level per equal slice
//! of the trace, the same slices as the heap's levels, from the recorder's samples.

pub use leakview_analyzer::{ResidentMemory, ResidentSample};

use crate::state::slice_of;

/// The resident size charted in each of `slices` equal slices of a trace lasting `duration_ns`
/// (split as the timeline's columns split it, [`slice_of`]): the highest sample taken within
/// the slice; a slice with no sample keeps the level of the one before it, once a first sample
/// was seen; slices before the first sample have none.
pub fn resident_levels(resident: &ResidentMemory, duration_ns: u64, slices: usize) -> Vec<Option<u64>> {
    let mut levels = vec![None; slices];
    for sample in resident.samples() {
        if let Some(level) = levels.get_mut(slice_of(sample.at_ns, slices, duration_ns)) {
            *level = (*level).max(Some(sample.bytes));
        }
    }
    let mut carried = None;
    for level in &mut levels {
        carried = level.or(carried);
        *level = carried;
    }
    levels
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory(samples: &[(u64, u64)]) -> ResidentMemory {
        ResidentMemory::new(samples.iter().map(|&(at_ns, bytes)| ResidentSample { at_ns, bytes }).collect())
    }

    #[test]
    fn each_slice_shows_its_highest_sample_carried_forward_and_none_before_the_first() {
        // Ten slices of 10ns: samples in slices 2 (two of them), 3 and 6, the last at the end.
        let m = memory(&[(25, 700), (21, 500), (30, 400), (60, 900), (100, 800)]);
        assert_eq!(
            resident_levels(&m, 100, 10),
            [
                None,
                None,
                Some(700),
                Some(400),
                Some(400),
                Some(400),
                Some(900),
                Some(900),
                Some(900),
                Some(800)
            ]
        );
    }

    #[test]
    fn slices_split_time_as_the_chart_columns_do() {
        // 100ns in 3 slices: a time is in slice `t * 3 / 100`, so 33 is in slice 0, 34 in 1,
        // and a sample past the end in the last.
        assert_eq!(resident_levels(&memory(&[(33, 1), (34, 2)]), 100, 3), [Some(1), Some(2), Some(2)]);
        assert_eq!(resident_levels(&memory(&[(66, 1), (67, 2)]), 100, 3), [None, Some(1), Some(2)]);
        assert_eq!(resident_levels(&memory(&[(150, 7)]), 100, 3), [None, None, Some(7)]);
    }

    #[test]
    fn without_samples_or_slices_there_is_nothing_to_chart() {
        assert_eq!(resident_levels(&ResidentMemory::default(), 100, 4), [None; 4]);
        assert!(resident_levels(&memory(&[(1, 1)]), 100, 0).is_empty());
        assert_eq!(resident_levels(&memory(&[(0, 5)]), 0, 2), [Some(5), Some(5)]);
    }
}
