//! memcheck's leak search over a [`Graph`]: first from the roots (a block reached through
//! start-pointers only is still reachable; one reached otherwise is possibly lost), then, in
//! address order, from each block still unreached (a clique leader, definitely lost) to every
//! unreached block it reaches through any pointers (indirectly lost; a leader reached from a
//! later leader becomes indirectly lost too, so a cycle referenced from nowhere has one
//! definitely lost member). Both walks keep their own work list: no recursion, whatever the
//! length of a chain.

use super::graph::{Graph, Pointer};

/// What the search found of one block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reach {
    Reachable,
    Possible,
    Indirect,
    Definite,
}

const UNREACHED: u8 = 0;
const POSSIBLE: u8 = 1;
const REACHABLE: u8 = 2;
const INDIRECT: u8 = 3;

/// Classifies the `nodes` blocks of `graph` (positions in address order).
pub(crate) fn walk(graph: &Graph, nodes: usize) -> Vec<Reach> {
    let mut state = vec![UNREACHED; nodes];
    let mut work: Vec<u32> = Vec::new();
    // From the roots: memcheck's `lc_push_without_clique_if_a_chunk_ptr`.
    let push = |state: &mut [u8], work: &mut Vec<u32>, p: Pointer, prior_reachable: bool| {
        let Some(s) = state.get_mut(p.to as usize) else { return };
        if *s == REACHABLE {
            return;
        }
        if p.start && prior_reachable {
            *s = REACHABLE;
            work.push(p.to);
        } else if *s == UNREACHED {
            *s = POSSIBLE;
            work.push(p.to);
        }
    };
    for &p in &graph.roots {
        push(&mut state, &mut work, p, true);
        while let Some(node) = work.pop() {
            let reachable = state[node as usize] == REACHABLE;
            for &q in graph.pointers(node as usize) {
                push(&mut state, &mut work, q, reachable);
            }
        }
    }
    // Cliques of the rest, leaders in address order.
    for leader in 0..nodes {
        if state[leader] != UNREACHED {
            continue;
        }
        work.push(leader as u32);
        while let Some(node) = work.pop() {
            for q in graph.pointers(node as usize) {
                let to = q.to as usize;
                if to != leader && state.get(to) == Some(&UNREACHED) {
                    state[to] = INDIRECT;
                    work.push(q.to);
                }
            }
        }
    }
    state
        .into_iter()
        .map(|s| match s {
            REACHABLE => Reach::Reachable,
            POSSIBLE => Reach::Possible,
            INDIRECT => Reach::Indirect,
            _ => Reach::Definite,
        })
        .collect()
}
