//! Call trees: stacks merged from the outermost frame in, each frame with the bytes and blocks of
//! everything below it — how memory got where it is, top down (heaptrack's top-down tree,
//! memray's `tree`) — or from the allocating frame out, each frame with its callers below it
//! (heaptrack's bottom-up tree). The tree is laid out as lines ready to draw: a frame whose
//! parent has no other child sits at its parent's indentation, so the tree indents only where it
//! branches (of a longer run of such frames the first and last two are kept and the rest
//! counted); a frame that branches and where stacks also end has that part as a line of its own,
//! ranked among its children. `report --format tree` and `bottom-up` and the browser's tree draw
//! these lines.

use std::collections::HashMap;
use std::hash::Hash;

/// Runs of frames without a branch longer than this keep their first and last [`RUN_ENDS`].
const LONGEST_RUN: usize = 6;
const RUN_ENDS: usize = 2;

/// Which way a tree runs along its stacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TreeOrder {
    /// From the outermost frame in: each frame's callees below it.
    #[default]
    TopDown,
    /// From the allocating frame out: each frame's callers below it.
    BottomUp,
}

/// What a line of the tree stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreePart<F> {
    /// A frame, with the blocks of every stack through it.
    Frame(F),
    /// The blocks the frame above allocated itself (it also calls on: its callees are its
    /// other branches). Top down only.
    AllocatedHere,
    /// The blocks of stacks whose outermost frame is the frame above (other stacks go on to its
    /// callers, its other branches). Bottom up only.
    NoCaller,
    /// This many frames of a run without a branch, left out.
    Elided(usize),
}

impl<F> TreePart<F> {
    /// How the line reads after its branch lines, `frame` naming a frame: `(allocated here)`,
    /// `(no caller recorded)`, `… 6 frames`.
    pub fn text(&self, frame: impl FnOnce(&F) -> String) -> String {
        match self {
            TreePart::Frame(f) => frame(f),
            TreePart::AllocatedHere => "(allocated here)".to_string(),
            TreePart::NoCaller => "(no caller recorded)".to_string(),
            TreePart::Elided(n) => format!("… {n} frames"),
        }
    }
}

/// One line of a call tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallTreeLine<F> {
    pub bytes: u64,
    pub blocks: u64,
    /// The branch lines before the line's text (`│  ├─ `).
    pub prefix: String,
    pub part: TreePart<F>,
    /// The stacks whose blocks the line counts, as indices into the stacks the tree was made
    /// of, ascending (the browser opens their blocks).
    pub stacks: Vec<usize>,
}

/// A frame of the tree: the blocks of the stacks through it.
struct Node<F> {
    /// `None` for the root.
    frame: Option<F>,
    bytes: u64,
    blocks: u64,
    /// Of which allocated with this frame innermost.
    own_bytes: u64,
    own_blocks: u64,
    /// The stacks through the frame, and those that end at it (indices in the order added).
    stacks: Vec<usize>,
    own_stacks: Vec<usize>,
    children: Vec<usize>,
}

impl<F> Node<F> {
    /// A node of `frame` (`None`: the root) that no stack passes yet.
    fn new(frame: Option<F>) -> Self {
        Node {
            frame,
            bytes: 0,
            blocks: 0,
            own_bytes: 0,
            own_blocks: 0,
            stacks: Vec::new(),
            own_stacks: Vec::new(),
            children: Vec::new(),
        }
    }
}

/// The tree's nodes; node 0 is the root above every outermost frame.
struct Tree<F> {
    nodes: Vec<Node<F>>,
    /// Each node's children by frame.
    by_frame: HashMap<(usize, F), usize>,
    /// Ranked by blocks (else by bytes).
    by_blocks: bool,
    /// What a stack's end reads as where it is not a leaf.
    end_part: TreePart<F>,
}

impl<F: Clone + Eq + Hash> Tree<F> {
    fn new(by_blocks: bool, order: TreeOrder) -> Self {
        let root = Node::new(None);
        let end_part = match order {
            TreeOrder::TopDown => TreePart::AllocatedHere,
            TreeOrder::BottomUp => TreePart::NoCaller,
        };
        Tree { nodes: vec![root], by_frame: HashMap::new(), by_blocks, end_part }
    }

    fn child(&mut self, parent: usize, frame: F) -> usize {
        let next = self.nodes.len();
        let id = *self.by_frame.entry((parent, frame.clone())).or_insert(next);
        if id == next {
            self.nodes.push(Node::new(Some(frame)));
            self.nodes[parent].children.push(id);
        }
        id
    }

    /// Adds stack number `index`'s blocks along its frames, from the tree's root down.
    fn add(&mut self, index: usize, frames: impl IntoIterator<Item = F>, bytes: u64, blocks: u64) {
        let mut at = 0;
        self.nodes[0].bytes += bytes;
        self.nodes[0].blocks += blocks;
        for frame in frames {
            at = self.child(at, frame);
            let node = &mut self.nodes[at];
            node.bytes += bytes;
            node.blocks += blocks;
            // (Each step goes a level deeper: a stack passes a node once.)
            node.stacks.push(index);
        }
        let node = &mut self.nodes[at];
        node.own_bytes += bytes;
        node.own_blocks += blocks;
        node.own_stacks.push(index);
    }

    /// The ranking figure of (bytes, blocks), as a key to sort on, largest first.
    fn rank(&self, bytes: u64, blocks: u64) -> (u64, u64) {
        if self.by_blocks { (blocks, bytes) } else { (bytes, blocks) }
    }

    /// Ranks every node's children (a stable sort: ties keep the order stacks were added in).
    fn sort(&mut self) {
        for i in 0..self.nodes.len() {
            let mut children = std::mem::take(&mut self.nodes[i].children);
            children
                .sort_by_key(|&c| std::cmp::Reverse(self.rank(self.nodes[c].bytes, self.nodes[c].blocks)));
            self.nodes[i].children = children;
        }
    }

    fn frame_line(&self, id: usize, prefix: String) -> CallTreeLine<F> {
        let node = &self.nodes[id];
        // Only the root, never drawn, has no frame.
        let part = node.frame.clone().map_or(TreePart::Elided(0), TreePart::Frame);
        CallTreeLine { bytes: node.bytes, blocks: node.blocks, prefix, part, stacks: node.stacks.clone() }
    }

    /// Lays out `children` (of `parent`) below lines starting with `prefix`: an only child at the
    /// parent's indentation, several behind `├─`/`└─` branches, and the parent's own blocks as a
    /// branch of their own where it has children too.
    fn lay_out(&self, children: &[usize], parent: usize, prefix: &str, lines: &mut Vec<CallTreeLine<F>>) {
        let p = &self.nodes[parent];
        let own = parent != 0 && p.own_blocks > 0 && !children.is_empty();
        if children.len() == 1 && !own {
            self.lay_out_run(children[0], prefix, lines);
            return;
        }
        // The parent's own blocks ranked among its children (which are in rank order).
        let own_rank = self.rank(p.own_bytes, p.own_blocks);
        let own_at = own.then(|| {
            children
                .iter()
                .position(|&c| own_rank > self.rank(self.nodes[c].bytes, self.nodes[c].blocks))
                .unwrap_or(children.len())
        });
        let branches = children.len() + usize::from(own);
        for k in 0..branches {
            let (branch, below) = if k + 1 == branches { ("└─ ", "   ") } else { ("├─ ", "│  ") };
            let child = match own_at {
                Some(at) if k == at => None,
                Some(at) if k > at => Some(children[k - 1]),
                _ => Some(children[k]),
            };
            match child {
                Some(child) => {
                    lines.push(self.frame_line(child, format!("{prefix}{branch}")));
                    let below = format!("{prefix}{below}");
                    self.lay_out(&self.nodes[child].children, child, &below, lines);
                }
                None => lines.push(CallTreeLine {
                    bytes: p.own_bytes,
                    blocks: p.own_blocks,
                    prefix: format!("{prefix}{branch}"),
                    part: self.end_part.clone(),
                    stacks: p.own_stacks.clone(),
                }),
            }
        }
    }

    /// Lays out the run of frames from `first` down to the next branch (or allocating frame, or
    /// leaf), then what is below it.
    fn lay_out_run(&self, first: usize, prefix: &str, lines: &mut Vec<CallTreeLine<F>>) {
        let mut run = vec![first];
        loop {
            let node = &self.nodes[run[run.len() - 1]];
            match node.children[..] {
                [only] if node.own_blocks == 0 => run.push(only),
                _ => break,
            }
        }
        if run.len() > LONGEST_RUN {
            lines.extend(run[..RUN_ENDS].iter().map(|&id| self.frame_line(id, prefix.to_string())));
            let node = &self.nodes[first];
            lines.push(CallTreeLine {
                bytes: node.bytes,
                blocks: node.blocks,
                prefix: prefix.to_string(),
                part: TreePart::Elided(run.len() - 2 * RUN_ENDS),
                stacks: node.stacks.clone(),
            });
            lines.extend(
                run[run.len() - RUN_ENDS..].iter().map(|&id| self.frame_line(id, prefix.to_string())),
            );
        } else {
            lines.extend(run.iter().map(|&id| self.frame_line(id, prefix.to_string())));
        }
        let last = run[run.len() - 1];
        self.lay_out(&self.nodes[last].children, last, prefix, lines);
    }
}

/// The call tree of `stacks` — each its frames innermost (allocating) first, as stacks are
/// kept, with its bytes and blocks — as lines to draw in `order`, every level ranked by bytes
/// (or by blocks), ties in the order given. Frames are merged where they are equal and so is
/// their path from the root.
pub fn call_tree_lines<F, S>(
    stacks: impl IntoIterator<Item = (S, u64, u64)>,
    by_blocks: bool,
    order: TreeOrder,
) -> Vec<CallTreeLine<F>>
where
    F: Clone + Eq + Hash,
    S: IntoIterator<Item = F>,
    S::IntoIter: DoubleEndedIterator,
{
    let mut tree = Tree::new(by_blocks, order);
    for (index, (frames, bytes, blocks)) in stacks.into_iter().enumerate() {
        match order {
            TreeOrder::BottomUp => tree.add(index, frames, bytes, blocks),
            TreeOrder::TopDown => tree.add(index, frames.into_iter().rev(), bytes, blocks),
        }
    }
    tree.sort();
    let mut lines = Vec::new();
    tree.lay_out(&tree.nodes[0].children, 0, "", &mut lines);
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lines of the top-down tree of `stacks` (frames outermost first, bytes, blocks) as
    /// `BYTES PREFIX TEXT`.
    fn drawn(stacks: &[(&[&str], u64, u64)], by_blocks: bool) -> Vec<String> {
        drawn_in(stacks, by_blocks, TreeOrder::TopDown)
    }

    fn drawn_in(stacks: &[(&[&str], u64, u64)], by_blocks: bool, order: TreeOrder) -> Vec<String> {
        let stacks =
            stacks.iter().map(|(frames, bytes, blocks)| (frames.iter().rev().copied(), *bytes, *blocks));
        call_tree_lines(stacks, by_blocks, order)
            .into_iter()
            .map(|l| format!("{} {}{}", l.bytes, l.prefix, l.part.text(|f| f.to_string())))
            .collect()
    }

    #[test]
    fn runs_without_a_branch_keep_their_ends_and_count_the_rest() {
        let long: Vec<String> = (0..10).map(|k| format!("f{k}")).collect();
        let long: Vec<&str> = long.iter().map(String::as_str).collect();
        assert_eq!(drawn(&[(&long, 5, 1)], false), ["5 f0", "5 f1", "5 … 6 frames", "5 f8", "5 f9"]);
        // Six frames are drawn whole; a branch ends a run.
        assert_eq!(drawn(&[(&long[..6], 5, 1)], false).len(), 6);
        let mut other = long.clone();
        other[9] = "g9";
        assert_eq!(
            drawn(&[(&long, 5, 1), (&other, 7, 1)], false),
            ["12 f0", "12 f1", "12 … 5 frames", "12 f7", "12 f8", "7 ├─ g9", "5 └─ f9"]
        );
    }

    #[test]
    fn each_line_names_the_stacks_whose_blocks_it_counts() {
        let stacks: [(&[&str], u64, u64); 4] =
            [(&["main", "a"], 10, 5), (&["main"], 30, 1), (&["main", "b"], 20, 2), (&["thread"], 1, 1)];
        let lines = |order| {
            let stacks =
                stacks.iter().map(|(frames, bytes, blocks)| (frames.iter().rev().copied(), *bytes, *blocks));
            call_tree_lines(stacks, false, order)
                .into_iter()
                .map(|l| (l.part.text(|f| f.to_string()), l.stacks))
                .collect::<Vec<_>>()
        };
        let named = |text: &str, stacks: &[usize]| (text.to_string(), stacks.to_vec());
        assert_eq!(
            lines(TreeOrder::TopDown),
            [
                named("main", &[0, 1, 2]),
                named("(allocated here)", &[1]),
                named("b", &[2]),
                named("a", &[0]),
                named("thread", &[3])
            ]
        );
        // Bottom up, `main` is where stacks 1 (its own blocks) and 0 and 2 (its callees') meet
        // at different depths: each line counts its own path.
        assert_eq!(
            lines(TreeOrder::BottomUp),
            [
                named("main", &[1]),
                named("b", &[2]),
                named("main", &[2]),
                named("a", &[0]),
                named("main", &[0]),
                named("thread", &[3])
            ]
        );
        // A run cut short counts the stacks of its frames.
        let long: Vec<String> = (0..10).map(|k| format!("f{k}")).collect();
        let long: Vec<&str> = long.iter().map(String::as_str).collect();
        let run = call_tree_lines(
            [(long.iter().rev().copied(), 5, 1), (long[..9].iter().rev().copied(), 3, 1)],
            false,
            TreeOrder::TopDown,
        );
        let elided = run.iter().find(|l| matches!(l.part, TreePart::Elided(_))).expect("a run cut short");
        assert_eq!(elided.stacks, [0, 1]);
        let own = run.iter().find(|l| l.part == TreePart::AllocatedHere).expect("f8's own blocks");
        assert_eq!(own.stacks, [1]);
    }

    #[test]
    fn separate_roots_branch_at_the_top_and_own_blocks_rank_among_callees() {
        let stacks: [(&[&str], u64, u64); 4] =
            [(&["main", "a"], 10, 5), (&["main"], 30, 1), (&["main", "b"], 20, 2), (&["thread"], 1, 1)];
        assert_eq!(
            drawn(&stacks, false),
            ["60 ├─ main", "30 │  ├─ (allocated here)", "20 │  ├─ b", "10 │  └─ a", "1 └─ thread"]
        );
        // By blocks: a's 5, b's 2, main's own 1.
        assert_eq!(
            drawn(&stacks, true),
            ["60 ├─ main", "10 │  ├─ a", "20 │  ├─ b", "30 │  └─ (allocated here)", "1 └─ thread"]
        );
        // Equal figures keep the order the stacks came in.
        assert_eq!(drawn(&[(&["x"], 4, 1), (&["y"], 4, 1)], false), ["4 ├─ x", "4 └─ y"]);
    }

    #[test]
    fn bottom_up_trees_start_at_the_allocating_frames_and_branch_to_their_callers() {
        // xmalloc is called from parse (from main) and from load (from main and from worker);
        // one stack ends at load (no caller recorded: a truncated stack).
        let stacks: [(&[&str], u64, u64); 5] = [
            (&["main", "parse", "xmalloc"], 40, 4),
            (&["main", "load", "xmalloc"], 20, 2),
            (&["worker", "load", "xmalloc"], 10, 1),
            (&["load", "xmalloc"], 5, 1),
            (&["main", "cache"], 8, 1),
        ];
        assert_eq!(
            drawn_in(&stacks, false, TreeOrder::BottomUp),
            [
                "75 ├─ xmalloc",
                "40 │  ├─ parse",
                "40 │  │  main",
                "35 │  └─ load",
                "20 │     ├─ main",
                "10 │     ├─ worker",
                "5 │     └─ (no caller recorded)",
                "8 └─ cache",
                "8    main",
            ]
        );
        // The same stacks top down.
        assert_eq!(drawn(&stacks, false)[..3], ["68 ├─ main", "40 │  ├─ parse", "40 │  │  xmalloc"]);
    }
}
