//! Leak suspects: the stacks holding blocks outstanding at a moment, ranked by how much they
//! look like leaks rather than memory kept on purpose, each with the evidence for its verdict.
//! Stacks that read the same once symbolized and trimmed (two return addresses on one source
//! line; see [`crate::alike`]) are judged as one, on all their blocks together, as the reports
//! show them as one group.
//!
//! A stack's verdict, first match wins (the ranking follows this order, then bytes):
//! - [`Verdict::Growing`]: its live blocks rose steadily from its first allocation to the
//!   moment (counted at [`CHECKPOINTS`] evenly spaced checkpoints: the least-squares line rises
//!   with R² ≥ [`GROWING_MIN_R2`], and the last count is at least [`GROWING_MIN_RISE`] above the
//!   first) — the signature of a leak in a loop, or of a cache without a bound.
//! - [`Verdict::Outlived`]: blocks from it were freed, all but at most 1% of them before they
//!   reached a tenth ([`OUTLIVED_FACTOR`]) of the age its median survivor has now — or all but
//!   at most 5% where the survivors outnumber those long-lived freed blocks four to one
//!   ([`OUTLIVED_SURVIVOR_RATIO`]: a few slow frees, a thread's first request or a lock wait,
//!   do not hide a leak on an error path): the survivors missed the free their siblings got.
//! - [`Verdict::NeverFreed`]: nothing it allocated was ever freed and the count did not grow
//!   steadily (allocated once or in a burst): memory kept for the program's life, or a leak at
//!   its exit.
//! - [`Verdict::InUse`]: more of its freed blocks lived that long: the survivors' ages are
//!   within reach of ordinary lifetimes from this stack, and they may simply still be in use.

mod json;
mod pool;
mod report;
mod scan;
mod text;
mod trend;

use crate::alike::ShownStackId;
use crate::group::Snapshot;
use crate::lifetimes::LifetimeStore;
use crate::model::StackId;
pub use report::SuspectReport;
use scan::{Candidates, Tally};
pub use text::evidence;
pub use trend::{CHECKPOINTS, Fit, checkpoints, fit};

/// Least R² of a [`Verdict::Growing`] stack's line.
pub const GROWING_MIN_R2: f64 = 0.8;
/// Least rise, in blocks, from a [`Verdict::Growing`] stack's first checkpoint to its last.
pub const GROWING_MIN_RISE: u64 = 3;
/// How many times older than nearly every freed block the median survivor of an
/// [`Verdict::Outlived`] stack is.
pub const OUTLIVED_FACTOR: u64 = 10;
/// How many survivors per long-lived freed block let a [`Verdict::Outlived`] stack have up to 5%
/// of its freed blocks long-lived (instead of 1%).
pub const OUTLIVED_SURVIVOR_RATIO: u64 = 4;

/// Why a stack is suspected (see the module docs); the order is the ranking's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    Growing,
    Outlived,
    NeverFreed,
    InUse,
}

impl Verdict {
    /// The name used in text and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Growing => "growing",
            Verdict::Outlived => "outlived",
            Verdict::NeverFreed => "never-freed",
            Verdict::InUse => "in-use",
        }
    }
}

/// Youngest, median and oldest age of a stack's survivors at the moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ages {
    pub min: u64,
    pub median: u64,
    pub max: u64,
}

/// One stack holding outstanding blocks (or several that read the same, judged together), with
/// the evidence for its verdict. Times are ns since the start of the trace.
#[derive(Debug, Clone, PartialEq)]
pub struct Suspect {
    /// The heaviest of `stacks`: the one whose frames are shown.
    pub stack: StackId,
    /// Every recorded stack judged here (more than one when they read the same), most
    /// outstanding bytes first; `stack` is the first.
    pub stacks: Vec<StackId>,
    pub verdict: Verdict,
    /// Outstanding blocks and bytes at the moment.
    pub blocks: u64,
    pub bytes: u64,
    /// Blocks the stack allocated by the moment, and of them the ones freed by then.
    pub allocations: u64,
    pub frees: u64,
    /// Freed blocks that lived at least `long_lived_ns`: a tenth ([`OUTLIVED_FACTOR`]) of the
    /// median survivor's age.
    pub freed_long_lived: u64,
    pub long_lived_ns: u64,
    /// Longest and mean lifetime of the freed blocks (`None` when none was freed).
    pub freed_lifetime_max_ns: Option<u64>,
    pub freed_lifetime_mean_ns: Option<u64>,
    /// The survivors' ages at the moment.
    pub ages: Ages,
    /// Allocation times of the first and last survivor.
    pub first_alloc_ns: u64,
    pub last_alloc_ns: u64,
    /// The stack's first allocation (freed or not): where its checkpoints start.
    pub stack_first_alloc_ns: u64,
    /// The stack's live blocks at its checkpoints ([`checkpoints`] from `stack_first_alloc_ns`
    /// to the moment).
    pub live_at_checkpoints: [u64; CHECKPOINTS],
    /// The line through `live_at_checkpoints`.
    pub trend: Fit,
}

impl Suspect {
    /// The ranking's order: by verdict, then bytes (most first), then stack id.
    pub fn rank_order(&self, other: &Suspect) -> std::cmp::Ordering {
        (self.verdict, std::cmp::Reverse(self.bytes), self.stack).cmp(&(
            other.verdict,
            std::cmp::Reverse(other.bytes),
            other.stack,
        ))
    }

    /// The trend's slope in blocks per second.
    pub fn blocks_per_second(&self, at_ns: u64) -> f64 {
        let step_ns = at_ns.saturating_sub(self.stack_first_alloc_ns) as f64 / CHECKPOINTS as f64;
        if step_ns > 0.0 { self.trend.slope * 1e9 / step_ns } else { 0.0 }
    }
}

/// The verdict for a stack's evidence.
pub fn verdict(
    live_at_checkpoints: &[u64; CHECKPOINTS],
    trend: Fit,
    frees: u64,
    freed_long_lived: u64,
) -> Verdict {
    let rise = live_at_checkpoints[CHECKPOINTS - 1].saturating_sub(live_at_checkpoints[0]);
    if trend.slope > 0.0 && trend.r2 >= GROWING_MIN_R2 && rise >= GROWING_MIN_RISE {
        Verdict::Growing
    } else if frees == 0 {
        Verdict::NeverFreed
    } else if freed_long_lived.saturating_mul(100) <= frees
        || (freed_long_lived.saturating_mul(20) <= frees
            && freed_long_lived.saturating_mul(OUTLIVED_SURVIVOR_RATIO)
                <= live_at_checkpoints[CHECKPOINTS - 1])
    {
        Verdict::Outlived
    } else {
        Verdict::InUse
    }
}

/// The survivors of one candidate.
#[derive(Default)]
struct Survivors {
    bytes: u64,
    ages: Vec<u64>,
    first_alloc: u64,
    last_alloc: u64,
}

/// Every stack holding blocks of `snapshot`, ranked: by verdict, then bytes (most first), then
/// stack id. Stacks with the same look (`looks` gives each stack's) are one suspect.
pub(crate) fn rank(
    store: &LifetimeStore,
    snapshot: &Snapshot,
    looks: &dyn Fn(&[StackId]) -> Vec<ShownStackId>,
) -> Vec<Suspect> {
    let t = snapshot.at_ns;
    // Each stack's survivors, then the stacks that read the same pooled.
    let mut per_stack = Candidates::new();
    let mut survivors: Vec<Survivors> = Vec::new();
    for b in snapshot.blocks.iter() {
        let stack = store.site_by_id(b.site).stack;
        let slot = per_stack.slot_or_insert(stack);
        if slot == survivors.len() {
            survivors.push(Survivors { first_alloc: u64::MAX, ..Survivors::default() });
        }
        let alloc = store.alloc_ns_from_low(b.id, b.alloc_low);
        let s = &mut survivors[slot];
        s.bytes += store.full_size(b.id, b.size32);
        s.ages.push(t.saturating_sub(alloc));
        s.first_alloc = s.first_alloc.min(alloc);
        s.last_alloc = s.last_alloc.max(alloc);
    }
    let stacks: Vec<StackId> = per_stack.members.iter().flatten().map(|&s| StackId(s)).collect();
    let (mut candidates, mut survivors) = pool::pool_alike(per_stack, survivors, &looks(&stacks));
    candidates.index_sites(store);
    let ages: Vec<Ages> = survivors.iter_mut().map(|s| ages_of(&mut s.ages)).collect();
    let long_lived: Vec<u64> = ages.iter().map(|a| long_lived_ns(a.median)).collect();
    let n = store.allocated_by(t);
    let first = scan::first_allocations(store, &candidates, n);
    let checkpoints: Vec<[u64; CHECKPOINTS]> =
        first.iter().map(|&f| trend::checkpoints(f.min(t), t)).collect();
    let tallies = scan::tallies(store, &candidates, n, t, &checkpoints, &long_lived);
    let mut suspects: Vec<Suspect> = candidates
        .members
        .iter()
        .enumerate()
        .map(|(slot, stacks)| {
            let stacks = stacks.iter().map(|&s| StackId(s)).collect();
            suspect(stacks, &survivors[slot], ages[slot], first[slot].min(t), &tallies[slot])
        })
        .collect();
    suspects.sort_by(Suspect::rank_order);
    suspects
}

fn suspect(
    stacks: Vec<StackId>,
    survivors: &Survivors,
    ages: Ages,
    first_alloc: u64,
    tally: &Tally,
) -> Suspect {
    let live = tally.live_at_checkpoints();
    let trend = trend::fit(&live);
    let mean = (tally.frees > 0).then(|| (tally.freed_lifetime_sum / u128::from(tally.frees)) as u64);
    Suspect {
        stack: stacks.first().copied().unwrap_or(StackId(0)),
        stacks,
        verdict: verdict(&live, trend, tally.frees, tally.freed_long_lived),
        blocks: survivors.ages.len() as u64,
        bytes: survivors.bytes,
        allocations: tally.allocations,
        frees: tally.frees,
        freed_long_lived: tally.freed_long_lived,
        long_lived_ns: long_lived_ns(ages.median),
        freed_lifetime_max_ns: (tally.frees > 0).then_some(tally.freed_lifetime_max),
        freed_lifetime_mean_ns: mean,
        ages,
        first_alloc_ns: survivors.first_alloc,
        last_alloc_ns: survivors.last_alloc,
        stack_first_alloc_ns: first_alloc,
        live_at_checkpoints: live,
        trend,
    }
}

/// The least lifetime that counts a freed block as long-lived, for a median survivor age.
fn long_lived_ns(median_age: u64) -> u64 {
    median_age.div_ceil(OUTLIVED_FACTOR)
}

/// Youngest, median (the upper one of an even count) and oldest of `ages` (sorts them).
fn ages_of(ages: &mut [u64]) -> Ages {
    ages.sort_unstable();
    match (ages.first(), ages.last()) {
        (Some(&min), Some(&max)) => Ages { min, median: ages[ages.len() / 2], max },
        _ => Ages::default(),
    }
}

#[cfg(test)]
mod tests;
