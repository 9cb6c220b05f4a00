//! Call-stack capture inside an allocation hook, for code built without frame pointers.
//!
//! The walk starts from registers read with inline asm in [`CaptureState::walk`] and steps
//! outward with framehop's DWARF CFI unwinder over the in-memory unwind tables of the module
//! [`Snapshot`]. Every stack read is bounds-checked to `[sp, stack_top)` of the thread.
//! Frames at or below the hook's own stack pointer are the recorder's and are skipped.
//!
//! Reuse of the previous stack: each thread keeps its last stack (root first) with the
//! registers of every frame and the stack words read while stepping out of it. When a new walk
//! reaches a frame with the same (ip, sp, bp) as the previous stack, and every word the previous
//! walk read from there outward still holds the same value, the rest of the walk would repeat
//! exactly — so its frames and trie nodes are reused. This is exact, not a heuristic: framehop's
//! x86_64 state is just (ip, sp, bp), and the rules are the same while the snapshot is.

use crate::engine::modules::Snapshot;
use crate::engine::sys::Region;

/// Largest depth a session can be configured with.
pub const MAX_DEPTH_LIMIT: usize = 256;
/// Default maximum number of frames per stack.
pub const DEFAULT_DEPTH: usize = 128;
/// Stack words one step may read and still be re-verifiable.
const READS_PER_STEP: usize = 4;
/// A step that read more words than fit; frames beyond it cannot be reused.
const UNVERIFIABLE: u8 = u8::MAX;

/// The stack pointer of the calling function (inline: read it in the hook itself).
#[inline(always)]
pub fn stack_pointer() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        let sp: u64;
        // SAFETY: reads a register; no memory or flags are touched.
        unsafe { std::arch::asm!("mov {}, rsp", out(reg) sp, options(nomem, nostack, preserves_flags)) };
        sp
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let marker = 0u8;
        std::hint::black_box(&marker) as *const u8 as u64
    }
}

#[derive(Clone, Copy)]
struct Frame {
    /// Return address (the innermost frame's too: it is where the hook returns to).
    ip: u64,
    sp: u64,
    bp: u64,
    /// Trie node of the stack from the root to this frame (only in the kept stack).
    node: u32,
    read_count: u8,
    read_failed: u8,
    reads: [(u64, u64); READS_PER_STEP],
}

impl Frame {
    const EMPTY: Frame = Frame {
        ip: 0,
        sp: 0,
        bp: 0,
        node: 0,
        read_count: 0,
        read_failed: 0,
        reads: [(0, 0); READS_PER_STEP],
    };
}

/// Per-thread capture state; lives in its own mapping (see [`CaptureState::create`]).
pub struct CaptureState {
    stack_low: u64,
    stack_high: u64,
    #[cfg(target_arch = "x86_64")]
    cache: framehop::x86_64::CacheX86_64<framehop::MustNotAllocateDuringUnwind>,
    /// Snapshot the kept stack was walked with; reuse only within the same one.
    kept_snapshot: *const Snapshot,
    kept_len: usize,
    kept_truncated: bool,
    /// The kept (previous) stack, root first.
    kept: [Frame; MAX_DEPTH_LIMIT],
    /// The frames of the current walk, innermost first.
    fresh: [Frame; MAX_DEPTH_LIMIT],
    fresh_len: usize,
    fresh_truncated: bool,
    /// Index in `kept` where the current walk joined the previous stack.
    joined: Option<usize>,
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

fn thread_stack_bounds() -> Option<(u64, u64)> {
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
    /// Creates the calling thread's capture state in a fresh mapping. Allocates (framehop's
    /// cache): call with the reentrancy guard held.
    pub fn create() -> Option<*mut CaptureState> {
        let region = Region::new(std::mem::size_of::<CaptureState>())?;
        let ptr = region.as_ptr().cast::<CaptureState>();
        let (stack_low, stack_high) = thread_stack_bounds().unwrap_or((0, 0));
        // SAFETY: the region is large enough, page-aligned (so aligned for the type), ours alone.
        // The big arrays are left as the mapping's zero bytes, a valid `Frame` pattern.
        unsafe {
            (&raw mut (*ptr).stack_low).write(stack_low);
            (&raw mut (*ptr).stack_high).write(stack_high);
            #[cfg(target_arch = "x86_64")]
            (&raw mut (*ptr).cache).write(framehop::x86_64::CacheX86_64::new_in());
            (&raw mut (*ptr).kept_snapshot).write(std::ptr::null());
            (&raw mut (*ptr).kept_len).write(0);
            (&raw mut (*ptr).kept_truncated).write(false);
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
        self.kept_len = 0;
        self.kept_snapshot = std::ptr::null();
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

    fn verify_kept(&self, low: u64, through: usize) -> bool {
        self.kept[..=through].iter().all(|frame| {
            frame.read_count != UNVERIFIABLE
                && frame.reads[..usize::from(frame.read_count)].iter().enumerate().all(
                    |(i, &(addr, value))| {
                        let now = Self::read_word(low, self.stack_high, addr);
                        if frame.read_failed & (1 << i) != 0 { now.is_none() } else { now == Some(value) }
                    },
                )
        })
    }

    /// Walks the current stack (skipping frames at or below `hook_sp`) into the state, keeping
    /// at most `max_depth` frames. Call [`CaptureState::commit`] afterwards.
    #[cfg(target_arch = "x86_64")]
    #[inline(never)]
    pub fn walk(&mut self, snapshot: &Snapshot, hook_sp: u64, max_depth: usize) -> Walk {
        use framehop::{FrameAddress, Unwinder};
        let (ip, sp, bp): (u64, u64, u64);
        // SAFETY: reads registers of this frame, which stays live for the whole walk.
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
        self.fresh_len = 0;
        self.fresh_truncated = false;
        self.joined = None;
        let mut result = Walk { unknown_address: false, depth: 0 };
        let max_depth = max_depth.clamp(1, MAX_DEPTH_LIMIT);
        if self.stack_high == 0 || sp < self.stack_low || sp >= self.stack_high {
            return result;
        }
        let (low, high) = (sp, self.stack_high);
        if !std::ptr::eq(self.kept_snapshot, snapshot) {
            self.kept_len = 0;
        }
        let mut regs = framehop::x86_64::UnwindRegsX86_64::new(ip, sp, bp);
        let mut address = FrameAddress::from_instruction_pointer(ip);
        let mut search = self.kept_len;
        let mut skipped_steps = 0usize;
        loop {
            let recording = regs.sp() > hook_sp;
            if recording {
                let frame_ip = address.address();
                let frame_sp = regs.sp();
                while search > 0 && self.kept[search - 1].sp < frame_sp {
                    search -= 1;
                }
                if search > 0 {
                    let k = search - 1;
                    let candidate = &self.kept[k];
                    let total = self.fresh_len + k + 1;
                    let depth_ok = if self.kept_truncated { total == max_depth } else { total <= max_depth };
                    if candidate.sp == frame_sp
                        && candidate.ip == frame_ip
                        && candidate.bp == regs.bp()
                        && depth_ok
                        && self.verify_kept(low, k)
                    {
                        self.joined = Some(k);
                        result.depth = total;
                        return result;
                    }
                }
                if self.fresh_len == max_depth {
                    self.fresh_truncated = true;
                    break;
                }
                if !snapshot.contains(frame_ip.wrapping_sub(1)) {
                    result.unknown_address = true;
                }
                self.fresh[self.fresh_len] =
                    Frame { ip: frame_ip, sp: frame_sp, bp: regs.bp(), ..Frame::EMPTY };
                self.fresh_len += 1;
            } else {
                skipped_steps += 1;
                if skipped_steps > 64 {
                    break;
                }
            }
            let before_sp = regs.sp();
            let step = {
                let log = if recording { Some(&mut self.fresh[self.fresh_len - 1]) } else { None };
                let mut log = log;
                let mut read = |addr: u64| -> Result<u64, ()> {
                    let value = Self::read_word(low, high, addr);
                    if let Some(frame) = log.as_deref_mut()
                        && frame.read_count != UNVERIFIABLE
                    {
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
    pub fn walk(&mut self, _snapshot: &Snapshot, _hook_sp: u64, _max_depth: usize) -> Walk {
        self.fresh_len = 0;
        self.joined = None;
        Walk { unknown_address: false, depth: 0 }
    }

    /// Turns the last walk into a stack id: reused frames keep their nodes, new frames are
    /// interned from the outside in with `intern(parent, ip)`. Keeps the stack for the next walk.
    pub fn commit(&mut self, snapshot: &Snapshot, mut intern: impl FnMut(u32, u64) -> Option<u32>) -> u32 {
        let (base_len, mut node) = match self.joined {
            Some(k) => (k + 1, self.kept[k].node),
            None => (0, 0),
        };
        if self.joined.is_none() {
            self.kept_truncated = self.fresh_truncated;
        }
        let mut len = base_len;
        for i in (0..self.fresh_len).rev() {
            let frame = self.fresh[i];
            match intern(node, frame.ip) {
                Some(id) => node = id,
                None => {
                    // Keep nothing we could not intern: the next walk starts from scratch.
                    self.forget();
                    return node;
                }
            }
            self.kept[len] = Frame { node, ..frame };
            len += 1;
        }
        self.kept_len = len;
        self.kept_snapshot = snapshot;
        node
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_plain_data() {
        // The kept/fresh arrays start as zeroed memory: all-zero must be a valid empty frame.
        let zero = Frame::EMPTY;
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
