//! Verdicts and ranking on lifetime stores built by hand, one stack per kind of suspect.

use std::sync::Arc;

use super::*;
use crate::lifetimes::Site;
use crate::model::LiveTotals;

/// Every stack reads as its own.
fn apart(stacks: &[StackId]) -> Vec<ShownStackId> {
    stacks.iter().map(|s| ShownStackId(s.0)).collect()
}

/// Blocks as (alloc, free or None, stack, size).
fn store_of(mut blocks: Vec<(u64, Option<u64>, u32, u64)>) -> LifetimeStore {
    blocks.sort_by_key(|b| b.0);
    let mut store = LifetimeStore::with_capacity(blocks.len());
    for (i, &(alloc, free, stack, size)) in blocks.iter().enumerate() {
        let id = store.push(alloc, 0x1000 + i as u64 * 16, size, stack);
        if let Some(free) = free {
            store.set_free(id, free);
        }
    }
    let max_stack = blocks.iter().map(|b| b.2).max().unwrap_or(0);
    store.set_sites((0..=max_stack).map(|stack| Site { stack, thread: 0 }).collect());
    store
}

fn snapshot_at(store: &LifetimeStore, t: u64) -> Snapshot {
    let blocks: Vec<_> = (0..store.allocated_by(t) as u32).filter_map(|i| store.live_block(i, t)).collect();
    let bytes = blocks.iter().map(|b| store.full_size(b.id, b.size32)).sum();
    Snapshot { at_ns: t, totals: LiveTotals { blocks: blocks.len() as u64, bytes }, blocks: Arc::new(blocks) }
}

const LOOP: u32 = 1;
const SIBLINGS: u32 = 2;
const ONCE: u32 = 3;
const HELD: u32 = 4;
/// A second return address on LOOP's line.
const LOOP_TWIN: u32 = 5;

/// Stack LOOP leaks every tenth of 100 blocks allocated through the run (the others freed 5 ns
/// later); SIBLINGS frees 48 of 50 early blocks within 3 ns and keeps 2; ONCE allocates one
/// block, never freed; HELD's freed blocks lived 800 ns, longer than its survivors have.
fn blocks() -> Vec<(u64, Option<u64>, u32, u64)> {
    let mut b = Vec::new();
    for i in 0..100u64 {
        let t = 10 + i * 10;
        b.push((t, (i % 10 != 9).then_some(t + 5), LOOP, 32));
    }
    for i in 0..50u64 {
        let t = 2 + i;
        b.push((t, (i != 20 && i != 30).then_some(t + 3), SIBLINGS, 64));
    }
    b.push((5, None, ONCE, 4096));
    b.push((100, Some(900), HELD, 16));
    b.push((120, Some(920), HELD, 16));
    b.push((900, None, HELD, 16));
    b.push((950, None, HELD, 16));
    b
}

#[test]
fn each_kind_of_stack_gets_its_verdict_and_the_ranking_follows_them() {
    let store = store_of(blocks());
    let suspects = rank(&store, &snapshot_at(&store, 1010), &apart);
    let order: Vec<(u32, Verdict)> = suspects.iter().map(|s| (s.stack.0, s.verdict)).collect();
    assert_eq!(
        order,
        vec![
            (LOOP, Verdict::Growing),
            (SIBLINGS, Verdict::Outlived),
            (ONCE, Verdict::NeverFreed),
            (HELD, Verdict::InUse)
        ]
    );
}

#[test]
fn the_evidence_is_counted_exactly() {
    let store = store_of(blocks());
    let suspects = rank(&store, &snapshot_at(&store, 1010), &apart);
    let of = |stack: u32| suspects.iter().find(|s| s.stack.0 == stack).expect("suspect");

    let looped = of(LOOP);
    assert_eq!((looped.blocks, looped.bytes, looped.allocations, looped.frees), (10, 320, 100, 90));
    assert_eq!((looped.first_alloc_ns, looped.last_alloc_ns, looped.stack_first_alloc_ns), (100, 1000, 10));
    assert_eq!(looped.freed_lifetime_max_ns, Some(5));
    assert_eq!(looped.freed_lifetime_mean_ns, Some(5));
    // Survivors allocated at 100, 200, ..., 1000: ages 910 down to 10; median (upper) 510.
    assert_eq!(looped.ages, Ages { min: 10, median: 510, max: 910 });
    assert_eq!(looped.freed_long_lived, 0);
    // Checkpoints at 10 + 62.5 ns * (i + 1), rounded down (72, 135, ..., 1010): the survivors
    // allocated by then, plus a block of the loop allocated at most 5 ns before (at 72, 260, 322,
    // 510, 572, 760 and 822).
    assert_eq!(looped.live_at_checkpoints, [1, 1, 1, 3, 4, 3, 4, 6, 6, 6, 6, 8, 9, 8, 9, 10]);
    assert!(looped.trend.r2 > 0.95 && looped.trend.slope > 0.5, "{:?}", looped.trend);
    let per_second = looped.blocks_per_second(1010);
    assert!((per_second - 1e7).abs() < 1e6, "{per_second}");

    let siblings = of(SIBLINGS);
    assert_eq!(
        (siblings.blocks, siblings.allocations, siblings.frees, siblings.freed_long_lived),
        (2, 50, 48, 0)
    );
    assert_eq!(siblings.freed_lifetime_max_ns, Some(3));

    let once = of(ONCE);
    assert_eq!((once.blocks, once.bytes, once.allocations, once.frees), (1, 4096, 1, 0));
    assert_eq!(once.freed_lifetime_max_ns, None);
    assert_eq!(once.ages, Ages { min: 1005, median: 1005, max: 1005 });

    let held = of(HELD);
    // Survivors aged 110 and 60 (median 110, a tenth of it 11); both freed blocks lived 800.
    assert_eq!((held.blocks, held.allocations, held.frees, held.freed_long_lived), (2, 4, 2, 2));
    assert_eq!(held.long_lived_ns, 11);
    // SIBLINGS' median survivor is 988 old: freed blocks count as long-lived from 99.
    assert_eq!(siblings.long_lived_ns, 99);
}

#[test]
fn a_moment_before_the_end_sees_only_what_was_allocated_and_freed_by_then() {
    let store = store_of(blocks());
    let t = 500;
    let suspects = rank(&store, &snapshot_at(&store, t), &apart);
    let looped = suspects.iter().find(|s| s.stack.0 == LOOP).expect("suspect");
    // Blocks allocated at 10..=500 (50 of them), the survivors those at 100..=500 step 100.
    assert_eq!((looped.allocations, looped.blocks, looped.frees), (50, 5, 45));
    assert_eq!(looped.live_at_checkpoints[CHECKPOINTS - 1], 5);
    // HELD's block freed at 900 is a survivor at 500; its sibling too: nothing freed yet.
    let held = suspects.iter().find(|s| s.stack.0 == HELD).expect("suspect");
    assert_eq!((held.blocks, held.frees, held.verdict), (2, 0, Verdict::NeverFreed));
}

#[test]
fn verdict_thresholds() {
    let ramp: [u64; CHECKPOINTS] = std::array::from_fn(|i| i as u64);
    let fit = trend::fit(&ramp);
    assert_eq!(verdict(&ramp, fit, 0, 0), Verdict::Growing);
    // A rise too small to call growth.
    let small: [u64; CHECKPOINTS] = std::array::from_fn(|i| u64::from(i >= 8) * 2);
    let small_fit = trend::fit(&small);
    assert_eq!(verdict(&small, small_fit, 0, 0), Verdict::NeverFreed);
    let flat = [4; CHECKPOINTS];
    let none = trend::fit(&flat);
    assert_eq!(verdict(&flat, none, 100, 1), Verdict::Outlived);
    assert_eq!(verdict(&flat, none, 100, 2), Verdict::InUse);
    assert_eq!(verdict(&flat, none, 1, 0), Verdict::Outlived);
    assert_eq!(verdict(&flat, none, 1, 1), Verdict::InUse);
    // Up to 5% of the freed blocks long-lived where the survivors are four times as many.
    let twenty = [20; CHECKPOINTS];
    let twenty_fit = trend::fit(&twenty);
    assert_eq!(verdict(&twenty, twenty_fit, 180, 3), Verdict::Outlived);
    assert_eq!(verdict(&twenty, twenty_fit, 180, 5), Verdict::Outlived);
    assert_eq!(verdict(&twenty, twenty_fit, 180, 6), Verdict::InUse, "survivors not four times as many");
    let eighty = [80; CHECKPOINTS];
    assert_eq!(verdict(&eighty, trend::fit(&eighty), 180, 10), Verdict::InUse, "more than 5% long-lived");
    assert_eq!(verdict(&flat, none, 180, 3), Verdict::InUse, "4 survivors, 3 long-lived freed");
}

#[test]
fn no_outstanding_blocks_no_suspects() {
    let store = store_of(vec![(1, Some(2), 1, 8)]);
    assert!(rank(&store, &snapshot_at(&store, 10), &apart).is_empty());
    let empty = store_of(Vec::new());
    assert!(rank(&empty, &snapshot_at(&empty, 0), &apart).is_empty());
}

#[test]
fn stacks_that_read_the_same_are_judged_as_one_on_all_their_blocks() {
    // LOOP's blocks, every other ten of them from a second stack that reads the same.
    let split: Vec<_> = blocks()
        .into_iter()
        .map(|(alloc, free, stack, size)| {
            let twin = stack == LOOP && (alloc - 10) / 100 % 2 == 1;
            (alloc, free, if twin { LOOP_TWIN } else { stack }, size)
        })
        .collect();
    let store = store_of(split);
    let snapshot = snapshot_at(&store, 1010);
    // Judged apart, each half holds 5 survivors of 50 allocations.
    let judged_apart = rank(&store, &snapshot, &apart);
    let halves: Vec<&Suspect> =
        judged_apart.iter().filter(|s| s.stack.0 == LOOP || s.stack.0 == LOOP_TWIN).collect();
    assert_eq!(halves.len(), 2);
    assert!(halves.iter().all(|s| (s.blocks, s.allocations) == (5, 50)), "{halves:?}");
    // Read alike, they are one suspect with the evidence of the unsplit stack.
    let alike = |stacks: &[StackId]| -> Vec<ShownStackId> {
        stacks.iter().map(|s| ShownStackId(if s.0 == LOOP_TWIN { LOOP } else { s.0 })).collect()
    };
    let pooled = rank(&store, &snapshot, &alike);
    let whole_store = store_of(blocks());
    let whole = rank(&whole_store, &snapshot_at(&whole_store, 1010), &apart);
    assert_eq!(pooled.len(), whole.len());
    let looped = &pooled[0];
    // Both halves hold 160 bytes in 5 blocks: the lower id first.
    assert_eq!(looped.stacks, vec![StackId(LOOP), StackId(LOOP_TWIN)]);
    assert_eq!(looped.stack, StackId(LOOP));
    assert_eq!(Suspect { stacks: vec![StackId(LOOP)], ..looped.clone() }, whole[0]);
    for (p, w) in pooled.iter().zip(&whole).skip(1) {
        assert_eq!(p, w);
        assert_eq!(p.stacks, vec![p.stack]);
    }
}
