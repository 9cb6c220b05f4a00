//! The recorder's clock: CLOCK_MONOTONIC nanoseconds, the clock every event timestamp uses, and
//! CLOCK_REALTIME for the trace's wall-clock start.
//!
//! Reading CLOCK_MONOTONIC through the vDSO costs about 35 ns inside an allocation hook (its
//! ordered TSC read waits for the allocator's work, then a sequence lock and a conversion follow),
//! a tenth of the recorder's time on allocation-heavy programs. Where the kernel itself keeps time
//! with an invariant TSC (x86_64, clocksource `tsc`), [`calibrate`] measures the TSC's rate against
//! CLOCK_MONOTONIC once, and timestamps are then the TSC scaled to nanoseconds: the same clock
//! within the calibration's error (a few parts per million, at most [`MAX_RATE_ERROR_PPM`]).
//! Elsewhere, or with `LEAKVIEW_CLOCK=monotonic`, every read goes through clock_gettime.
//!
//! The measurement takes 2 ms. Under `leakview record` the processes of one recording share it
//! through a file the command creates (`LEAKVIEW_CLOCK_FILE`): the first process to calibrate
//! writes its scale there, and a later one (an exec'd shell command, say) uses it after checking
//! it against one reading of CLOCK_MONOTONIC, instead of spending another 2 ms.
//!
//! Ordering. A TSC read is not ordered: RDTSC may execute before earlier instructions have, so
//! an allocation's time can be read a little before the load that found its address free, a
//! free's time before the load that brought the thread its pointer (by as long as one memory
//! access keeps the read from retiring; an interrupt or fault in between makes it happen again).
//! Ordered reads (RDTSCP, or LFENCE then RDTSC, as clock_gettime does) wait for the allocator's
//! work and cost a fifth of the recorder's time on allocation-heavy programs (BENCHMARKS.md).
//! Within a thread the encoder clamps a time that went backwards to its predecessor's; between
//! threads the analyzer puts an allocation and a free of one address that came out swapped back
//! in the only order an allocator allows (FORMAT.md, "Ordering across threads").

use std::path::Path;
use std::sync::OnceLock;

/// Linux clock id of [`monotonic_ns`], stored in the trace metadata.
pub const CLOCK_ID: u32 = libc::CLOCK_MONOTONIC as u32;

/// How long the calibration measures the TSC's rate: a measured pair of readings is uncertain by
/// half the width of its bracket (RDTSCP, clock_gettime, RDTSCP: 40 ns at best on the 2-core VM
/// this was measured on), so the rate is off by at most `2 * 20 ns / 2 ms` = 20 ppm.
const CALIBRATION_NS: u64 = 2_000_000;

/// A calibration whose readings were too far apart to vouch for this error is not used.
pub const MAX_RATE_ERROR_PPM: u64 = 25;

/// Nanoseconds per tick (32.32 fixed point) of a TSC between 20 GHz and 100 MHz: anything else is
/// not a clock to trust.
const PLAUSIBLE_NS_PER_TICK: std::ops::RangeInclusive<u64> = (1 << 32) / 20..=(10 << 32);

/// A shared scale is used only while it agrees with CLOCK_MONOTONIC this closely (at the worst
/// rate error that is about a second after it was measured; then a process measures again and
/// shares its own).
const SHARED_AGREEMENT_NS: u64 = 20_000;

fn read(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec we own; it neither allocates nor blocks.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    (ts.tv_sec as u64).wrapping_mul(1_000_000_000).wrapping_add(ts.tv_nsec as u64)
}

/// TSC ticks to CLOCK_MONOTONIC nanoseconds: `ns = ns_base + (ticks - tsc_base) * scale / 2^32`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Scale {
    tsc_base: u64,
    ns_base: u64,
    /// Nanoseconds per tick, 32.32 fixed point.
    ns_per_tick: u64,
}

impl Scale {
    #[inline(always)]
    fn ns_at(&self, ticks: u64) -> u64 {
        self.ns_base.wrapping_add(self.ns_of(ticks.saturating_sub(self.tsc_base)))
    }

    /// A span of `ticks` in nanoseconds.
    #[inline(always)]
    fn ns_of(&self, ticks: u64) -> u64 {
        ((u128::from(ticks) * u128::from(self.ns_per_tick)) >> 32) as u64
    }

    /// The scale maps a fresh reading of the TSC to within [`SHARED_AGREEMENT_NS`] of
    /// CLOCK_MONOTONIC.
    fn agrees_now(&self) -> bool {
        paired_reading().is_some_and(|(ticks, ns, width)| {
            self.ns_at(ticks).abs_diff(ns) <= SHARED_AGREEMENT_NS + self.ns_of(width.div_ceil(2))
        })
    }

    /// The scale through two readings `(ticks, ns)`, each uncertain by `slack` ticks; `None`
    /// when they cannot give a rate within [`MAX_RATE_ERROR_PPM`].
    fn through(first: (u64, u64), second: (u64, u64), slack: u64) -> Option<Scale> {
        let ticks = second.0.checked_sub(first.0)?;
        let ns = second.1.checked_sub(first.1)?;
        if ticks == 0 || ns == 0 || slack.saturating_mul(2_000_000) > ticks.saturating_mul(MAX_RATE_ERROR_PPM)
        {
            return None;
        }
        let ns_per_tick = u64::try_from((u128::from(ns) << 32) / u128::from(ticks)).ok()?;
        PLAUSIBLE_NS_PER_TICK.contains(&ns_per_tick).then_some(Scale {
            tsc_base: second.0,
            ns_base: second.1,
            ns_per_tick,
        })
    }
}

static SCALE: OnceLock<Option<Scale>> = OnceLock::new();

#[inline(always)]
fn scale() -> Option<&'static Scale> {
    SCALE.get().and_then(Option::as_ref)
}

/// CLOCK_MONOTONIC in nanoseconds (from the TSC where calibrated: not ordered with earlier
/// instructions, see the module doc). Never allocates.
#[inline]
pub fn monotonic_ns() -> u64 {
    match scale() {
        Some(scale) => scale.ns_at(tsc::now()),
        None => read(libc::CLOCK_MONOTONIC),
    }
}

/// CLOCK_REALTIME in nanoseconds since the Unix epoch.
pub fn realtime_ns() -> u64 {
    read(libc::CLOCK_REALTIME)
}

/// Sets the scale once per process (a forked child keeps its parent's), if the TSC can stand in
/// for CLOCK_MONOTONIC here and `use_tsc` says to try: the one in `shared` if it still agrees
/// with CLOCK_MONOTONIC, else measured (about 2 ms) and written to `shared`. Allocates: call
/// with the guard held, before the session's first timestamp.
pub fn calibrate(use_tsc: bool, shared: Option<&Path>) {
    SCALE.get_or_init(|| {
        if !use_tsc || !tsc::is_kernel_clocksource() {
            return None;
        }
        if let Some(scale) = shared.and_then(read_shared).filter(Scale::agrees_now) {
            return Some(scale);
        }
        let scale = measure()?;
        if let Some(path) = shared {
            write_shared(path, &scale);
        }
        Some(scale)
    });
}

/// The shared scale's text: three fixed-width numbers, so that a later writer's line replaces
/// an earlier one whole.
fn shared_line(scale: &Scale) -> String {
    format!("{:020} {:020} {:020}\n", scale.tsc_base, scale.ns_base, scale.ns_per_tick)
}

fn parse_shared(text: &[u8]) -> Option<Scale> {
    let text = std::str::from_utf8(text).ok()?;
    let mut numbers = text.split_ascii_whitespace().map(|n| n.parse::<u64>().ok());
    let (tsc_base, ns_base, ns_per_tick) = (numbers.next()??, numbers.next()??, numbers.next()??);
    PLAUSIBLE_NS_PER_TICK.contains(&ns_per_tick).then_some(Scale { tsc_base, ns_base, ns_per_tick })
}

fn read_shared(path: &Path) -> Option<Scale> {
    parse_shared(&std::fs::read(path).ok()?)
}

/// Best effort: another process's recording goes on without it.
fn write_shared(path: &Path, scale: &Scale) {
    use std::os::unix::fs::FileExt;
    if let Ok(file) = std::fs::OpenOptions::new().write(true).open(path) {
        let _ = file.write_all_at(shared_line(scale).as_bytes(), 0);
    }
}

/// One reading of both clocks: the TSC halfway through a clock_gettime call and the call's time,
/// with the narrowest bracket of a few tries; `(ticks, ns, bracket width)`.
fn paired_reading() -> Option<(u64, u64, u64)> {
    let mut best: Option<(u64, u64, u64)> = None;
    for _ in 0..16 {
        let before = tsc::after_earlier_work();
        let ns = read(libc::CLOCK_MONOTONIC);
        let after = tsc::after_earlier_work();
        let Some(width) = after.checked_sub(before) else { continue };
        if best.is_none_or(|(_, _, w)| width < w) {
            best = Some((before + width / 2, ns, width));
        }
    }
    best
}

fn measure() -> Option<Scale> {
    let (t0, n0, w0) = paired_reading()?;
    while read(libc::CLOCK_MONOTONIC).saturating_sub(n0) < CALIBRATION_NS {
        std::hint::spin_loop();
    }
    let (t1, n1, w1) = paired_reading()?;
    Scale::through((t0, n0), (t1, n1), w0.max(w1).div_ceil(2))
}

#[cfg(target_arch = "x86_64")]
mod tsc {
    use std::arch::x86_64::{__cpuid, __rdtscp, _rdtsc};

    /// The TSC now; may execute before earlier instructions have.
    #[inline(always)]
    pub fn now() -> u64 {
        // SAFETY: RDTSC reads a counter; only called once the kernel was found to use the TSC
        // as its own clock, so the instruction exists and is allowed in user mode.
        unsafe { _rdtsc() }
    }

    /// The TSC once every earlier instruction has executed (for the calibration's brackets).
    #[inline(always)]
    pub fn after_earlier_work() -> u64 {
        let mut cpu = 0u32;
        // SAFETY: as in `now`; RDTSCP's presence is checked by `is_kernel_clocksource`.
        unsafe { __rdtscp(&mut cpu) }
    }

    /// The CPU has an invariant TSC and RDTSCP, and the kernel keeps CLOCK_MONOTONIC with the TSC
    /// (so it found the TSCs of all CPUs in step and keeps watching them).
    pub fn is_kernel_clocksource() -> bool {
        // Leaf 0x8000_0000 reports the highest extended leaf; higher ones are asked only when
        // it reaches them.
        if __cpuid(0x8000_0000).eax < 0x8000_0007 {
            return false;
        }
        let rdtscp = __cpuid(0x8000_0001).edx & (1 << 27) != 0;
        let invariant = __cpuid(0x8000_0007).edx & (1 << 8) != 0;
        rdtscp
            && invariant
            && std::fs::read("/sys/devices/system/clocksource/clocksource0/current_clocksource")
                .is_ok_and(|name| name.trim_ascii() == b"tsc")
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod tsc {
    pub fn now() -> u64 {
        0
    }
    pub fn after_earlier_work() -> u64 {
        0
    }
    pub fn is_kernel_clocksource() -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_never_goes_backwards() {
        let a = monotonic_ns();
        let b = monotonic_ns();
        assert!(a > 0);
        assert!(b >= a);
    }

    #[test]
    fn a_scale_maps_ticks_through_its_base_at_its_rate() {
        // 2.5 GHz: 0.4 ns per tick.
        let scale = Scale::through((1_000, 5_000), (2_500_001_000, 1_000_005_000), 0).expect("a scale");
        assert_eq!(scale.ns_at(2_500_001_000), 1_000_005_000);
        // 10 s later, give or take the fixed point's rounding (2^-32 ns per tick: 6 ns here).
        let later = scale.ns_at(2_500_001_000 + 25_000_000_000);
        let expected = 1_000_005_000 + 10_000_000_000;
        assert!((expected - 6..=expected).contains(&later), "{later}");
        // Ticks before the base (another CPU's read racing the calibration) give the base time.
        assert_eq!(scale.ns_at(0), 1_000_005_000);
    }

    #[test]
    fn readings_too_close_or_implausible_give_no_scale() {
        // A bracket of 1000 ticks over 10^6 ticks: 0.1% uncertain.
        assert_eq!(Scale::through((0, 0), (1_000_000, 400_000), 1_000), None);
        // Backwards, or no time passed.
        assert_eq!(Scale::through((10, 10), (5, 20), 0), None);
        assert_eq!(Scale::through((10, 10), (20, 10), 0), None);
        // 1 tick per 100 ns: a 10 MHz counter is not a TSC.
        assert_eq!(Scale::through((0, 0), (1_000_000, 100_000_000), 0), None);
    }

    #[test]
    fn a_shared_scale_reads_back_and_bad_text_gives_none() {
        let scale = Scale { tsc_base: 123_456_789, ns_base: 987_654_321_000, ns_per_tick: 1_717_986_918 };
        let line = shared_line(&scale);
        assert_eq!(parse_shared(line.as_bytes()), Some(scale));
        // A later, smaller scale written over it replaces it whole.
        let later = Scale { tsc_base: 5, ns_base: 6, ns_per_tick: 1_717_986_919 };
        assert_eq!(shared_line(&later).len(), line.len());
        for bad in ["", "1 2", "a b c", "1 2 3", "1 2 99999999999999999999999"] {
            assert_eq!(parse_shared(bad.as_bytes()), None, "{bad:?}");
        }
    }

    #[test]
    fn a_stale_shared_scale_does_not_agree() {
        // The right rate, but 1 ms off: refused.
        let Some(scale) = (tsc::is_kernel_clocksource()).then(measure).flatten() else { return };
        let off = Scale { ns_base: scale.ns_base + 1_000_000, ..scale };
        assert!(scale.agrees_now());
        assert!(!off.agrees_now());
    }

    #[test]
    fn calibrated_time_tracks_clock_gettime() {
        let Some(scale) = (tsc::is_kernel_clocksource()).then(measure).flatten() else {
            return; // No usable TSC on this machine: the fallback is clock_gettime itself.
        };
        let mut worst = 0i64;
        for _ in 0..1000 {
            let ours = scale.ns_at(tsc::after_earlier_work()) as i64;
            let kernel = read(libc::CLOCK_MONOTONIC) as i64;
            let ours_after = scale.ns_at(tsc::after_earlier_work()) as i64;
            // The kernel's reading lies between ours, give or take the calibration's error.
            worst = worst.max(ours - kernel).max(kernel - ours_after);
        }
        assert!(worst < 20_000, "the calibrated clock strays {worst} ns from CLOCK_MONOTONIC");
    }
}
