//! Second pass: every chunk decoded again in parallel, writing its blocks straight into its own
//! slice of the lifetime array (sized by the first pass), so memory holds lifetimes only, never
//! raw events. Stack and thread of each block are interned into sites on the way.

use std::sync::Mutex;

use leakview_format::{ChunkInfo, Event, TraceReader};
use rayon::prelude::*;

use crate::hashing::IntMap;
use crate::lifetimes::{Lifetime, Site};
use crate::progress::Progress;

/// Interns (stack, thread) pairs into dense site ids, shared by all decoding threads.
#[derive(Debug, Default)]
pub(crate) struct SiteInterner {
    inner: Mutex<(IntMap<Site, u32>, Vec<Site>)>,
}

impl SiteInterner {
    /// Site ids of `stacks` on `thread`, under one lock.
    fn intern_all(&self, stacks: &[u32], thread: u32) -> Vec<u32> {
        let mut guard = match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let (map, list) = &mut *guard;
        stacks
            .iter()
            .map(|&stack| {
                let site = Site { stack, thread };
                *map.entry(site).or_insert_with(|| {
                    list.push(site);
                    (list.len() - 1) as u32
                })
            })
            .collect()
    }

    pub fn into_sites(self) -> Vec<Site> {
        match self.inner.into_inner() {
            Ok((_, list)) => list,
            Err(poisoned) => poisoned.into_inner().1,
        }
    }
}

/// Per-chunk decoding context.
pub(crate) struct DecodeContext<'a> {
    pub reader: &'a TraceReader,
    pub origin: u64,
    pub interner: &'a SiteInterner,
}

/// Decodes the blocks of `chunk` (of thread `thread`) into `out`; returns sizes of 4 GiB and
/// more as (alloc time, address, size). Sites are interned once per distinct stack of the chunk,
/// with one lock for the whole chunk.
fn decode_chunk(
    ctx: &DecodeContext<'_>,
    chunk: &ChunkInfo,
    thread: u32,
    out: &mut [Lifetime],
) -> Vec<(u64, u64, u64)> {
    let mut big = Vec::new();
    let mut filled = 0usize;
    for event in ctx.reader.events(chunk) {
        let (ts, addr, size, stack) = match event {
            Ok(Event::Alloc { ts, addr, size, stack, .. }) if addr != 0 => (ts, addr, size, stack),
            Ok(Event::Realloc { ts, new_addr, size, stack, .. }) if new_addr != 0 => {
                (ts, new_addr, size, stack)
            }
            Ok(_) => continue,
            Err(_) => break,
        };
        if filled >= out.len() {
            break;
        }
        let alloc_ns = ts.saturating_sub(ctx.origin);
        if Lifetime::needs_big_size(size) {
            big.push((alloc_ns, addr, size));
        }
        // The stack id stands in for the site until the chunk's stacks are interned.
        out[filled] = Lifetime::new(alloc_ns, addr, size, stack);
        filled += 1;
    }
    let mut stacks: Vec<u32> = out[..filled].iter().map(|l| l.site).collect();
    stacks.sort_unstable();
    stacks.dedup();
    let sites = ctx.interner.intern_all(&stacks, thread);
    let site_of: IntMap<u32, u32> = stacks.into_iter().zip(sites).collect();
    for l in &mut out[..filled] {
        l.site = site_of.get(&l.site).copied().unwrap_or(0);
    }
    big
}

/// Decodes every chunk's blocks in parallel into `lifetimes`, which holds exactly
/// `blocks_per_chunk.sum()` entries. Returns the big sizes, or `None` if cancelled.
pub(crate) fn decode_all(
    ctx: &DecodeContext<'_>,
    chunk_threads: &[u32],
    blocks_per_chunk: &[u64],
    lifetimes: &mut [Lifetime],
    progress: &dyn Progress,
) -> Option<Vec<(u64, u64, u64)>> {
    let chunks = ctx.reader.chunks();
    let mut slices: Vec<(usize, &mut [Lifetime])> = Vec::with_capacity(chunks.len());
    let mut rest = lifetimes;
    for (i, &n) in blocks_per_chunk.iter().enumerate() {
        let n = (n as usize).min(rest.len());
        let (head, tail) = rest.split_at_mut(n);
        slices.push((i, head));
        rest = tail;
    }
    let results: Vec<Option<Vec<(u64, u64, u64)>>> = slices
        .into_par_iter()
        .map(|(i, slice)| {
            if progress.cancelled() {
                return None;
            }
            let big = decode_chunk(ctx, &chunks[i], chunk_threads[i], slice);
            progress.advance(1);
            Some(big)
        })
        .collect();
    let mut all = Vec::new();
    for r in results {
        all.extend(r?);
    }
    Some(all)
}
