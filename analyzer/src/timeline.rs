//! The live-heap timeline: live bytes over the whole trace at a fixed resolution, for charts.

/// Buckets the timeline is built with; [`Timeline::downsample`] merges them.
pub const TIMELINE_BUCKETS: usize = 4096;

/// One span of the timeline.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimelinePoint {
    /// The span is `[start_ns, end_ns)` (ns since the start of the trace).
    pub start_ns: u64,
    pub end_ns: u64,
    /// Live bytes at the end of the span.
    pub live_bytes: u64,
    /// Live blocks at the end of the span.
    pub live_blocks: u64,
    /// The most live bytes at any moment of the span (what a chart should draw, so no peak is
    /// lost to downsampling).
    pub max_live_bytes: u64,
}

/// Live bytes over time at [`TIMELINE_BUCKETS`] resolution.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timeline {
    duration_ns: u64,
    points: Vec<TimelinePoint>,
}

impl Timeline {
    pub(crate) fn from_points(duration_ns: u64, points: Vec<TimelinePoint>) -> Self {
        Timeline { duration_ns, points }
    }

    /// The full-resolution points, in time order, covering `[0, duration]`.
    pub fn points(&self) -> &[TimelinePoint] {
        &self.points
    }

    pub fn duration_ns(&self) -> u64 {
        self.duration_ns
    }

    /// The timeline merged into at most `n` points of equal span (fewer if the timeline has
    /// fewer); each keeps the maximum of the spans it merges and the value at its end.
    pub fn downsample(&self, n: usize) -> Vec<TimelinePoint> {
        if n == 0 || self.points.is_empty() {
            return Vec::new();
        }
        if n >= self.points.len() {
            return self.points.clone();
        }
        let len = self.points.len();
        (0..n)
            .filter_map(|k| {
                let from = k * len / n;
                let to = ((k + 1) * len / n).max(from + 1).min(len);
                let span = &self.points[from..to];
                let last = span.last()?;
                Some(TimelinePoint {
                    start_ns: span[0].start_ns,
                    end_ns: last.end_ns,
                    live_bytes: last.live_bytes,
                    live_blocks: last.live_blocks,
                    max_live_bytes: span.iter().map(|p| p.max_live_bytes).max().unwrap_or(0),
                })
            })
            .collect()
    }

    /// Index of the bucket holding time `t`.
    pub(crate) fn bucket_of(duration_ns: u64, buckets: usize, t: u64) -> usize {
        let span = u128::from(duration_ns) + 1;
        ((u128::from(t.min(duration_ns)) * buckets as u128 / span) as usize).min(buckets - 1)
    }

    /// Start time of bucket `k`.
    pub(crate) fn bucket_start(duration_ns: u64, buckets: usize, k: usize) -> u64 {
        let span = u128::from(duration_ns) + 1;
        (k as u128 * span).div_ceil(buckets as u128) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(k: u64, bytes: u64, max: u64) -> TimelinePoint {
        TimelinePoint {
            start_ns: k * 10,
            end_ns: k * 10 + 10,
            live_bytes: bytes,
            live_blocks: 1,
            max_live_bytes: max,
        }
    }

    #[test]
    fn downsampling_keeps_maxima_and_end_values() {
        let t =
            Timeline::from_points(40, vec![point(0, 1, 5), point(1, 2, 2), point(2, 3, 9), point(3, 0, 3)]);
        let d = t.downsample(2);
        assert_eq!(d.len(), 2);
        assert_eq!((d[0].start_ns, d[0].end_ns, d[0].live_bytes, d[0].max_live_bytes), (0, 20, 2, 5));
        assert_eq!((d[1].start_ns, d[1].end_ns, d[1].live_bytes, d[1].max_live_bytes), (20, 40, 0, 9));
        assert_eq!(t.downsample(10).len(), 4);
        assert!(t.downsample(0).is_empty());
    }

    #[test]
    fn buckets_cover_the_whole_duration() {
        assert_eq!(Timeline::bucket_of(999, 10, 0), 0);
        assert_eq!(Timeline::bucket_of(999, 10, 999), 9);
        assert_eq!(Timeline::bucket_of(999, 10, 5000), 9);
        assert_eq!(Timeline::bucket_of(0, 10, 0), 0);
        assert_eq!(Timeline::bucket_start(999, 10, 1), 100);
    }
}
