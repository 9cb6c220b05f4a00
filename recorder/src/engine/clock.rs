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
//! The measurement needs two paired readings of both clocks at least 2 ms apart. Nobody waits
//! for them: [`calibrate`] takes the first when the session starts, and timestamps come from
//! clock_gettime until one taken [`CALIBRATION_NS`] later takes the second, from whichever hook
//! reads the clock then (one time, a microsecond). A program that ends sooner never switches,
//! and no process spends 2 ms spinning at its start. The switch keeps the clock continuous
//! within the calibration's error, as timestamps of different threads always are.
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

use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};

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

/// A calibration whose second reading came out too uncertain is retried this many times, then
/// given up (clock_gettime for good).
const MAX_FINISH_TRIES: u32 = 8;

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

/// Where the calibration stands ([`Calibration::state`]).
const NOT_STARTED: u8 = 0;
/// The first paired reading is taken; clock_gettime until the second.
const MEASURING: u8 = 1;
/// A thread is taking the second reading (others, and signal handlers, use clock_gettime).
const FINISHING: u8 = 2;
/// The scale is set: timestamps from the TSC.
const CALIBRATED: u8 = 3;
/// No usable TSC, not asked for, or given up: clock_gettime for good.
const NO_TSC: u8 = 4;

/// The calibration of one process, driven by atomics alone, so that any thread or signal handler
/// may read the clock (or finish the calibration) at any moment without a lock.
struct Calibration {
    state: AtomicU8,
    /// The scale, valid once `state` is [`CALIBRATED`] (published by its release store).
    tsc_base: AtomicU64,
    ns_base: AtomicU64,
    ns_per_tick: AtomicU64,
    /// The first paired reading, valid from [`MEASURING`] on.
    first_ticks: AtomicU64,
    first_ns: AtomicU64,
    first_width: AtomicU64,
    /// Second readings that gave no scale.
    failed_finishes: AtomicU32,
}

impl Calibration {
    const fn new() -> Calibration {
        Calibration {
            state: AtomicU8::new(NOT_STARTED),
            tsc_base: AtomicU64::new(0),
            ns_base: AtomicU64::new(0),
            ns_per_tick: AtomicU64::new(0),
            first_ticks: AtomicU64::new(0),
            first_ns: AtomicU64::new(0),
            first_width: AtomicU64::new(0),
            failed_finishes: AtomicU32::new(0),
        }
    }

    #[inline(always)]
    fn now_ns(&self) -> u64 {
        if self.state.load(Ordering::Acquire) == CALIBRATED {
            let scale = Scale {
                tsc_base: self.tsc_base.load(Ordering::Relaxed),
                ns_base: self.ns_base.load(Ordering::Relaxed),
                ns_per_tick: self.ns_per_tick.load(Ordering::Relaxed),
            };
            return scale.ns_at(tsc::now());
        }
        self.uncalibrated_ns()
    }

    /// clock_gettime, and the calibration's second reading once it is due.
    #[cold]
    #[inline(never)]
    fn uncalibrated_ns(&self) -> u64 {
        let ns = read(libc::CLOCK_MONOTONIC);
        if self.state.load(Ordering::Acquire) == MEASURING
            && ns.saturating_sub(self.first_ns.load(Ordering::Relaxed)) >= CALIBRATION_NS
        {
            self.finish(paired_reading);
        }
        ns
    }

    /// Takes the first reading with `first` if the calibration has not started (once per
    /// process: a forked child goes on with its parent's).
    fn start(&self, first: Option<(u64, u64, u64)>) {
        // FINISHING while the reading is stored: meanwhile every reader uses clock_gettime.
        if self.state.compare_exchange(NOT_STARTED, FINISHING, Ordering::Acquire, Ordering::Relaxed).is_err()
        {
            return;
        }
        match first {
            Some((ticks, ns, width)) => {
                self.first_ticks.store(ticks, Ordering::Relaxed);
                self.first_ns.store(ns, Ordering::Relaxed);
                self.first_width.store(width, Ordering::Relaxed);
                self.state.store(MEASURING, Ordering::Release);
            }
            None => self.state.store(NO_TSC, Ordering::Release),
        }
    }

    /// Takes the second reading with `second` and sets the scale, unless another thread is
    /// at it or has done it. A reading too uncertain leaves the calibration measuring (the
    /// next clock read tries again), until [`MAX_FINISH_TRIES`] have failed.
    fn finish(&self, second: impl FnOnce() -> Option<(u64, u64, u64)>) {
        if self.state.compare_exchange(MEASURING, FINISHING, Ordering::Acquire, Ordering::Relaxed).is_err() {
            return;
        }
        let first = (self.first_ticks.load(Ordering::Relaxed), self.first_ns.load(Ordering::Relaxed));
        let first_width = self.first_width.load(Ordering::Relaxed);
        let scale = second().and_then(|(ticks, ns, width)| {
            Scale::through(first, (ticks, ns), first_width.max(width).div_ceil(2))
        });
        let next = match scale {
            Some(scale) => {
                self.tsc_base.store(scale.tsc_base, Ordering::Relaxed);
                self.ns_base.store(scale.ns_base, Ordering::Relaxed);
                self.ns_per_tick.store(scale.ns_per_tick, Ordering::Relaxed);
                CALIBRATED
            }
            None if self.failed_finishes.fetch_add(1, Ordering::Relaxed) + 1 >= MAX_FINISH_TRIES => NO_TSC,
            None => MEASURING,
        };
        self.state.store(next, Ordering::Release);
    }

    /// In a forked child: a second reading the parent's other thread was taking is taken again.
    fn after_fork(&self) {
        let _ = self.state.compare_exchange(FINISHING, MEASURING, Ordering::Relaxed, Ordering::Relaxed);
    }

    #[cfg(test)]
    fn is_calibrated(&self) -> bool {
        self.state.load(Ordering::Acquire) == CALIBRATED
    }
}

static CALIBRATION: Calibration = Calibration::new();

/// CLOCK_MONOTONIC in nanoseconds (from the TSC once calibrated: not ordered with earlier
/// instructions, see the module doc). Never allocates, never blocks.
#[inline]
pub fn monotonic_ns() -> u64 {
    CALIBRATION.now_ns()
}

/// CLOCK_REALTIME in nanoseconds since the Unix epoch.
pub fn realtime_ns() -> u64 {
    read(libc::CLOCK_REALTIME)
}

/// Starts the calibration once per process (a forked child keeps its parent's), if the TSC can
/// stand in for CLOCK_MONOTONIC here and `use_tsc` says to try: takes the first paired reading;
/// the second follows at a clock read [`CALIBRATION_NS`] or more later. Allocates (it reads the
/// kernel's clocksource name): call with the guard held, before the session's first timestamp.
pub fn calibrate(use_tsc: bool) {
    if CALIBRATION.state.load(Ordering::Acquire) != NOT_STARTED {
        return;
    }
    let first = if use_tsc && tsc::is_kernel_clocksource() { paired_reading() } else { None };
    CALIBRATION.start(first);
}

/// In a forked child, before its first timestamp.
pub fn after_fork_in_child() {
    CALIBRATION.after_fork();
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

/// A whole calibration at once, spinning between the readings (for tests).
#[cfg(test)]
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

    /// A paired reading at `ns` of a 2.5 GHz TSC that read 0 at ns 0, bracketed by `width`.
    fn at(ns: u64, width: u64) -> Option<(u64, u64, u64)> {
        Some((ns * 5 / 2, ns, width))
    }

    #[test]
    fn the_calibration_switches_at_its_second_reading() {
        let c = Calibration::new();
        c.finish(|| panic!("nothing to finish before the start"));
        c.start(at(1_000_000, 40));
        assert_eq!(c.state.load(Ordering::Relaxed), MEASURING);
        // Started once: a second start (a forked child's session) changes nothing.
        c.start(None);
        assert_eq!(c.state.load(Ordering::Relaxed), MEASURING);
        c.finish(|| at(1_000_000 + CALIBRATION_NS, 40));
        assert!(c.is_calibrated());
        // 0.4 ns per tick, based at the second reading.
        assert_eq!(c.ns_base.load(Ordering::Relaxed), 1_000_000 + CALIBRATION_NS);
        let ns_per_tick = c.ns_per_tick.load(Ordering::Relaxed);
        assert!(ns_per_tick.abs_diff((2 << 32) / 5) <= 1, "{ns_per_tick}");
        c.finish(|| panic!("finished once"));
    }

    #[test]
    fn an_uncertain_second_reading_is_retried_then_given_up() {
        let c = Calibration::new();
        c.start(at(0, 40));
        // A bracket of 1 ms over 2 ms: far from the error allowed.
        c.finish(|| at(CALIBRATION_NS, 2_500_000));
        assert_eq!(c.state.load(Ordering::Relaxed), MEASURING, "tried again at the next read");
        c.finish(|| None);
        assert_eq!(c.state.load(Ordering::Relaxed), MEASURING);
        for _ in 2..MAX_FINISH_TRIES {
            c.finish(|| None);
        }
        assert_eq!(c.state.load(Ordering::Relaxed), NO_TSC);
        assert!(!c.is_calibrated());
    }

    #[test]
    fn without_a_tsc_it_never_measures() {
        let c = Calibration::new();
        c.start(None);
        assert_eq!(c.state.load(Ordering::Relaxed), NO_TSC);
        c.finish(|| panic!("no calibration to finish"));
        // The clock is clock_gettime's.
        let before = read(libc::CLOCK_MONOTONIC);
        let ours = c.now_ns();
        assert!((before..=read(libc::CLOCK_MONOTONIC)).contains(&ours));
    }

    #[test]
    fn a_fork_during_the_second_reading_lets_the_child_take_it() {
        let c = Calibration::new();
        c.start(at(0, 40));
        c.state.store(FINISHING, Ordering::Relaxed);
        c.after_fork();
        assert_eq!(c.state.load(Ordering::Relaxed), MEASURING);
    }

    #[test]
    fn the_real_clock_is_continuous_across_the_switch() {
        if !tsc::is_kernel_clocksource() {
            return; // No usable TSC on this machine: the clock is clock_gettime throughout.
        }
        let c = Calibration::new();
        c.start(paired_reading());
        let mut last = c.now_ns();
        let deadline = last + 50 * CALIBRATION_NS;
        while !c.is_calibrated() && last < deadline {
            let now = c.now_ns();
            assert!(now + 20_000 >= last, "went back {} ns", last - now);
            last = now;
        }
        // (A machine too busy for eight readings in a row to be sharp gives up: clock_gettime.)
        let state = c.state.load(Ordering::Relaxed);
        assert!(state == CALIBRATED || state == NO_TSC, "still uncalibrated after 100 ms: state {state}");
        for _ in 0..1000 {
            let now = c.now_ns();
            assert!(now + 20_000 >= last, "went back {} ns after the switch", last - now);
            last = now;
        }
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
