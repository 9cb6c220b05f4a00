//! Leak-suspect verdicts for [`super::MemorySource`], by a plain scan of its allocations per
//! stack: the analyzer's rules (`leakview_analyzer::suspects`) applied to the same counts, its
//! verdict function deciding and its evidence line explaining.

use std::collections::BTreeMap;

use leakview_analyzer::StackId;
use leakview_analyzer::suspects::{Ages, OUTLIVED_FACTOR, Suspect, checkpoints, evidence, fit, verdict};

use super::{GroupKey, MemoryAllocation, StackVerdict};

/// The verdicts on the stacks holding allocations outstanding at `at_ns`: by verdict, then
/// bytes (most first), then stack.
pub(super) fn rank(allocations: &[MemoryAllocation], at_ns: u64) -> Vec<StackVerdict> {
    let mut by_stack: BTreeMap<usize, Vec<&MemoryAllocation>> = BTreeMap::new();
    for a in allocations.iter().filter(|a| a.alloc_ns <= at_ns) {
        by_stack.entry(a.stack).or_default().push(a);
    }
    let mut suspects: Vec<Suspect> =
        by_stack.iter().filter_map(|(&stack, allocs)| suspect(stack, allocs, at_ns)).collect();
    suspects.sort_by(Suspect::rank_order);
    suspects
        .iter()
        .map(|s| StackVerdict {
            key: GroupKey(u64::from(s.stack.0)),
            verdict: s.verdict,
            evidence: evidence(s, at_ns),
        })
        .collect()
}

/// The evidence on one stack from its allocations made by `t`; `None` if none is outstanding.
fn suspect(stack: usize, allocs: &[&MemoryAllocation], t: u64) -> Option<Suspect> {
    let live_at = |a: &MemoryAllocation, c: u64| a.alloc_ns <= c && a.free_ns.is_none_or(|f| f > c);
    let survivors: Vec<&MemoryAllocation> = allocs.iter().copied().filter(|a| live_at(a, t)).collect();
    let mut ages: Vec<u64> = survivors.iter().map(|a| t - a.alloc_ns).collect();
    ages.sort_unstable();
    let ages = Ages { min: *ages.first()?, median: ages[ages.len() / 2], max: *ages.last()? };
    let long_lived_ns = ages.median.div_ceil(OUTLIVED_FACTOR);
    let lifetimes: Vec<u64> =
        allocs.iter().filter_map(|a| a.free_ns.filter(|&f| f <= t).map(|f| f - a.alloc_ns)).collect();
    let frees = lifetimes.len() as u64;
    let freed_long_lived = lifetimes.iter().filter(|&&l| l >= long_lived_ns).count() as u64;
    let first = allocs.iter().map(|a| a.alloc_ns).min()?;
    let live_at_checkpoints =
        checkpoints(first, t).map(|c| allocs.iter().filter(|a| live_at(a, c)).count() as u64);
    let trend = fit(&live_at_checkpoints);
    let stack = StackId(u32::try_from(stack).ok()?);
    Some(Suspect {
        stack,
        stacks: vec![stack],
        verdict: verdict(&live_at_checkpoints, trend, frees, freed_long_lived),
        blocks: survivors.len() as u64,
        bytes: survivors.iter().map(|a| a.size).sum(),
        allocations: allocs.len() as u64,
        frees,
        freed_long_lived,
        long_lived_ns,
        freed_lifetime_max_ns: lifetimes.iter().copied().max(),
        freed_lifetime_mean_ns: (frees > 0).then(|| lifetimes.iter().sum::<u64>() / frees),
        ages,
        first_alloc_ns: survivors.iter().map(|a| a.alloc_ns).min()?,
        last_alloc_ns: survivors.iter().map(|a| a.alloc_ns).max()?,
        stack_first_alloc_ns: first,
        live_at_checkpoints,
        trend,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alloc(alloc_ns: u64, free_ns: Option<u64>, stack: usize) -> MemoryAllocation {
        MemoryAllocation { address: alloc_ns, size: 16, alloc_ns, free_ns, tid: 1, stack }
    }

    #[test]
    fn each_kind_of_stack_gets_its_verdict_in_rank_order() {
        let mut allocations = Vec::new();
        // Stack 0: in use, freed after lifetimes as long as the survivor's age.
        allocations.extend([alloc(0, Some(900), 0), alloc(500, None, 0)]);
        // Stack 1: never freed, one burst.
        allocations.extend((0..4).map(|i| alloc(100 + i, None, 1)));
        // Stack 2: freed at once, except one that outlived the others.
        allocations.extend((0..100).map(|i| alloc(i * 5, Some(i * 5 + 1), 2)));
        allocations.push(alloc(10, None, 2));
        // Stack 3: one more every 10ns.
        allocations.extend((0..100).map(|i| alloc(i * 10, None, 3)));
        let ranked = rank(&allocations, 1_000);
        let verdicts: Vec<(u64, Verdict)> = ranked.iter().map(|v| (v.key.0, v.verdict)).collect();
        use leakview_analyzer::Verdict;
        assert_eq!(
            verdicts,
            [(3, Verdict::Growing), (2, Verdict::Outlived), (1, Verdict::NeverFreed), (0, Verdict::InUse)]
        );
        assert!(ranked[0].evidence.starts_with("live blocks rose steadily"), "{}", ranked[0].evidence);
        assert!(rank(&allocations, 0).iter().all(|v| v.key.0 != 0 || v.verdict == Verdict::NeverFreed));
        assert!(rank(&[], 1_000).is_empty());
    }
}
