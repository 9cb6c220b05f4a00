//! Telling apart stack groups whose top frames have the same name: an allocation wrapper
//! (`xmalloc`, a `leaf_alloc` called from several places) heads many stacks, and a list of rows
//! that all read `xmalloc` says nothing about which is which. Such rows get the caller that sets
//! each apart: `xmalloc ← parse_header`, or `xmalloc ← … ← main_loop` when the nearest callers
//! are shared too; rows whose stacks hold the same functions (two calls in one function) get the
//! top frame's place instead where it is theirs alone: `xmalloc (util.c:41)`. Both browsers
//! number a stack's functions ([`FunctionIds`]) and name a top frame's place ([`place_of`]) here.

use std::collections::HashMap;
use std::sync::Arc;

use leakview_analyzer::Frame;

/// Function names numbered in order of first sight: a stack's functions as ids, for
/// [`distinguishing_callers`] and function groups.
#[derive(Debug, Default)]
pub struct FunctionIds {
    names: Vec<Arc<str>>,
    ids: HashMap<Arc<str>, u32>,
}

impl FunctionIds {
    /// The functions of `frames` (innermost first) as ids, each once.
    pub fn of_frames(&mut self, frames: &[Frame]) -> Vec<u32> {
        let mut own: Vec<u32> = Vec::new();
        for frame in frames {
            let name: Arc<str> = frame.display_name().into();
            let next = self.names.len() as u32;
            let id = *self.ids.entry(name.clone()).or_insert(next);
            if id == next {
                self.names.push(name);
            }
            if !own.contains(&id) {
                own.push(id);
            }
        }
        own
    }

    /// The name of function `id`.
    pub fn name(&self, id: u32) -> Option<&str> {
        self.names.get(id as usize).map(|n| &**n)
    }
}

/// Where a row's top frame is, as a row shows it: its source file's name and line
/// (`leaky.c:107`), when known.
pub fn place_of(frame: &Frame) -> Option<String> {
    let file = std::path::Path::new(frame.file.as_deref()?).file_name()?.to_string_lossy().into_owned();
    Some(format!("{file}:{}", frame.line?))
}

/// Between the top frame's name and the caller that tells a group apart.
pub const CALLER_ARROW: &str = " ← ";
/// Between the top frame's name and a caller further out than the next one.
pub const FAR_CALLER_ARROW: &str = " ← … ← ";

/// For rows labelled `labels[i]` whose stacks hold the functions `functions[i]` (ids, innermost
/// first, each once), the suffix for each row whose label another row shares: the arrow and the
/// name (`name_of`) of the first function, counting outward, at which its stack's functions so
/// far are its own among the rows of that label with other functions (rows with the very same
/// functions, two calls in one function, get the same caller); then, where rows still read
/// alike, ` (PLACE)` with its top frame's place (`places[i]`) before the caller if no other of
/// those rows has the same place. `None` where the label is unique, or nothing tells the row
/// apart.
pub fn distinguishing_callers(
    labels: &[&str],
    functions: &[&[u32]],
    places: &[Option<&str>],
    name_of: impl Fn(u32) -> Option<String>,
) -> Vec<Option<String>> {
    let mut suffixes = vec![None; labels.len()];
    let mut by_label: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, label) in labels.iter().enumerate() {
        by_label.entry(label).or_default().push(i);
    }
    for rows in by_label.values().filter(|rows| rows.len() > 1) {
        let mut callers: Vec<Option<String>> = Vec::with_capacity(rows.len());
        for &row in rows {
            let own = functions[row];
            let others = || rows.iter().filter(|&&other| functions[other] != own);
            let apart_at = (1..own.len())
                .find(|&depth| others().all(|&other| functions[other].get(..=depth) != Some(&own[..=depth])));
            callers.push(apart_at.filter(|_| others().next().is_some()).and_then(|depth| {
                let arrow = if depth == 1 { CALLER_ARROW } else { FAR_CALLER_ARROW };
                name_of(own[depth]).map(|name| format!("{arrow}{name}"))
            }));
        }
        // Rows that still read alike (the same caller, or none): their places, where a place
        // is theirs alone among them.
        for (n, &row) in rows.iter().enumerate() {
            let alike: Vec<usize> =
                (0..rows.len()).filter(|&m| callers[m] == callers[n]).map(|m| rows[m]).collect();
            let place = places[row].filter(|place| {
                alike.len() > 1 && alike.iter().all(|&other| other == row || places[other] != Some(place))
            });
            let caller = callers[n].as_deref();
            suffixes[row] = match (place, caller) {
                (None, None) => None,
                (place, caller) => Some(format!(
                    "{}{}",
                    place.map(|p| format!(" ({p})")).unwrap_or_default(),
                    caller.unwrap_or_default()
                )),
            };
        }
    }
    suffixes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(id: u32) -> Option<String> {
        ["leaf", "parse", "render", "main", "loop_a", "loop_b"].get(id as usize).map(|n| n.to_string())
    }

    #[test]
    fn rows_sharing_a_top_frame_get_the_caller_that_sets_them_apart() {
        let labels = ["leaf", "leaf", "leaf", "main"];
        // leaf ← parse ← main; leaf ← render ← loop_a; leaf ← render ← loop_b; main alone.
        let functions: [&[u32]; 4] = [&[0, 1, 3], &[0, 2, 4], &[0, 2, 5], &[3]];
        let suffixes = distinguishing_callers(&labels, &functions, &[None; 4], names);
        assert_eq!(
            suffixes,
            vec![
                Some(" ← parse".to_string()),
                Some(" ← … ← loop_a".to_string()),
                Some(" ← … ← loop_b".to_string()),
                None
            ]
        );
    }

    #[test]
    fn rows_with_the_same_functions_share_the_caller_that_sets_them_apart_from_the_rest() {
        // The demo at its peak: strndup ← … ← load_config ← main once, and twice through
        // reload_config (two calls on its path); the first must not read as the only one from main.
        let labels = ["leaf", "leaf", "leaf"];
        let functions: [&[u32]; 3] = [&[0, 1, 3], &[0, 1, 4, 3], &[0, 1, 4, 3]];
        let suffixes = distinguishing_callers(&labels, &functions, &[None; 3], names);
        let loop_a = Some(" ← … ← loop_a".to_string());
        assert_eq!(suffixes, vec![Some(" ← … ← main".to_string()), loop_a.clone(), loop_a]);
    }

    #[test]
    fn rows_with_the_same_functions_get_their_place_or_stay_as_they_are() {
        // Same functions (two call sites in one function); and a stack of one frame.
        let labels = ["leaf", "leaf", "leaf"];
        let functions: [&[u32]; 3] = [&[0, 1], &[0, 1], &[0]];
        let suffixes = distinguishing_callers(&labels, &functions, &[None; 3], names);
        let parse = Some(" ← parse".to_string());
        assert_eq!(suffixes, vec![parse.clone(), parse.clone(), None]);
        let places = [Some("leaf.c:10"), Some("leaf.c:12"), None];
        let suffixes = distinguishing_callers(&labels, &functions, &places, names);
        assert_eq!(
            suffixes,
            vec![Some(" (leaf.c:10) ← parse".to_string()), Some(" (leaf.c:12) ← parse".to_string()), None]
        );
        // A place two such rows share tells neither apart.
        let places = [Some("leaf.c:10"), Some("leaf.c:10"), Some("leaf.c:12")];
        let suffixes = distinguishing_callers(&labels, &functions, &places, names);
        assert_eq!(suffixes, vec![parse.clone(), parse, None]);
        // Only rows with the same functions: their places alone.
        let functions: [&[u32]; 2] = [&[0, 1], &[0, 1]];
        let places = [Some("leaf.c:10"), Some("leaf.c:12")];
        let suffixes = distinguishing_callers(&labels[..2], &functions, &places, names);
        assert_eq!(suffixes, vec![Some(" (leaf.c:10)".to_string()), Some(" (leaf.c:12)".to_string())]);
        // A row whose stack goes on where another's ends is told apart by that caller.
        let functions: [&[u32]; 2] = [&[0, 1, 3], &[0, 1]];
        let suffixes = distinguishing_callers(&labels[..2], &functions, &[None; 2], names);
        assert_eq!(suffixes, vec![Some(" ← … ← main".to_string()), None]);
    }
}
