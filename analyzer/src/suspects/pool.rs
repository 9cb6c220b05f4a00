//! Stacks that read the same pooled into one candidate, as the reports merge them into one
//! group (see [`crate::alike`]): two return addresses on one source line (a loop the compiler
//! unrolled) are one call site to the reader, so they get one verdict, judged on all their
//! blocks together. A candidate's stacks are listed most outstanding bytes first (then most
//! blocks, then lowest id), so its first stack is the heaviest, as a merged report group's is.

use std::collections::HashMap;

use super::Survivors;
use super::scan::Candidates;
use crate::alike::ShownStackId;

/// What a stack reads as when its look is not known: never pooled with another.
const UNKNOWN_LOOK: ShownStackId = ShownStackId(u32::MAX);

/// `candidates` of one stack each, with their `survivors` (by slot), pooled by look: `looks[slot]`
/// is how the stack of `slot` reads. Returns the pooled candidates and their survivors (ages
/// unsorted).
pub(super) fn pool_alike(
    candidates: Candidates,
    survivors: Vec<Survivors>,
    looks: &[ShownStackId],
) -> (Candidates, Vec<Survivors>) {
    // The slots of each pool, in the order the pools are first seen.
    let mut pools: Vec<Vec<usize>> = Vec::with_capacity(survivors.len());
    let mut pool_of_look: HashMap<ShownStackId, usize> = HashMap::new();
    for slot in 0..survivors.len() {
        let look = looks.get(slot).copied().unwrap_or(UNKNOWN_LOOK);
        match pool_of_look.get(&look) {
            Some(&pool) if look != UNKNOWN_LOOK => pools[pool].push(slot),
            _ => {
                pool_of_look.insert(look, pools.len());
                pools.push(vec![slot]);
            }
        }
    }
    if pools.len() == survivors.len() {
        return (candidates, survivors);
    }
    let heavier_first = |a: &usize, b: &usize| {
        let (x, y) = (&survivors[*a], &survivors[*b]);
        y.bytes
            .cmp(&x.bytes)
            .then(y.ages.len().cmp(&x.ages.len()))
            .then_with(|| candidates.members[*a].cmp(&candidates.members[*b]))
    };
    for slots in &mut pools {
        slots.sort_by(heavier_first);
    }
    let mut survivors: Vec<Option<Survivors>> = survivors.into_iter().map(Some).collect();
    let members: Vec<Vec<u32>> = pools
        .iter()
        .map(|slots| slots.iter().flat_map(|&s| candidates.members[s].clone()).collect())
        .collect();
    let pooled: Vec<Survivors> = pools
        .iter()
        .filter_map(|slots| slots.iter().filter_map(|&s| survivors[s].take()).reduce(join))
        .collect();
    (Candidates::of_members(members), pooled)
}

/// The survivors of two stacks as one.
fn join(mut a: Survivors, b: Survivors) -> Survivors {
    a.bytes += b.bytes;
    a.ages.extend(b.ages);
    a.first_alloc = a.first_alloc.min(b.first_alloc);
    a.last_alloc = a.last_alloc.max(b.last_alloc);
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn survivors(bytes: u64, ages: &[u64], first: u64, last: u64) -> Survivors {
        Survivors { bytes, ages: ages.to_vec(), first_alloc: first, last_alloc: last }
    }

    fn per_stack(stacks: &[u32]) -> Candidates {
        let mut c = Candidates::new();
        for &s in stacks {
            c.slot_or_insert(s);
        }
        c
    }

    #[test]
    fn stacks_that_read_the_same_are_one_candidate_heaviest_first() {
        let candidates = per_stack(&[10, 11, 12, 13]);
        let all = vec![
            survivors(100, &[5, 6], 1, 2),
            survivors(300, &[7], 3, 3),
            survivors(50, &[8], 4, 4),
            survivors(100, &[9, 1, 2], 0, 9),
        ];
        // 10, 11 and 13 read alike; 12 alone.
        let looks = [ShownStackId(0), ShownStackId(0), ShownStackId(1), ShownStackId(0)];
        let (pooled, survivors) = pool_alike(candidates, all, &looks);
        // 11 has the most bytes; 13 and 10 tie on bytes, 13 has more blocks.
        assert_eq!(pooled.members, vec![vec![11, 13, 10], vec![12]]);
        let first = &survivors[0];
        assert_eq!((first.bytes, first.first_alloc, first.last_alloc), (500, 0, 9));
        let mut ages = first.ages.clone();
        ages.sort_unstable();
        assert_eq!(ages, vec![1, 2, 5, 6, 7, 9]);
        assert_eq!(survivors[1].bytes, 50);
        assert_eq!(survivors.len(), 2);
    }

    #[test]
    fn distinct_or_unknown_looks_stay_apart() {
        let all = || vec![survivors(1, &[1], 1, 1), survivors(2, &[2], 2, 2)];
        let distinct = [ShownStackId(3), ShownStackId(4)];
        let (pooled, s) = pool_alike(per_stack(&[1, 2]), all(), &distinct);
        assert_eq!((pooled.members, s.len()), (vec![vec![1], vec![2]], 2));
        let (pooled, s) = pool_alike(per_stack(&[1, 2]), all(), &[UNKNOWN_LOOK, UNKNOWN_LOOK]);
        assert_eq!((pooled.members, s.len()), (vec![vec![1], vec![2]], 2));
        let (pooled, _) = pool_alike(per_stack(&[1, 2]), all(), &[]);
        assert_eq!(pooled.members, vec![vec![1], vec![2]]);
    }
}
