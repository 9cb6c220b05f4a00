//! The two parallel passes over the blocks allocated by the moment asked about that gather, for
//! each candidate (a stack holding survivors, or several such stacks that read the same, judged
//! as one) what its verdict needs: when it first allocated (pass one), then how many blocks it
//! allocated and freed, how long the freed ones lived, and how many of its blocks were live at
//! each checkpoint (pass two). A candidate's blocks are those of all its stacks.

use std::collections::HashMap;
use std::ops::Range;

use rayon::prelude::*;

use super::trend::{self, CHECKPOINTS};
use crate::lifetimes::LifetimeStore;

/// Marks a site whose stack is not a candidate in [`Candidates::slot_of_site`].
const NOT_A_CANDIDATE: u32 = u32::MAX;

/// The candidates, each a dense slot holding one or more stacks, found from blocks through their
/// sites (site ids are dense; stack ids, read from the trace, need not be).
pub(super) struct Candidates {
    /// By stack id: the slot of the candidate holding the stack.
    slot_of_stack: HashMap<u32, u32>,
    /// By site id: the slot of the site's stack, or [`NOT_A_CANDIDATE`] (filled by
    /// [`Candidates::index_sites`]).
    slot_of_site: Vec<u32>,
    /// By slot: the candidate's stack ids.
    pub members: Vec<Vec<u32>>,
}

impl Candidates {
    /// No candidates yet; [`Candidates::slot_or_insert`] adds them one stack each.
    pub fn new() -> Self {
        Candidates { slot_of_stack: HashMap::new(), slot_of_site: Vec::new(), members: Vec::new() }
    }

    /// Candidates of the stacks `members[slot]` each (every stack in one of them at most).
    pub fn of_members(members: Vec<Vec<u32>>) -> Self {
        let slot_of_stack = members
            .iter()
            .enumerate()
            .flat_map(|(slot, stacks)| stacks.iter().map(move |&stack| (stack, slot as u32)))
            .collect();
        Candidates { slot_of_stack, slot_of_site: Vec::new(), members }
    }

    /// The slot of the candidate holding `stack`, made (of that stack alone) if there is none.
    pub fn slot_or_insert(&mut self, stack: u32) -> usize {
        let next = self.members.len() as u32;
        let slot = *self.slot_of_stack.entry(stack).or_insert(next);
        if slot == next {
            self.members.push(vec![stack]);
        }
        slot as usize
    }

    /// Maps every site of `store` to its stack's slot (once all candidates are in).
    pub fn index_sites(&mut self, store: &LifetimeStore) {
        self.slot_of_site = store
            .sites
            .iter()
            .map(|site| self.slot_of_stack.get(&site.stack).copied().unwrap_or(NOT_A_CANDIDATE))
            .collect();
    }

    #[inline]
    fn slot(&self, site: u32) -> Option<usize> {
        match self.slot_of_site.get(site as usize) {
            Some(&slot) if slot != NOT_A_CANDIDATE => Some(slot as usize),
            _ => None,
        }
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }
}

/// What pass two learns of one candidate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Tally {
    /// Blocks allocated from the candidate's stacks by the moment.
    pub allocations: u64,
    /// Of those, blocks freed by the moment.
    pub frees: u64,
    /// Freed blocks that lived at least the candidate's long-lived threshold.
    pub freed_long_lived: u64,
    pub freed_lifetime_max: u64,
    pub freed_lifetime_sum: u128,
    /// Live blocks change at each checkpoint (the last entry collects what no checkpoint sees).
    live_delta: [i64; CHECKPOINTS + 1],
}

impl Tally {
    fn add(&mut self, other: &Tally) {
        self.allocations += other.allocations;
        self.frees += other.frees;
        self.freed_long_lived += other.freed_long_lived;
        self.freed_lifetime_max = self.freed_lifetime_max.max(other.freed_lifetime_max);
        self.freed_lifetime_sum += other.freed_lifetime_sum;
        for (a, b) in self.live_delta.iter_mut().zip(other.live_delta) {
            *a += b;
        }
    }

    /// The candidate's live blocks at each checkpoint.
    pub fn live_at_checkpoints(&self) -> [u64; CHECKPOINTS] {
        let mut live = 0i64;
        std::array::from_fn(|i| {
            live += self.live_delta[i];
            live.max(0) as u64
        })
    }
}

/// One id range per worker thread (work per block is even, and per-range tables stay few).
fn ranges(n: usize) -> Vec<Range<u32>> {
    let parts = rayon::current_num_threads().max(1);
    let step = n.div_ceil(parts).max(1);
    (0..n).step_by(step).map(|from| from as u32..(from + step).min(n) as u32).collect()
}

/// Pass one: the first allocation time of each candidate among blocks `0..n`
/// (`u64::MAX` for none).
pub(super) fn first_allocations(store: &LifetimeStore, candidates: &Candidates, n: usize) -> Vec<u64> {
    let k = candidates.len();
    ranges(n)
        .into_par_iter()
        .map(|range| {
            let mut first = vec![u64::MAX; k];
            for i in range {
                let (alloc, _, site) = store.times_and_site(i);
                if let Some(slot) = candidates.slot(site) {
                    // Blocks are in allocation order: the first seen is the earliest.
                    if first[slot] == u64::MAX {
                        first[slot] = alloc;
                    }
                }
            }
            first
        })
        .reduce(
            || vec![u64::MAX; k],
            |mut a, b| {
                for (x, y) in a.iter_mut().zip(b) {
                    *x = (*x).min(y);
                }
                a
            },
        )
}

/// Pass two over blocks `0..n` (those allocated by `t`), with each candidate's checkpoints and
/// the least lifetime that counts a freed block of it as long-lived.
pub(super) fn tallies(
    store: &LifetimeStore,
    candidates: &Candidates,
    n: usize,
    t: u64,
    checkpoints: &[[u64; CHECKPOINTS]],
    long_lived: &[u64],
) -> Vec<Tally> {
    let k = candidates.len();
    ranges(n)
        .into_par_iter()
        .map(|range| {
            let mut tallies = vec![Tally::default(); k];
            for i in range {
                let (alloc, free, site) = store.times_and_site(i);
                let Some(slot) = candidates.slot(site) else { continue };
                let tally = &mut tallies[slot];
                tally.allocations += 1;
                let cps = &checkpoints[slot];
                tally.live_delta[trend::first_at_or_after(cps, alloc)] += 1;
                tally.live_delta[trend::first_at_or_after(cps, free)] -= 1;
                if free <= t {
                    let lifetime = free.saturating_sub(alloc);
                    tally.frees += 1;
                    tally.freed_lifetime_max = tally.freed_lifetime_max.max(lifetime);
                    tally.freed_lifetime_sum += u128::from(lifetime);
                    if lifetime >= long_lived[slot] {
                        tally.freed_long_lived += 1;
                    }
                }
            }
            tallies
        })
        .reduce(
            || vec![Tally::default(); k],
            |mut a, b| {
                for (x, y) in a.iter_mut().zip(&b) {
                    x.add(y);
                }
                a
            },
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_every_id_once() {
        for n in [0usize, 1, 2, 7, 1000] {
            let ids: Vec<u32> = ranges(n).into_iter().flatten().collect();
            assert_eq!(ids, (0..n as u32).collect::<Vec<_>>(), "n = {n}");
        }
    }

    #[test]
    fn candidate_slots_are_dense_and_sites_find_them() {
        let mut c = Candidates::new();
        assert_eq!(c.slot_or_insert(7), 0);
        assert_eq!(c.slot_or_insert(u32::MAX - 1), 1);
        assert_eq!(c.slot_or_insert(7), 0);
        assert_eq!(c.members, vec![vec![7], vec![u32::MAX - 1]]);
        let mut store = LifetimeStore::with_capacity(0);
        store.set_sites(
            [(7, 0), (3, 0), (7, 1), (u32::MAX - 1, 0)]
                .into_iter()
                .map(|(stack, thread)| crate::lifetimes::Site { stack, thread })
                .collect(),
        );
        c.index_sites(&store);
        let slots: Vec<Option<usize>> = (0..5).map(|site| c.slot(site)).collect();
        assert_eq!(slots, vec![Some(0), None, Some(0), Some(1), None]);
        // Stacks 3 and 7 judged together: every site of either finds their slot.
        let mut pooled = Candidates::of_members(vec![vec![u32::MAX - 1], vec![7, 3]]);
        pooled.index_sites(&store);
        let slots: Vec<Option<usize>> = (0..5).map(|site| pooled.slot(site)).collect();
        assert_eq!(slots, vec![Some(1), Some(1), Some(1), Some(0), None]);
    }

    #[test]
    fn live_counts_follow_the_deltas() {
        let mut t = Tally::default();
        t.live_delta[0] += 2;
        t.live_delta[3] += 1;
        t.live_delta[5] -= 2;
        t.live_delta[CHECKPOINTS] -= 1;
        let live = t.live_at_checkpoints();
        assert_eq!(&live[..6], &[2, 2, 2, 3, 3, 1]);
        assert_eq!(live[CHECKPOINTS - 1], 1);
    }
}
