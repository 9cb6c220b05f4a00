//! Symbolized stacks with a cache: every unique return address is symbolized once (in bulk,
//! through [`crate::symbolize::Symbolizer`], which works per module in parallel), with its
//! frames interned to small ids as it is (see [`crate::alike`]); each stack's trimmed frame
//! list is built once, and so is its [`ShownStackId`].

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

use crate::alike::{FrameIds, ShownStackId, ShownStacks};
use crate::progress::{Progress, Stage};
use crate::stacks::StackTable;
use crate::symbolize::{Frame, Symbolizer};
use crate::trim::trimmed;

/// Addresses symbolized per call, so progress moves.
const BATCH: usize = 16 * 1024;

/// Frames of a stack, innermost first.
pub type Frames = Arc<[Frame]>;

/// One symbolized address: its frames (innermost first) and their interned ids.
struct Symbolized {
    frames: Arc<[Frame]>,
    ids: Box<[u32]>,
}

/// The symbol and stack caches. All methods take `&self` and are thread-safe.
pub(crate) struct FrameCache {
    symbolizer: Symbolizer,
    by_address: RwLock<HashMap<u64, Symbolized>>,
    by_stack: RwLock<HashMap<u32, (Frames, Frames)>>,
    frame_ids: Mutex<FrameIds>,
    /// Each stack's shown-stack id, and the interned shown stacks.
    shown: Mutex<(HashMap<u32, ShownStackId>, ShownStacks)>,
}

fn locked<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|p| p.into_inner())
}

impl FrameCache {
    pub fn new(symbolizer: Symbolizer) -> Self {
        FrameCache {
            symbolizer,
            by_address: RwLock::default(),
            by_stack: RwLock::default(),
            frame_ids: Mutex::default(),
            shown: Mutex::default(),
        }
    }

    /// Symbolizes every address of `stacks` not yet in the cache.
    pub fn prepare(&self, table: &StackTable, stacks: &[u32], progress: &dyn Progress) {
        let missing: Vec<u64> = {
            let cache = read(&self.by_address);
            let mut seen = HashSet::new();
            let done = read(&self.by_stack);
            stacks
                .iter()
                .filter(|s| !done.contains_key(s))
                .flat_map(|&s| table.addresses(s))
                .filter(|a| !cache.contains_key(a) && seen.insert(*a))
                .collect()
        };
        if missing.is_empty() {
            return;
        }
        progress.start(Stage::Symbolizing, missing.len() as u64);
        for batch in missing.chunks(BATCH) {
            let symbolized = self.symbolizer.symbolize(batch);
            let mut frame_ids = locked(&self.frame_ids);
            let entries: Vec<(u64, Symbolized)> = batch
                .iter()
                .map(|&addr| {
                    let frames = symbolized.get(&addr).cloned().unwrap_or_else(|| vec![self.fallback(addr)]);
                    let ids = frames.iter().map(|f| frame_ids.intern(f)).collect();
                    (addr, Symbolized { frames: frames.into(), ids })
                })
                .collect();
            drop(frame_ids);
            write(&self.by_address).extend(entries);
            progress.advance(batch.len() as u64);
        }
        progress.finish(Stage::Symbolizing);
    }

    fn fallback(&self, addr: u64) -> Frame {
        let module = self.symbolizer.module_for(addr);
        Frame {
            function: None,
            file: None,
            line: None,
            module: module.map(|m| m.path.display().to_string()),
            address: addr,
            module_offset: module.map(|m| addr.wrapping_sub(m.base)),
            inlined: false,
        }
    }

    /// Full and trimmed frames of `stack`, symbolizing what is missing.
    pub fn frames(&self, table: &StackTable, stack: u32) -> (Frames, Frames) {
        if let Some(hit) = read(&self.by_stack).get(&stack) {
            return hit.clone();
        }
        self.prepare(table, &[stack], &crate::progress::NoProgress);
        let full: Vec<Frame> = {
            let cache = read(&self.by_address);
            table
                .addresses(stack)
                .into_iter()
                .flat_map(|a| match cache.get(&a) {
                    Some(symbolized) => symbolized.frames.to_vec(),
                    None => vec![self.fallback(a)],
                })
                .collect()
        };
        let shown: Frames = trimmed(&full).into();
        let entry = (Frames::from(full), shown);
        write(&self.by_stack).insert(stack, entry.clone());
        entry
    }

    /// The [`ShownStackId`] of each of `stacks`, symbolizing what is missing in bulk.
    pub fn shown_ids(
        &self,
        table: &StackTable,
        stacks: &[u32],
        progress: &dyn Progress,
    ) -> Vec<ShownStackId> {
        let missing: Vec<u32> = {
            let shown = locked(&self.shown);
            stacks.iter().copied().filter(|s| !shown.0.contains_key(s)).collect()
        };
        if !missing.is_empty() {
            self.prepare(table, &missing, progress);
            let cache = read(&self.by_address);
            let mut frame_ids = locked(&self.frame_ids);
            let mut shown = locked(&self.shown);
            let (by_stack, interned) = &mut *shown;
            for stack in missing {
                if by_stack.contains_key(&stack) {
                    continue;
                }
                let mut all: Vec<u32> = Vec::new();
                for address in table.addresses(stack) {
                    match cache.get(&address) {
                        Some(symbolized) => all.extend_from_slice(&symbolized.ids),
                        None => all.push(frame_ids.intern(&self.fallback(address))),
                    }
                }
                by_stack.insert(stack, interned.intern(frame_ids.shown(&all)));
            }
        }
        let shown = locked(&self.shown);
        stacks.iter().map(|s| shown.0.get(s).copied().unwrap_or(ShownStackId(u32::MAX))).collect()
    }
}
