//! A per-thread cache of unwind rules keyed by code address, learned from framehop and applied
//! with two or three bounds-checked loads per frame.
//!
//! framehop's step for one frame costs a few hundred instructions even when its rule cache hits
//! (module search, a generation check, a 136-byte register set per call). Yet on x86_64 nearly
//! every frame's rule has one of three shapes:
//! - *sp rule*: the caller's sp is `sp + offset`; its bp is unchanged or the word at
//!   `sp + bp_slot`; the return address is the word at `new_sp - 8`;
//! - *frame-pointer rule*: the caller's sp is `bp + 16`, its bp the word at `bp`, the return
//!   address the word at `bp + 8` (and a bp of 0 ends the walk);
//! - *end of stack*.
//!
//! This cache stores the shape per address in 16 bytes and applies it directly (`apply`). An
//! address's entry lies in its home slot or in the slot beside it: two addresses that share a
//! home slot both keep their rules. (With one slot each, two such addresses on one busy path
//! kept evicting each other, and stacks through them were never kept, as keeping needs every
//! step's rule learned: about one sqlite3 run in a thousand, by where the libraries happened to
//! be loaded, recorded at full-unwind cost.) The walk's inline steps look at the home slot
//! only (looking beside it too cost the C workload of bench/instructions.sh 42 instructions per
//! allocation); an entry beside its home is stepped by [`UnwindRules::step`], one call more.
//!
//! Exactness: a step framehop takes by a *cached* rule (`UnwindRuleX86_64::exec`) is a function
//! of sp, bp and the stack words it reads alone, fixed by the frame's address. So once framehop
//! has stepped out of a frame for real (its own cache then holds the rule), the rule is read off
//! framehop by probing it ([`rule_probes`]). Whatever cannot be read off that way — steps
//! framehop does not cache (DWARF expressions), shapes outside the three — is marked "ask
//! framehop", which then steps that frame every time.
//!
//! The cache belongs to module [`Snapshot`]s: when the snapshot changes it stays if the new one
//! still has every module of the old (libraries were only loaded; rules for addresses outside
//! every module are dropped), and starts empty again if anything was unloaded.

use crate::engine::modules::Snapshot;
use crate::engine::rule_probes;
use crate::engine::stack::StackBounds;
use crate::engine::stack_cache;
use framehop::x86_64::{CacheX86_64, UnwindRegsX86_64};
use framehop::{FrameAddress, MustNotAllocateDuringUnwind, Unwinder as _};

/// framehop's per-thread cache.
pub type FramehopCache = CacheX86_64<MustNotAllocateDuringUnwind>;

const SLOTS_LOG2: u32 = 14;
/// Entries per thread (16 bytes each: 256 KiB, its pages touched as rules are learned; with
/// 4,096 the python3 workload of bench/instructions.sh, which steps out of some 6,000 code
/// addresses, learned its rules again and again: 15 instructions per allocation more).
const SLOTS: usize = 1 << SLOTS_LOG2;

/// Key bit for the hook's own frame: its step is framehop's step for an instruction pointer
/// (not a return address), which may differ.
const INNERMOST: u64 = 1 << 63;

/// Largest sp offset a rule can have (framehop's are below 8 * (65535 + 9)).
pub(crate) const MAX_OFFSET: u64 = 1 << 24;

// `Entry::word`, for the two shapes the walk applies inline (`SLOW` clear):
// - an sp rule: the offset (a multiple of 8, not 0); `Entry::slot` is the bp slot, a multiple
//   of 8 from 0 to offset - 8 (inside the frame, so readable whenever the return address is),
//   or -1 if bp is unchanged;
// - the frame-pointer rule: 0.
// Any other entry has `SLOW` set, the kind in bits 24-25, the `UNKNOWN_MODULE` flag, and for an
// sp rule the offset in bits 0-23 with the bp slot (or `BP_UNCHANGED`) in `Entry::slot`.
const SLOW: u32 = 1 << 31;
/// The address lies outside every known module.
const UNKNOWN_MODULE: u32 = 1 << 30;
const KIND_SHIFT: u32 = 24;
const KIND_SP: u32 = 0;
const KIND_FRAME_POINTER: u32 = 1;
const KIND_END: u32 = 2;
const KIND_FRAMEHOP: u32 = 3;
const OFFSET_MASK: u32 = (1 << KIND_SHIFT) - 1;
/// `Entry::word` of the end-of-stack rule for an address in a known module.
const END_IN_KNOWN_MODULE: u32 = SLOW | KIND_END << KIND_SHIFT;
/// `Entry::slot` of a slow sp rule that leaves bp unchanged.
pub(crate) const BP_UNCHANGED: i32 = i32::MIN;

/// A learned rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// new sp = sp + offset; new bp = bp, or the word at sp + bp_slot; return address at
    /// new sp - 8.
    Sp { offset: u32, bp_slot: Option<i32> },
    /// new sp = bp + 16, new bp = the word at bp, return address at bp + 8; ends at bp = 0.
    FramePointer,
    /// The outermost frame.
    End,
}

/// The stack words a step by a rule reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reads {
    /// The caller's sp.
    pub new_sp: u64,
    /// Where the caller's return address is read (new sp - 8).
    pub ra_at: u64,
    /// Where the caller's bp is read, if it is not passed on unchanged.
    pub bp_at: Option<u64>,
    /// Whether the step uses bp itself (the frame-pointer rule).
    pub uses_bp: bool,
}

impl Reads {
    /// Reads of no step (a placeholder).
    pub const NONE: Reads = Reads { new_sp: 0, ra_at: 0, bp_at: None, uses_bp: false };
}

impl Rule {
    /// What a step by this rule out of the frame at (`sp`, `bp`) reads (`None` for the end
    /// of the stack, or where the addresses overflow).
    pub fn reads(self, sp: u64, bp: u64) -> Option<Reads> {
        match self {
            Rule::Sp { offset, bp_slot } => {
                let new_sp = sp.checked_add(u64::from(offset))?;
                let bp_at = match bp_slot {
                    Some(slot) => Some(sp.checked_add_signed(i64::from(slot))?),
                    None => None,
                };
                Some(Reads { new_sp, ra_at: new_sp.checked_sub(8)?, bp_at, uses_bp: false })
            }
            Rule::FramePointer => {
                let new_sp = bp.checked_add(16)?;
                Some(Reads { new_sp, ra_at: new_sp - 8, bp_at: Some(bp), uses_bp: true })
            }
            Rule::End => None,
        }
    }
}

/// One cached address. All-zero is an empty slot (no key is 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
struct Entry {
    key: u64,
    word: u32,
    slot: i32,
}

impl Entry {
    const EMPTY: Entry = Entry { key: 0, word: 0, slot: 0 };

    /// The entry for `key` (`rule`: `None` if framehop must step it every time). An sp rule
    /// whose offset does not fit the entry's offset bits is left to framehop.
    fn new(key: u64, rule: Option<Rule>, unknown_module: bool) -> Entry {
        let rule = rule.filter(|r| !matches!(r, Rule::Sp { offset, .. } if u64::from(*offset) >= MAX_OFFSET));
        if !unknown_module {
            match rule {
                Some(Rule::Sp { offset, bp_slot: None }) if offset % 8 == 0 && offset > 0 => {
                    return Entry { key, word: offset, slot: -1 };
                }
                Some(Rule::Sp { offset, bp_slot: Some(slot) })
                    if offset % 8 == 0
                        && slot >= 0
                        && slot % 8 == 0
                        && i64::from(slot) <= i64::from(offset) - 8 =>
                {
                    return Entry { key, word: offset, slot };
                }
                Some(Rule::FramePointer) => return Entry { key, word: 0, slot: 0 },
                _ => {}
            }
        }
        let flag = if unknown_module { UNKNOWN_MODULE } else { 0 };
        let (kind, offset, slot) = match rule {
            Some(Rule::Sp { offset, bp_slot }) => (KIND_SP, offset, bp_slot.unwrap_or(BP_UNCHANGED)),
            Some(Rule::FramePointer) => (KIND_FRAME_POINTER, 0, 0),
            Some(Rule::End) => (KIND_END, 0, 0),
            None => (KIND_FRAMEHOP, 0, 0),
        };
        Entry { key, word: SLOW | flag | kind << KIND_SHIFT | offset, slot }
    }

    /// The rule, `None` if framehop steps this address every time.
    fn rule(self) -> Option<Rule> {
        if self.word & SLOW == 0 {
            return Some(match self.word {
                0 => Rule::FramePointer,
                offset => Rule::Sp { offset, bp_slot: (self.slot >= 0).then_some(self.slot) },
            });
        }
        match (self.word >> KIND_SHIFT) & 3 {
            KIND_SP => Some(Rule::Sp {
                offset: self.word & OFFSET_MASK,
                bp_slot: (self.slot != BP_UNCHANGED).then_some(self.slot),
            }),
            KIND_FRAME_POINTER => Some(Rule::FramePointer),
            KIND_END => Some(Rule::End),
            _ => None,
        }
    }

    fn unknown_module(self) -> bool {
        self.word & (SLOW | UNKNOWN_MODULE) == SLOW | UNKNOWN_MODULE
    }
}

/// The caller of a frame: (return address, sp, bp).
pub type Caller = (u64, u64, u64);

/// Applies `rule` to the frame at (`sp`, `bp`), reading stack words with `read`. `None`: the
/// walk ends here (as it does when framehop's step fails, ends the stack, returns 0, or does not
/// move sp outward).
#[inline]
pub(crate) fn apply(rule: Rule, sp: u64, bp: u64, read: impl Fn(u64) -> Option<u64>) -> Option<Caller> {
    let (new_sp, new_bp) = match rule {
        Rule::Sp { offset, bp_slot } => {
            let new_sp = sp.checked_add(u64::from(offset))?;
            let new_bp = match bp_slot {
                None => bp,
                Some(slot) => read(sp.checked_add_signed(i64::from(slot))?)?,
            };
            (new_sp, new_bp)
        }
        Rule::FramePointer => {
            if bp == 0 {
                return None;
            }
            (bp.checked_add(16)?, read(bp)?)
        }
        Rule::End => return None,
    };
    if new_sp <= sp {
        return None;
    }
    let ra = read(new_sp - 8)?;
    (ra != 0).then_some((ra, new_sp, new_bp))
}

/// [`apply`] for an entry whose rule the walk applies inline (`SLOW` clear), out of the frame
/// at (`sp`, `bp`). The caller it gives has its sp 8-aligned and inside the bounds.
///
/// # Safety
/// `sp` must be 8-aligned and inside `bounds` ([`StackBounds::holds_sp`]); `entry.word` must
/// have `SLOW` clear.
#[inline(always)]
unsafe fn step_inline(entry: Entry, sp: u64, bp: u64, bounds: StackBounds) -> Option<Caller> {
    let (new_sp, new_bp, ra) = if entry.word == 0 {
        // The frame-pointer rule (bp + 16 > sp: bp + 8 is inside the bounds, so is its sp).
        if bp == 0 {
            return None;
        }
        let new_bp = bounds.read(bp)?;
        let new_sp = bp.wrapping_add(16);
        if new_sp <= sp {
            return None;
        }
        (new_sp, new_bp, bounds.read(bp.wrapping_add(8))?)
    } else {
        // An sp rule: its offset is a positive multiple of 8, its bp slot one from 0 to
        // offset - 8 (see `Entry::new`).
        let offset = u64::from(entry.word);
        if offset > bounds.high() - sp {
            return None;
        }
        let new_sp = sp + offset;
        let new_bp = if entry.slot >= 0 {
            // SAFETY: sp + slot lies in [sp, new_sp - 8], inside the bounds (sp is, by the
            // caller's promise, and new_sp is at most their top), and is 8-aligned.
            unsafe { std::ptr::read_volatile((sp + entry.slot as u64) as *const u64) }
        } else {
            bp
        };
        // SAFETY: new_sp - 8 lies in [sp, high - 8] and is 8-aligned, as above.
        (new_sp, new_bp, unsafe { std::ptr::read_volatile((new_sp - 8) as *const u64) })
    };
    (ra != 0).then_some((ra, new_sp, new_bp))
}

/// One framehop step out of the frame at (`sp`, `bp`) whose code address is `address`.
#[inline(never)]
pub fn framehop_step<F: FnMut(u64) -> Result<u64, ()>>(
    snapshot: &Snapshot,
    cache: &mut FramehopCache,
    address: FrameAddress,
    sp: u64,
    bp: u64,
    read: &mut F,
) -> Option<Caller> {
    let mut regs = UnwindRegsX86_64::new(address.address(), sp, bp);
    match snapshot.unwinder.unwind_frame(address, &mut regs, cache, read) {
        Ok(Some(ra)) if regs.sp() > sp && ra != 0 => Some((ra, regs.sp(), regs.bp())),
        _ => None,
    }
}

/// Where a walk is: the frame at (`sp`, `bp`) returning to `ra`, the `len` frames before it
/// (already written out) and their hash.
#[derive(Clone, Copy)]
struct Cursor {
    ra: u64,
    sp: u64,
    bp: u64,
    len: usize,
    hash: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// The walk is over (or `out` is full).
    End,
    /// The last frame written needs a step by [`UnwindRules::step`].
    Careful,
}

/// The walk's inner loop: records frames (their return addresses, in `out`) and steps out of
/// them by the sp rules cached for them (the common case, spelled out), while `out` has room.
/// The cursor's sp must be 8-aligned and at least the low bound; `high` is the bound's top. Sp
/// rules keep sp 8-aligned (offsets and slots are multiples of 8) and inside the bounds (sp only
/// grows, never past `high`).
#[inline(never)]
fn inline_steps(entries: &[Entry; SLOTS], cursor: &mut Cursor, out: &mut [u64], high: u64) -> Stop {
    let Cursor { mut ra, mut sp, mut bp, mut len, mut hash } = *cursor;
    let stop = loop {
        let Some(frame) = out.get_mut(len) else { break Stop::End };
        *frame = ra;
        len += 1;
        let product = ra.wrapping_mul(stack_cache::ADDRESS_MULTIPLIER);
        hash = stack_cache::hash_product(hash, product);
        // (The home slot only: an entry beside it is stepped by `UnwindRules::step`.)
        let entry = entries[(product >> (64 - SLOTS_LOG2)) as usize];
        // A return address of 0 (no key is 0) always stops here.
        if entry.key != ra || entry.word & SLOW != 0 || entry.word == 0 {
            if ra == 0 {
                // The end of the stack: the frame is not one.
                len -= 1;
                hash = stack_cache::hash_without_last_zero(hash);
                break Stop::End;
            }
            if entry.key == ra && entry.word == END_IN_KNOWN_MODULE {
                // The outermost frame (what `UnwindRules::step` would find, without the call).
                break Stop::End;
            }
            break Stop::Careful;
        }
        // sp <= new_sp - 8 < high: the return-address slot and the bp slot (between sp and
        // it) are inside the bounds, and both are aligned.
        let new_sp = sp + u64::from(entry.word);
        if new_sp > high {
            break Stop::End;
        }
        if entry.slot >= 0 {
            // SAFETY: sp + slot lies in [sp, new_sp - 8]: inside the bounds, aligned.
            bp = unsafe { std::ptr::read_volatile((sp + entry.slot as u64) as *const u64) };
        }
        // SAFETY: new_sp - 8 lies in [sp, high - 8]: inside the bounds, aligned.
        ra = unsafe { std::ptr::read_volatile((new_sp - 8) as *const u64) };
        sp = new_sp;
    };
    *cursor = Cursor { ra, sp, bp, len, hash };
    stop
}

/// The per-thread rule cache (lives in the thread's capture state; all-zero is empty).
pub struct UnwindRules {
    /// The snapshot the entries were learned with.
    snapshot: *const Snapshot,
    entries: [Entry; SLOTS],
}

/// The home slot of `key` (its entry is there or in the slot beside it, `home ^ 1`).
#[inline(always)]
fn slot(key: u64) -> usize {
    (key.wrapping_mul(stack_cache::ADDRESS_MULTIPLIER) >> (64 - SLOTS_LOG2)) as usize
}

impl UnwindRules {
    /// Makes the cache belong to `snapshot`. Rules learned with another one stay if `snapshot`
    /// still has every module that one had (objects were only loaded: each known address lies
    /// in the same module, with the same unwind tables, so its rule and every step by it are
    /// the same), except the entries of addresses that lay outside every module then; otherwise
    /// they are all forgotten. Returns whether they were (or the cache was empty).
    #[inline]
    pub fn use_snapshot(&mut self, snapshot: &Snapshot) -> bool {
        if std::ptr::eq(self.snapshot, snapshot) {
            return false;
        }
        self.change_snapshot(snapshot)
    }

    #[cold]
    #[inline(never)]
    fn change_snapshot(&mut self, snapshot: &Snapshot) -> bool {
        // SAFETY: the cache only ever holds snapshots the module registry published, which it
        // leaks (see `modules`): the old one is still valid.
        let old = (!self.snapshot.is_null()).then(|| unsafe { &*self.snapshot });
        self.snapshot = snapshot;
        match old {
            Some(old) if snapshot.extends(old) => {
                for entry in self.entries.iter_mut().filter(|e| e.unknown_module()) {
                    *entry = Entry::EMPTY;
                }
                false
            }
            Some(_) => {
                self.entries.fill(Entry::EMPTY);
                true
            }
            None => true,
        }
    }

    /// The entry of `key` if it is cached: the one in its home slot, or else the one beside
    /// it (whose key the caller compares).
    #[inline(always)]
    fn entry(&self, key: u64) -> Entry {
        let home = slot(key);
        let entry = self.entries[home];
        if entry.key == key { entry } else { self.entries[home ^ 1] }
    }

    /// [`UnwindRules::entry`], moving an entry found beside its home slot into it (swapped with
    /// what is there): an address stepped now is likely stepped again soon, and the walk steps
    /// inline only by entries at home.
    #[inline(always)]
    fn entry_to_home(&mut self, key: u64) -> Entry {
        let home = slot(key);
        if self.entries[home].key != key && self.entries[home ^ 1].key == key {
            self.entries.swap(home, home ^ 1);
        }
        self.entries[home]
    }

    /// The rule learned for the return address `ra`, if it is cached and not left to framehop.
    pub fn rule_of(&self, ra: u64) -> Option<Rule> {
        let entry = self.entry(ra);
        if entry.key == ra { entry.rule() } else { None }
    }

    /// [`UnwindRules::step_innermost`] where it takes the learned rule inline (the usual case,
    /// with the cache belonging to the walk's snapshot): `Some` of its result, or `None` where
    /// it would not.
    #[inline(always)]
    pub fn step_innermost_inline(
        &self,
        ip: u64,
        sp: u64,
        bp: u64,
        bounds: StackBounds,
    ) -> Option<Option<Caller>> {
        let key = ip | INNERMOST;
        let entry = self.entries[slot(key)];
        if entry.key == key && entry.word & SLOW == 0 && bounds.holds_sp(sp) {
            // SAFETY: just checked.
            return Some(unsafe { step_inline(entry, sp, bp, bounds) });
        }
        None
    }

    /// Whether the cache belongs to `snapshot` (see [`UnwindRules::use_snapshot`]).
    #[inline(always)]
    pub fn is_for(&self, snapshot: &Snapshot) -> bool {
        std::ptr::eq(self.snapshot, snapshot)
    }

    /// Steps out of the hook's own frame at (`ip`, `sp`, `bp`).
    #[inline]
    pub fn step_innermost(
        &mut self,
        snapshot: &Snapshot,
        cache: &mut FramehopCache,
        ip: u64,
        sp: u64,
        bp: u64,
        bounds: StackBounds,
    ) -> Option<Caller> {
        if let Some(caller) = self.step_innermost_inline(ip, sp, bp, bounds) {
            return caller;
        }
        let key = ip | INNERMOST;
        let entry = self.entry(key);
        if entry.key == key
            && let Some(rule) = entry.rule()
        {
            return apply(rule, sp, bp, |a| bounds.read(a));
        }
        self.learn(snapshot, cache, key, FrameAddress::from_instruction_pointer(ip), (sp, bp), bounds, false)
    }

    /// Walks outward from the frame at (`sp`, `bp`) that returns to `ra`, writing each frame's
    /// return address into `out` (innermost first) until the walk ends or `out` is full. (Each
    /// frame's sp and bp are not logged: [`UnwindRules::replay`] works them out again.)
    /// Returns the number of frames and their hash (see [`stack_cache::hash_frame`]); sets
    /// `unknown` if a frame lies outside every known module.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub fn walk(
        &mut self,
        snapshot: &Snapshot,
        cache: &mut FramehopCache,
        (ra, sp, bp): Caller,
        bounds: StackBounds,
        out: &mut [u64],
        unknown: &mut bool,
    ) -> (usize, u64) {
        if sp & 7 != 0 {
            return self.walk_careful(snapshot, cache, (ra, sp, bp), bounds, out, unknown);
        }
        let mut cursor = Cursor { ra, sp, bp, len: 0, hash: stack_cache::HASH_START };
        while cursor.len < out.len() {
            if inline_steps(&self.entries, &mut cursor, out, bounds.high()) == Stop::End {
                break;
            }
            // The frame at out[len - 1] needs a step the loop does not take inline.
            let Cursor { ra, sp, bp, len, hash } = cursor;
            match self.step(snapshot, cache, ra, sp, bp, bounds, unknown) {
                Some((ra, sp, bp)) => cursor = Cursor { ra, sp, bp, len, hash },
                None => break,
            }
            if cursor.sp & 7 != 0 && len < out.len() {
                let (more, rest) = self.walk_careful(
                    snapshot,
                    cache,
                    (cursor.ra, cursor.sp, cursor.bp),
                    bounds,
                    &mut out[len..],
                    unknown,
                );
                return (len + more, stack_cache::hash_continue(hash, rest, more));
            }
        }
        (cursor.len, cursor.hash)
    }

    /// [`UnwindRules::walk`] for a frame whose sp is not 8-aligned (hand-written code may leave
    /// it so): every step by [`UnwindRules::step`], with every read checked.
    #[cold]
    #[inline(never)]
    fn walk_careful(
        &mut self,
        snapshot: &Snapshot,
        cache: &mut FramehopCache,
        (mut ra, mut sp, mut bp): Caller,
        bounds: StackBounds,
        out: &mut [u64],
        unknown: &mut bool,
    ) -> (usize, u64) {
        let mut hash = stack_cache::HASH_START;
        let mut len = 0;
        while len < out.len() {
            out[len] = ra;
            len += 1;
            hash = stack_cache::hash_frame(hash, ra);
            match self.step(snapshot, cache, ra, sp, bp, bounds, unknown) {
                Some(caller) => (ra, sp, bp) = caller,
                None => break,
            }
        }
        (len, hash)
    }

    /// Steps out of the frame at (`sp`, `bp`) that returns to `ra` by a rule the walk does not
    /// apply inline, or learns its rule; sets `unknown` if `ra` lies outside every known module.
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn step(
        &mut self,
        snapshot: &Snapshot,
        cache: &mut FramehopCache,
        ra: u64,
        sp: u64,
        bp: u64,
        bounds: StackBounds,
        unknown: &mut bool,
    ) -> Option<Caller> {
        let entry = self.entry_to_home(ra);
        // Whether `ra` lies outside every module, for an entry still to be learned.
        let mut outside = false;
        if entry.key == ra {
            if entry.unknown_module() {
                *unknown = true;
            }
            if let Some(rule) = entry.rule() {
                return apply(rule, sp, bp, |a| bounds.read(a));
            }
        } else if !snapshot.contains(ra.wrapping_sub(1)) {
            *unknown = true;
            outside = true;
        }
        let address = FrameAddress::from_return_address(ra)?;
        self.learn(snapshot, cache, ra, address, (sp, bp), bounds, outside)
    }

    /// Steps through a walk's frames again by the learned rules, as the walk did (the stack
    /// words above the hook have not changed since), from the first frame's (`sps[0]`,
    /// `bps[0]`): works out each later frame's sp and bp, and what the step out of each frame
    /// but the last read (`reads[i]`). Returns the rule of the last frame. `None` if a frame
    /// has no learned rule or a step does not lead to the next frame's return address.
    pub fn replay(
        &self,
        ips: &[u64],
        sps: &mut [u64],
        bps: &mut [u64],
        reads: &mut [Reads],
        bounds: StackBounds,
    ) -> Option<Rule> {
        let last = ips.len().checked_sub(1)?;
        for i in 0..last {
            let (sp, bp) = (*sps.get(i)?, *bps.get(i)?);
            let entry = self.entry(ips[i]);
            if entry.key == ips[i] && entry.word & SLOW == 0 && bounds.holds_sp(sp) {
                // The rules the walk applies inline, as it applies them.
                // SAFETY: just checked.
                let (ra, new_sp, new_bp) = unsafe { step_inline(entry, sp, bp, bounds) }?;
                if ra != ips[i + 1] {
                    return None;
                }
                let (bp_at, uses_bp) = match entry.word {
                    0 => (Some(bp), true),
                    _ => ((entry.slot >= 0).then(|| sp + entry.slot as u64), false),
                };
                *sps.get_mut(i + 1)? = new_sp;
                *bps.get_mut(i + 1)? = new_bp;
                *reads.get_mut(i)? = Reads { new_sp, ra_at: new_sp - 8, bp_at, uses_bp };
                continue;
            }
            let rule = self.rule_of(ips[i])?;
            if rule == Rule::FramePointer && bp == 0 {
                return None;
            }
            // `apply`, keeping what it read.
            let step = rule.reads(sp, bp)?;
            if step.new_sp <= sp {
                return None;
            }
            let new_bp = match step.bp_at {
                Some(at) => bounds.read(at)?,
                None => bp,
            };
            if bounds.read(step.ra_at)? != ips[i + 1] {
                return None;
            }
            *sps.get_mut(i + 1)? = step.new_sp;
            *bps.get_mut(i + 1)? = new_bp;
            *reads.get_mut(i)? = step;
        }
        self.rule_of(ips[last])
    }

    /// A key for the stacks that pass through the frame at (`sp`, `bp`) returning to `ra`: the
    /// return addresses of its caller and its caller's caller, read as the walk reads them by
    /// the rules it applies inline (0 where a step has no such rule or ends the walk). Stacks
    /// from one innermost frame usually differ right there.
    #[inline(always)]
    pub fn caller_link(&self, (ra, sp, bp): Caller, bounds: StackBounds) -> u64 {
        if !bounds.holds_sp(sp) {
            return 0;
        }
        // SAFETY: sp is 8-aligned and inside the bounds (just checked).
        let Some(caller) = (unsafe { self.inline_step((ra, sp, bp), bounds) }) else { return 0 };
        // SAFETY: a step's caller has its sp 8-aligned and inside the bounds.
        let outer = unsafe { self.inline_return_address(caller, bounds) };
        caller.0 ^ outer.rotate_left(32)
    }

    /// The return address [`UnwindRules::inline_step`] would give (0 where it gives none),
    /// without the caller's bp.
    ///
    /// # Safety
    /// As for `inline_step`.
    #[inline(always)]
    unsafe fn inline_return_address(&self, (ra, sp, bp): Caller, bounds: StackBounds) -> u64 {
        let entry = self.entries[slot(ra)];
        if entry.key != ra || entry.word & SLOW != 0 {
            return 0;
        }
        if entry.word == 0 {
            // The frame-pointer rule.
            if bp == 0 || bp.wrapping_add(16) <= sp || bounds.read(bp).is_none() {
                return 0;
            }
            return bounds.read(bp.wrapping_add(8)).unwrap_or(0);
        }
        let offset = u64::from(entry.word);
        if offset > bounds.high() - sp {
            return 0;
        }
        // SAFETY: sp + offset - 8 lies in [sp, high - 8] (sp is inside the bounds by the
        // caller's promise) and is 8-aligned (sp is, and offset is a multiple of 8).
        unsafe { std::ptr::read_volatile((sp + offset - 8) as *const u64) }
    }

    /// [`apply`] for a frame whose learned rule the walk applies inline; `None` for any other.
    /// The caller it gives has its sp 8-aligned and inside the bounds.
    ///
    /// # Safety
    /// `sp` must be 8-aligned and inside `bounds` ([`StackBounds::holds_sp`]).
    #[inline(always)]
    unsafe fn inline_step(&self, (ra, sp, bp): Caller, bounds: StackBounds) -> Option<Caller> {
        let entry = self.entries[slot(ra)];
        if entry.key != ra || entry.word & SLOW != 0 {
            return None;
        }
        // SAFETY: the caller's promise, and the entry's rule is one the walk applies inline.
        unsafe { step_inline(entry, sp, bp, bounds) }
    }

    /// Entries with a learned rule, and entries left to framehop.
    #[cfg(test)]
    pub fn counts(&self) -> (usize, usize) {
        let used = self.entries.iter().filter(|e| e.key != 0);
        let framehop = used.clone().filter(|e| e.rule().is_none()).count();
        (used.count() - framehop, framehop)
    }

    /// Steps with framehop out of the frame at (`sp`, `bp`) and, if the entry for `key` is not
    /// there yet, learns it (`outside`: the address lies outside every known module).
    #[cold]
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn learn(
        &mut self,
        snapshot: &Snapshot,
        cache: &mut FramehopCache,
        key: u64,
        address: FrameAddress,
        (sp, bp): (u64, u64),
        bounds: StackBounds,
        outside: bool,
    ) -> Option<Caller> {
        let mut read = |a: u64| bounds.read(a).ok_or(());
        let caller = framehop_step(snapshot, cache, address, sp, bp, &mut read);
        if self.entry(key).key != key {
            let mut rule = rule_probes::probe_rule(snapshot, cache, address);
            if key & INNERMOST != 0 && matches!(rule, Some(Rule::Sp { bp_slot: Some(s), .. }) if s < 0) {
                // framehop keeps bp when the innermost frame's bp slot lies below sp and cannot
                // be read; the rule would end the walk instead.
                rule = None;
            }
            self.insert(Entry::new(key, rule, outside));
        }
        caller
    }

    /// Puts `entry` (of a key not cached) in its home slot, where the walk steps by it inline;
    /// what was there moves beside it, in place of what was there.
    fn insert(&mut self, entry: Entry) {
        let home = slot(entry.key);
        if self.entries[home].key != 0 {
            self.entries[home ^ 1] = self.entries[home];
        }
        self.entries[home] = entry;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_read_only_inside_the_stack_and_end_where_framehop_would() {
        let words = [0u64, 0x1111, 0x7000, 0x2222, 0, 0x3333];
        let low = words.as_ptr() as u64;
        let bounds = StackBounds::new(low, low + 48).expect("bounds");
        let read = |a| bounds.read(a);
        let rule = Rule::Sp { offset: 24, bp_slot: Some(8) };
        assert_eq!(apply(rule, low, 5, read), Some((0x7000, low + 24, 0x1111)));
        // A return address of 0 ends the walk; so does a word past the stack top.
        let rule = Rule::Sp { offset: 40, bp_slot: None };
        assert_eq!(apply(rule, low, 5, read), None);
        let rule = Rule::Sp { offset: 56, bp_slot: None };
        assert_eq!(apply(rule, low, 5, read), None);
        // A bp slot below the stack cannot be read.
        let rule = Rule::Sp { offset: 24, bp_slot: Some(-8) };
        assert_eq!(apply(rule, low, 5, read), None);
        let rule = Rule::FramePointer;
        assert_eq!(apply(rule, low, low + 8, read), Some((0x7000, low + 24, 0x1111)));
        assert_eq!(apply(rule, low, 0, read), None, "bp 0 ends a frame-pointer walk");
        assert_eq!(apply(rule, low + 16, low, read), None, "sp must move outward");
        let rule = Rule::End;
        assert_eq!(apply(rule, low, 5, read), None);
    }

    #[test]
    fn inline_and_careful_steps_agree_with_the_rules() {
        let registry = crate::engine::modules::ModuleRegistry::new();
        registry.rescan(0, &mut |_| {});
        let snapshot = registry.snapshot().expect("snapshot");
        let mut framehop = FramehopCache::new_in();
        let mut rules = Box::new(UnwindRules { snapshot, entries: [Entry::EMPTY; SLOTS] });
        let mut stack = vec![0u64; 96];
        let base = stack.as_ptr() as u64;
        let bounds = StackBounds::new(base, base + 8 * 96).expect("bounds");
        // Every word is 0, a return address below, or a pointer into the stack (a bp, possibly
        // misaligned); every non-zero value has a rule, so the walk never asks framehop.
        let shapes = [
            Rule::Sp { offset: 8, bp_slot: None },
            Rule::Sp { offset: 24, bp_slot: Some(8) },
            Rule::Sp { offset: 40, bp_slot: Some(0) },
            Rule::Sp { offset: 16, bp_slot: Some(-8) },
            Rule::Sp { offset: 12, bp_slot: None },
            Rule::Sp { offset: 32, bp_slot: Some(40) },
            Rule::FramePointer,
            Rule::End,
        ];
        let mut rng = leakview_format::testing::XorShift::new(0x9e37_79b9_7f4a_7c15);
        let mut values: Vec<u64> = (1..40u64).map(|i| 0x40_0000 + i * 0x31).collect();
        values.extend((0..96u64).map(|i| base + 8 * i));
        values.extend((0..8u64).map(|i| base + 8 * i + 4));
        // Return addresses that share a home slot with another: both keep a rule, one of them
        // beside its home at any time.
        let partners: Vec<u64> = values[..8].iter().map(|&v| keys_sharing_a_home_slot(v, 2)[1]).collect();
        values.extend(partners);
        let mut rule_of = std::collections::HashMap::new();
        for &value in &values {
            let home = slot(value);
            if rules.entries[home].key != 0 && rules.entries[home ^ 1].key != 0 {
                continue;
            }
            let rule = shapes[rng.below(shapes.len() as u64) as usize];
            rules.insert(Entry::new(value, Some(rule), false));
            rule_of.insert(value, rule);
        }
        // (Values whose slots were both taken are left out: the walk would ask framehop about
        // them.)
        let known: Vec<u64> = values.iter().copied().filter(|v| rule_of.contains_key(v)).collect();
        let pointers: Vec<u64> = known.iter().copied().filter(|&v| v >= base).collect();
        assert!(known.len() > 100 && pointers.len() > 80);
        let mut inline_frames = 0usize;
        for round in 0..3000 {
            for word in stack.iter_mut() {
                *word = match rng.below(8) {
                    0 => 0,
                    1..=5 => known[rng.below(known.len() as u64) as usize],
                    _ => pointers[rng.below(pointers.len() as u64) as usize],
                };
            }
            let sp = base + 8 * rng.below(24) + if round % 50 == 0 { 4 } else { 0 };
            let start = (known[rng.below(known.len() as u64) as usize], sp, known[0]);
            let max = 1 + rng.below(40) as usize;
            // The reference: every step by `apply`.
            let mut expected = Vec::new();
            let (mut ra, mut sp, mut bp) = start;
            while expected.len() < max {
                expected.push(ra);
                match apply(rule_of[&ra], sp, bp, |a| bounds.read(a)) {
                    Some(caller) => (ra, sp, bp) = caller,
                    None => break,
                }
            }
            // The link of kept stacks steps as the walk does, where the rule is applied inline.
            if inline_at_home(&rules, start.0) {
                let step = apply(rule_of[&start.0], start.1, start.2, |a| bounds.read(a));
                let outer = step
                    .and_then(|c| {
                        inline_at_home(&rules, c.0)
                            .then(|| apply(rule_of[&c.0], c.1, c.2, |a| bounds.read(a)))
                            .flatten()
                    })
                    .map_or(0, |c| c.0);
                let expected_link = step.map_or(0, |c| c.0 ^ outer.rotate_left(32));
                assert_eq!(rules.caller_link(start, bounds), expected_link, "round {round}");
            }
            let mut out = vec![0u64; max];
            let mut unknown = false;
            let (len, hash) = rules.walk(snapshot, &mut framehop, start, bounds, &mut out, &mut unknown);
            assert_eq!(&out[..len], &expected[..], "round {round}");
            // Each frame's registers are worked out again: the next frame is where its rule leads.
            let (mut sps, mut bps) = (vec![start.1; len], vec![start.2; len]);
            let mut reads = vec![Reads::NONE; len];
            let last = rules.replay(&out[..len], &mut sps, &mut bps, &mut reads, bounds).expect("replay");
            assert_eq!(last, rule_of[&out[len - 1]], "round {round}");
            let (mut sp, mut bp) = (start.1, start.2);
            for i in 1..len {
                let step = rule_of[&out[i - 1]].reads(sp, bp).expect("not the end");
                assert_eq!(reads[i - 1], step, "round {round}");
                (_, sp, bp) = apply(rule_of[&out[i - 1]], sp, bp, |a| bounds.read(a)).expect("a step");
                assert_eq!((sps[i], bps[i]), (sp, bp), "round {round}");
            }
            let expected_hash =
                expected.iter().fold(stack_cache::HASH_START, |h, &ip| stack_cache::hash_frame(h, ip));
            assert_eq!(hash, expected_hash, "round {round}");
            assert!(!unknown);
            inline_frames += expected.iter().filter(|ra| inline_at_home(&rules, **ra)).count();
        }
        assert!(inline_frames > 1000, "only {inline_frames} frames had inline rules");
    }

    /// Whether the walk steps out of `key`'s frame inline: its entry is at home, with a rule
    /// applied inline (steps beside home go by `UnwindRules::step`, which moves them home).
    fn inline_at_home(rules: &UnwindRules, key: u64) -> bool {
        let entry = rules.entries[slot(key)];
        entry.key == key && entry.word & SLOW == 0
    }

    /// `count` keys (code addresses above `from`) whose home slot is the same.
    fn keys_sharing_a_home_slot(from: u64, count: usize) -> Vec<u64> {
        let home = slot(from);
        (from..).filter(|&key| slot(key) == home).take(count).collect()
    }

    #[test]
    fn addresses_that_share_a_home_slot_both_keep_their_rules() {
        let empty = crate::engine::modules::tests::empty_snapshot();
        let mut rules = Box::new(UnwindRules { snapshot: empty, entries: [Entry::EMPTY; SLOTS] });
        let keys = keys_sharing_a_home_slot(0x40_1000, 3);
        let (inner, outer) =
            (Rule::Sp { offset: 16, bp_slot: None }, Rule::Sp { offset: 24, bp_slot: Some(8) });
        rules.insert(Entry::new(keys[0], Some(inner), false));
        rules.insert(Entry::new(keys[1], Some(outer), false));
        assert_eq!((rules.rule_of(keys[0]), rules.rule_of(keys[1])), (Some(inner), Some(outer)));
        // A walk through both frames steps each by its rule, and the replay that keeping a
        // stack needs (every step by a learned rule) succeeds.
        // Frame 0 (sp = base) returns to keys[1] at base + 8; frame 1 (sp = base + 16) keeps
        // its caller's bp at base + 24 and returns to 0 at base + 32: the end.
        let stack = [0u64, keys[1], 0, 0x5151, 0, 0];
        let base = stack.as_ptr() as u64;
        let bounds = StackBounds::new(base, base + 48).expect("bounds");
        let mut framehop = FramehopCache::new_in();
        let mut out = [0u64; 8];
        let mut unknown = false;
        let (len, _) = rules.walk(empty, &mut framehop, (keys[0], base, 7), bounds, &mut out, &mut unknown);
        assert_eq!(&out[..len], &keys[..2]);
        let (mut sps, mut bps, mut reads) = ([base; 2], [7; 2], [Reads::NONE; 2]);
        assert_eq!(rules.replay(&keys[..2], &mut sps, &mut bps, &mut reads, bounds), Some(outer));
        assert_eq!((sps[1], bps[1]), (base + 16, 7));
        // Each step out of a frame whose entry lay beside its home moved it home: the last
        // stepped is there.
        assert_eq!(rules.entries[slot(keys[1])].key, keys[1]);
        // A third key of that home takes it; the one there moves beside it, in place of the
        // one that was there.
        rules.insert(Entry::new(keys[2], Some(inner), false));
        assert_eq!(rules.rule_of(keys[2]), Some(inner));
        assert_eq!(rules.rule_of(keys[1]), Some(outer));
        assert_eq!(rules.rule_of(keys[0]), None);
    }

    #[test]
    fn rules_stay_while_modules_are_only_loaded() {
        let registry = crate::engine::modules::ModuleRegistry::new();
        registry.rescan(0, &mut |_| {});
        let full = registry.snapshot().expect("snapshot");
        let empty = crate::engine::modules::tests::empty_snapshot();
        let here = rules_stay_while_modules_are_only_loaded as *const () as usize as u64 + 1;
        let elsewhere = 0x1000;
        let mut rules = Box::new(UnwindRules { snapshot: std::ptr::null(), entries: [Entry::EMPTY; SLOTS] });
        assert!(rules.use_snapshot(empty), "an empty cache counts as forgotten");
        let rule = Rule::Sp { offset: 16, bp_slot: None };
        rules.entries[slot(here)] = Entry::new(here, Some(rule), false);
        rules.entries[slot(elsewhere)] = Entry::new(elsewhere, Some(rule), true);
        assert!(!rules.use_snapshot(empty));
        // Modules loaded: the rules stay, but not those of addresses outside every module.
        assert!(!rules.use_snapshot(full));
        assert_eq!(rules.rule_of(here), Some(rule));
        assert_eq!(rules.entries[slot(elsewhere)], Entry::EMPTY);
        // Modules unloaded: every rule goes.
        rules.entries[slot(elsewhere)] = Entry::new(elsewhere, Some(rule), true);
        assert!(rules.use_snapshot(empty));
        assert_eq!(rules.rule_of(here), None);
        assert!(rules.entries.iter().all(|e| *e == Entry::EMPTY));
    }

    #[test]
    fn entries_are_small_and_zero_is_empty() {
        assert_eq!(std::mem::size_of::<Entry>(), 16);
        assert_eq!(Entry::EMPTY, Entry { key: 0, word: 0, slot: 0 });
    }

    #[test]
    fn entries_keep_every_rule_and_mark_the_inline_ones() {
        let inline = [
            Rule::Sp { offset: 8, bp_slot: None },
            Rule::Sp { offset: 64, bp_slot: Some(0) },
            Rule::Sp { offset: 64, bp_slot: Some(56) },
            Rule::FramePointer,
        ];
        let careful = [
            Rule::Sp { offset: 12, bp_slot: None },
            Rule::Sp { offset: 64, bp_slot: Some(64) },
            Rule::Sp { offset: 64, bp_slot: Some(-8) },
            Rule::Sp { offset: 64, bp_slot: Some(12) },
            Rule::Sp { offset: 8 * 65000, bp_slot: Some(i32::MAX) },
            Rule::End,
        ];
        for (rules, inline) in [(&inline[..], true), (&careful[..], false)] {
            for &rule in rules {
                let entry = Entry::new(0x1234, Some(rule), false);
                assert_eq!(entry.rule(), Some(rule));
                assert_eq!(entry.word & SLOW == 0, inline, "{rule:?}");
                assert!(!entry.unknown_module());
                // Outside every module, every rule takes the careful path (which notes it).
                let unknown = Entry::new(0x1234, Some(rule), true);
                assert_eq!(unknown.rule(), Some(rule));
                assert!(unknown.unknown_module() && unknown.word & SLOW != 0);
            }
        }
        let framehop = Entry::new(0x1234, None, false);
        assert_eq!(framehop.rule(), None);
        assert_ne!(framehop, Entry::EMPTY);
        // Offsets past the entry's offset bits would spill into its kind and flags.
        for offset in [MAX_OFFSET as u32, SLOW, SLOW | 8, u32::MAX - 7] {
            for bp_slot in [None, Some(0), Some(-8)] {
                for unknown in [false, true] {
                    let entry = Entry::new(0x1234, Some(Rule::Sp { offset, bp_slot }), unknown);
                    assert_eq!(entry.rule(), None, "offset {offset:#x}");
                    assert_eq!(entry.unknown_module(), unknown);
                }
            }
        }
        assert_eq!(OFFSET_MASK as u64 + 1, MAX_OFFSET);
    }
}
