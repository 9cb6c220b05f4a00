//! Call-stack capture inside an allocation hook, for code built without frame pointers.
//!
//! The walk starts from the hook's own registers ([`HookRegisters::here`], inline asm in the
//! hook) and steps outward with framehop's DWARF CFI unwinder over the in-memory unwind tables
//! of the module [`Snapshot`]. Every stack read is bounds-checked to `[sp, stack_top)` of the
//! thread. The hook's own frame is not recorded; every frame above it is.
//!
//! Reuse of recent stacks: each thread keeps its last few stacks (root first, see
//! `KEPT_STACKS`), each frame with its registers, its trie node and the stack words the step
//! out of it depends on. When a new walk reaches a frame with the same ip and sp as a kept
//! frame (and the same bp, unless the walk outward does not depend on bp), and every such word
//! from there to the root still holds its kept value, the rest of the walk would repeat
//! exactly — so the kept frames and their trie nodes are reused. This is exact, not a
//! heuristic, because only steps by framehop's cached rules are kept as re-checkable: a cached
//! x86_64 rule is a function of sp, bp and the words it reads (see `Frame::keep` for which of
//! them matter). A step that missed framehop's cache (it may have evaluated DWARF over other
//! registers) is retried once from the now-filled cache, and otherwise never reused through.
//! `LEAKVIEW_STACK_REUSE=0` unwinds every stack in full; the end-to-end tests check that both
//! give the same stacks.

use crate::engine::modules::Snapshot;
use crate::engine::sys::Region;

/// Largest depth a session can be configured with.
pub const MAX_DEPTH_LIMIT: usize = 256;
/// Default maximum number of frames per stack.
pub const DEFAULT_DEPTH: usize = 128;
/// Stack words one step may read and still be re-verifiable (a rule pops at most 8 saved
/// registers, then reads the return address).
const READS_PER_STEP: usize = 10;
/// Words a kept frame re-checks: the return-address slot and the slot bp came from (more only
/// when several read words hold the caller's bp value).
const CHECKS_PER_STEP: usize = 3;
/// A step that read more words than fit; frames beyond it cannot be reused.
const UNVERIFIABLE: u8 = u8::MAX;

/// Registers of a hook's own frame, read in the hook's body: the walk starts there (the
/// hook's frame is live for the whole walk and its saved words do not change), so the
/// recorder's own frames below it are never unwound, and every frame above it is recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HookRegisters {
    pub ip: u64,
    pub sp: u64,
    pub bp: u64,
}

impl HookRegisters {
    /// Reads the registers of the calling function: call it directly in the hook (it is
    /// always inlined).
    #[inline(always)]
    pub fn here() -> HookRegisters {
        #[cfg(target_arch = "x86_64")]
        {
            let (ip, sp, bp): (u64, u64, u64);
            // SAFETY: reads registers only; no memory or flags are touched.
            unsafe {
                std::arch::asm!(
                    "lea {ip}, [rip]",
                    "mov {sp}, rsp",
                    "mov {bp}, rbp",
                    ip = out(reg) ip,
                    sp = out(reg) sp,
                    bp = out(reg) bp,
                    options(nomem, nostack, preserves_flags)
                );
            }
            HookRegisters { ip, sp, bp }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let marker = 0u8;
            let sp = std::hint::black_box(&marker) as *const u8 as u64;
            HookRegisters { ip: 0, sp, bp: 0 }
        }
    }
}

/// A frame of the current walk, with every stack word read while stepping out of it.
#[derive(Clone, Copy)]
struct FreshFrame {
    /// Return address (the innermost frame's too: it is where the hook returns to).
    ip: u64,
    sp: u64,
    bp: u64,
    /// Words read by the step out of this frame (`UNVERIFIABLE`: too many, or the step was not
    /// by a cached rule, so it cannot be re-checked).
    read_count: u8,
    read_failed: u16,
    reads: [(u64, u64); READS_PER_STEP],
}

impl FreshFrame {
    #[cfg(test)]
    const EMPTY: FreshFrame =
        FreshFrame { ip: 0, sp: 0, bp: 0, read_count: 0, read_failed: 0, reads: [(0, 0); READS_PER_STEP] };
}

/// A frame of a kept stack: its registers, its trie node, and the words the step out of it
/// depends on.
#[derive(Clone, Copy)]
struct Frame {
    ip: u64,
    sp: u64,
    bp: u64,
    /// Trie node of the stack from the root to this frame.
    node: u32,
    /// Number of `checks` (`UNVERIFIABLE`: the step cannot be re-checked).
    check_count: u8,
    check_failed: u8,
    /// Whether the walk from this frame outward depends on its incoming bp (see `Frame::keep`).
    bp_matters: bool,
    checks: [(u64, u64); CHECKS_PER_STEP],
}

impl Frame {
    /// Keeps what re-checking the step out of `fresh` needs, given its `caller` (the frame the
    /// step led to; `None` for the root, where the walk ended).
    ///
    /// A cached framehop rule depends on the incoming sp and bp and on the words it reads. It
    /// uses bp as an address only if it is a frame-pointer rule, which always reads at bp; it
    /// either passes bp through to the caller or restores it from a stack slot; and it restores
    /// other registers that cached rules never use. Which of these a rule does depends only on
    /// its ip. So the step's outcome depends on: the return-address slot (`caller.sp - 8`), the
    /// slot bp was restored from — any word read that holds the caller's bp — but only if the
    /// caller's bp matters further out, and bp itself if the rule reads at it. The walk from
    /// this frame outward depends on its bp if the rule reads at it, or if it may pass bp
    /// through (the caller's bp is the same) and the caller's bp matters. The root frame's step
    /// depends on every word it read.
    fn keep(fresh: &FreshFrame, node: u32, caller: Option<&Frame>) -> Frame {
        let mut frame = Frame {
            ip: fresh.ip,
            sp: fresh.sp,
            bp: fresh.bp,
            node,
            check_count: UNVERIFIABLE,
            check_failed: 0,
            bp_matters: true,
            checks: [(0, 0); CHECKS_PER_STEP],
        };
        if fresh.read_count == UNVERIFIABLE {
            return frame;
        }
        let reads = &fresh.reads[..usize::from(fresh.read_count)];
        let bp_read = reads.iter().any(|&(addr, _)| addr == fresh.bp);
        frame.bp_matters = bp_read || caller.is_some_and(|c| c.bp_matters && c.bp == fresh.bp);
        let mut count = 0usize;
        for (i, &(addr, value)) in reads.iter().enumerate() {
            let failed = fresh.read_failed & (1 << i) != 0;
            let relevant = match caller {
                Some(c) => failed || addr == c.sp.wrapping_sub(8) || (c.bp_matters && value == c.bp),
                None => true,
            };
            if !relevant {
                continue;
            }
            if count == CHECKS_PER_STEP {
                frame.check_count = UNVERIFIABLE;
                frame.bp_matters = true;
                return frame;
            }
            frame.checks[count] = (addr, value);
            if failed {
                frame.check_failed |= 1 << count;
            }
            count += 1;
        }
        frame.check_count = count as u8;
        frame
    }
}

/// Recent stacks kept per thread: a loop that allocates from a few alternating call paths
/// finds each path's previous stack among them.
const KEPT_STACKS: usize = 4;
/// A walk that joined a kept stack after more new frames than this diverged from it along a
/// path of its own, kept separately.
const SHORT_DIVERGENCE: usize = 3;

/// One previous stack, root first.
struct KeptStack {
    /// Snapshot the stack was walked with; reuse only within the same one.
    snapshot: *const Snapshot,
    len: usize,
    truncated: bool,
    /// When it was last used (for replacing the least recently used one).
    used_at: u64,
    frames: [Frame; MAX_DEPTH_LIMIT],
}

/// Per-thread capture state; lives in its own mapping (see [`CaptureState::create`]).
pub struct CaptureState {
    stack_low: u64,
    stack_high: u64,
    #[cfg(target_arch = "x86_64")]
    cache: framehop::x86_64::CacheX86_64<framehop::MustNotAllocateDuringUnwind>,
    kept: [KeptStack; KEPT_STACKS],
    clock: u64,
    /// The frames of the current walk, innermost first.
    fresh: [FreshFrame; MAX_DEPTH_LIMIT],
    fresh_len: usize,
    fresh_truncated: bool,
    /// Kept stack and index in it where the current walk joined a previous stack.
    joined: Option<(usize, usize)>,
    /// Per kept stack, the outermost frame found changed in this walk: joins at or inside it
    /// cannot succeed.
    blocked: [usize; KEPT_STACKS],
    region: Option<Region>,
}

/// What a walk found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Walk {
    /// Some new frame lies outside every known module.
    pub unknown_address: bool,
    /// Frames in the stack (new plus reused).
    pub depth: usize,
}

/// Stack space a walk needs below the hook (framehop evaluates DWARF in fixed on-stack storage).
pub const WALK_STACK_ROOM: u64 = 64 * 1024;
/// Stack space creating the capture state needs (framehop builds its cache on the stack).
pub const CREATE_STACK_ROOM: u64 = 256 * 1024;

/// The calling thread's stack, `[low, high)`. May allocate (the main thread's comes from
/// /proc/self/maps): call with the guard held.
pub fn thread_stack_bounds() -> Option<(u64, u64)> {
    // SAFETY: pthread_getattr_np fills an attribute object we own and destroy; for the main
    // thread glibc reads /proc/self/maps, which may allocate (callers hold the guard).
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return None;
        }
        let mut addr: *mut libc::c_void = std::ptr::null_mut();
        let mut size: libc::size_t = 0;
        let rc = libc::pthread_attr_getstack(&attr, &mut addr, &mut size);
        libc::pthread_attr_destroy(&mut attr);
        (rc == 0 && size > 0).then(|| (addr as u64, addr as u64 + size as u64))
    }
}

impl CaptureState {
    /// Creates the calling thread's capture state (for a thread whose stack is
    /// `[stack_low, stack_high)`) in a fresh mapping. Allocates (framehop's cache) and needs
    /// [`CREATE_STACK_ROOM`] of stack: call with the reentrancy guard held.
    pub fn create(stack_low: u64, stack_high: u64) -> Option<*mut CaptureState> {
        let region = Region::new(std::mem::size_of::<CaptureState>())?;
        let ptr = region.as_ptr().cast::<CaptureState>();
        // SAFETY: the region is large enough, page-aligned (so aligned for the type), ours alone.
        // The kept stacks and frame arrays are left as the mapping's zero bytes: empty stacks
        // (null snapshot, length 0) of valid all-zero frames.
        unsafe {
            (&raw mut (*ptr).stack_low).write(stack_low);
            (&raw mut (*ptr).stack_high).write(stack_high);
            #[cfg(target_arch = "x86_64")]
            (&raw mut (*ptr).cache).write(framehop::x86_64::CacheX86_64::new_in());
            (&raw mut (*ptr).clock).write(0);
            (&raw mut (*ptr).fresh_len).write(0);
            (&raw mut (*ptr).fresh_truncated).write(false);
            (&raw mut (*ptr).joined).write(None);
            (&raw mut (*ptr).region).write(Some(region));
        }
        Some(ptr)
    }

    /// Frees a state made by [`CaptureState::create`].
    ///
    /// # Safety
    /// `state` must come from `create` and not be used afterwards.
    pub unsafe fn destroy(state: *mut CaptureState) {
        // SAFETY: the caller hands over ownership; the region is moved out before unmapping.
        unsafe {
            #[cfg(target_arch = "x86_64")]
            std::ptr::drop_in_place(&raw mut (*state).cache);
            let region = (*state).region.take();
            drop(region);
        }
    }

    /// Forgets the kept stack (its node ids belong to another trace, or modules changed).
    pub fn forget(&mut self) {
        for kept in &mut self.kept {
            kept.len = 0;
            kept.snapshot = std::ptr::null();
        }
    }

    #[inline]
    fn read_word(low: u64, high: u64, address: u64) -> Option<u64> {
        if address < low || address & 7 != 0 || address >= high || high - address < 8 {
            return None;
        }
        // SAFETY: the address is 8-aligned and inside [sp, stack_top) of this thread's stack,
        // which is mapped and readable.
        Some(unsafe { std::ptr::read_volatile(address as *const u64) })
    }

    /// Checks that stepping out of kept frames `0..=through` would read the same words today
    /// (only the words each step's outcome depends on; see `Frame::keep`). Steps are
    /// always by cached framehop rules, functions of (sp, bp) and the words they read. Inner
    /// frames are checked first: that is where stacks diverge. On failure, returns the frame
    /// that failed: no join at or inside it can succeed in this walk.
    fn verify_kept(&self, slot: usize, low: u64, through: usize) -> Result<(), usize> {
        let frames = &self.kept[slot].frames;
        for j in (0..=through).rev() {
            let frame = &frames[j];
            if frame.check_count == UNVERIFIABLE {
                return Err(j);
            }
            for (i, &(addr, value)) in frame.checks[..usize::from(frame.check_count)].iter().enumerate() {
                let now = Self::read_word(low, self.stack_high, addr);
                let same =
                    if frame.check_failed & (1 << i) != 0 { now.is_none() } else { now == Some(value) };
                if !same {
                    return Err(j);
                }
            }
        }
        Ok(())
    }

    /// Whether the current frame (ip, sp, bp) with `fresh` frames above it joins kept stack
    /// `slot` at index `k`, with everything from there outward provably the same: same ip and
    /// sp, the same bp unless the walk outward does not depend on it, and every word the kept
    /// steps depend on unchanged.
    #[allow(clippy::too_many_arguments)]
    fn join(&mut self, slot: usize, k: usize, ip: u64, sp: u64, bp: u64, low: u64, max_depth: usize) -> bool {
        let kept = &self.kept[slot];
        let candidate = &kept.frames[k];
        if candidate.sp != sp || candidate.ip != ip {
            return false;
        }
        let total = self.fresh_len + k + 1;
        let depth_ok = if kept.truncated { total == max_depth } else { total <= max_depth };
        if (candidate.bp != bp && candidate.bp_matters) || !depth_ok || k >= self.blocked[slot] {
            return false;
        }
        if let Err(failed_at) = self.verify_kept(slot, low, k) {
            self.blocked[slot] = failed_at;
            return false;
        }
        true
    }

    /// One framehop step out of `frame`, logging the words it reads into the frame. The frame
    /// is marked unverifiable if the step was not by a cached rule (only a cached rule is a
    /// function of sp, bp and the words read; a miss may have evaluated DWARF over other
    /// registers). Returns the step's result and whether it missed the cache.
    #[cfg(target_arch = "x86_64")]
    fn logged_step(
        snapshot: &Snapshot,
        address: framehop::FrameAddress,
        regs: &mut framehop::x86_64::UnwindRegsX86_64,
        cache: &mut framehop::x86_64::CacheX86_64<framehop::MustNotAllocateDuringUnwind>,
        frame: &mut FreshFrame,
        low: u64,
        high: u64,
    ) -> (Result<Option<u64>, framehop::Error>, bool) {
        use framehop::Unwinder;
        let mut read = |addr: u64| -> Result<u64, ()> {
            let value = Self::read_word(low, high, addr);
            if frame.read_count != UNVERIFIABLE {
                let i = usize::from(frame.read_count);
                if i < READS_PER_STEP {
                    frame.reads[i] = (addr, value.unwrap_or(0));
                    if value.is_none() {
                        frame.read_failed |= 1 << i;
                    }
                    frame.read_count += 1;
                } else {
                    frame.read_count = UNVERIFIABLE;
                }
            }
            value.ok_or(())
        };
        let hits_before = cache.stats().hit_count;
        let step = snapshot.unwinder.unwind_frame(address, regs, cache, &mut read);
        let missed = cache.stats().hit_count == hits_before;
        if missed {
            frame.read_count = UNVERIFIABLE;
        }
        (step, missed)
    }

    /// Walks the stack above the hook whose registers are `hook` into the state, keeping
    /// at most `max_depth` frames. Call [`CaptureState::commit`] afterwards.
    #[cfg(target_arch = "x86_64")]
    #[inline(never)]
    pub fn walk(&mut self, snapshot: &Snapshot, hook: HookRegisters, max_depth: usize) -> Walk {
        use framehop::{FrameAddress, Unwinder};
        let HookRegisters { ip, sp, bp } = hook;
        let hook_sp = sp;
        self.fresh_len = 0;
        self.fresh_truncated = false;
        self.joined = None;
        self.blocked = [usize::MAX; KEPT_STACKS];
        let mut result = Walk { unknown_address: false, depth: 0 };
        let max_depth = max_depth.clamp(1, MAX_DEPTH_LIMIT);
        if self.stack_high == 0
            || sp >= self.stack_high
            || sp < self.stack_low.saturating_add(WALK_STACK_ROOM)
        {
            return result;
        }
        let (low, high) = (sp, self.stack_high);
        let mut search = [0usize; KEPT_STACKS];
        let mut searched = [false; KEPT_STACKS];
        for (slot, kept) in self.kept.iter().enumerate() {
            if std::ptr::eq(kept.snapshot, snapshot) {
                search[slot] = kept.len;
            }
        }
        let mut regs = framehop::x86_64::UnwindRegsX86_64::new(ip, sp, bp);
        let mut address = FrameAddress::from_instruction_pointer(ip);
        let mut skipped_steps = 0usize;
        // The module range of the last frame: most frames share it, sparing a search.
        let mut known = (0u64, 0u64);
        loop {
            let recording = regs.sp() > hook_sp;
            if recording {
                let frame_ip = address.address();
                let frame_sp = regs.sp();
                for slot in 0..KEPT_STACKS {
                    if search[slot] == 0 {
                        continue;
                    }
                    // Kept frames are root first, so their sp decreases: find the innermost
                    // one at or above this frame (a binary search the first time, then a few
                    // steps outward as the walk moves out).
                    let frames = &self.kept[slot].frames;
                    let mut at = search[slot];
                    if !searched[slot] {
                        at = frames[..at].partition_point(|f| f.sp >= frame_sp);
                        searched[slot] = true;
                    } else if at > 0 && frames[at - 1].sp < frame_sp {
                        // Usually one step outward; a big frame can skip several.
                        at -= 1;
                        if at > 0 && frames[at - 1].sp < frame_sp {
                            at = frames[..at].partition_point(|f| f.sp >= frame_sp);
                        }
                    }
                    search[slot] = at;
                    if at > 0 && self.join(slot, at - 1, frame_ip, frame_sp, regs.bp(), low, max_depth) {
                        self.joined = Some((slot, at - 1));
                        result.depth = self.fresh_len + at;
                        return result;
                    }
                }
                if self.fresh_len == max_depth {
                    self.fresh_truncated = true;
                    break;
                }
                let lookup = frame_ip.wrapping_sub(1);
                if lookup < known.0 || lookup >= known.1 {
                    match snapshot.range_of(lookup) {
                        Some(range) => known = range,
                        None => result.unknown_address = true,
                    }
                }
                let fresh = &mut self.fresh[self.fresh_len];
                fresh.ip = frame_ip;
                fresh.sp = frame_sp;
                fresh.bp = regs.bp();
                fresh.read_count = 0;
                fresh.read_failed = 0;
                self.fresh_len += 1;
            } else {
                skipped_steps += 1;
                if skipped_steps > 64 {
                    break;
                }
            }
            let before_sp = regs.sp();
            let before = regs;
            let step = if recording {
                let frame = &mut self.fresh[self.fresh_len - 1];
                let mut step =
                    Self::logged_step(snapshot, address, &mut regs, &mut self.cache, frame, low, high);
                if frame.read_count == UNVERIFIABLE && step.1 {
                    // A cache miss: framehop evaluated DWARF. If the rule was cacheable it is
                    // cached now; stepping again from the same registers then runs it, and the
                    // step becomes re-checkable. (Uncacheable rules miss again.)
                    regs = before;
                    frame.read_count = 0;
                    frame.read_failed = 0;
                    step = Self::logged_step(snapshot, address, &mut regs, &mut self.cache, frame, low, high);
                }
                step.0
            } else {
                let mut read = |addr: u64| Self::read_word(low, high, addr).ok_or(());
                snapshot.unwinder.unwind_frame(address, &mut regs, &mut self.cache, &mut read)
            };
            match step {
                Ok(Some(return_address)) if regs.sp() > before_sp => {
                    match FrameAddress::from_return_address(return_address) {
                        Some(next) => address = next,
                        None => break,
                    }
                }
                _ => break,
            }
        }
        result.depth = self.fresh_len;
        result
    }

    #[cfg(not(target_arch = "x86_64"))]
    pub fn walk(&mut self, _snapshot: &Snapshot, _hook: HookRegisters, _max_depth: usize) -> Walk {
        self.fresh_len = 0;
        self.joined = None;
        Walk { unknown_address: false, depth: 0 }
    }

    /// Turns the last walk into a stack id: reused frames keep their nodes, new frames are
    /// interned from the outside in with `intern(parent, ip)`. Keeps the stack for the next walk.
    fn least_recently_used(&self) -> usize {
        (0..KEPT_STACKS).min_by_key(|&i| self.kept[i].used_at).unwrap_or(0)
    }

    pub fn commit(&mut self, snapshot: &Snapshot, mut intern: impl FnMut(u32, u64) -> Option<u32>) -> u32 {
        self.clock += 1;
        let (slot, base_len, mut node) = match self.joined {
            Some((joined, k))
                if self.fresh_len > SHORT_DIVERGENCE
                    && self.kept[joined].len - (k + 1) > SHORT_DIVERGENCE =>
            {
                // Both the new part and the joined stack's own inner part are long: keep the
                // joined stack for its own path and put this one, shared prefix included, in
                // place of the least recently used stack.
                let slot = self.least_recently_used();
                if slot != joined {
                    let (from, to) = if joined < slot {
                        let (a, b) = self.kept.split_at_mut(slot);
                        (&a[joined], &mut b[0])
                    } else {
                        let (a, b) = self.kept.split_at_mut(joined);
                        (&b[0], &mut a[slot])
                    };
                    to.frames[..=k].copy_from_slice(&from.frames[..=k]);
                    to.truncated = from.truncated;
                }
                (slot, k + 1, self.kept[slot].frames[k].node)
            }
            Some((slot, k)) => (slot, k + 1, self.kept[slot].frames[k].node),
            None => {
                let slot = self.least_recently_used();
                self.kept[slot].truncated = self.fresh_truncated;
                (slot, 0, 0)
            }
        };
        let mut len = base_len;
        for i in (0..self.fresh_len).rev() {
            match intern(node, self.fresh[i].ip) {
                Some(id) => node = id,
                None => {
                    // Keep nothing we could not intern: the next walks start from scratch.
                    self.forget();
                    return node;
                }
            }
            let frame =
                Frame::keep(&self.fresh[i], node, len.checked_sub(1).map(|c| &self.kept[slot].frames[c]));
            self.kept[slot].frames[len] = frame;
            len += 1;
        }
        let kept = &mut self.kept[slot];
        kept.len = len;
        kept.snapshot = snapshot;
        kept.used_at = self.clock;
        node
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_plain_data() {
        // The frame arrays start as zeroed memory: all-zero must be a valid empty frame.
        let zero = FreshFrame::EMPTY;
        assert_eq!(zero.ip, 0);
        assert_eq!(zero.read_count, 0);
    }

    #[test]
    fn reads_are_bounds_checked() {
        let words = [1u64, 2, 3, 4];
        let low = words.as_ptr() as u64;
        let high = low + 32;
        assert_eq!(CaptureState::read_word(low, high, low + 8), Some(2));
        assert_eq!(CaptureState::read_word(low, high, low + 24), Some(4));
        assert_eq!(CaptureState::read_word(low, high, low + 32), None);
        assert_eq!(CaptureState::read_word(low, high, low - 8), None);
        assert_eq!(CaptureState::read_word(low, high, low + 4), None);
    }
}

#[cfg(test)]
mod keep_tests {
    use super::*;

    fn fresh(reads: &[(u64, u64)], bp: u64) -> FreshFrame {
        let mut f = FreshFrame { ip: 0x1000, sp: 0x7000, bp, ..FreshFrame::EMPTY };
        f.reads[..reads.len()].copy_from_slice(reads);
        f.read_count = reads.len() as u8;
        f
    }

    fn caller(sp: u64, bp: u64, bp_matters: bool) -> Frame {
        Frame { sp, bp, bp_matters, ..Frame::keep(&FreshFrame::EMPTY, 1, None) }
    }

    #[test]
    fn keeps_the_return_address_and_the_restored_bp_when_it_matters() {
        // Six popped registers, the return address at caller.sp - 8; one pop restored bp.
        let reads = [
            (0x7008, 1),
            (0x7010, 0x9999),
            (0x7018, 3),
            (0x7020, 4),
            (0x7028, 5),
            (0x7030, 6),
            (0x7038, 0x2000),
        ];
        let frame = Frame::keep(&fresh(&reads, 0x5555), 7, Some(&caller(0x7040, 0x9999, true)));
        assert_eq!(frame.node, 7);
        assert_eq!(frame.check_count, 2);
        assert_eq!(&frame.checks[..2], &[(0x7010, 0x9999), (0x7038, 0x2000)]);
        assert!(!frame.bp_matters, "bp was restored, not used");
        // If the caller's bp does not matter further out, only the return address does.
        let frame = Frame::keep(&fresh(&reads, 0x5555), 7, Some(&caller(0x7040, 0x9999, false)));
        assert_eq!(frame.check_count, 1);
        assert_eq!(frame.checks[0], (0x7038, 0x2000));
    }

    #[test]
    fn bp_matters_through_frame_pointer_rules_and_pass_through() {
        // A frame-pointer rule reads at bp (the caller's bp) and bp + 8 (the return address).
        let frame = Frame::keep(
            &fresh(&[(0x7030, 0x7100), (0x7038, 0x2000)], 0x7030),
            2,
            Some(&caller(0x7040, 0x7100, false)),
        );
        assert!(frame.bp_matters);
        // Passing bp through to a caller whose bp matters: it matters here too.
        let passes = Frame::keep(&fresh(&[(0x7038, 0x2000)], 0x4444), 3, Some(&caller(0x7040, 0x4444, true)));
        assert!(passes.bp_matters);
        let passes =
            Frame::keep(&fresh(&[(0x7038, 0x2000)], 0x4444), 3, Some(&caller(0x7040, 0x4444, false)));
        assert!(!passes.bp_matters);
    }

    #[test]
    fn the_root_step_checks_every_word_and_overflow_is_unverifiable() {
        let frame = Frame::keep(&fresh(&[(0x7008, 1), (0x7010, 2)], 0), 3, None);
        assert_eq!(frame.check_count, 2);
        let mut many = fresh(&[(0x7008, 7), (0x7010, 7), (0x7018, 7), (0x7020, 7)], 0);
        assert_eq!(Frame::keep(&many, 4, Some(&caller(0x7100, 7, true))).check_count, UNVERIFIABLE);
        many.read_count = UNVERIFIABLE;
        let frame = Frame::keep(&many, 4, None);
        assert_eq!(frame.check_count, UNVERIFIABLE);
        assert!(frame.bp_matters);
    }
}
