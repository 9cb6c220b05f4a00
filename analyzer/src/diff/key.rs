//! Matching keys: how a frame and a stack are identified across two traces, whose addresses
//! differ (ASLR, rebuilt binaries) and whose line numbers move when code is edited.
//!
//! A frame with a function name is its function plus the file name of its source (no
//! directories: build paths differ). A frame without one is its module's file name plus its
//! offset when both traces hold the same build of that module (same GNU build-id), and its
//! module's file name alone otherwise. Two moments of one trace share every build, and there a
//! frame known only by its address keeps that address.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use crate::symbolize::{Frame, ModuleInfo};

/// How one frame is identified across the two sides of a diff.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FrameKey {
    /// A named function, with the file name (without directories) of its source when known.
    Function { name: String, file: Option<String> },
    /// No function name; the module's file name and the frame's offset in it (both sides run
    /// the same build of the module).
    ModuleOffset { module: String, offset: u64 },
    /// No function name and the builds differ or are unknown: the module's file name alone.
    Module { module: String },
    /// Nothing known but the address: only within one trace.
    Address(u64),
    /// Nothing known at all (an address outside every module, in two different traces).
    Unknown,
}

impl fmt::Display for FrameKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameKey::Function { name, .. } => f.write_str(name),
            FrameKey::ModuleOffset { module, offset } => write!(f, "{module}+{offset:#x}"),
            FrameKey::Module { module } => f.write_str(module),
            FrameKey::Address(address) => write!(f, "{address:#x}"),
            FrameKey::Unknown => f.write_str("?"),
        }
    }
}

/// A stack's key: its frames' keys, innermost first, allocator frames trimmed.
pub type StackKey = Arc<[Arc<FrameKey>]>;

/// The last component of a `/`-separated path.
pub(crate) fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Decides each frame's key for one pair of traces.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeyPolicy {
    /// Module file names whose frames are matched by offset.
    offset_modules: HashSet<String>,
    /// Both sides are one trace: every build is shared and addresses mean the same thing.
    one_trace: bool,
}

impl KeyPolicy {
    /// The policy for traces with these modules. A module's offsets are comparable when every
    /// module of that file name, on both sides, carries one and the same non-empty build-id.
    pub fn new(a: &[ModuleInfo], b: &[ModuleInfo], one_trace: bool) -> Self {
        let mut builds: HashMap<String, (HashSet<&[u8]>, bool, bool)> = HashMap::new();
        for (modules, is_a) in [(a, true), (b, false)] {
            for module in modules {
                let entry = builds.entry(module.file_name()).or_default();
                entry.0.insert(module.build_id.as_slice());
                if is_a {
                    entry.1 = true;
                } else {
                    entry.2 = true;
                }
            }
        }
        let offset_modules = builds
            .into_iter()
            .filter(|(_, (ids, in_a, in_b))| {
                one_trace || (*in_a && *in_b && ids.len() == 1 && ids.iter().all(|id| !id.is_empty()))
            })
            .map(|(name, _)| name)
            .collect();
        KeyPolicy { offset_modules, one_trace }
    }

    /// The key of one frame.
    pub fn frame_key(&self, frame: &Frame) -> FrameKey {
        if let Some(name) = &frame.function {
            return FrameKey::Function {
                name: name.clone(),
                file: frame.file.as_deref().map(|f| file_name(f).to_string()),
            };
        }
        match (&frame.module, frame.module_offset) {
            (Some(module), offset) => {
                let module = file_name(module).to_string();
                match offset {
                    Some(offset) if self.offset_modules.contains(&module) => {
                        FrameKey::ModuleOffset { module, offset }
                    }
                    _ => FrameKey::Module { module },
                }
            }
            (None, _) if self.one_trace => FrameKey::Address(frame.address),
            (None, _) => FrameKey::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn named(function: &str, file: Option<&str>, line: u32, address: u64) -> Frame {
        Frame {
            function: Some(function.to_string()),
            file: file.map(str::to_string),
            line: Some(line),
            module: Some("/build/a/app".to_string()),
            address,
            module_offset: Some(address - 0x1000),
            inlined: false,
        }
    }

    fn anonymous(module: Option<&str>, address: u64, offset: Option<u64>) -> Frame {
        Frame {
            function: None,
            file: None,
            line: None,
            module: module.map(str::to_string),
            address,
            module_offset: offset,
            inlined: false,
        }
    }

    fn module(path: &str, build_id: &[u8]) -> ModuleInfo {
        ModuleInfo {
            id: 1,
            path: PathBuf::from(path),
            build_id: build_id.to_vec(),
            base: 0x1000,
            segments: Vec::new(),
            loaded_ns: 0,
            unloaded_ns: None,
        }
    }

    #[test]
    fn named_frames_ignore_addresses_lines_and_directories() {
        let policy = KeyPolicy::default();
        let a = named("parse", Some("/home/ci/src/parse.c"), 10, 0x5555_0000_1234);
        let b = named("parse", Some("/tmp/build/src/parse.c"), 42, 0x7f00_0000_9999);
        assert_eq!(policy.frame_key(&a), policy.frame_key(&b));
        assert_eq!(
            policy.frame_key(&a),
            FrameKey::Function { name: "parse".into(), file: Some("parse.c".into()) }
        );
        let other_file = named("parse", Some("/home/ci/src/lexer.c"), 10, 0x1234);
        assert_ne!(policy.frame_key(&a), policy.frame_key(&other_file));
        let other_function = named("lex", Some("/home/ci/src/parse.c"), 10, 0x1234);
        assert_ne!(policy.frame_key(&a), policy.frame_key(&other_function));
    }

    #[test]
    fn anonymous_frames_use_offsets_only_for_one_shared_build() {
        let same = KeyPolicy::new(
            &[module("/a/libx.so", b"\x01\x02"), module("/a/liby.so", b"\x07")],
            &[module("/b/libx.so", b"\x01\x02"), module("/b/liby.so", b"\x08")],
            false,
        );
        let x = anonymous(Some("/a/libx.so"), 0x5000, Some(0x4000));
        assert_eq!(same.frame_key(&x), FrameKey::ModuleOffset { module: "libx.so".into(), offset: 0x4000 });
        let y = anonymous(Some("/a/liby.so"), 0x5000, Some(0x4000));
        assert_eq!(same.frame_key(&y), FrameKey::Module { module: "liby.so".into() });
    }

    #[test]
    fn unknown_build_ids_never_match_by_offset() {
        let policy = KeyPolicy::new(&[module("/a/libz.so", b"")], &[module("/b/libz.so", b"")], false);
        let z = anonymous(Some("/a/libz.so"), 0x5000, Some(0x4000));
        assert_eq!(policy.frame_key(&z), FrameKey::Module { module: "libz.so".into() });
        let only_one_side = KeyPolicy::new(&[module("/a/libw.so", b"\x01")], &[], false);
        let w = anonymous(Some("/a/libw.so"), 0x5000, Some(0x4000));
        assert_eq!(only_one_side.frame_key(&w), FrameKey::Module { module: "libw.so".into() });
    }

    #[test]
    fn one_trace_keeps_offsets_and_addresses() {
        let m = [module("/a/libz.so", b"")];
        let policy = KeyPolicy::new(&m, &m, true);
        let z = anonymous(Some("/a/libz.so"), 0x5000, Some(0x4000));
        assert_eq!(policy.frame_key(&z), FrameKey::ModuleOffset { module: "libz.so".into(), offset: 0x4000 });
        assert_eq!(policy.frame_key(&anonymous(None, 0xdead, None)), FrameKey::Address(0xdead));
        let two = KeyPolicy::new(&m, &m, false);
        assert_eq!(two.frame_key(&anonymous(None, 0xdead, None)), FrameKey::Unknown);
    }
}
