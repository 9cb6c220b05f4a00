//! Interned matching keys, shared by both sides of a comparison: every distinct frame key and
//! every distinct stack key gets a dense id once. Summing and pairing the sides then hashes
//! small integers instead of strings, and a stack key costs one id per frame.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::key::{FrameKey, KeyPolicy, StackKey};
use crate::symbolize::Frame;

/// Id of an interned [`FrameKey`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct FrameKeyId(pub u32);

/// Id of an interned stack key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct StackKeyId(pub u32);

/// An interned stack key: its id and its frames' ids, innermost first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InternedStack {
    pub id: StackKeyId,
    pub frames: Arc<[FrameKeyId]>,
}

#[derive(Debug, Default)]
struct Tables {
    frame_ids: HashMap<Arc<FrameKey>, FrameKeyId>,
    frames: Vec<Arc<FrameKey>>,
    stack_ids: HashMap<Arc<[FrameKeyId]>, StackKeyId>,
    /// Per stack key id: its frame ids and its readable key.
    stacks: Vec<(Arc<[FrameKeyId]>, StackKey)>,
}

impl Tables {
    fn frame(&mut self, key: FrameKey) -> FrameKeyId {
        if let Some(&id) = self.frame_ids.get(&key) {
            return id;
        }
        let id = FrameKeyId(self.frames.len() as u32);
        let key = Arc::new(key);
        self.frames.push(key.clone());
        self.frame_ids.insert(key, id);
        id
    }

    fn stack(&mut self, frames: Vec<FrameKeyId>) -> InternedStack {
        if let Some((frames, &id)) = self.stack_ids.get_key_value(frames.as_slice()) {
            return InternedStack { id, frames: frames.clone() };
        }
        let id = StackKeyId(self.stacks.len() as u32);
        let frames: Arc<[FrameKeyId]> = frames.into();
        let readable: StackKey = frames.iter().map(|f| self.frames[f.0 as usize].clone()).collect();
        self.stacks.push((frames.clone(), readable));
        self.stack_ids.insert(frames.clone(), id);
        InternedStack { id, frames }
    }
}

/// The interned keys of one comparison. Thread-safe; ids are never reused.
#[derive(Debug, Default)]
pub(crate) struct KeyTable {
    tables: RwLock<Tables>,
}

impl KeyTable {
    fn read(&self) -> RwLockReadGuard<'_, Tables> {
        self.tables.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Tables> {
        self.tables.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Interns the key of a stack with these trimmed frames (innermost first).
    pub fn intern_stack(&self, policy: &KeyPolicy, frames: &[Frame]) -> InternedStack {
        let keys: Vec<FrameKey> = frames.iter().map(|f| policy.frame_key(f)).collect();
        let mut tables = self.write();
        let ids: Vec<FrameKeyId> = keys.into_iter().map(|k| tables.frame(k)).collect();
        tables.stack(ids)
    }

    /// The readable key of an interned frame key.
    pub fn frame_key(&self, id: FrameKeyId) -> Arc<FrameKey> {
        self.read().frames[id.0 as usize].clone()
    }

    /// The readable key of an interned stack key.
    pub fn stack_key(&self, id: StackKeyId) -> StackKey {
        self.read().stacks[id.0 as usize].1.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(function: &str, line: u32, address: u64) -> Frame {
        Frame {
            function: Some(function.to_string()),
            file: Some(format!("/src/{address:x}/a.c")),
            line: Some(line),
            module: None,
            address,
            module_offset: None,
            inlined: false,
        }
    }

    #[test]
    fn equal_stacks_get_one_id_and_frames_are_shared() {
        let policy = KeyPolicy::default();
        let table = KeyTable::default();
        let leaf_main = table.intern_stack(&policy, &[named("leaf", 1, 0x10), named("main", 9, 0x20)]);
        // Other addresses, lines and directories: the same key.
        let again = table.intern_stack(&policy, &[named("leaf", 5, 0x99), named("main", 3, 0x77)]);
        assert_eq!(leaf_main, again);
        let reversed = table.intern_stack(&policy, &[named("main", 9, 0x20), named("leaf", 1, 0x10)]);
        assert_ne!(leaf_main.id, reversed.id);
        assert_eq!(leaf_main.frames[0], reversed.frames[1]);
        assert_eq!(leaf_main.frames[1], reversed.frames[0]);
        let readable = table.stack_key(leaf_main.id);
        assert_eq!(readable.len(), 2);
        assert_eq!(readable[0].to_string(), "leaf");
        assert!(Arc::ptr_eq(&readable[1], &table.frame_key(leaf_main.frames[1])));
        let empty = table.intern_stack(&policy, &[]);
        assert!(empty.frames.is_empty());
        assert_eq!(table.stack_key(empty.id).len(), 0);
    }
}
