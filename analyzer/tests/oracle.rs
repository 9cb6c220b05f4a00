//! Randomized traces checked against a straightforward model: many threads, cross-thread frees,
//! address reuse, reallocs in place and moving, clock ties, unmatched frees, large sizes.
//! Every query must agree with the model exactly, at many moments (so the checkpoints are
//! exercised across their spacing).

mod common;

use common::TraceBuilder;
use leakview_analyzer::{Analysis, GroupBy, GroupKey, LoadOptions, NoProgress, StackId};
use leakview_format::testing::XorShift;

/// A block as the model knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct ModelBlock {
    alloc: u64,
    addr: u64,
    size: u64,
    free: Option<u64>,
    stack: u32,
    tid: u32,
}

struct Model {
    blocks: Vec<ModelBlock>,
    unmatched: u64,
    end: u64,
}

/// Writes a random trace and returns the model of it.
fn generate(seed: u64, ops: usize, b: &mut TraceBuilder) -> Model {
    let mut rng = XorShift::new(seed | 1);
    let tids = [11u32, 22, 33, 44];
    let stacks = 40u32;
    for id in 1..=stacks {
        let parent = if id <= 4 { 0 } else { 1 + (id * 7) % (id - 1) };
        b.stack(tids[0], id, parent, 0x40_0000 + u64::from(id) * 0x10);
    }
    let mut blocks: Vec<ModelBlock> = Vec::new();
    let mut live: Vec<usize> = Vec::new();
    let mut free_addrs: Vec<u64> = Vec::new();
    let mut next_addr = 0x1000u64;
    let mut unmatched = 0;
    let mut t = 1u64;
    // Last allocation time per address: two blocks of one address allocated in the same clock
    // tick cannot be told apart (see the matching module's docs), so the model avoids them.
    let mut last_alloc: std::collections::HashMap<u64, u64> = std::collections::HashMap::new();
    for _ in 0..ops {
        // Ties (a step of 0) are frequent on purpose.
        t += rng.below(3);
        let tid = tids[rng.below(tids.len() as u64) as usize];
        let stack = 1 + rng.below(u64::from(stacks)) as u32;
        let size = match rng.below(20) {
            0 => 5 << 32,
            1..=3 => 4096 + rng.below(1 << 20),
            _ => 1 + rng.below(256),
        };
        let roll = rng.below(100);
        if roll < 45 || live.is_empty() {
            let addr = if !free_addrs.is_empty() && rng.below(2) == 0 {
                free_addrs.swap_remove(rng.below(free_addrs.len() as u64) as usize)
            } else {
                next_addr += 0x40;
                next_addr
            };
            if last_alloc.get(&addr) == Some(&t) {
                t += 1;
            }
            last_alloc.insert(addr, t);
            b.alloc(tid, t, addr, size, stack);
            live.push(blocks.len());
            blocks.push(ModelBlock { alloc: t, addr, size, free: None, stack, tid });
        } else if roll < 85 {
            let i = live.swap_remove(rng.below(live.len() as u64) as usize);
            b.free(tid, t, blocks[i].addr);
            blocks[i].free = Some(t);
            free_addrs.push(blocks[i].addr);
        } else if roll < 98 {
            let i = live.swap_remove(rng.below(live.len() as u64) as usize);
            let old = blocks[i].addr;
            if last_alloc.get(&old) == Some(&t) {
                t += 1;
            }
            blocks[i].free = Some(t);
            let new = if rng.below(2) == 0 {
                old
            } else {
                free_addrs.push(old);
                next_addr += 0x40;
                next_addr
            };
            last_alloc.insert(new, t);
            b.realloc(tid, t, old, new, size, stack);
            live.push(blocks.len());
            blocks.push(ModelBlock { alloc: t, addr: new, size, free: None, stack, tid });
        } else {
            b.free(tid, t, 0xdead_0000 + rng.below(1000) * 8);
            unmatched += 1;
        }
    }
    Model { blocks, unmatched, end: t + 5 }
}

fn live_in_model(model: &Model, at: u64) -> Vec<(u64, u64, u64)> {
    let mut v: Vec<(u64, u64, u64)> = model
        .blocks
        .iter()
        .filter(|b| b.alloc <= at && b.free.is_none_or(|f| f > at))
        .map(|b| (b.alloc, b.addr, b.size))
        .collect();
    v.sort_unstable();
    v
}

fn check_seed(seed: u64, ops: usize) {
    let mut b = TraceBuilder::new();
    let model = generate(seed, ops, &mut b);
    let trace = b.finish(model.end);
    let a = Analysis::open(&trace.path, &LoadOptions::default(), &NoProgress).expect("loads");

    let t = a.totals();
    assert_eq!(t.allocations, model.blocks.len() as u64);
    assert_eq!(t.frees, model.blocks.iter().filter(|b| b.free.is_some()).count() as u64);
    assert_eq!(t.unmatched_frees, model.unmatched);
    assert_eq!(t.bytes_allocated, model.blocks.iter().map(|b| b.size).sum::<u64>());
    assert_eq!(a.summary().threads, 4);

    // Every block's lifetime, exactly.
    let mut got: Vec<ModelBlock> = (0..a.block_count() as u32)
        .filter_map(|i| a.block(leakview_analyzer::BlockId(i)))
        .map(|b| ModelBlock {
            alloc: b.alloc_ns,
            addr: b.address,
            size: b.size,
            free: b.free_ns,
            stack: b.stack.0,
            tid: a.thread(b.thread).map_or(0, |t| t.tid),
        })
        .collect();
    let mut want = model.blocks.clone();
    got.sort_unstable();
    want.sort_unstable();
    if let Some(i) = (0..got.len().max(want.len())).find(|&i| got.get(i) != want.get(i)) {
        panic!(
            "lifetimes differ at {i} (seed {seed}): got {:?}, want {:?}",
            &got.get(i.saturating_sub(2)..(i + 3).min(got.len())),
            &want.get(i.saturating_sub(2)..(i + 3).min(want.len()))
        );
    }

    // The peak, by a sweep over every event time (all changes at one time applied together).
    let mut deltas: Vec<(u64, i128)> = model
        .blocks
        .iter()
        .flat_map(|b| [Some((b.alloc, i128::from(b.size))), b.free.map(|f| (f, -i128::from(b.size)))])
        .flatten()
        .collect();
    deltas.sort_unstable();
    let mut peak = (0u64, 0u64);
    let mut live = 0i128;
    for (i, &(time, delta)) in deltas.iter().enumerate() {
        live += delta;
        let last_at_time = deltas.get(i + 1).is_none_or(|next| next.0 != time);
        if last_at_time && live > i128::from(peak.0) {
            peak = (live as u64, time);
        }
    }
    assert_eq!((t.peak_bytes, t.peak_at_ns), peak, "peak (seed {seed})");

    // Outstanding sets and live totals at many moments, including every tie.
    let mut rng = XorShift::new(seed ^ 0x9e37_79b9);
    let moments: Vec<u64> =
        (0..60).map(|_| rng.below(model.end + 1)).chain([0, model.end, peak.1, peak.1 - 1]).collect();
    for (k, at) in moments.into_iter().enumerate() {
        let want = live_in_model(&model, at);
        let snapshot = a.outstanding_at(at);
        let mut got: Vec<(u64, u64, u64)> =
            a.blocks(&snapshot).map(|b| (b.alloc_ns, b.address, b.size)).collect();
        got.sort_unstable();
        assert_eq!(got, want, "outstanding at {at} (seed {seed})");
        let live = a.live_at(at);
        assert_eq!((live.blocks, live.bytes), (want.len() as u64, want.iter().map(|l| l.2).sum::<u64>()));

        // Stack groups partition the snapshot.
        if k % 8 != 0 {
            continue;
        }
        let grouping = a.group(&snapshot, GroupBy::Stack);
        assert_eq!(grouping.iter().map(|g| g.bytes).sum::<u64>(), live.bytes);
        for g in grouping.iter() {
            let GroupKey::Stack(StackId(stack)) = g.key else { panic!("stack key") };
            let model_bytes: u64 = model
                .blocks
                .iter()
                .filter(|b| b.stack == stack && b.alloc <= at && b.free.is_none_or(|f| f > at))
                .map(|b| b.size)
                .sum();
            assert_eq!(g.bytes, model_bytes);
            assert_eq!(grouping.block_ids(&g).len() as u64, g.blocks);
        }
    }

    // The timeline ends where the model ends and never misses the peak.
    let points = a.timeline().points();
    assert_eq!(
        points.last().map(|p| p.live_bytes),
        Some(live_in_model(&model, model.end).iter().map(|l| l.2).sum())
    );
    assert_eq!(points.iter().map(|p| p.max_live_bytes).max(), Some(peak.0));
}

#[test]
fn small_random_traces_match_the_model() {
    for seed in 1..=20 {
        check_seed(seed * 7919, 400);
    }
}

#[test]
fn large_random_traces_match_the_model() {
    // Enough events for many checkpoints and many chunks per thread.
    check_seed(0x5eed, 120_000);
}
