//! Leak kinds of hand-built blocks and scans: each rule of the search, with exact answers.

use leakview_format::region_kind::{ANONYMOUS, BRK_HEAP, MODULE_DATA, STACK};

use super::*;
use crate::heap_scan::{HeapScan, ScanRegion, ScanTotals};
use LeakKind::{
    DefinitelyLost as Definite, IndirectlyLost as Indirect, PossiblyLost as Possible,
    StillReachable as Reachable,
};

/// Module data, a stack, the program break's heap (where the blocks are).
const DATA: u64 = 0x40_0000;
const STACK_TOP: u64 = 0x7ff0_0000;
const HEAP: u64 = 0x100_0000;

fn region(start: u64, len: u64, kind: u8) -> ScanRegion {
    ScanRegion { start, len, kind }
}

fn usual_regions() -> Vec<ScanRegion> {
    vec![
        region(DATA, 0x1000, MODULE_DATA),
        region(STACK_TOP - 0x1000, 0x1000, STACK),
        region(HEAP, 0x10_0000, BRK_HEAP),
    ]
}

fn block(n: u64, size: u64) -> Extent {
    Extent { addr: HEAP + n * 0x100, size }
}

fn scan(regions: Vec<ScanRegion>, references: Vec<(u64, u64)>) -> HeapScan {
    HeapScan::new(0, regions, references, ScanTotals::default())
}

/// The kinds of `blocks` given the usual regions and `references`, no anonymous region.
fn kinds(blocks: &[Extent], references: Vec<(u64, u64)>) -> Vec<LeakKind> {
    let scan = scan(usual_regions(), references);
    classify(blocks, &scan, &vec![false; scan.regions().len()])
}

#[test]
fn a_block_a_global_points_to_is_still_reachable() {
    let blocks = [block(0, 32), block(1, 32)];
    let found = kinds(&blocks, vec![(DATA + 8, blocks[0].addr)]);
    assert_eq!(found, [Reachable, Definite]);
    // From a stack, likewise.
    let found = kinds(&blocks, vec![(STACK_TOP - 8, blocks[1].addr)]);
    assert_eq!(found, [Definite, Reachable]);
}

#[test]
fn a_lost_list_head_is_definite_and_its_tail_indirect() {
    let blocks = [block(0, 16), block(1, 16), block(2, 16)];
    // head -> 1 -> 2, nothing points to the head.
    let links = vec![(blocks[0].addr + 8, blocks[1].addr), (blocks[1].addr + 8, blocks[2].addr)];
    assert_eq!(kinds(&blocks, links.clone()), [Definite, Indirect, Indirect]);
    // The same list held by a global is reachable throughout.
    let mut held = links;
    held.push((DATA, blocks[0].addr));
    assert_eq!(kinds(&blocks, held), [Reachable, Reachable, Reachable]);
}

#[test]
fn interior_pointers_make_blocks_possibly_lost() {
    let blocks = [block(0, 64), block(1, 64), block(2, 64)];
    // A global points into the middle of 0, which points to the start of 1: both possible.
    // 2 has a start-pointer and an interior pointer from the roots: reachable.
    let references = vec![
        (DATA, blocks[0].addr + 16),
        (DATA + 8, blocks[2].addr + 8),
        (DATA + 16, blocks[2].addr),
        (blocks[0].addr, blocks[1].addr),
    ];
    assert_eq!(kinds(&blocks, references), [Possible, Possible, Reachable]);
    // One past the end points to nothing.
    assert_eq!(kinds(&blocks[..1], vec![(DATA, blocks[0].addr + 64)]), [Definite]);
}

#[test]
fn a_block_of_size_zero_is_pointed_to_at_its_address_only() {
    let blocks = [block(0, 0), block(1, 0)];
    assert_eq!(
        kinds(&blocks, vec![(DATA, blocks[0].addr), (DATA + 8, blocks[1].addr + 1)]),
        [Reachable, Definite]
    );
}

#[test]
fn a_cycle_nothing_points_to_has_one_definite_member() {
    let blocks = [block(0, 16), block(1, 16), block(2, 16)];
    // 0 <-> 1, and 2 -> 0: 2 is the only block nothing points to.
    let cycle = vec![(blocks[0].addr, blocks[1].addr), (blocks[1].addr, blocks[0].addr)];
    assert_eq!(kinds(&blocks[..2], cycle.clone()), [Definite, Indirect]);
    let mut into_cycle = cycle;
    into_cycle.push((blocks[2].addr, blocks[0].addr));
    // 0 leads its clique first, then 2 (a later leader) reaches it: 0 joins 2's clique.
    assert_eq!(kinds(&blocks, into_cycle), [Indirect, Indirect, Definite]);
    // Each block pointing to itself only: each is definite.
    assert_eq!(kinds(&blocks[..1], vec![(blocks[0].addr, blocks[0].addr)]), [Definite]);
}

#[test]
fn words_in_freed_heap_memory_are_not_roots() {
    let blocks = [block(0, 16), block(1, 16)];
    // 0x8000 into the heap lies in no block: freed memory (or the allocator's), ignored; a word
    // in a live block still counts.
    let references = vec![(HEAP + 0x8000, blocks[0].addr), (blocks[0].addr, blocks[1].addr)];
    assert_eq!(kinds(&blocks, references), [Definite, Indirect]);
    // Words outside every region are ignored too.
    assert_eq!(
        kinds(&blocks, vec![(0x10, blocks[0].addr), (0x9_0000_0000, blocks[1].addr)]),
        [Definite, Definite]
    );
}

#[test]
fn anonymous_memory_is_a_root_unless_a_block_ever_lay_in_it() {
    // Two anonymous mappings: one the program's own (no block ever in it), one an allocator
    // arena that held a block, freed since, besides the live one.
    const OWN: u64 = 0x7000_0000;
    const ARENA: u64 = 0x7100_0000;
    let live = [Extent { addr: ARENA + 0x100, size: 32 }, block(0, 32)];
    let freed = Extent { addr: ARENA + 0x800, size: 64 };
    let mut regions = usual_regions();
    regions.push(region(OWN, 0x1000, ANONYMOUS));
    regions.push(region(ARENA, 0x10_0000, ANONYMOUS));
    let scan = scan(regions, vec![(OWN + 8, live[0].addr), (ARENA + 0x808, live[1].addr)]);
    let trace = [live[0], live[1], freed];
    let held = regions_ever_holding(scan.regions(), trace.len(), |i| trace[i]);
    // Regions by start: data, heap, own, arena, stack. The heap's answer is not needed.
    assert_eq!(held, [false, false, false, true, false]);
    assert_eq!(classify(&live, &scan, &held), [Reachable, Definite]);
    // Only freed blocks in the arena: still not a root.
    let held = regions_ever_holding(scan.regions(), 1, |_| freed);
    assert_eq!(held, [false, false, false, true, false]);
    assert_eq!(classify(&live, &scan, &held), [Reachable, Definite]);
    // Without the arena's blocks it would be a root.
    assert_eq!(classify(&live, &scan, &[false; 5]), [Reachable, Reachable]);
}

#[test]
fn a_chain_of_100k_blocks_is_walked_without_recursion() {
    const N: u64 = 100_000;
    let blocks: Vec<Extent> = (0..N).map(|i| Extent { addr: HEAP + 32 * i, size: 24 }).collect();
    // Each block points to the next, the last first in the list (no help from address order).
    let mut links: Vec<(u64, u64)> =
        (0..N - 1).map(|i| (blocks[i as usize].addr + 8, blocks[i as usize + 1].addr)).collect();
    let regions = vec![region(DATA, 0x1000, MODULE_DATA), region(HEAP, 32 * N, BRK_HEAP)];
    let lost = scan(regions.clone(), links.clone());
    links.push((DATA, blocks[0].addr));
    let held = scan(regions, links);
    // A small stack: a recursive walk of 100,000 blocks would overflow it.
    let (lost_kinds, held_kinds) = std::thread::Builder::new()
        .stack_size(128 * 1024)
        .spawn(move || {
            let none = [false, false];
            (classify(&blocks, &lost, &none), classify(&blocks, &held, &none))
        })
        .expect("spawn")
        .join()
        .expect("no overflow");
    let count = |kinds: &[LeakKind], kind| kinds.iter().filter(|&&k| k == kind).count();
    assert_eq!(lost_kinds[0], Definite);
    assert_eq!(count(&lost_kinds, Definite), 1);
    assert_eq!(count(&lost_kinds, Indirect), N as usize - 1);
    assert_eq!(count(&held_kinds, Reachable), N as usize);
}

#[test]
fn garbage_scans_do_not_panic() {
    let blocks = [block(0, 16), block(1, u64::MAX), Extent { addr: u64::MAX, size: 8 }, block(0, 8)];
    let regions = vec![
        region(0, u64::MAX, STACK),
        region(u64::MAX - 4, 100, MODULE_DATA),
        region(HEAP, 0, ANONYMOUS),
        region(HEAP, 0x100, 200),
        region(DATA, 0x1000, MODULE_DATA),
        region(DATA + 8, 0x10, BRK_HEAP),
    ];
    let references =
        vec![(0, 0), (u64::MAX, u64::MAX), (DATA + 8, HEAP), (HEAP + 4, HEAP + 0x104), (DATA, u64::MAX)];
    let scan = scan(regions, references);
    let held = regions_ever_holding(scan.regions(), blocks.len(), |i| blocks[i]);
    assert_eq!(classify(&blocks, &scan, &held).len(), blocks.len());
    assert_eq!(classify(&blocks, &scan, &[]).len(), blocks.len());
    // An empty scan: nothing is reached.
    let empty = HeapScan::default();
    assert_eq!(classify(&blocks[..2], &empty, &[]), [Definite, Definite]);
    assert!(classify(&[], &empty, &[]).is_empty());
}
