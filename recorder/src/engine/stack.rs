//! Call-stack capture inside an allocation hook, for code built without frame pointers.
//!
//! The walk starts from the hook's own registers ([`HookRegisters::here`], inline asm in the
//! hook) and steps outward by the DWARF CFI rules framehop finds in the in-memory unwind tables
//! of the module [`Snapshot`]. Every stack read is bounds-checked to `[sp, stack_top)` of the
//! thread. The hook's own frame is not recorded; every frame above it is.
//!
//! Three per-thread caches make a capture cheap, and all are exact:
//! - [`KeptStacks`]: stacks recently recorded from the same innermost frame, with the stack
//!   words their walk read; if those words still hold, the stack and its trie node are known
//!   without unwinding (see that module for why);
//! - [`UnwindRules`]: each code address's unwind rule, learned from framehop the first time a
//!   thread steps out of it and applied afterwards with two or three loads (see that module for
//!   why the steps are the same as framehop's);
//! - [`StackCache`]: a whole walked stack → its trie node, checked against the frames it
//!   keeps. A stack not found there is interned from the root, sharing the outer frames it has
//!   in common with the last stack interned that way.
//!
//! With caching off (`LEAKVIEW_STACK_REUSE=0`, see [`CaptureState::set_caching`]) every frame is
//! stepped by framehop and every stack is interned frame by frame from the root: the end-to-end
//! tests check that both record the same stacks.

#[cfg(target_arch = "x86_64")]
use crate::engine::kept_stacks::{Checks, Filing, KeptStacks};
use crate::engine::modules::Snapshot;
use crate::engine::side_stack::SideStack;
use crate::engine::stack_cache::{self, StackCache};
#[cfg(target_arch = "x86_64")]
use crate::engine::stack_copy::{MAX_WINDOW, StackCopy};
use crate::engine::sys::{self, Region};
#[cfg(target_arch = "x86_64")]
use crate::engine::unwind_rules::{self, FramehopCache, Reads, Rule, UnwindRules};
use std::sync::atomic::{AtomicU64, Ordering};

/// Largest depth a session can be configured with.
pub const MAX_DEPTH_LIMIT: usize = 256;
/// Default maximum number of frames per stack.
pub const DEFAULT_DEPTH: usize = 128;

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

/// Per-thread capture state; lives in its own mapping (see [`CaptureState::create`]).
// Only the x86_64 walk logs sp and bp and keeps stacks.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub struct CaptureState {
    stack_low: u64,
    stack_high: u64,
    /// Use the rule and stack caches (see [`CaptureState::set_caching`]).
    caching: bool,
    #[cfg(target_arch = "x86_64")]
    framehop: FramehopCache,
    #[cfg(target_arch = "x86_64")]
    rules: UnwindRules,
    #[cfg(target_arch = "x86_64")]
    kept: KeptStacks,
    stacks: StackCache,
    /// The last walk's frames, innermost first: return addresses; their number and hash. The
    /// walk logs only the first frame's sp and bp; `keep` works out the others'.
    ips: [u64; MAX_DEPTH_LIMIT],
    sps: [u64; MAX_DEPTH_LIMIT],
    bps: [u64; MAX_DEPTH_LIMIT],
    len: usize,
    hash: u64,
    /// The last walk found a kept stack: its node (the frames were not walked).
    found: Option<u32>,
    /// Where the last walk's stack is filed among the kept stacks (see
    /// [`UnwindRules::caller_link`] for its link).
    #[cfg(target_arch = "x86_64")]
    filing: Filing,
    /// Whether the last walk's stack may be kept: walked with caching, every frame in a known
    /// module, not cut at its `max_depth`; and the bounds it read within.
    keepable: bool,
    max_depth: usize,
    bounds: Option<StackBounds>,
    /// Scratch space for keeping a stack: what each step of the walk read, and the checks.
    #[cfg(target_arch = "x86_64")]
    reads: [Reads; MAX_DEPTH_LIMIT],
    #[cfg(target_arch = "x86_64")]
    checks: Checks,
    /// The last stack interned frame by frame, root first: (return address, node).
    last: [(u64, u32); MAX_DEPTH_LIMIT],
    last_len: usize,
    /// Where walks run when the thread's stack has too little room below the hook (made when
    /// first needed).
    side: Option<SideStack>,
    /// The buffer for walks on stacks of unknown bounds (made when first needed).
    copy: Option<StackCopy>,
    region: Option<Region>,
}

/// What a walk found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Walk {
    /// Some frame lies outside every known module.
    pub unknown_address: bool,
}

/// Stack space a walk needs below the hook (framehop evaluates DWARF in fixed on-stack storage);
/// with less, the walk runs on a side stack.
pub const WALK_STACK_ROOM: u64 = 64 * 1024;
/// Stack space creating the capture state needs (framehop builds its cache on the stack); with
/// less, it is created on a side stack.
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

/// The alternate signal stack, `[low, high)`, if the thread is running on it and `sp` lies in it.
/// Asked only inside one of the program's signal handlers (counted by the preload library's
/// wrapper): elsewhere, code on a stack of its own (coroutines) is walked on a copy at once.
#[cfg(target_arch = "x86_64")]
fn alternate_signal_stack(sp: u64) -> Option<(u64, u64)> {
    // SAFETY: reading a counter of the calling thread's own state.
    if unsafe { (*crate::engine::thread::current()).signal_depth } == 0 {
        return None;
    }
    // SAFETY: an all-zero stack_t is a valid value for sigaltstack to fill in.
    let mut current: libc::stack_t = unsafe { std::mem::zeroed() };
    // SAFETY: querying only (no new stack given); `current` is ours to write.
    if unsafe { libc::sigaltstack(std::ptr::null(), &mut current) } != 0 {
        return None;
    }
    let low = current.ss_sp as u64;
    let high = low.checked_add(current.ss_size as u64)?;
    (current.ss_flags & libc::SS_ONSTACK != 0 && sp >= low && sp < high).then_some((low, high))
}

/// The live part of the calling thread's stack above the hook, `[low, high)`: the only memory a
/// walk reads.
#[derive(Clone, Copy, Debug)]
pub struct StackBounds {
    low: u64,
    /// `high - 8 - low`: a word at `a` lies inside iff `a - low <= last`.
    last: u64,
}

impl StackBounds {
    /// `None` if not even one word fits.
    pub fn new(low: u64, high: u64) -> Option<StackBounds> {
        let last = high.checked_sub(8)?.checked_sub(low)?;
        Some(StackBounds { low, last })
    }

    /// The top of the bounds (exclusive).
    #[inline(always)]
    pub fn high(self) -> u64 {
        self.low + self.last + 8
    }

    /// Whether `sp` is 8-aligned and inside the bounds, its top included: a frame there has
    /// every word from `sp` up to the top inside them.
    #[inline(always)]
    pub fn holds_sp(self, sp: u64) -> bool {
        sp.wrapping_sub(self.low) <= self.last + 8 && sp & 7 == 0
    }

    /// Whether the word at `address` is 8-aligned and inside the bounds.
    #[inline(always)]
    pub fn contains(self, address: u64) -> bool {
        address.wrapping_sub(self.low) <= self.last && address & 7 == 0
    }

    /// The stack word at `address`, if it is 8-aligned and inside the bounds.
    #[inline(always)]
    pub fn read(self, address: u64) -> Option<u64> {
        if address.wrapping_sub(self.low) > self.last || address & 7 != 0 {
            return None;
        }
        // SAFETY: the address is 8-aligned and its 8 bytes lie inside [sp, stack_top) of this
        // thread's stack, which is mapped and readable.
        Some(unsafe { std::ptr::read_volatile(address as *const u64) })
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
        // The caches and frame arrays are left as the mapping's zero bytes: empty caches and
        // stacks (see `UnwindRules` and `StackCache`).
        unsafe {
            (&raw mut (*ptr).stack_low).write(stack_low);
            (&raw mut (*ptr).stack_high).write(stack_high);
            (&raw mut (*ptr).caching).write(true);
            #[cfg(target_arch = "x86_64")]
            (&raw mut (*ptr).framehop).write(FramehopCache::new_in());
            #[cfg(target_arch = "x86_64")]
            {
                let reads = (&raw mut (*ptr).reads).cast::<Reads>();
                for i in 0..MAX_DEPTH_LIMIT {
                    reads.add(i).write(Reads::NONE);
                }
            }
            (&raw mut (*ptr).len).write(0);
            (&raw mut (*ptr).found).write(None);
            (&raw mut (*ptr).keepable).write(false);
            (&raw mut (*ptr).bounds).write(None);
            (&raw mut (*ptr).last_len).write(0);
            (&raw mut (*ptr).side).write(None);
            (&raw mut (*ptr).copy).write(None);
            (&raw mut (*ptr).region).write(Some(region));
        }
        Some(ptr)
    }

    /// Readies a state that served a thread that ended (see `capture_pool`) for the thread
    /// whose stack is `[stack_low, stack_high)`: its caches stay, the last walk is dropped.
    pub fn reuse_for(&mut self, stack_low: u64, stack_high: u64) {
        self.stack_low = stack_low;
        self.stack_high = stack_high;
        self.caching = true;
        self.len = 0;
        self.found = None;
        self.keepable = false;
        self.bounds = None;
    }

    /// Frees a state made by [`CaptureState::create`].
    ///
    /// # Safety
    /// `state` must come from `create` and not be used afterwards.
    pub unsafe fn destroy(state: *mut CaptureState) {
        // SAFETY: the caller hands over ownership; the region is moved out before unmapping.
        unsafe {
            #[cfg(target_arch = "x86_64")]
            std::ptr::drop_in_place(&raw mut (*state).framehop);
            drop((*state).side.take());
            drop((*state).copy.take());
            let region = (*state).region.take();
            drop(region);
        }
    }

    /// Uses the rule and stack caches (the default), or steps every frame with framehop and
    /// interns every stack frame by frame (`LEAKVIEW_STACK_REUSE=0`, a diagnostic; turning
    /// caching off right after a capture with it is also how `LEAKVIEW_STACK_VERIFY=1` checks
    /// that capture).
    pub fn set_caching(&mut self, on: bool) {
        self.caching = on;
    }

    /// The last capture is about to be checked against a full unwind: counts it, and whether it
    /// found a kept stack, for [`report_stack_checks`]. Call after `commit`, before the next walk.
    pub fn count_check(&self) {
        STACKS_CHECKED.fetch_add(1, Ordering::Relaxed);
        if self.found.is_some() {
            KEPT_STACKS_CHECKED.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The node of the kept stack the last walk found, if it found one.
    #[inline(always)]
    pub fn found(&self) -> Option<u32> {
        self.found
    }

    /// Forgets the stacks the thread interned (their node ids belong to another trie).
    pub fn forget(&mut self) {
        self.stacks.forget();
        #[cfg(target_arch = "x86_64")]
        self.kept.forget();
        self.last_len = 0;
    }

    /// [`CaptureState::walk`] off the common path: on a small stack (too little room below the
    /// hook, so the unwinder runs on the side stack), on the alternate signal stack (within it),
    /// or on a stack of the program's own making (coroutines: a copy of it, see [`stack_copy`]).
    #[cfg(target_arch = "x86_64")]
    #[cold]
    #[inline(never)]
    fn walk_elsewhere(&mut self, snapshot: &Snapshot, hook: HookRegisters, max_depth: usize) -> Walk {
        let sp = hook.sp;
        let bounds = if self.stack_high != 0 && sp >= self.stack_low && sp < self.stack_high {
            Some((self.stack_low, self.stack_high))
        } else {
            alternate_signal_stack(sp)
        };
        let Some((low, high)) = bounds else {
            return self.on_side_stack(|state| state.walk_copied(snapshot, hook, max_depth));
        };
        if sp - low >= WALK_STACK_ROOM {
            return self.walk_within(snapshot, hook, max_depth, high);
        }
        self.on_side_stack(|state| state.walk_within(snapshot, hook, max_depth, high))
    }

    /// Runs `walk` on the side stack (made when first needed); no walk if it cannot be made.
    #[cfg(target_arch = "x86_64")]
    fn on_side_stack(&mut self, walk: impl FnOnce(&mut CaptureState) -> Walk) -> Walk {
        match self.side.take().or_else(SideStack::new) {
            Some(mut side) => {
                let result = side.run(|| walk(self));
                self.side = Some(side);
                result
            }
            None => self.no_walk(),
        }
    }

    /// Walks a stack whose bounds are unknown (a coroutine's) on a copy of it, growing the
    /// copy while the walk wants words past its end. Stepped by framehop frame by frame; such
    /// stacks are not kept.
    #[cfg(target_arch = "x86_64")]
    fn walk_copied(&mut self, snapshot: &Snapshot, hook: HookRegisters, max_depth: usize) -> Walk {
        use framehop::FrameAddress;
        let Some(mut copy) = self.copy.take().or_else(StackCopy::new) else { return self.no_walk() };
        let max_depth = max_depth.clamp(1, MAX_DEPTH_LIMIT);
        let mut window = copy.window();
        let mut result = Walk { unknown_address: false };
        loop {
            self.no_walk();
            result.unknown_address = false;
            let copied = copy.take(hook.sp, window);
            if copied == 0 {
                break;
            }
            let mut cut_short = false;
            let mut read = |a: u64| {
                cut_short |= copy.beyond(a);
                copy.read(a).ok_or(())
            };
            let address = FrameAddress::from_instruction_pointer(hook.ip);
            let first = unwind_rules::framehop_step(
                snapshot,
                &mut self.framehop,
                address,
                hook.sp,
                hook.bp,
                &mut read,
            );
            let (len, hash) = match first {
                Some(caller) => step_with_framehop(
                    snapshot,
                    &mut self.framehop,
                    caller,
                    &mut self.ips[..max_depth],
                    &mut read,
                    &mut result.unknown_address,
                ),
                None => (0, stack_cache::HASH_START),
            };
            self.len = len;
            self.hash = stack_cache::hash_finish(hash, len);
            if !(cut_short && copied == window && window < MAX_WINDOW) {
                copy.settle(window);
                break;
            }
            window = (window * 2).min(MAX_WINDOW);
        }
        self.copy = Some(copy);
        result
    }

    /// An empty walk.
    #[cfg(target_arch = "x86_64")]
    fn no_walk(&mut self) -> Walk {
        self.len = 0;
        self.found = None;
        self.keepable = false;
        Walk { unknown_address: false }
    }

    /// Walks the stack above the hook whose registers are `hook` into the state, keeping
    /// at most `max_depth` frames (the innermost ones). Call [`CaptureState::commit`] afterwards.
    /// A hook off the thread's stack, or too near its end, goes to `walk_elsewhere`.
    #[cfg(target_arch = "x86_64")]
    #[inline]
    pub fn walk(&mut self, snapshot: &Snapshot, hook: HookRegisters, max_depth: usize) -> Walk {
        let sp = hook.sp;
        if self.stack_high == 0
            || sp < self.stack_low.saturating_add(WALK_STACK_ROOM)
            || sp >= self.stack_high
        {
            return self.walk_elsewhere(snapshot, hook, max_depth);
        }
        self.walk_within(snapshot, hook, max_depth, self.stack_high)
    }

    /// [`CaptureState::walk`] of a stack whose top is `high` (the thread's, or the alternate
    /// signal stack's). The usual case is taken here: the hook's frame stepped by a learned
    /// rule inline and the stack found among the kept ones; everything else out of line.
    #[cfg(target_arch = "x86_64")]
    #[inline(never)]
    fn walk_within(&mut self, snapshot: &Snapshot, hook: HookRegisters, max_depth: usize, high: u64) -> Walk {
        let HookRegisters { ip, sp, bp } = hook;
        self.len = 0;
        self.found = None;
        self.keepable = false;
        let result = Walk { unknown_address: false };
        let max_depth = max_depth.clamp(1, MAX_DEPTH_LIMIT);
        let Some(bounds) = StackBounds::new(sp, high) else { return result };
        if !(self.caching && self.rules.is_for(snapshot)) {
            return self.walk_from_hook(snapshot, hook, max_depth, bounds);
        }
        let Some(first) = self.rules.step_innermost_inline(ip, sp, bp, bounds) else {
            return self.walk_from_hook(snapshot, hook, max_depth, bounds);
        };
        // Out of the hook's own frame (not recorded).
        let Some(caller) = first else { return result };
        if let Some(node) = self.find_kept(caller, max_depth, bounds) {
            self.found = Some(node);
            return result;
        }
        self.walk_from_caller(snapshot, caller, max_depth, bounds)
    }

    /// Files the stack of the walk whose first frame above the hook's is `caller` (see
    /// [`Filing`]) and looks for it among the kept stacks (caching on).
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn find_kept(
        &mut self,
        caller: unwind_rules::Caller,
        max_depth: usize,
        bounds: StackBounds,
    ) -> Option<u32> {
        let mut filing = Filing::new(caller.0, caller.1);
        if self.kept.wants_link(filing) {
            filing = Filing::with_link(caller.0, caller.1, self.rules.caller_link(caller, bounds));
        }
        self.filing = filing;
        self.kept.find(filing, caller, max_depth, bounds)
    }

    /// [`CaptureState::walk_within`] from the hook's frame, every case (the state's last walk
    /// already reset; `max_depth` clamped).
    #[cfg(target_arch = "x86_64")]
    #[inline(never)]
    fn walk_from_hook(
        &mut self,
        snapshot: &Snapshot,
        hook: HookRegisters,
        max_depth: usize,
        bounds: StackBounds,
    ) -> Walk {
        use framehop::FrameAddress;
        let HookRegisters { ip, sp, bp } = hook;
        let caching = self.caching;
        if caching && self.rules.use_snapshot(snapshot) {
            // Kept stacks were walked by rules now forgotten.
            self.kept.forget();
        }
        // Out of the hook's own frame (not recorded).
        let first = if caching {
            self.rules.step_innermost(snapshot, &mut self.framehop, ip, sp, bp, bounds)
        } else {
            let address = FrameAddress::from_instruction_pointer(ip);
            let mut read = |a: u64| bounds.read(a).ok_or(());
            unwind_rules::framehop_step(snapshot, &mut self.framehop, address, sp, bp, &mut read)
        };
        let Some(caller) = first else { return Walk { unknown_address: false } };
        if caching && let Some(node) = self.find_kept(caller, max_depth, bounds) {
            self.found = Some(node);
            return Walk { unknown_address: false };
        }
        self.walk_from_caller(snapshot, caller, max_depth, bounds)
    }

    /// The walk outward from `caller`, the first frame above the hook's, when no kept stack
    /// was found (the state's last walk already reset; `max_depth` clamped).
    #[cfg(target_arch = "x86_64")]
    #[inline(never)]
    fn walk_from_caller(
        &mut self,
        snapshot: &Snapshot,
        caller: unwind_rules::Caller,
        max_depth: usize,
        bounds: StackBounds,
    ) -> Walk {
        let mut result = Walk { unknown_address: false };
        let (len, hash) = if self.caching {
            self.sps[0] = caller.1;
            self.bps[0] = caller.2;
            let (len, hash) = self.rules.walk(
                snapshot,
                &mut self.framehop,
                caller,
                bounds,
                &mut self.ips[..max_depth],
                &mut result.unknown_address,
            );
            self.keepable = !result.unknown_address && len < max_depth;
            self.max_depth = max_depth;
            self.bounds = Some(bounds);
            (len, hash)
        } else {
            let mut read = |a: u64| bounds.read(a).ok_or(());
            step_with_framehop(
                snapshot,
                &mut self.framehop,
                caller,
                &mut self.ips[..max_depth],
                &mut read,
                &mut result.unknown_address,
            )
        };
        self.len = len;
        self.hash = stack_cache::hash_finish(hash, len);
        result
    }

    #[cfg(not(target_arch = "x86_64"))]
    pub fn walk(&mut self, _snapshot: &Snapshot, _hook: HookRegisters, _max_depth: usize) -> Walk {
        self.len = 0;
        Walk { unknown_address: false }
    }

    /// Turns the last walk into a node of the trie: found in the stack cache, or interned from
    /// the root with `intern(parent, ip)` (which finds or creates the node in the trie).
    /// Returns 0 for an empty stack; if interning fails, the node of the frames interned so far.
    #[inline(always)]
    pub fn commit(&mut self, intern: impl FnMut(u32, u64) -> Option<u32>) -> u32 {
        // (`found` stays until the next walk: `count_check` counts the checks of kept stacks.)
        if let Some(node) = self.found {
            return node;
        }
        self.commit_walked(intern)
    }

    /// [`CaptureState::commit`] of a walk that found no kept stack.
    #[inline(never)]
    fn commit_walked(&mut self, intern: impl FnMut(u32, u64) -> Option<u32>) -> u32 {
        let (node, seen_before) = self.intern_walk(intern);
        #[cfg(target_arch = "x86_64")]
        if seen_before {
            self.kept.missed_again(self.filing);
        }
        // Only a stack seen before is kept: most stacks seen once are never seen again, and
        // keeping one costs about three captures.
        #[cfg(target_arch = "x86_64")]
        if seen_before && self.keepable && node != 0 && self.kept.worth_keeping(self.filing) {
            self.keep(node);
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = seen_before;
        node
    }

    /// The last walk's node, and whether it was found in the stack cache.
    fn intern_walk(&mut self, mut intern: impl FnMut(u32, u64) -> Option<u32>) -> (u32, bool) {
        let len = self.len;
        if len == 0 {
            return (0, false);
        }
        let ips = &self.ips[..len];
        if self.caching
            && let Some(node) = self.stacks.find(self.hash, ips)
        {
            return (node, true);
        }
        let mut shared = 0;
        if self.caching {
            let limit = len.min(self.last_len);
            while shared < limit && self.last[shared].0 == ips[len - 1 - shared] {
                shared += 1;
            }
        }
        let mut node = if shared > 0 { self.last[shared - 1].1 } else { 0 };
        for i in shared..len {
            let ip = ips[len - 1 - i];
            match intern(node, ip) {
                Some(id) => {
                    node = id;
                    self.last[i] = (ip, id);
                }
                None => {
                    self.last_len = i;
                    self.keepable = false;
                    return (node, false);
                }
            }
        }
        self.last_len = len;
        if self.caching {
            self.stacks.insert(self.hash, &self.ips[..len], node);
        }
        (node, false)
    }

    /// Keeps the last walk's stack, `node`, for [`KeptStacks::find`], if every step of it was
    /// by a learned rule and the walk ended in a way that depends only on what is checked.
    #[cfg(target_arch = "x86_64")]
    #[cold]
    #[inline(never)]
    fn keep(&mut self, node: u32) {
        let (len, Some(bounds)) = (self.len, self.bounds) else { return };
        if len == 0 || len >= self.max_depth {
            return;
        }
        let (ips, sps, bps) = (&self.ips[..len], &mut self.sps[..len], &mut self.bps[..len]);
        let Some(last_rule) = self.rules.replay(ips, sps, bps, &mut self.reads[..len], bounds) else {
            return;
        };
        let frames = (&self.ips[..len], &self.sps[..len], &self.bps[..len]);
        self.checks.clear();
        if let Some(bp_matters) =
            gather_checks(frames, &self.reads[..len], last_rule, bounds, &mut self.checks)
        {
            self.checks.reverse();
            let first = (self.ips[0], self.sps[0], self.bps[0]);
            self.kept.keep(self.filing, first, bp_matters, node, len, &self.checks);
        }
    }
}

/// Captures with caching that the full unwind checked (`LEAKVIEW_STACK_VERIFY=1`), and those
/// of them that found a kept stack.
static STACKS_CHECKED: AtomicU64 = AtomicU64::new(0);
static KEPT_STACKS_CHECKED: AtomicU64 = AtomicU64::new(0);

/// At process exit, if stacks were checked against the full unwind (`LEAKVIEW_STACK_VERIFY=1`):
/// says on stderr how many, and how many of them were kept stacks, so a check that never
/// reaches the kept stacks shows. (A difference is reported when found.)
pub fn report_stack_checks() {
    let checked = STACKS_CHECKED.load(Ordering::Relaxed);
    if checked == 0 {
        return;
    }
    let kept = KEPT_STACKS_CHECKED.load(Ordering::Relaxed);
    let mut line = sys::Line::new();
    line.push(b"leakview: stack check: ");
    line.push_decimal(checked);
    line.push(b" stacks compared with the full unwind, ");
    line.push_decimal(kept);
    line.push(b" of them found among kept stacks\n");
    sys::warn(line.as_bytes());
}

/// Runs [`report_stack_checks`] when the process exits normally (after `atexit` handlers).
extern "C" fn report_stack_checks_at_exit() {
    report_stack_checks();
}

#[used]
#[unsafe(link_section = ".fini_array")]
static REPORT_STACK_CHECKS: extern "C" fn() = report_stack_checks_at_exit;

/// Walks outward from `caller` stepping every frame with framehop, writing return addresses to
/// `out` (innermost first) until the walk ends or `out` is full; returns their number and hash
/// (unfinished). Marks `unknown_address` if a frame lies outside every module of `snapshot`.
#[cfg(target_arch = "x86_64")]
#[inline(never)]
fn step_with_framehop<F: FnMut(u64) -> Result<u64, ()>>(
    snapshot: &Snapshot,
    framehop: &mut FramehopCache,
    mut caller: unwind_rules::Caller,
    out: &mut [u64],
    read: &mut F,
    unknown_address: &mut bool,
) -> (usize, u64) {
    use framehop::FrameAddress;
    let mut hash = stack_cache::HASH_START;
    let mut len = 0;
    // The module range of the last frame: most frames share it.
    let mut known = (0u64, 0u64);
    for frame in out.iter_mut() {
        let (ra, sp, bp) = caller;
        *frame = ra;
        len += 1;
        hash = stack_cache::hash_frame(hash, ra);
        let lookup = ra.wrapping_sub(1);
        if lookup < known.0 || lookup >= known.1 {
            match snapshot.range_of(lookup) {
                Some(range) => known = range,
                None => *unknown_address = true,
            }
        }
        let Some(address) = FrameAddress::from_return_address(ra) else { break };
        match unwind_rules::framehop_step(snapshot, framehop, address, sp, bp, read) {
            Some(next) => caller = next,
            None => break,
        }
    }
    (len, hash)
}

/// Gathers the checks of a walk's frames (return addresses, sp and bp, innermost first), from
/// what each step read (`reads`, see [`UnwindRules::replay`]) and the last frame's rule,
/// outermost first; returns whether the walk depends on the innermost frame's bp, or `None` if
/// the stack cannot be kept.
#[cfg(target_arch = "x86_64")]
fn gather_checks(
    (ips, sps, bps): (&[u64], &[u64], &[u64]),
    reads: &[Reads],
    last_rule: Rule,
    bounds: StackBounds,
    checks: &mut Checks,
) -> Option<bool> {
    // How the walk ended, after the outermost frame.
    let last = ips.len().checked_sub(1)?;
    let (sp, bp) = (*sps.get(last)?, *bps.get(last)?);
    let mut bp_matters = match last_rule {
        Rule::End => false,
        Rule::FramePointer if bp == 0 => true,
        _ => {
            let reads = last_rule.reads(sp, bp)?;
            if reads.new_sp <= sp || reads.new_sp > bounds.high() {
                // No step outward, or above the top of the stack: ends whatever the words.
            } else {
                // Otherwise the walk must have ended on a return address of 0, read just
                // like the bp word (if any).
                if let Some(at) = reads.bp_at {
                    checks.push(at, bounds.read(at)?)?;
                }
                if bounds.read(reads.ra_at)? != 0 {
                    return None;
                }
                checks.push(reads.ra_at, 0)?;
            }
            reads.uses_bp
        }
    };
    // Each step outward, from the outermost inward; `bp_matters` is whether the walk from
    // frame i + 1 on depends on that frame's bp.
    for i in (0..last).rev() {
        let reads = *reads.get(i)?;
        checks.push(reads.ra_at, ips[i + 1])?;
        if let Some(at) = reads.bp_at
            && (bp_matters || reads.uses_bp || at < sps[i])
        {
            checks.push(at, bps[i + 1])?;
        }
        bp_matters = reads.uses_bp || (reads.bp_at.is_none() && bp_matters);
    }
    Some(bp_matters)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::trie::StackTable;

    /// What one capture gave: the frames, the node, and whether it was a kept stack.
    type Ways = Vec<(Vec<u64>, u32, bool)>;

    /// Walks (and interns) the stack of the calling function five ways — caching while the
    /// rules are learned, without caching, caching with learned rules, again (found in the
    /// stack cache, so kept if it can be), and once more (found among the kept stacks if it
    /// was kept).
    #[inline(never)]
    fn walk_five_ways(capture: &mut CaptureState, snapshot: &Snapshot, table: &StackTable) -> Ways {
        let hook = HookRegisters::here();
        let mut out = Vec::new();
        for (caching, forget) in [(true, true), (false, true), (true, true), (true, false), (true, false)] {
            capture.set_caching(caching);
            if forget {
                capture.forget();
            }
            capture.walk(snapshot, hook, MAX_DEPTH_LIMIT);
            let found = capture.found.is_some();
            let node = capture.commit(|parent, ip| table.intern(parent, ip, |_| true).id());
            out.push((frames_of(table, node), node, found));
        }
        out
    }

    /// The return addresses of stack `node`, innermost first.
    fn frames_of(table: &StackTable, mut node: u32) -> Vec<u64> {
        let mut frames = Vec::new();
        while let Some((parent, ip)) = table.get(node) {
            frames.push(ip);
            node = parent;
        }
        frames
    }

    #[inline(never)]
    fn deep_a(depth: u32, f: &mut dyn FnMut() -> Ways) -> Ways {
        let pad = std::hint::black_box([depth; 9]);
        let out = if depth == 0 { f() } else { deep_b(depth - 1, f) };
        std::hint::black_box(pad);
        out
    }

    #[inline(never)]
    fn deep_b(depth: u32, f: &mut dyn FnMut() -> Ways) -> Ways {
        let out = if depth.is_multiple_of(3) { deep_a(depth, f) } else { deep_a(depth.saturating_sub(1), f) };
        std::hint::black_box(depth);
        out
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn cached_rules_and_stacks_give_the_full_unwind() {
        let registry = crate::engine::modules::ModuleRegistry::new();
        registry.rescan(0, &mut |_| {});
        let snapshot = registry.snapshot().expect("snapshot");
        let table = StackTable::new(1 << 16).expect("table");
        let (low, high) = thread_stack_bounds().expect("stack bounds");
        let state = CaptureState::create(low, high).expect("capture state");
        // SAFETY: created just above, used by this thread only, destroyed below.
        let capture = unsafe { &mut *state };
        let mut kept = 0;
        for depth in [2, 3, 6, 30, 31, 45] {
            let ways = deep_a(depth, &mut || walk_five_ways(capture, snapshot, &table));
            let (frames, node, _) = &ways[0];
            assert!(frames.len() > depth as usize + 2, "{} frames at depth {depth}", frames.len());
            assert!(table.spells(*node, frames));
            assert!(!ways[0].2 && !ways[1].2 && !ways[2].2 && !ways[3].2, "nothing kept before");
            let same = |(f, n, _): &(Vec<u64>, u32, bool)| (f.clone(), *n);
            assert_eq!(same(&ways[1]), same(&ways[0]), "full unwind differs (depth {depth})");
            assert_eq!(same(&ways[2]), same(&ways[0]), "learned rules differ (depth {depth})");
            assert_eq!(same(&ways[3]), same(&ways[0]), "the fourth capture differs (depth {depth})");
            assert_eq!(same(&ways[4]), same(&ways[0]), "the fifth capture differs (depth {depth})");
            kept += usize::from(ways[4].2);
        }
        // Shallow stacks are kept (deep ones here may need more checks than a kept stack holds).
        assert!(kept >= 3, "only {kept} stacks were found among the kept ones");
        let (learned, left_to_framehop) = capture.rules.counts();
        assert!(learned >= 8, "{learned} rules learned, {left_to_framehop} left to framehop");
        // SAFETY: from `create`, not used afterwards.
        unsafe { CaptureState::destroy(state) };
    }

    #[test]
    fn reads_are_bounds_checked() {
        let words = [1u64, 2, 3, 4];
        let low = words.as_ptr() as u64;
        let bounds = StackBounds::new(low, low + 32).expect("bounds");
        assert_eq!(bounds.read(low), Some(1));
        assert_eq!(bounds.read(low + 8), Some(2));
        assert_eq!(bounds.read(low + 24), Some(4));
        assert_eq!(bounds.read(low + 32), None);
        assert_eq!(bounds.read(low - 8), None);
        assert_eq!(bounds.read(low + 4), None);
        assert_eq!(bounds.read(u64::MAX - 7), None);
        // A last word cut short by the top of the stack is not read.
        let short = StackBounds::new(low, low + 31).expect("bounds");
        assert_eq!(short.read(low + 24), None);
        assert_eq!(short.read(low + 16), Some(3));
        assert_eq!(short.high(), low + 31);
        assert!(short.contains(low + 16) && !short.contains(low + 24) && !short.contains(low + 1));
        assert!(StackBounds::new(low, low + 7).is_none());
    }
}
