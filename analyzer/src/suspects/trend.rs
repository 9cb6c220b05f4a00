//! The trend of one stack's live blocks: counts at evenly spaced checkpoints from the stack's
//! first allocation to the moment asked about, and the least-squares line through them (its
//! slope and how well it fits, R²).

/// Checkpoints per stack.
pub const CHECKPOINTS: usize = 16;

/// The checkpoint times from `first` to `t`: `first + (t - first) * (i + 1) / CHECKPOINTS`,
/// the last one `t` itself.
pub fn checkpoints(first: u64, t: u64) -> [u64; CHECKPOINTS] {
    let span = u128::from(t.saturating_sub(first));
    std::array::from_fn(|i| first + (span * (i as u128 + 1) / CHECKPOINTS as u128) as u64)
}

/// The first checkpoint at or after `time` (`CHECKPOINTS` if none).
pub fn first_at_or_after(checkpoints: &[u64; CHECKPOINTS], time: u64) -> usize {
    checkpoints.partition_point(|&c| c < time)
}

/// A least-squares line through counts at equally spaced points.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fit {
    /// Change per checkpoint.
    pub slope: f64,
    /// Share of the counts' variance the line explains, 0..=1 (0 when the counts are all equal).
    pub r2: f64,
}

/// The line through `counts` (x = 0, 1, 2, ...).
pub fn fit(counts: &[u64]) -> Fit {
    let n = counts.len() as f64;
    if counts.len() < 2 {
        return Fit { slope: 0.0, r2: 0.0 };
    }
    let mean_x = (n - 1.0) / 2.0;
    let mean_y = counts.iter().map(|&c| c as f64).sum::<f64>() / n;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (i, &c) in counts.iter().enumerate() {
        let (dx, dy) = (i as f64 - mean_x, c as f64 - mean_y);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if syy == 0.0 {
        return Fit { slope: 0.0, r2: 0.0 };
    }
    Fit { slope: sxy / sxx, r2: (sxy * sxy) / (sxx * syy) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_straight_line_fits_exactly() {
        let counts: Vec<u64> = (0..16).map(|i| 5 + 3 * i).collect();
        let f = fit(&counts);
        assert!((f.slope - 3.0).abs() < 1e-9, "{f:?}");
        assert!((f.r2 - 1.0).abs() < 1e-9, "{f:?}");
    }

    #[test]
    fn flat_counts_have_no_trend() {
        assert_eq!(fit(&[7; 16]), Fit { slope: 0.0, r2: 0.0 });
        assert_eq!(fit(&[7]), Fit { slope: 0.0, r2: 0.0 });
    }

    #[test]
    fn a_step_fits_worse_than_a_ramp() {
        let step: Vec<u64> = (0..16).map(|i| if i < 8 { 0 } else { 100 }).collect();
        let noisy_ramp: Vec<u64> = (0..16).map(|i| 10 * i + if i % 2 == 0 { 3 } else { 0 }).collect();
        let (s, r) = (fit(&step), fit(&noisy_ramp));
        assert!(s.r2 < 0.8, "{s:?}");
        assert!(r.r2 > 0.95 && r.slope > 9.0, "{r:?}");
        let falling: Vec<u64> = (0..16).map(|i| 100 - i).collect();
        assert!(fit(&falling).slope < 0.0);
    }

    #[test]
    fn checkpoints_end_at_t_and_split_the_span_evenly() {
        let c = checkpoints(100, 1700);
        assert_eq!(c[0], 200);
        assert_eq!(c[CHECKPOINTS - 1], 1700);
        assert!(c.windows(2).all(|w| w[1] - w[0] == 100));
        assert_eq!(first_at_or_after(&c, 100), 0);
        assert_eq!(first_at_or_after(&c, 200), 0);
        assert_eq!(first_at_or_after(&c, 201), 1);
        assert_eq!(first_at_or_after(&c, 1701), CHECKPOINTS);
        assert_eq!(checkpoints(5, 5), [5; CHECKPOINTS]);
        assert_eq!(checkpoints(0, u64::MAX)[CHECKPOINTS - 1], u64::MAX);
    }
}
