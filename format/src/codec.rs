//! Event encoding and decoding: a tag byte, then varint fields delta-encoded against the
//! chunk's running [`DeltaState`]. `FORMAT.md` describes every bit.

use crate::error::DecodeError;
use crate::event::{Event, References, Segments};
use crate::reader::EventSink;
use crate::varint::{self, unzigzag, zigzag};

pub(crate) const KIND_MASK: u8 = 0b111;
pub(crate) const KIND_ALLOC: u8 = 1;
pub(crate) const KIND_FREE: u8 = 2;
pub(crate) const KIND_REALLOC: u8 = 3;
pub(crate) const KIND_STACK_NODE: u8 = 4;
pub(crate) const KIND_META: u8 = 5;
/// An alloc whose address is one of the recently freed ones (allocators reuse them first).
pub(crate) const KIND_ALLOC_REUSED: u8 = 6;
/// An alloc like [`KIND_ALLOC`] whose size's two low bits ride in the tag (format 2): sizes
/// below 512 take one byte instead of two. Writers emit it for every plain alloc; kind 1 is
/// read in format 1 traces.
pub(crate) const KIND_ALLOC_PACKED: u8 = 7;

const ALLOC_HAS_ALIGN: u8 = 1 << 3;
const ALLOC_SAME_STACK: u8 = 1 << 4;
const ALLOC_ADDR_RAW: u8 = 1 << 5;
/// Where [`KIND_ALLOC_PACKED`] keeps the size's low bits (bits 6–7; they must be 0 in kind 1).
const PACKED_SIZE_SHIFT: u8 = 6;
const PACKED_SIZE_BITS: u32 = 2;

const FREE_RECENT_SHIFT: u8 = 3;
const FREE_RECENT_MASK: u8 = 0b1111 << FREE_RECENT_SHIFT;
const FREE_ADDR_RAW: u8 = 1 << 7;

const REUSED_SLOT_SHIFT: u8 = 3;
const REUSED_SLOT_MASK: u8 = 0b1111 << REUSED_SLOT_SHIFT;
const REUSED_SAME_STACK: u8 = 1 << 7;

const REALLOC_SAME_STACK: u8 = 1 << 3;
const REALLOC_IN_PLACE: u8 = 1 << 4;
const REALLOC_OLD_RAW: u8 = 1 << 5;
const REALLOC_NEW_RAW: u8 = 1 << 6;

const META_SHIFT: u8 = 3;
const META_MODULE_LOAD: u8 = 0;
const META_MODULE_UNLOAD: u8 = 1;
const META_THREAD_NAME: u8 = 2;
const META_MARK: u8 = 3;
const META_RESIDENT_MEMORY: u8 = 4;
const META_SCAN_REGION: u8 = 5;
const META_REFERENCES: u8 = 6;
const META_SCAN_END: u8 = 7;

/// Addresses remembered for frees: a free of one of them costs no address bytes.
const RECENT_SLOTS: usize = 15;
/// The rings' array length: one more than [`RECENT_SLOTS`], a power of two, so a slot index is
/// masked instead of bounds-checked and a search compares whole vectors. The extra entry stays 0.
const RING_LEN: usize = 16;

/// The longest encoding of an alloc, free or realloc event.
pub const MAX_HOT_EVENT_LEN: usize = 64;

/// The room a hot event is encoded in: [`MAX_HOT_EVENT_LEN`] plus the 8 bytes a varint's word
/// store may reach past it, so that a store at any in-window position needs no check.
const HOT_WINDOW_LEN: usize = MAX_HOT_EVENT_LEN + 8;

// A window's reads, taken modulo its reach, find every field of a hot event.
const _: () = assert!(varint::WINDOW_REACH >= MAX_HOT_EVENT_LEN);

/// The running values that events are delta-encoded against. It starts afresh in every chunk
/// (from the chunk's base timestamp), so chunks decode independently. Encoder and decoder keep
/// identical copies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeltaState {
    prev_ts: u64,
    prev_addr: u64,
    prev_stack: u32,
    prev_node: u32,
    prev_ip: u64,
    recent: [u64; RING_LEN],
    recent_next: u8,
    freed: [u64; RING_LEN],
    freed_next: u8,
}

/// The encoder's view of the [`DeltaState`].
pub type EncodeState = DeltaState;
/// The decoder's view of the [`DeltaState`].
pub type DecodeState = DeltaState;

impl DeltaState {
    /// The state at the start of a chunk whose header holds `base_ts`.
    pub const fn new(base_ts: u64) -> Self {
        DeltaState {
            prev_ts: base_ts,
            prev_addr: 0,
            prev_stack: 0,
            prev_node: 0,
            prev_ip: 0,
            recent: [0; RING_LEN],
            recent_next: 0,
            freed: [0; RING_LEN],
            freed_next: 0,
        }
    }

    /// The timestamp of the last event (the base timestamp before any).
    pub fn last_timestamp(&self) -> u64 {
        self.prev_ts
    }

    #[inline(always)]
    fn remember(&mut self, addr: u64) {
        let slot = usize::from(self.recent_next) & (RING_LEN - 1);
        self.recent[slot] = addr;
        self.recent_next = next_slot(slot);
    }

    /// Slot of `addr` (non-zero) among the recently allocated addresses.
    #[inline(always)]
    fn recent_index(&self, addr: u64) -> Option<usize> {
        ring_position(&self.recent, addr)
    }

    #[inline(always)]
    fn remember_freed(&mut self, addr: u64) {
        let slot = usize::from(self.freed_next) & (RING_LEN - 1);
        self.freed[slot] = addr;
        self.freed_next = next_slot(slot);
    }

    /// Slot of `addr` (non-zero) among the recently freed addresses.
    #[inline(always)]
    fn freed_index(&self, addr: u64) -> Option<usize> {
        ring_position(&self.freed, addr)
    }

    #[inline(always)]
    fn advance_time(&mut self, ts: u64) -> u64 {
        let dt = ts.saturating_sub(self.prev_ts);
        self.prev_ts = self.prev_ts.wrapping_add(dt);
        dt
    }
}

/// The first slot holding `addr`, found without a data-dependent loop exit: every slot is
/// compared and the matches gathered into a bit mask. SSE2 (every x86_64 has it) does it in eight
/// vector compares.
#[cfg(target_arch = "x86_64")]
#[cfg_attr(not(debug_assertions), inline(always))]
fn ring_position(ring: &[u64; RING_LEN], addr: u64) -> Option<usize> {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi32, _mm_loadu_si128, _mm_movemask_epi8, _mm_packs_epi16, _mm_packs_epi32,
        _mm_set1_epi64x,
    };
    let half_equal = |pair: usize, needle: __m128i| -> __m128i {
        // SAFETY: `pair` is below 8, so the 16 bytes read are ring[2 * pair..2 * pair + 2], inside
        // the array; the load is unaligned and SSE2 is part of the x86_64 baseline.
        unsafe { _mm_cmpeq_epi32(_mm_loadu_si128(ring.as_ptr().add(2 * pair).cast()), needle) }
    };
    // SAFETY: SSE2 intrinsics without memory access; SSE2 is part of the x86_64 baseline.
    let (low, high) = unsafe {
        let needle = _mm_set1_epi64x(addr as i64);
        // Each 32-bit half compares to all-ones or zero; packing with signed saturation keeps
        // that, so after two packs byte 2k (2k+1) says whether slot k's low (high) half matched.
        let first = _mm_packs_epi16(
            _mm_packs_epi32(half_equal(0, needle), half_equal(1, needle)),
            _mm_packs_epi32(half_equal(2, needle), half_equal(3, needle)),
        );
        let second = _mm_packs_epi16(
            _mm_packs_epi32(half_equal(4, needle), half_equal(5, needle)),
            _mm_packs_epi32(half_equal(6, needle), half_equal(7, needle)),
        );
        (_mm_movemask_epi8(first) as u32, _mm_movemask_epi8(second) as u32)
    };
    let halves = low | (high << 16);
    // Slot k matched when both of its halves did, i.e. bits 2k and 2k+1 are both set.
    let matches = halves & (halves >> 1) & 0x5555_5555;
    if matches == 0 { None } else { Some(matches.trailing_zeros() as usize / 2) }
}

/// The first slot holding `addr`: every slot is compared and the matches gathered into a bit
/// mask, so the search has no data-dependent loop exit.
#[cfg(not(target_arch = "x86_64"))]
#[cfg_attr(not(debug_assertions), inline(always))]
fn ring_position(ring: &[u64; RING_LEN], addr: u64) -> Option<usize> {
    let mut matches = 0u32;
    for (slot, &held) in ring.iter().enumerate() {
        matches |= u32::from(held == addr) << slot;
    }
    if matches == 0 { None } else { Some(matches.trailing_zeros() as usize) }
}

/// The ring slot after `slot` (which is below [`RECENT_SLOTS`]).
#[inline(always)]
fn next_slot(slot: usize) -> u8 {
    if slot + 1 < RECENT_SLOTS { (slot + 1) as u8 } else { 0 }
}

/// LEB128 lengths by the value's count of leading zero bits (1 to 10 bytes).
const VARINT_LEN_BY_LEADING_ZEROS: [u8; 65] = {
    let mut table = [1u8; 65];
    let mut zeros = 0;
    while zeros < 64 {
        table[zeros] = (64 - zeros).div_ceil(7) as u8;
        zeros += 1;
    }
    table
};

/// The continuation bits of an encoding up to 8 bytes long, by the value's count of leading zero
/// bits: 0x80 in every byte but the last.
const CONTINUATION_BY_LEADING_ZEROS: [u64; 65] = {
    let mut table = [0u64; 65];
    let mut zeros = 8;
    while zeros <= 64 {
        let len = VARINT_LEN_BY_LEADING_ZEROS[zeros] as u32;
        table[zeros] = 0x8080_8080_8080_8080u64 & ((1u64 << (8 * len - 8)) - 1);
        zeros += 1;
    }
    table
};

/// Moves the 7-bit groups of `value` (below 2^56) into the low 7 bits of successive bytes.
#[cfg_attr(not(debug_assertions), inline(always))]
fn spread_7bit_groups(value: u64) -> u64 {
    // Below 2^28 (all but the rarest deltas) the upper four groups are empty: skip their stage.
    let x = if value < 1 << 28 {
        value
    } else {
        (value & 0x0000_0000_0fff_ffff) | ((value & 0x00ff_ffff_f000_0000) << 4)
    };
    let x = (x & 0x0000_3fff_0000_3fff) | ((x & 0x0fff_c000_0fff_c000) << 2);
    (x & 0x007f_007f_007f_007f) | ((x & 0x3f80_3f80_3f80_3f80) << 1)
}

/// Writes one hot event into a [`HOT_WINDOW_LEN`]-byte window. Positions are masked to
/// [`MAX_HOT_EVENT_LEN`], and a word stored there ends inside the window, so writes need no
/// bounds checks; no hot event is longer than [`MAX_HOT_EVENT_LEN`], so the mask never wraps.
struct Scratch<'a> {
    buf: &'a mut [u8; HOT_WINDOW_LEN],
    len: usize,
}

impl<'a> Scratch<'a> {
    #[inline(always)]
    fn new(buf: &'a mut [u8; HOT_WINDOW_LEN]) -> Self {
        Scratch { buf, len: 1 }
    }

    /// Appends a LEB128 varint. Values below 2^56 (every realistic delta) are laid out
    /// without a loop or a length-dependent branch: the 7-bit groups are spread into bytes,
    /// the continuation bits set below the last one, and one 8-byte word stored (the bytes
    /// past the encoding are zero and are overwritten by whatever follows).
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn varint(&mut self, value: u64) {
        debug_assert!(self.len < MAX_HOT_EVENT_LEN);
        // The mask changes nothing (no hot event reaches MAX_HOT_EVENT_LEN) but shows the
        // compiler that the word store below stays inside the window.
        let pos = self.len & (MAX_HOT_EVENT_LEN - 1);
        let word_at = |buf: &mut [u8; HOT_WINDOW_LEN], word: u64| {
            if let Some(out) = buf.get_mut(pos..pos + 8) {
                out.copy_from_slice(&word.to_le_bytes());
            }
        };
        if value < 1 << 14 {
            // One or two bytes, the usual case (time deltas under 16 µs, small sizes and
            // stack deltas): the length comes from one comparison instead of a table.
            let two_bytes = u64::from(value >= 0x80);
            word_at(self.buf, (value & 0x7f) | ((value << 1) & 0x7f00) | (two_bytes << 7));
            self.len = pos + 1 + two_bytes as usize;
            return;
        }
        if value < 1 << 56 {
            let leading_zeros = value.leading_zeros() as usize;
            let len = usize::from(VARINT_LEN_BY_LEADING_ZEROS[leading_zeros]);
            word_at(self.buf, spread_7bit_groups(value) | CONTINUATION_BY_LEADING_ZEROS[leading_zeros]);
            self.len = pos + len;
            return;
        }
        self.varint_bytewise(value);
    }

    #[cold]
    fn varint_bytewise(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.buf[self.len & (MAX_HOT_EVENT_LEN - 1)] = (value as u8) | 0x80;
            self.len += 1;
            value >>= 7;
        }
        self.buf[self.len & (MAX_HOT_EVENT_LEN - 1)] = value as u8;
        self.len += 1;
    }

    /// Writes the address delta; returns whether it had to be stored unscaled.
    #[inline(always)]
    fn addr(&mut self, prev: u64, addr: u64) -> bool {
        let delta = addr.wrapping_sub(prev) as i64;
        if delta & 0xf == 0 {
            self.varint(zigzag(delta >> 4));
            false
        } else {
            self.varint(zigzag(delta));
            true
        }
    }

    #[inline(always)]
    fn stack(&mut self, prev: u32, stack: u32) {
        self.varint(zigzag(i64::from(stack) - i64::from(prev)));
    }

    /// Stores the tag and returns the event's length.
    #[inline(always)]
    fn finish(self, tag: u8) -> usize {
        self.buf[0] = tag;
        self.len
    }
}

/// Where a hot event's fields are read from: the input with every read checked against its
/// end, or a [`varint::Window`] known to hold the whole event.
trait Fields {
    /// The next field. A reader may defer the error of a bad one (returning any value) to
    /// [`Fields::fail`] and [`Fields::check`].
    fn varint(&mut self) -> Result<u64, DecodeError>;
    /// The error of an earlier read, if one was deferred, else `error`.
    fn fail(&self, error: DecodeError) -> DecodeError;
    /// The error of an earlier read, if one was deferred.
    fn check(&self) -> Result<(), DecodeError>;
}

/// The input at `*pos`, each read checked; no error deferred.
struct Checked<'i, 'p> {
    input: &'i [u8],
    pos: &'p mut usize,
}

impl Fields for Checked<'_, '_> {
    #[inline(always)]
    fn varint(&mut self) -> Result<u64, DecodeError> {
        varint::get(self.input, self.pos).ok_or(DecodeError::Truncated)
    }

    #[inline(always)]
    fn fail(&self, error: DecodeError) -> DecodeError {
        error
    }

    #[inline(always)]
    fn check(&self) -> Result<(), DecodeError> {
        Ok(())
    }
}

/// A window whose first bytes hold the event, read from `pos` (relative to the window). A bad
/// field (an encoding longer than a `u64`) is noted in `bad` and its error deferred, so that
/// reading a field has no error path: the event's decoder checks before it hands the event
/// over, and before any error of its own.
struct Windowed<'w> {
    window: &'w varint::Window,
    pos: usize,
    bad: bool,
}

impl Fields for Windowed<'_> {
    #[inline(always)]
    fn varint(&mut self) -> Result<u64, DecodeError> {
        Ok(varint::get_in_window(self.window, &mut self.pos, &mut self.bad))
    }

    #[inline(always)]
    fn fail(&self, error: DecodeError) -> DecodeError {
        if self.bad { DecodeError::Truncated } else { error }
    }

    #[inline(always)]
    fn check(&self) -> Result<(), DecodeError> {
        if self.bad { Err(DecodeError::Truncated) } else { Ok(()) }
    }
}

#[inline(always)]
fn get_addr(fields: &mut impl Fields, prev: u64, raw: bool) -> Result<u64, DecodeError> {
    let delta = unzigzag(fields.varint()?);
    let delta = if raw { delta } else { delta.wrapping_shl(4) };
    Ok(prev.wrapping_add(delta as u64))
}

#[inline(always)]
fn get_stack(fields: &mut impl Fields, prev: u32) -> Result<u32, DecodeError> {
    let delta = unzigzag(fields.varint()?);
    u32::try_from(i64::from(prev).wrapping_add(delta))
        .map_err(|_| fields.fail(DecodeError::BadValue("stack id")))
}

fn put_bytes(out: &mut [u8], pos: &mut usize, bytes: &[u8]) -> Option<()> {
    varint::put(out, pos, bytes.len() as u64)?;
    let end = pos.checked_add(bytes.len())?;
    out.get_mut(*pos..end)?.copy_from_slice(bytes);
    *pos = end;
    Some(())
}

fn get_bytes<'a>(input: &'a [u8], pos: &mut usize) -> Result<&'a [u8], DecodeError> {
    let len = varint::get(input, pos).ok_or(DecodeError::Truncated)?;
    let len = usize::try_from(len).map_err(|_| DecodeError::Truncated)?;
    let end = pos.checked_add(len).ok_or(DecodeError::Truncated)?;
    let bytes = input.get(*pos..end).ok_or(DecodeError::Truncated)?;
    *pos = end;
    Ok(bytes)
}

#[inline(always)]
fn get_u64(input: &[u8], pos: &mut usize) -> Result<u64, DecodeError> {
    varint::get(input, pos).ok_or(DecodeError::Truncated)
}

fn get_u32(input: &[u8], pos: &mut usize, what: &'static str) -> Result<u32, DecodeError> {
    u32::try_from(get_u64(input, pos)?).map_err(|_| DecodeError::BadValue(what))
}

/// Encodes `event` into `out`, returning the bytes written, or `None` if it does not fit (the
/// state is then unchanged). Timestamps earlier than the previous event's are clamped to it.
/// Never allocates.
#[cfg_attr(not(debug_assertions), inline(always))]
pub fn encode_event(state: &mut DeltaState, event: &Event<'_>, out: &mut [u8]) -> Option<usize> {
    if !matches!(event, Event::Alloc { .. } | Event::Free { .. } | Event::Realloc { .. }) {
        let next = state.clone_small();
        return encode_cold(state, next, event, out);
    }
    if let Some(window) = out.get_mut(..HOT_WINDOW_LEN) {
        // The common case: room for any hot event and its last word store, so encode in place.
        let window: &mut [u8; HOT_WINDOW_LEN] = window.try_into().ok()?;
        return Some(encode_hot(state, event, window));
    }
    encode_hot_near_end(state, event, out)
}

/// A hot event near the end of a chunk: encoded aside and kept only if it fits.
#[cold]
#[inline(never)]
fn encode_hot_near_end(state: &mut DeltaState, event: &Event<'_>, out: &mut [u8]) -> Option<usize> {
    let mut trial = state.clone();
    let mut window = [0u8; HOT_WINDOW_LEN];
    let n = encode_hot(&mut trial, event, &mut window);
    out.get_mut(..n)?.copy_from_slice(window.get(..n)?);
    *state = trial;
    Some(n)
}

/// Alloc, free and realloc, encoded into a window that always has room (any other event: 0).
/// The window never runs short, so the state is updated as the fields are written.
///
/// Inlining here and in the helpers is forced only in optimized builds: at opt-level 0 every
/// inlined copy keeps stack slots of its own (20 KiB for this function), and the encoder runs
/// inside allocation hooks on threads whose whole stack may be 16 KiB (`PTHREAD_STACK_MIN`).
#[cfg_attr(not(debug_assertions), inline(always))]
fn encode_hot(state: &mut DeltaState, event: &Event<'_>, buf: &mut [u8; HOT_WINDOW_LEN]) -> usize {
    let mut e = Scratch::new(buf);
    match *event {
        Event::Alloc { ts, addr, size, align, stack } => {
            let reused = if align == 0 && addr != 0 { state.freed_index(addr) } else { None };
            e.varint(state.advance_time(ts));
            // The two kinds share their last fields (size, then the stack unless it is the
            // previous one's); only a plain alloc has an address and an alignment.
            let (mut tag, size_field, same_stack) = match reused {
                Some(slot) => {
                    state.freed[slot & (RING_LEN - 1)] = 0;
                    (KIND_ALLOC_REUSED | (((slot as u8) + 1) << REUSED_SLOT_SHIFT), size, REUSED_SAME_STACK)
                }
                None => {
                    // `as u8` keeps the low byte; the shift keeps its two low bits.
                    let mut tag = KIND_ALLOC_PACKED | ((size as u8) << PACKED_SIZE_SHIFT);
                    if e.addr(state.prev_addr, addr) {
                        tag |= ALLOC_ADDR_RAW;
                    }
                    (tag, size >> PACKED_SIZE_BITS, ALLOC_SAME_STACK)
                }
            };
            e.varint(size_field);
            // A reused address is taken only with the default alignment.
            if align != 0 {
                tag |= ALLOC_HAS_ALIGN;
                e.varint(align);
            }
            if stack == state.prev_stack {
                tag |= same_stack;
            } else {
                e.stack(state.prev_stack, stack);
            }
            state.prev_addr = addr;
            state.prev_stack = stack;
            state.remember(addr);
            e.finish(tag)
        }
        Event::Free { ts, addr } => {
            let mut tag = KIND_FREE;
            e.varint(state.advance_time(ts));
            match if addr != 0 { state.recent_index(addr) } else { None } {
                Some(slot) => tag |= ((slot as u8) + 1) << FREE_RECENT_SHIFT,
                None => {
                    if e.addr(state.prev_addr, addr) {
                        tag |= FREE_ADDR_RAW;
                    }
                }
            }
            state.prev_addr = addr;
            state.remember_freed(addr);
            e.finish(tag)
        }
        Event::Realloc { ts_free, ts, old_addr, new_addr, size, stack } => {
            let mut tag = KIND_REALLOC;
            e.varint(state.advance_time(ts_free));
            if e.addr(state.prev_addr, old_addr) {
                tag |= REALLOC_OLD_RAW;
            }
            e.varint(state.advance_time(ts));
            if new_addr == old_addr {
                tag |= REALLOC_IN_PLACE;
            } else if e.addr(old_addr, new_addr) {
                tag |= REALLOC_NEW_RAW;
            }
            state.prev_addr = new_addr;
            e.varint(size);
            if stack == state.prev_stack {
                tag |= REALLOC_SAME_STACK;
            } else {
                e.stack(state.prev_stack, stack);
                state.prev_stack = stack;
            }
            if new_addr != old_addr {
                state.remember_freed(old_addr);
            }
            state.remember(new_addr);
            e.finish(tag)
        }
        _ => 0,
    }
}

/// Stack nodes and meta events: rare, variable length, written straight into `out`.
#[inline(never)]
fn encode_cold(state: &mut DeltaState, mut next: Small, event: &Event<'_>, out: &mut [u8]) -> Option<usize> {
    let mut pos = 1usize;
    let tag = match *event {
        Event::StackNode { id, parent, ip } => {
            varint::put(out, &mut pos, zigzag(i64::from(id) - i64::from(next.prev_node)))?;
            varint::put(out, &mut pos, zigzag(i64::from(id) - i64::from(parent)))?;
            varint::put(out, &mut pos, zigzag(ip.wrapping_sub(next.prev_ip) as i64))?;
            next.prev_node = id;
            next.prev_ip = ip;
            KIND_STACK_NODE
        }
        Event::ModuleLoad { ts, .. }
        | Event::ModuleUnload { ts, .. }
        | Event::ThreadName { ts, .. }
        | Event::Mark { ts, .. }
        | Event::ResidentMemory { ts, .. }
        | Event::ScanRegion { ts, .. }
        | Event::References { ts, .. }
        | Event::ScanEnd { ts, .. } => {
            varint::put(out, &mut pos, next.advance_time(ts))?;
            let (sub, len) = meta_payload_len(event);
            varint::put(out, &mut pos, len as u64)?;
            let start = pos;
            put_meta_payload(event, out, &mut pos)?;
            debug_assert_eq!(pos - start, len);
            KIND_META | (sub << META_SHIFT)
        }
        Event::Alloc { .. } | Event::Free { .. } | Event::Realloc { .. } => return None,
    };
    *out.get_mut(0)? = tag;
    state.commit_small(next);
    Some(pos)
}

/// The scalar part of [`DeltaState`], updated on a copy until an event is fully encoded.
#[derive(Clone, Copy)]
struct Small {
    prev_ts: u64,
    prev_addr: u64,
    prev_stack: u32,
    prev_node: u32,
    prev_ip: u64,
}

impl Small {
    #[inline]
    fn advance_time(&mut self, ts: u64) -> u64 {
        let dt = ts.saturating_sub(self.prev_ts);
        self.prev_ts = self.prev_ts.wrapping_add(dt);
        dt
    }
}

impl DeltaState {
    #[inline]
    fn clone_small(&self) -> Small {
        Small {
            prev_ts: self.prev_ts,
            prev_addr: self.prev_addr,
            prev_stack: self.prev_stack,
            prev_node: self.prev_node,
            prev_ip: self.prev_ip,
        }
    }

    #[inline]
    fn commit_small(&mut self, small: Small) {
        self.prev_ts = small.prev_ts;
        self.prev_addr = small.prev_addr;
        self.prev_stack = small.prev_stack;
        self.prev_node = small.prev_node;
        self.prev_ip = small.prev_ip;
    }
}

fn bytes_len(bytes: &[u8]) -> usize {
    varint::encoded_len(bytes.len() as u64) + bytes.len()
}

fn meta_payload_len(event: &Event<'_>) -> (u8, usize) {
    match *event {
        Event::ModuleLoad { id, base, path, build_id, segments, .. } => {
            let segs: usize = segments
                .iter()
                .map(|s| {
                    varint::encoded_len(s.vaddr)
                        + varint::encoded_len(s.memsz)
                        + varint::encoded_len(u64::from(s.flags))
                })
                .sum();
            let len = varint::encoded_len(u64::from(id))
                + varint::encoded_len(base)
                + bytes_len(path)
                + bytes_len(build_id)
                + varint::encoded_len(segments.len() as u64)
                + segs;
            (META_MODULE_LOAD, len)
        }
        Event::ModuleUnload { id, .. } => (META_MODULE_UNLOAD, varint::encoded_len(u64::from(id))),
        Event::ThreadName { tid, name, .. } => {
            (META_THREAD_NAME, varint::encoded_len(u64::from(tid)) + bytes_len(name))
        }
        Event::Mark { label, .. } => (META_MARK, bytes_len(label)),
        Event::ResidentMemory { bytes, .. } => (META_RESIDENT_MEMORY, varint::encoded_len(bytes)),
        Event::ScanRegion { start, len, kind, .. } => (
            META_SCAN_REGION,
            varint::encoded_len(start) + varint::encoded_len(len) + varint::encoded_len(u64::from(kind)),
        ),
        Event::References { refs, .. } => {
            let mut len = varint::encoded_len(refs.len() as u64);
            let (mut location, mut value) = (0u64, 0u64);
            for (l, v) in refs.iter() {
                len += varint::encoded_len(l.wrapping_sub(location));
                len += varint::encoded_len(zigzag(v.wrapping_sub(value) as i64));
                (location, value) = (l, v);
            }
            (META_REFERENCES, len)
        }
        Event::ScanEnd { regions, bytes, references, .. } => (
            META_SCAN_END,
            varint::encoded_len(regions) + varint::encoded_len(bytes) + varint::encoded_len(references),
        ),
        _ => (0, 0),
    }
}

fn put_meta_payload(event: &Event<'_>, out: &mut [u8], pos: &mut usize) -> Option<()> {
    match *event {
        Event::ModuleLoad { id, base, path, build_id, segments, .. } => {
            varint::put(out, pos, u64::from(id))?;
            varint::put(out, pos, base)?;
            put_bytes(out, pos, path)?;
            put_bytes(out, pos, build_id)?;
            varint::put(out, pos, segments.len() as u64)?;
            for s in segments.iter() {
                varint::put(out, pos, s.vaddr)?;
                varint::put(out, pos, s.memsz)?;
                varint::put(out, pos, u64::from(s.flags))?;
            }
        }
        Event::ModuleUnload { id, .. } => varint::put(out, pos, u64::from(id))?,
        Event::ThreadName { tid, name, .. } => {
            varint::put(out, pos, u64::from(tid))?;
            put_bytes(out, pos, name)?;
        }
        Event::Mark { label, .. } => put_bytes(out, pos, label)?,
        Event::ResidentMemory { bytes, .. } => varint::put(out, pos, bytes)?,
        Event::ScanRegion { start, len, kind, .. } => {
            varint::put(out, pos, start)?;
            varint::put(out, pos, len)?;
            varint::put(out, pos, u64::from(kind))?;
        }
        Event::References { refs, .. } => {
            varint::put(out, pos, refs.len() as u64)?;
            let (mut location, mut value) = (0u64, 0u64);
            for (l, v) in refs.iter() {
                varint::put(out, pos, l.wrapping_sub(location))?;
                varint::put(out, pos, zigzag(v.wrapping_sub(value) as i64))?;
                (location, value) = (l, v);
            }
        }
        Event::ScanEnd { regions, bytes, references, .. } => {
            varint::put(out, pos, regions)?;
            varint::put(out, pos, bytes)?;
            varint::put(out, pos, references)?;
        }
        _ => {}
    }
    Some(())
}

/// Decodes the event at `input[*pos..]`, advancing `pos` past it. Meta events of a sub-kind this
/// version does not know are skipped (`Ok(None)`), as the compatibility rules require.
#[inline(always)]
pub fn decode_event<'a>(
    state: &mut DeltaState,
    input: &'a [u8],
    pos: &mut usize,
) -> Result<Option<Event<'a>>, DecodeError> {
    let mut decoded = None;
    decode_with(state, input, pos, &mut Deliver(|event| decoded = Some(event)))?;
    Ok(decoded)
}

/// An [`EventSink`] that hands every event whole to a closure.
pub(crate) struct Deliver<F>(pub F);

impl<'a, F: FnMut(Event<'a>)> EventSink<'a> for Deliver<F> {
    #[inline(always)]
    fn alloc(&mut self, ts: u64, addr: u64, size: u64, align: u64, stack: u32) {
        (self.0)(Event::Alloc { ts, addr, size, align, stack });
    }

    #[inline(always)]
    fn free(&mut self, ts: u64, addr: u64) {
        (self.0)(Event::Free { ts, addr });
    }

    #[inline(always)]
    fn realloc(&mut self, ts_free: u64, ts: u64, old_addr: u64, new_addr: u64, size: u64, stack: u32) {
        (self.0)(Event::Realloc { ts_free, ts, old_addr, new_addr, size, stack });
    }

    #[inline(always)]
    fn other(&mut self, event: Event<'a>) {
        (self.0)(event);
    }
}

/// Whether events of kind `tag & KIND_MASK` are hot: allocations, frees and reallocs, at most
/// [`MAX_HOT_EVENT_LEN`] bytes long.
#[inline(always)]
fn is_hot(tag: u8) -> bool {
    // Kinds 1, 2, 3, 6 and 7.
    (0b1100_1110u8 >> (tag & KIND_MASK)) & 1 != 0
}

/// [`decode_event`], handing the event (if it is of a known kind) to `sink` instead of
/// returning it: when the sink's methods are inlined, the event never goes through memory.
#[inline(always)]
pub(crate) fn decode_with<'a>(
    state: &mut DeltaState,
    input: &'a [u8],
    pos: &mut usize,
    sink: &mut impl EventSink<'a>,
) -> Result<(), DecodeError> {
    let tag = *input.get(*pos).ok_or(DecodeError::Truncated)?;
    *pos += 1;
    if is_hot(tag) {
        return decode_hot(state, tag, &mut Checked { input, pos }, sink);
    }
    // Handed over here, not in `decode_cold`: the sink is not passed to a function that is
    // not inlined, so that its fields may stay in registers.
    if let Some(event) = decode_cold(state, tag, input, pos)? {
        sink.other(event);
    }
    Ok(())
}

/// Decodes the event at the start of `window` if it is a hot one (else `Ok(None)`, nothing
/// read), returning its length: [`decode_with`] for an event known to lie within the window,
/// without a check against the input's end on every read.
#[inline(always)]
pub(crate) fn decode_hot_in_window<'a>(
    state: &mut DeltaState,
    window: &varint::Window,
    sink: &mut impl EventSink<'a>,
) -> Result<Option<usize>, DecodeError> {
    let tag = window[0];
    if !is_hot(tag) {
        return Ok(None);
    }
    let mut fields = Windowed { window, pos: 1, bad: false };
    decode_hot(state, tag, &mut fields, sink)?;
    Ok(Some(fields.pos))
}

/// Decodes the rest of a hot event (kinds 1, 2, 3, 6, 7) whose tag is `tag`, handing its
/// fields to the sink's method for its kind.
#[inline(always)]
fn decode_hot<'a>(
    state: &mut DeltaState,
    tag: u8,
    fields: &mut impl Fields,
    sink: &mut impl EventSink<'a>,
) -> Result<(), DecodeError> {
    match tag & KIND_MASK {
        KIND_ALLOC | KIND_ALLOC_PACKED => {
            // Kind 1's bits 6–7 must be 0, so its size's "low bits" below are 0 and its shift 0.
            let shift = if tag & KIND_MASK == KIND_ALLOC_PACKED { PACKED_SIZE_BITS } else { 0 };
            let low_size_bits = tag >> PACKED_SIZE_SHIFT;
            if shift == 0 && low_size_bits != 0 {
                return Err(DecodeError::BadTag(tag));
            }
            let ts = state.prev_ts.wrapping_add(fields.varint()?);
            state.prev_ts = ts;
            let addr = get_addr(fields, state.prev_addr, tag & ALLOC_ADDR_RAW != 0)?;
            state.prev_addr = addr;
            let high_size_bits = fields.varint()?;
            if high_size_bits > u64::MAX >> shift {
                return Err(fields.fail(DecodeError::BadValue("size")));
            }
            let size = (high_size_bits << shift) | u64::from(low_size_bits);
            let align = if tag & ALLOC_HAS_ALIGN != 0 { fields.varint()? } else { 0 };
            if tag & ALLOC_SAME_STACK == 0 {
                state.prev_stack = get_stack(fields, state.prev_stack)?;
            }
            state.remember(addr);
            fields.check()?;
            sink.alloc(ts, addr, size, align, state.prev_stack);
        }
        KIND_FREE => {
            let ts = state.prev_ts.wrapping_add(fields.varint()?);
            state.prev_ts = ts;
            let slot = (tag & FREE_RECENT_MASK) >> FREE_RECENT_SHIFT;
            let addr = if slot != 0 {
                let addr = state.recent[usize::from(slot - 1)];
                if addr == 0 {
                    return Err(fields.fail(DecodeError::BadValue("recent-address slot")));
                }
                addr
            } else {
                get_addr(fields, state.prev_addr, tag & FREE_ADDR_RAW != 0)?
            };
            state.prev_addr = addr;
            state.remember_freed(addr);
            fields.check()?;
            sink.free(ts, addr);
        }
        KIND_ALLOC_REUSED => {
            let slot = (tag & REUSED_SLOT_MASK) >> REUSED_SLOT_SHIFT;
            let index = usize::from(slot).checked_sub(1).filter(|&i| i < RECENT_SLOTS);
            let addr = index.map(|i| state.freed[i]).unwrap_or(0);
            let Some(index) = index.filter(|_| addr != 0) else {
                return Err(DecodeError::BadValue("freed-address slot"));
            };
            let ts = state.prev_ts.wrapping_add(fields.varint()?);
            state.prev_ts = ts;
            state.prev_addr = addr;
            let size = fields.varint()?;
            if tag & REUSED_SAME_STACK == 0 {
                state.prev_stack = get_stack(fields, state.prev_stack)?;
            }
            state.freed[index] = 0;
            state.remember(addr);
            fields.check()?;
            sink.alloc(ts, addr, size, 0, state.prev_stack);
        }
        KIND_REALLOC => {
            if tag & 0b1000_0000 != 0 {
                return Err(DecodeError::BadTag(tag));
            }
            let ts_free = state.prev_ts.wrapping_add(fields.varint()?);
            state.prev_ts = ts_free;
            let old_addr = get_addr(fields, state.prev_addr, tag & REALLOC_OLD_RAW != 0)?;
            let ts = state.prev_ts.wrapping_add(fields.varint()?);
            state.prev_ts = ts;
            let new_addr = if tag & REALLOC_IN_PLACE != 0 {
                old_addr
            } else {
                get_addr(fields, old_addr, tag & REALLOC_NEW_RAW != 0)?
            };
            state.prev_addr = new_addr;
            let size = fields.varint()?;
            if tag & REALLOC_SAME_STACK == 0 {
                state.prev_stack = get_stack(fields, state.prev_stack)?;
            }
            if new_addr != old_addr {
                state.remember_freed(old_addr);
            }
            state.remember(new_addr);
            fields.check()?;
            sink.realloc(ts_free, ts, old_addr, new_addr, size, state.prev_stack);
        }
        _ => return Err(DecodeError::BadTag(tag)),
    }
    Ok(())
}

/// Decodes the rest of an event of another kind than the hot ones (`None`: a meta event of a
/// sub-kind this version does not know).
#[inline(never)]
fn decode_cold<'a>(
    state: &mut DeltaState,
    tag: u8,
    input: &'a [u8],
    pos: &mut usize,
) -> Result<Option<Event<'a>>, DecodeError> {
    let event = match tag & KIND_MASK {
        KIND_STACK_NODE => {
            if tag != KIND_STACK_NODE {
                return Err(DecodeError::BadTag(tag));
            }
            let id_delta = unzigzag(get_u64(input, pos)?);
            let id = u32::try_from(i64::from(state.prev_node).wrapping_add(id_delta))
                .map_err(|_| DecodeError::BadValue("stack node id"))?;
            let parent_delta = unzigzag(get_u64(input, pos)?);
            let parent = u32::try_from(i64::from(id).wrapping_sub(parent_delta))
                .map_err(|_| DecodeError::BadValue("stack node parent"))?;
            let ip = state.prev_ip.wrapping_add(unzigzag(get_u64(input, pos)?) as u64);
            state.prev_node = id;
            state.prev_ip = ip;
            Event::StackNode { id, parent, ip }
        }
        KIND_META => {
            let ts = state.prev_ts.wrapping_add(get_u64(input, pos)?);
            state.prev_ts = ts;
            let payload = get_bytes(input, pos)?;
            return decode_meta(tag >> META_SHIFT, ts, payload);
        }
        _ => return Err(DecodeError::BadTag(tag)),
    };
    Ok(Some(event))
}

fn decode_meta(sub: u8, ts: u64, payload: &[u8]) -> Result<Option<Event<'_>>, DecodeError> {
    let mut pos = 0usize;
    let event = match sub {
        META_MODULE_LOAD => {
            let id = get_u32(payload, &mut pos, "module id")?;
            let base = get_u64(payload, &mut pos)?;
            let path = get_bytes(payload, &mut pos)?;
            let build_id = get_bytes(payload, &mut pos)?;
            let count = get_u32(payload, &mut pos, "segment count")?;
            let start = pos;
            for _ in 0..count {
                for _ in 0..3 {
                    get_u64(payload, &mut pos)?;
                }
            }
            let bytes = payload.get(start..pos).ok_or(DecodeError::Truncated)?;
            Event::ModuleLoad { ts, id, base, path, build_id, segments: Segments::Encoded { count, bytes } }
        }
        META_MODULE_UNLOAD => Event::ModuleUnload { ts, id: get_u32(payload, &mut pos, "module id")? },
        META_THREAD_NAME => {
            let tid = get_u32(payload, &mut pos, "thread id")?;
            Event::ThreadName { ts, tid, name: get_bytes(payload, &mut pos)? }
        }
        META_MARK => Event::Mark { ts, label: get_bytes(payload, &mut pos)? },
        META_RESIDENT_MEMORY => Event::ResidentMemory { ts, bytes: get_u64(payload, &mut pos)? },
        META_SCAN_REGION => {
            let start = get_u64(payload, &mut pos)?;
            let len = get_u64(payload, &mut pos)?;
            let kind = u8::try_from(get_u64(payload, &mut pos)?)
                .map_err(|_| DecodeError::BadValue("region kind"))?;
            Event::ScanRegion { ts, start, len, kind }
        }
        META_REFERENCES => {
            let count = get_u32(payload, &mut pos, "reference count")?;
            let start = pos;
            for _ in 0..count {
                get_u64(payload, &mut pos)?;
                get_u64(payload, &mut pos)?;
            }
            let bytes = payload.get(start..pos).ok_or(DecodeError::Truncated)?;
            Event::References { ts, refs: References::Encoded { count, bytes } }
        }
        META_SCAN_END => Event::ScanEnd {
            ts,
            regions: get_u64(payload, &mut pos)?,
            bytes: get_u64(payload, &mut pos)?,
            references: get_u64(payload, &mut pos)?,
        },
        _ => return Ok(None),
    };
    Ok(Some(event))
}

#[cfg(test)]
mod tests;
