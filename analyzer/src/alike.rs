//! Which stacks read the same as shown. Two recorded stacks can differ only in return addresses
//! that symbolize to the same lines (a loop the compiler unrolled calls one function from two
//! places on one source line) or only in the allocator's frames that reports trim from the top;
//! a report that lists them apart shows two identical stacks. Here each distinct frame, as
//! shown, is interned to a small id (once per unique address, as it is symbolized), and each
//! stack's shown frames to a [`ShownStackId`]: stacks with the same id read the same.
//!
//! Frames are the same when their function, file, line, inlined flag and module are; a frame
//! whose file or line is unknown is also told apart by its place in its module (the offset, or
//! the address outside any module), so two call sites shown as `module+0x...` never merge.

use std::collections::HashMap;

use crate::symbolize::Frame;
use crate::trim::{is_leakview_frame, is_trimmed_frame};

/// What a stack shows, as one id: two stacks of one trace with the same id read the same frame
/// by frame once trimmed (see the module's docs). Ids are only comparable within one
/// [`crate::Analysis`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShownStackId(pub u32);

/// What tells one shown frame from another.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct FrameIdentity {
    function: Option<String>,
    file: Option<String>,
    line: Option<u32>,
    inlined: bool,
    module: Option<String>,
    /// The offset in the module (or the address without one) when the file or line is unknown.
    place: Option<u64>,
}

impl FrameIdentity {
    fn of(frame: &Frame) -> Self {
        let place = (frame.file.is_none() || frame.line.is_none())
            .then(|| frame.module_offset.unwrap_or(frame.address));
        FrameIdentity {
            function: frame.function.clone(),
            file: frame.file.clone(),
            line: frame.line,
            inlined: frame.inlined,
            module: frame.module.clone(),
            place,
        }
    }
}

/// How a frame is treated when a stack is trimmed (see `crate::trim`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Trim {
    /// The allocator's or leakview's: dropped from the top of a stack.
    at_top: bool,
    /// leakview's own: dropped wherever it is.
    anywhere: bool,
}

/// Frames interned to dense ids, each with how trimming treats it.
#[derive(Debug, Default)]
pub(crate) struct FrameIds {
    ids: HashMap<FrameIdentity, u32>,
    trims: Vec<Trim>,
}

impl FrameIds {
    /// The id of `frame`, interning it if it is new.
    pub fn intern(&mut self, frame: &Frame) -> u32 {
        let next = self.trims.len() as u32;
        let id = *self.ids.entry(FrameIdentity::of(frame)).or_insert(next);
        if id == next {
            self.trims.push(Trim { at_top: is_trimmed_frame(frame), anywhere: is_leakview_frame(frame) });
        }
        id
    }

    fn trim(&self, id: u32) -> Trim {
        self.trims.get(id as usize).copied().unwrap_or(Trim { at_top: false, anywhere: false })
    }

    /// The ids of a stack's frames as shown, given the ids of all its frames (innermost first):
    /// without the trimmed top nor leakview's frames further out, as `crate::trim::trimmed`.
    pub fn shown(&self, all: &[u32]) -> Vec<u32> {
        let top = all.iter().take_while(|&&id| self.trim(id).at_top).count();
        all[top..].iter().copied().filter(|&id| !self.trim(id).anywhere).collect()
    }
}

/// Shown stacks (lists of frame ids) interned to [`ShownStackId`]s.
#[derive(Debug, Default)]
pub(crate) struct ShownStacks {
    ids: HashMap<Box<[u32]>, u32>,
}

impl ShownStacks {
    /// The id of a stack showing the frames `shown`.
    pub fn intern(&mut self, shown: Vec<u32>) -> ShownStackId {
        let next = self.ids.len() as u32;
        ShownStackId(*self.ids.entry(shown.into_boxed_slice()).or_insert(next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trim::trimmed;

    const APP: &str = "/srv/app";

    fn frame(function: &str, file: Option<&str>, line: Option<u32>, offset: u64) -> Frame {
        Frame {
            function: Some(function.to_string()),
            file: file.map(str::to_string),
            line,
            module: Some(APP.to_string()),
            address: 0x5555_0000_0000 + offset,
            module_offset: Some(offset),
            inlined: false,
        }
    }

    fn in_module(module: &str, f: Frame) -> Frame {
        Frame { module: Some(module.to_string()), ..f }
    }

    /// The shown-stack id of each stack of `stacks`, interned together.
    fn ids(stacks: &[Vec<Frame>]) -> Vec<ShownStackId> {
        let (mut frames, mut shown) = (FrameIds::default(), ShownStacks::default());
        stacks
            .iter()
            .map(|s| {
                let all: Vec<u32> = s.iter().map(|f| frames.intern(f)).collect();
                shown.intern(frames.shown(&all))
            })
            .collect()
    }

    #[test]
    fn two_return_addresses_on_one_line_read_the_same() {
        let leaf = frame("make", Some("a.c"), Some(10), 0x1100);
        let first = vec![leaf.clone(), frame("main", Some("a.c"), Some(180), 0x1234)];
        let second = vec![leaf.clone(), frame("main", Some("a.c"), Some(180), 0x1250)];
        let other_line = vec![leaf, frame("main", Some("a.c"), Some(181), 0x1270)];
        let got = ids(&[first, second, other_line]);
        assert_eq!(got[0], got[1]);
        assert_ne!(got[0], got[2]);
    }

    #[test]
    fn frames_without_a_line_are_told_apart_by_their_offset() {
        let caller = frame("main", Some("a.c"), Some(5), 0x1000);
        let at = |offset| {
            let f = Frame { function: None, file: None, line: None, ..frame("", None, None, offset) };
            vec![f, caller.clone()]
        };
        let named_without_file = |offset| vec![frame("helper", None, None, offset), caller.clone()];
        let got = ids(&[
            at(0x2000),
            at(0x2040),
            at(0x2000),
            named_without_file(0x2000),
            named_without_file(0x2040),
        ]);
        assert_ne!(got[0], got[1], "module+0x2000 and module+0x2040");
        assert_eq!(got[0], got[2]);
        assert_ne!(got[3], got[4], "a function without a file is told apart by its offset");
        // Without a module: by the address.
        let loose =
            |address| vec![Frame { module: None, module_offset: None, address, ..frame("", None, None, 0) }];
        let got = ids(&[loose(0x10), loose(0x20), loose(0x10)]);
        assert_ne!(got[0], got[1]);
        assert_eq!(got[0], got[2]);
    }

    #[test]
    fn stacks_that_differ_only_in_trimmed_frames_read_the_same() {
        let libc = "/lib/libc.so.6";
        let preload = "/opt/leakview/libleakview_preload.so";
        let user =
            vec![frame("parse", Some("p.c"), Some(3), 0x1500), frame("main", Some("a.c"), Some(9), 0x1600)];
        let through = |top: Vec<Frame>| top.into_iter().chain(user.iter().cloned()).collect::<Vec<_>>();
        let by_malloc = through(vec![in_module(libc, frame("malloc", None, None, 0x9000))]);
        let by_calloc = through(vec![
            in_module(preload, frame("calloc", Some("hooks.rs"), Some(40), 0x700)),
            in_module(libc, frame("calloc", None, None, 0x9100)),
        ]);
        let bare = user.clone();
        // leakview's own frame further out (a signal handler wrapper) is dropped too.
        let mut wrapped = user.clone();
        wrapped.insert(1, in_module(preload, frame("wrapper", Some("signals.rs"), Some(12), 0x800)));
        let different = vec![frame("render", Some("r.c"), Some(3), 0x1700), user[1].clone()];
        let stacks = [by_malloc, by_calloc, bare, wrapped, different];
        let got = ids(&stacks);
        assert!(got[..4].iter().all(|&id| id == got[0]), "{got:?}");
        assert_ne!(got[0], got[4]);
        // The ids follow what `trimmed` shows.
        for (i, a) in stacks.iter().enumerate() {
            for (j, b) in stacks.iter().enumerate() {
                assert_eq!(got[i] == got[j], trimmed(a) == trimmed(b), "{i} {j}");
            }
        }
    }

    #[test]
    fn inlined_flag_and_module_tell_frames_apart() {
        let leaf = frame("make", Some("a.c"), Some(10), 0x1100);
        let inlined = Frame { inlined: true, ..leaf.clone() };
        let elsewhere = in_module("/srv/other", leaf.clone());
        let got = ids(&[vec![leaf], vec![inlined], vec![elsewhere]]);
        assert_ne!(got[0], got[1]);
        assert_ne!(got[0], got[2]);
    }
}
