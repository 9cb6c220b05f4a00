//! The call tree: the report's stacks merged from the outermost frame in, each frame with the
//! bytes, blocks and share of everything below it — how memory got where it is, top down
//! (heaptrack's top-down tree, memray's `tree` reporter). A frame whose caller calls nothing
//! else is drawn at its caller's indentation, so the tree indents only where it branches (of a
//! long run of such frames, all with the same figures, the first and last two are drawn and the
//! rest counted); a frame that branches and also allocated itself lists that part as
//! `(allocated here)`.

use std::collections::HashMap;
use std::fmt::Write;

use super::Report;
use super::text::{location, write_header};
use super::units::{bytes, count, share};
use crate::group::SortBy;

/// A frame of the tree: the blocks of the shown stacks through it.
#[derive(Default)]
struct Node {
    /// `function  location`, as the text report names a frame.
    label: String,
    bytes: u64,
    blocks: u64,
    /// Of which allocated with this frame innermost.
    own_bytes: u64,
    own_blocks: u64,
    children: Vec<usize>,
}

/// The tree's nodes; node 0 is the root above every outermost frame.
struct Tree {
    nodes: Vec<Node>,
    /// Each node's children by label.
    by_label: HashMap<(usize, String), usize>,
    /// Ranked by blocks (else by bytes).
    by_blocks: bool,
}

impl Tree {
    fn child(&mut self, parent: usize, label: String) -> usize {
        let next = self.nodes.len();
        let id = *self.by_label.entry((parent, label.clone())).or_insert(next);
        if id == next {
            self.nodes.push(Node { label, ..Node::default() });
            self.nodes[parent].children.push(id);
        }
        id
    }

    /// Adds a stack's blocks along its frames, outermost first.
    fn add(&mut self, labels: impl Iterator<Item = String>, bytes: u64, blocks: u64) {
        let mut at = 0;
        self.nodes[0].bytes += bytes;
        self.nodes[0].blocks += blocks;
        for label in labels {
            at = self.child(at, label);
            self.nodes[at].bytes += bytes;
            self.nodes[at].blocks += blocks;
        }
        self.nodes[at].own_bytes += bytes;
        self.nodes[at].own_blocks += blocks;
    }

    fn sort(&mut self) {
        let by_blocks = self.by_blocks;
        for i in 0..self.nodes.len() {
            let mut children = std::mem::take(&mut self.nodes[i].children);
            let nodes = &self.nodes;
            children.sort_by(|&a, &b| {
                let (a, b) = (&nodes[a], &nodes[b]);
                let figure = if by_blocks { b.blocks.cmp(&a.blocks) } else { b.bytes.cmp(&a.bytes) };
                figure.then(b.bytes.cmp(&a.bytes)).then(a.label.cmp(&b.label))
            });
            self.nodes[i].children = children;
        }
    }
}

/// Runs of frames without a branch longer than this show their first and last
/// [`RUN_ENDS`] frames only.
const LONGEST_RUN: usize = 6;
const RUN_ENDS: usize = 2;

/// One line of the tree: its figures and the text after them (branch lines and label).
struct Line {
    bytes: u64,
    blocks: u64,
    text: String,
}

pub(super) fn render(report: &Report<'_>) -> String {
    let mut out = String::new();
    write_header(report, &mut out);
    let shown = report.shown();
    if shown.is_empty() {
        let _ = writeln!(out, "\nNothing to draw.");
        return out;
    }
    let by_blocks = report.sort == SortBy::Blocks;
    let mut tree = Tree { nodes: vec![Node::default()], by_label: HashMap::new(), by_blocks };
    for group in shown {
        let frames = report.frames_of(group);
        let labels: Vec<String> = if frames.is_empty() {
            vec!["(no stack recorded)".to_string()]
        } else {
            frames
                .iter()
                .rev()
                .map(|f| {
                    let loc = location(f);
                    let inlined = if f.inlined { "  [inlined]" } else { "" };
                    if loc.is_empty() {
                        format!("{}{inlined}", f.display_name())
                    } else {
                        format!("{}  {loc}{inlined}", f.display_name())
                    }
                })
                .collect()
        };
        tree.add(labels.into_iter(), group.bytes, group.blocks);
    }
    tree.sort();
    let mut lines = Vec::new();
    let roots = tree.nodes[0].children.clone();
    draw_children(&tree, &roots, None, "", &mut lines);

    let totals = report.grouping.totals;
    let share_of = |l: &Line| {
        if by_blocks { share(l.blocks, totals.blocks) } else { share(l.bytes, totals.bytes) }
    };
    let cells: Vec<[String; 3]> =
        lines.iter().map(|l| [bytes(l.bytes), count(l.blocks), share_of(l)]).collect();
    let width = |k: usize, header: &str| {
        cells.iter().map(|c| c[k].chars().count()).max().unwrap_or(0).max(header.chars().count())
    };
    let widths = [width(0, "bytes"), width(1, "blocks"), width(2, "share")];
    let stacks = report.grouping.len();
    let whose = if shown.len() < stacks {
        format!("the {} largest of {} stacks", count(shown.len() as u64), count(stacks as u64))
    } else {
        "every stack".to_string()
    };
    let _ = writeln!(
        out,
        "\n{:>w0$}  {:>w1$}  {:>w2$}  call tree, outermost frame first ({whose})",
        "bytes",
        "blocks",
        "share",
        w0 = widths[0],
        w1 = widths[1],
        w2 = widths[2]
    );
    for (line, cell) in lines.iter().zip(&cells) {
        let _ = writeln!(
            out,
            "{:>w0$}  {:>w1$}  {:>w2$}  {}",
            cell[0],
            cell[1],
            cell[2],
            line.text,
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
    }
    let hidden = stacks - shown.len();
    if hidden > 0 {
        let noun = if hidden == 1 { "stack" } else { "stacks" };
        let left = totals.bytes.saturating_sub(tree.nodes[0].bytes);
        let _ = writeln!(
            out,
            "\n… and {} more {noun}, {} (--top 0 draws all)",
            count(hidden as u64),
            bytes(left)
        );
    }
    out
}

/// Draws `children` (of `parent`, if a frame) below lines starting with `prefix`: an only child
/// at the parent's indentation, several behind `├─`/`└─` branches, and the parent's own blocks
/// as `(allocated here)` where it has children too.
fn draw_children(
    tree: &Tree,
    children: &[usize],
    parent: Option<usize>,
    prefix: &str,
    lines: &mut Vec<Line>,
) {
    let own = parent.map(|p| &tree.nodes[p]).filter(|p| p.own_blocks > 0 && !children.is_empty());
    let branches = children.len() + usize::from(own.is_some());
    if branches == 1 && own.is_none() {
        // The run of frames down to the next branch (or allocating frame, or leaf).
        let mut run = vec![children[0]];
        loop {
            let node = &tree.nodes[run[run.len() - 1]];
            match node.children[..] {
                [only] if node.own_blocks == 0 => run.push(only),
                _ => break,
            }
        }
        let line = |id: usize| {
            let node = &tree.nodes[id];
            Line { bytes: node.bytes, blocks: node.blocks, text: format!("{prefix}{}", node.label) }
        };
        if run.len() > LONGEST_RUN {
            lines.extend(run[..RUN_ENDS].iter().map(|&id| line(id)));
            let node = &tree.nodes[run[0]];
            let hidden = run.len() - 2 * RUN_ENDS;
            lines.push(Line {
                bytes: node.bytes,
                blocks: node.blocks,
                text: format!("{prefix}… {hidden} frames"),
            });
            lines.extend(run[run.len() - RUN_ENDS..].iter().map(|&id| line(id)));
        } else {
            lines.extend(run.iter().map(|&id| line(id)));
        }
        let last = run[run.len() - 1];
        draw_children(tree, &tree.nodes[last].children, Some(last), prefix, lines);
        return;
    }
    // The parent's own blocks ranked among its children (which are in rank order).
    let own_at = own.map(|p| {
        children
            .iter()
            .position(|&c| {
                let c = &tree.nodes[c];
                if tree.by_blocks {
                    (p.own_blocks, p.own_bytes) > (c.blocks, c.bytes)
                } else {
                    (p.own_bytes, p.own_blocks) > (c.bytes, c.blocks)
                }
            })
            .unwrap_or(children.len())
    });
    for k in 0..branches {
        let (branch, below) = if k + 1 == branches { ("└─ ", "   ") } else { ("├─ ", "│  ") };
        let child = match own_at {
            Some(at) if k == at => None,
            Some(at) if k > at => Some(children[k - 1]),
            _ => Some(children[k]),
        };
        match (child, own) {
            (Some(child), _) => {
                let node = &tree.nodes[child];
                lines.push(Line {
                    bytes: node.bytes,
                    blocks: node.blocks,
                    text: format!("{prefix}{branch}{}", node.label),
                });
                draw_children(tree, &node.children, Some(child), &format!("{prefix}{below}"), lines);
            }
            (None, Some(p)) => lines.push(Line {
                bytes: p.own_bytes,
                blocks: p.own_blocks,
                text: format!("{prefix}{branch}(allocated here)"),
            }),
            (None, None) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(stacks: &[(&[&str], u64)], by_blocks: bool) -> Vec<String> {
        let mut tree = Tree { nodes: vec![Node::default()], by_label: HashMap::new(), by_blocks };
        for (frames, bytes) in stacks {
            tree.add(frames.iter().map(|f| f.to_string()), *bytes, 1);
        }
        tree.sort();
        let mut lines = Vec::new();
        let roots = tree.nodes[0].children.clone();
        draw_children(&tree, &roots, None, "", &mut lines);
        lines.iter().map(|l| format!("{} {}", l.bytes, l.text)).collect()
    }

    #[test]
    fn runs_without_a_branch_keep_their_ends_and_count_the_rest() {
        let long: Vec<String> = (0..10).map(|k| format!("f{k}")).collect();
        let long: Vec<&str> = long.iter().map(String::as_str).collect();
        assert_eq!(tree(&[(&long, 5)], false), ["5 f0", "5 f1", "5 … 6 frames", "5 f8", "5 f9"]);
        // Six frames are drawn whole; a branch ends a run.
        assert_eq!(tree(&[(&long[..6], 5)], false).len(), 6);
        let mut other = long.clone();
        other[9] = "g9";
        assert_eq!(
            tree(&[(&long, 5), (&other, 7)], false),
            ["12 f0", "12 f1", "12 … 5 frames", "12 f7", "12 f8", "7 ├─ g9", "5 └─ f9"]
        );
    }

    #[test]
    fn separate_roots_branch_at_the_top_and_own_blocks_rank_among_callees() {
        let lines =
            tree(&[(&["main", "a"], 10), (&["main"], 30), (&["main", "b"], 20), (&["thread"], 1)], false);
        assert_eq!(
            lines,
            ["60 ├─ main", "30 │  ├─ (allocated here)", "20 │  ├─ b", "10 │  └─ a", "1 └─ thread"]
        );
    }
}
