//! The process's resident set size (RSS) as the timeline charts it: one level per equal slice
//! of the trace, the same slices as the heap's levels, from the recorder's samples.

use std::ops::Range;

pub use leakview_analyzer::{ResidentMemory, ResidentSample};

/// The resident size charted in each of `slices` equal slices of a trace lasting `duration_ns`:
/// the highest sample taken within the slice; a slice with no sample keeps the level of the one
/// before it, once a first sample was seen; slices before the first sample have none.
pub fn resident_levels(resident: &ResidentMemory, duration_ns: u64, slices: usize) -> Vec<Option<u64>> {
    let mut carried = None;
    (0..slices)
        .map(|slice| {
            let highest = resident.highest_in(slice_span(slice, slices, duration_ns));
            carried = highest.or(carried);
            carried
        })
        .collect()
}

/// The times slice `slice` of `slices` equal slices of a trace lasting `duration_ns` covers:
/// those a chart shows in it (`t * slices / duration` rounded down is `slice`). The last slice
/// also covers whatever lies after the end, so that a sample at the very end is charted.
fn slice_span(slice: usize, slices: usize, duration_ns: u64) -> Range<u64> {
    let start_of = |k: usize| {
        let start = (u128::from(duration_ns.max(1)) * k as u128).div_ceil(slices.max(1) as u128);
        u64::try_from(start).unwrap_or(u64::MAX)
    };
    let end = if slice + 1 >= slices { u64::MAX } else { start_of(slice + 1) };
    start_of(slice)..end
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
        // 100ns in 3 slices: a time is in slice `t * 3 / 100`, so 33 is in slice 0, 34 in 1.
        assert_eq!(slice_span(0, 3, 100), 0..34);
        assert_eq!(slice_span(1, 3, 100), 34..67);
        assert_eq!(slice_span(2, 3, 100), 67..u64::MAX);
        assert_eq!(resident_levels(&memory(&[(33, 1), (34, 2)]), 100, 3), [Some(1), Some(2), Some(2)]);
    }

    #[test]
    fn without_samples_or_slices_there_is_nothing_to_chart() {
        assert_eq!(resident_levels(&ResidentMemory::default(), 100, 4), [None; 4]);
        assert!(resident_levels(&memory(&[(1, 1)]), 100, 0).is_empty());
        assert_eq!(resident_levels(&memory(&[(0, 5)]), 0, 2), [Some(5), Some(5)]);
    }
}
