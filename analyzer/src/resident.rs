//! The process's resident memory over time: the recorder's samples of its resident set size
//! (RSS), in time order, and what is asked of them: the peak, the last one, the size at a moment.

/// One sample: the resident set size at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResidentSample {
    /// Time of the sample (ns since the start of the trace).
    pub at_ns: u64,
    pub bytes: u64,
}

/// A trace's resident set size samples, in time order. Empty for traces recorded before
/// format 2.1, or by a program that ended before the first sample.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResidentMemory {
    samples: Vec<ResidentSample>,
}

impl ResidentMemory {
    /// The samples in any order (threads take them in turn): sorted by time here.
    pub fn new(mut samples: Vec<ResidentSample>) -> Self {
        samples.sort_by_key(|s| s.at_ns);
        ResidentMemory { samples }
    }

    pub fn samples(&self) -> &[ResidentSample] {
        &self.samples
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The highest sample (the earliest of equal ones).
    pub fn peak(&self) -> Option<ResidentSample> {
        self.samples.iter().copied().reduce(|best, s| if s.bytes > best.bytes { s } else { best })
    }

    /// The last sample.
    pub fn last(&self) -> Option<ResidentSample> {
        self.samples.last().copied()
    }

    /// The latest sample taken at or before `at_ns`.
    pub fn at(&self, at_ns: u64) -> Option<ResidentSample> {
        let after = self.samples.partition_point(|s| s.at_ns <= at_ns);
        after.checked_sub(1).map(|i| self.samples[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at_ns: u64, bytes: u64) -> ResidentSample {
        ResidentSample { at_ns, bytes }
    }

    fn memory() -> ResidentMemory {
        // Out of order, as two threads' chunks hand them over.
        ResidentMemory::new(vec![sample(30, 700), sample(10, 100), sample(20, 900), sample(40, 900)])
    }

    #[test]
    fn samples_are_put_in_time_order() {
        let times: Vec<u64> = memory().samples().iter().map(|s| s.at_ns).collect();
        assert_eq!(times, vec![10, 20, 30, 40]);
    }

    #[test]
    fn the_peak_is_the_first_of_the_highest_samples() {
        assert_eq!(memory().peak(), Some(sample(20, 900)));
        assert_eq!(memory().last(), Some(sample(40, 900)));
        assert_eq!(ResidentMemory::default().peak(), None);
    }

    #[test]
    fn the_size_at_a_moment_is_the_latest_sample_before_it() {
        let m = memory();
        assert_eq!(m.at(9), None);
        assert_eq!(m.at(10), Some(sample(10, 100)));
        assert_eq!(m.at(29), Some(sample(20, 900)));
        assert_eq!(m.at(u64::MAX), Some(sample(40, 900)));
    }
}
