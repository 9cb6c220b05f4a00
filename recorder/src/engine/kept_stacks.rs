//! Per-thread kept stacks: the stacks recently recorded from each innermost frame, recognised
//! again without unwinding.
//!
//! A kept stack is found by its innermost frame — return address and sp, and bp where the walk
//! depends on it — and holds the stack words the walk out of that frame read ("checks": each
//! return-address slot, and each slot bp was restored from where the restored value matters),
//! with the trie node of the whole stack. When a new capture reaches the same innermost frame
//! and every check word still holds its kept value, the walk would repeat exactly, so the
//! kept node is the stack: a capture then costs one load and compare per frame instead of an
//! unwinding step, and no interning at all.
//!
//! Why this is exact: each step of the walk is a function of the frame's return address (which
//! fixes the unwind rule, for one module snapshot), its sp and bp, and the stack words the rule
//! reads. By induction from the innermost frame outward, equal registers and equal words give
//! equal frames. A bp that no later step uses (every step restores it from the stack before
//! any rule reads it) need not be equal, and the slot it was restored from need not be
//! checked. Stacks are only kept when every step was by a learned rule whose reads are known,
//! and the walk ended in a way that depends on nothing else (the end-of-stack rule, a zero return
//! address, which is a check, or a caller above the top of the thread's stack). Checks are read
//! with the bounds checks of any stack read; a check that cannot be read fails.
//!
//! Kept stacks depend on the unwind rules and on node ids: [`KeptStacks::forget`] drops them
//! all when the rules are forgotten (a module was unloaded) or the trie changes. Objects
//! loaded since do not matter: every frame of a kept stack lay in a module that is still there.
//!
//! Many stacks can share one innermost frame (one function called on many paths at one stack
//! depth). Where they crowd each other out of their set, the frame is marked (see
//! [`KeptStacks::wants_link`]) and its stacks are filed by the innermost frame together with
//! a `link`: the return addresses of the next two callers, as the learned rules read them
//! (see [`UnwindRules::caller_link`](crate::engine::unwind_rules::UnwindRules::caller_link),
//! which costs a few dozen instructions, hence only where it pays). The link only picks the
//! set to look in — the checks alone decide a match — so a link that is out of date costs a
//! miss, never a wrong stack.
//!
//! This module owns that policy: the sets and their ways, the credits that ration lookups and
//! keeping, the links, and the checks. The checks themselves (values, each tagged with its
//! offset from sp) are appended to a [`WordRing`], as the stack cache's frames are, so a set's
//! slots stay small: a kept stack whose checks the ring has since overwritten is stale.

use crate::engine::stack::StackBounds;
use crate::engine::word_ring::{self, Appended, RING, WordRing};

/// Sets (by innermost frame and link) and stacks per set: 8,192 stacks of 48 bytes, 384 KiB
/// per thread (with 1,024 sets, conflicts cost the C workload of bench/instructions.sh 65
/// instructions per allocation).
const SETS_LOG2: u32 = 11;
const SETS: usize = 1 << SETS_LOG2;
const WAYS: usize = 4;
/// A stack found when its checks are older than this (in checks written since) has them
/// written again at the ring's head, so stacks in use stay while the ring comes round. (The
/// ring's checks, a word and a 2-byte offset each, 320 KiB per thread, are room for about 1,600
/// stacks of 20 checks.)
const REFRESH_AGE: usize = RING - RING / 4;
/// Stacks recorded before but not found from one innermost frame without link, after which
/// its stacks are filed with a link (the link costs a few dozen instructions a capture: only
/// a frame that clearly fails without one gets it; with 8 the python3 workload of
/// bench/instructions.sh, whose stacks differ further out, paid 42 instructions per allocation
/// more, with 250 it pays 13 while the C workload saves 30).
const LINK_AFTER_MISSES: u8 = 250;
/// Most checks a kept stack holds; deeper stacks are not kept (with 48, the python3 workload
/// of bench/instructions.sh, whose interpreter stacks are often 70 to 128 frames deep, kept
/// none of those: 41 instructions per allocation more).
pub const MAX_CHECKS: usize = 192;
/// Bounds of a set's credit, and the credit at or below which lookups are rationed.
const MAX_CREDIT: i8 = 64;
const NO_CREDIT: i8 = -32;
/// Where lookups are rationed, one in this many goes ahead.
const RETRY_FIND_EVERY: u8 = 32;
/// Where keeping is rationed, one in this many goes ahead (keeping a stack costs about as much
/// as three captures, so it is rationed harder than looking).
const RETRY_KEEP_EVERY: u8 = 128;

/// One kept stack (all-zero: empty, as epochs start at 1).
#[repr(C)]
struct Kept {
    ra: u64,
    sp: u64,
    bp: u64,
    node: u32,
    epoch: u32,
    /// When it was last found or kept (for replacing the least recently used of a set).
    used_at: u32,
    /// Where in the ring's history its checks were written.
    start: u32,
    /// Frames in the stack.
    len: u16,
    count: u8,
    /// Whether the walk depends on the innermost frame's bp.
    bp_matters: bool,
    /// The lowest and highest check offsets, in words from `sp`.
    lowest: i16,
    highest: i16,
}

/// The per-thread kept stacks (live in the thread's capture state; all-zero is empty).
pub struct KeptStacks {
    clock: u32,
    /// Per set, how well finding has paid lately: up by 4 for a stack found, down by 1 for
    /// one not found. Where stacks are rarely found again (many stacks share an innermost
    /// frame and link), looking costs more than it saves: then stacks are looked for and kept
    /// only now and then.
    credit: [i8; SETS],
    /// Per set, lookups and keepings skipped since the last one made.
    skipped_finds: [u8; SETS],
    skipped_keeps: [u8; SETS],
    /// By the set of an innermost frame without link: whether its stacks are filed with one,
    /// and how often a stack recorded before was not found there.
    linked: [bool; SETS],
    missed_again: [u8; SETS],
    /// Lookups that compared stacks (for tests).
    #[cfg(test)]
    looked: usize,
    sets: [[Kept; WAYS]; SETS],
    /// The checks: the values they must hold, tagged with their addresses in words from their
    /// stack's `sp`. Stacks of its past epochs are stale (no epoch until first use).
    ring: WordRing<u32, i16>,
}

/// The checks of one walk being kept, innermost first.
pub struct Checks {
    count: usize,
    addresses: [u64; MAX_CHECKS],
    values: [u64; MAX_CHECKS],
}

impl Checks {
    pub const fn new() -> Checks {
        Checks { count: 0, addresses: [0; MAX_CHECKS], values: [0; MAX_CHECKS] }
    }

    pub fn clear(&mut self) {
        self.count = 0;
    }

    /// Adds a check; `None` if there are too many.
    #[must_use]
    pub fn push(&mut self, address: u64, value: u64) -> Option<()> {
        let i = self.count;
        *self.addresses.get_mut(i)? = address;
        self.values[i] = value;
        self.count += 1;
        Some(())
    }

    /// Reverses the order (checks are gathered outermost first, and run innermost first: wrong
    /// candidates usually differ near the innermost frame).
    pub fn reverse(&mut self) {
        self.addresses[..self.count].reverse();
        self.values[..self.count].reverse();
    }
}

impl Default for Checks {
    fn default() -> Self {
        Checks::new()
    }
}

/// Whether to go ahead where a set's credit says no: one time in `every` (`skipped` counts the
/// times since the last).
fn try_now(skipped: &mut u8, every: u8) -> bool {
    *skipped += 1;
    if *skipped < every {
        return false;
    }
    *skipped = 0;
    true
}

/// Where one capture's stack is filed: the set of its innermost frame and link (worked out
/// once per capture: [`Filing::new`], then [`Filing::with_link`] if
/// [`KeptStacks::wants_link`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Filing {
    /// The link (0: filed without one).
    link: u64,
    set: usize,
}

impl Filing {
    /// Where stacks from the innermost frame (`ra`, `sp`) are filed without link.
    #[inline(always)]
    pub fn new(ra: u64, sp: u64) -> Filing {
        Filing { link: 0, set: set_of_key(frame_key(ra, sp), 0) }
    }

    /// Where stacks from the innermost frame (`ra`, `sp`) are filed with `link`.
    #[inline(always)]
    pub fn with_link(ra: u64, sp: u64, link: u64) -> Filing {
        Filing { link, set: set_of_key(frame_key(ra, sp), link) }
    }
}

/// The innermost frame (`ra`, `sp`) mixed, before a link is added.
#[inline(always)]
fn frame_key(ra: u64, sp: u64) -> u64 {
    // sp of nearby frames differ in a few low bits: mix before taking the top bits.
    ra ^ word_ring::spread(sp)
}

/// The set of an innermost frame (as `frame_key` mixed it) and `link`.
#[inline(always)]
fn set_of_key(key: u64, link: u64) -> usize {
    word_ring::top_bits(word_ring::golden(word_ring::fold(key ^ link.rotate_left(29))), SETS_LOG2)
}

#[cfg(test)]
fn set_of(ra: u64, sp: u64, link: u64) -> usize {
    set_of_key(frame_key(ra, sp), link)
}

/// Whether every check holds: the stack word at `sp + 8 * offsets[i]` is `values[i]`, for each
/// i (innermost first: the first that differs ends the comparison).
///
/// # Safety
/// Each word is read: every such address must be 8-aligned and lie in the live part of this
/// thread's stack. `offsets` and `values` are as long.
#[inline(always)]
unsafe fn checks_hold(sp: u64, offsets: &[i16], values: &[u64]) -> bool {
    let count = offsets.len().min(values.len());
    #[cfg(target_arch = "x86_64")]
    {
        // Four checks a round, indexed from the runs' ends up to 0 (one add and branch a round;
        // LLVM's own loop takes seven instructions a check), after single ones until a multiple
        // of four is left. A check that differs leaves the index below 0.
        let mut i = -(count as isize);
        // SAFETY: every index read is in [-count, 0): inside both runs, read from their ends;
        // the stack words read are readable by the caller's promise. Memory is only read.
        unsafe {
            std::arch::asm!(
                // Single checks until a multiple of four is left.
                "2:",
                "test {i}, 3",
                "jz 3f",
                "movsx {a}, word ptr [{t} + {i} * 2]",
                "mov {a}, qword ptr [{sp} + {a} * 8]",
                "cmp {a}, qword ptr [{v} + {i} * 8]",
                "jne 4f",
                "inc {i}",
                "jmp 2b",
                "3:",
                "test {i}, {i}",
                "jz 4f",
                "5:",
                "movsx {a}, word ptr [{t} + {i} * 2]",
                "movsx {b}, word ptr [{t} + {i} * 2 + 2]",
                "mov {a}, qword ptr [{sp} + {a} * 8]",
                "mov {b}, qword ptr [{sp} + {b} * 8]",
                "cmp {a}, qword ptr [{v} + {i} * 8]",
                "jne 4f",
                "cmp {b}, qword ptr [{v} + {i} * 8 + 8]",
                "jne 4f",
                "movsx {a}, word ptr [{t} + {i} * 2 + 4]",
                "movsx {b}, word ptr [{t} + {i} * 2 + 6]",
                "mov {a}, qword ptr [{sp} + {a} * 8]",
                "mov {b}, qword ptr [{sp} + {b} * 8]",
                "cmp {a}, qword ptr [{v} + {i} * 8 + 16]",
                "jne 4f",
                "cmp {b}, qword ptr [{v} + {i} * 8 + 24]",
                "jne 4f",
                "add {i}, 4",
                "jnz 5b",
                "4:",
                i = inout(reg) i,
                a = out(reg) _,
                b = out(reg) _,
                t = in(reg) offsets.as_ptr().add(count),
                v = in(reg) values.as_ptr().add(count),
                sp = in(reg) sp,
                options(readonly, nostack),
            );
        }
        i == 0
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        (0..count).all(|i| {
            let address = sp.wrapping_add_signed(i64::from(offsets[i]) * 8);
            // SAFETY: the caller's promise.
            unsafe { std::ptr::read_volatile(address as *const u64) == values[i] }
        })
    }
}

impl KeptStacks {
    /// Whether stacks filed without link at `filing` are to be filed with one instead (see
    /// [`KeptStacks::missed_again`]).
    #[inline(always)]
    pub fn wants_link(&self, filing: Filing) -> bool {
        self.linked[filing.set % SETS]
    }

    /// The kept stack filed at `filing` whose innermost frame is (`ra`, `sp`, `bp`), if all
    /// its checks hold (each word inside `bounds`) and it has at most `max_len` frames: its
    /// node. The set's first way, where it fills from, is looked at inline; the others out of
    /// line.
    #[inline(always)]
    pub fn find(
        &mut self,
        filing: Filing,
        frame: (u64, u64, u64),
        max_len: usize,
        bounds: StackBounds,
    ) -> Option<u32> {
        let set = filing.set % SETS;
        if self.credit[set] <= NO_CREDIT && !try_now(&mut self.skipped_finds[set], RETRY_FIND_EVERY) {
            return None;
        }
        #[cfg(test)]
        {
            self.looked += 1;
        }
        if self.matches(set, 0, frame, max_len, bounds) {
            return Some(self.found(set, 0));
        }
        self.find_in_later_ways(set, frame, max_len, bounds)
    }

    /// [`KeptStacks::find`] in the ways after the first.
    #[inline(never)]
    fn find_in_later_ways(
        &mut self,
        set: usize,
        frame: (u64, u64, u64),
        max_len: usize,
        bounds: StackBounds,
    ) -> Option<u32> {
        for way in 1..WAYS {
            if self.matches(set, way, frame, max_len, bounds) {
                return Some(self.found(set, way));
            }
        }
        self.credit[set] = self.credit[set].saturating_sub(1).max(-MAX_CREDIT);
        None
    }

    /// Whether the stack kept in `way` of `set` is the one of the walk from the innermost frame
    /// (`ra`, `sp`, `bp`): see [`KeptStacks::find`].
    #[inline(always)]
    fn matches(
        &self,
        set: usize,
        way: usize,
        (ra, sp, bp): (u64, u64, u64),
        max_len: usize,
        bounds: StackBounds,
    ) -> bool {
        let kept = &self.sets[set % SETS][way % WAYS];
        if kept.ra != ra
            || kept.sp != sp
            || (kept.bp_matters && kept.bp != bp)
            || usize::from(kept.len) > max_len
        {
            return false;
        }
        // (At most MAX_CHECKS: `keep` keeps no more.)
        let count = usize::from(kept.count);
        // Of a past epoch, or its checks overwritten since: stale.
        let Some((values, offsets)) = self.ring.run(kept.epoch, kept.start, count) else {
            return false;
        };
        let lowest = sp.wrapping_add_signed(i64::from(kept.lowest) * 8);
        let highest = sp.wrapping_add_signed(i64::from(kept.highest) * 8);
        if count > 0 && !(bounds.contains(lowest) && bounds.contains(highest)) {
            // A check that cannot be read fails.
            return false;
        }
        // SAFETY: each check address lies between the lowest and the highest check address,
        // both inside the bounds (the live part of this thread's stack), and is 8-aligned:
        // it was when the stack was kept, with the same sp (`keep` keeps only aligned
        // checks). The run's offsets and values are `count` long.
        unsafe { checks_hold(sp, offsets, values) }
    }

    /// The stack kept in `way` of `set` was found: notes its use and returns its node.
    #[inline(always)]
    fn found(&mut self, set: usize, way: usize) -> u32 {
        let (set, way) = (set % SETS, way % WAYS);
        self.clock = self.clock.wrapping_add(1);
        let kept = &mut self.sets[set][way];
        kept.used_at = self.clock;
        let found = kept.node;
        if self.ring.age(kept.start) > REFRESH_AGE {
            self.refresh(set, way);
        }
        let credit = &mut self.credit[set];
        if *credit < MAX_CREDIT {
            *credit = credit.saturating_add(4).min(MAX_CREDIT);
        }
        found
    }

    /// A stack filed at `filing` was not found though the thread recorded it before: where that
    /// keeps happening to stacks filed without link, their innermost frame's stacks crowd each
    /// other out (or are not kept at all, as keeping them did not pay): file them by link.
    #[inline]
    pub fn missed_again(&mut self, filing: Filing) {
        if filing.link != 0 {
            return;
        }
        let set = filing.set % SETS;
        let count = &mut self.missed_again[set];
        *count = count.saturating_add(1);
        if *count >= LINK_AFTER_MISSES {
            self.link(set);
        }
    }

    /// Whether to keep a stack filed at `filing`, just not found: yes while finding pays in its
    /// set, otherwise only now and then (stacks there keep replacing each other, and keeping
    /// costs more than it saves).
    #[inline]
    pub fn worth_keeping(&mut self, filing: Filing) -> bool {
        let set = filing.set % SETS;
        self.credit[set] > -(WAYS as i8) || try_now(&mut self.skipped_keeps[set], RETRY_KEEP_EVERY)
    }

    /// Keeps the stack `node` of `len` frames whose innermost frame is (`ra`, `sp`, `bp`), filed
    /// at `filing`, with its `checks` (innermost first), in place of the least recently used
    /// one of its set.
    #[allow(clippy::too_many_arguments)]
    pub fn keep(
        &mut self,
        filing: Filing,
        (ra, sp, bp): (u64, u64, u64),
        bp_matters: bool,
        node: u32,
        len: usize,
        checks: &Checks,
    ) {
        let Ok(len) = u16::try_from(len) else { return };
        let count = checks.count.min(MAX_CHECKS);
        self.ring.begin();
        let mut offsets = [0i16; MAX_CHECKS];
        for (offset, &address) in offsets.iter_mut().zip(&checks.addresses[..count]) {
            let bytes = address.wrapping_sub(sp) as i64;
            match i16::try_from(bytes >> 3) {
                Ok(o) if address & 7 == 0 => *offset = o,
                _ => return,
            }
        }
        let offsets = &offsets[..count];
        let lowest = offsets.iter().copied().min().unwrap_or(0);
        let highest = offsets.iter().copied().max().unwrap_or(0);
        let values = &checks.values[..count];
        let Some(Appended { start, forgot }) = self.ring.append(values, offsets) else { return };
        if let Some(epochs_wrapped) = forgot {
            // Positions ran out (after 4 G checks): every other stack went.
            self.forgot(epochs_wrapped);
        }
        let set = filing.set % SETS;
        let epoch = self.ring.epoch();
        // Stale stacks go first, then the least recently used.
        let age = |w: usize| {
            let kept = &self.sets[set][w];
            if !self.ring.holds(kept.epoch, kept.start) {
                u64::MAX
            } else {
                u64::from(self.clock.wrapping_sub(kept.used_at))
            }
        };
        // (Of equals, the first way: a set's stacks fill it in the order `find` looks.)
        let way = (0..WAYS).rev().max_by_key(|&w| age(w)).unwrap_or(0);
        let victim = &self.sets[set][way];
        if filing.link == 0 && victim.epoch == epoch && victim.ra == ra && victim.sp == sp {
            // Stacks of one innermost frame crowd each other out: file them by link from now.
            self.link(set);
        }
        self.clock = self.clock.wrapping_add(1);
        self.sets[set][way] = Kept {
            ra,
            sp,
            bp,
            node,
            epoch,
            used_at: self.clock,
            start,
            len,
            count: count as u8,
            bp_matters,
            lowest,
            highest,
        };
    }

    /// Files the stacks of the innermost frames whose set without link is `set` by link from
    /// now. The set's credit starts again: those frames' stacks, crowding each other out, spent
    /// it, and stacks filed by link may share the set.
    #[cold]
    fn link(&mut self, set: usize) {
        if !self.linked[set] {
            self.linked[set] = true;
            self.credit[set] = 0;
        }
    }

    /// Writes the checks of the stack in `way` of `set` again at the ring's head: a stack that
    /// is still found is not lost when the ring comes round to its checks.
    #[cold]
    #[inline(never)]
    fn refresh(&mut self, set: usize, way: usize) {
        let kept = &self.sets[set][way];
        let count = usize::from(kept.count).min(MAX_CHECKS);
        let Some((old_values, old_offsets)) = self.ring.run(kept.epoch, kept.start, count) else {
            return;
        };
        let mut offsets = [0i16; MAX_CHECKS];
        let mut values = [0u64; MAX_CHECKS];
        offsets[..count].copy_from_slice(old_offsets);
        values[..count].copy_from_slice(old_values);
        match self.ring.append(&values[..count], &offsets[..count]) {
            Some(Appended { start, forgot: None }) => self.sets[set][way].start = start,
            // Every stack went, this one with them.
            Some(Appended { forgot: Some(epochs_wrapped), .. }) => self.forgot(epochs_wrapped),
            None => {}
        }
    }

    /// Drops every kept stack (the module snapshot or the trie changed).
    pub fn forget(&mut self) {
        if self.ring.epoch() == 0 {
            // Nothing kept yet (and the policy's pages are left untouched).
            return;
        }
        let epochs_wrapped = self.ring.forget();
        self.forgot(epochs_wrapped);
    }

    /// Resets the policy after the ring forgot every stack.
    fn forgot(&mut self, epochs_wrapped: bool) {
        self.credit = [0; SETS];
        self.skipped_finds = [0; SETS];
        self.skipped_keeps = [0; SETS];
        self.linked = [false; SETS];
        self.missed_again = [0; SETS];
        if epochs_wrapped {
            // Stacks of old epochs must not come back to life.
            for set in &mut self.sets {
                for kept in set {
                    kept.epoch = 0;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn empty() -> Box<KeptStacks> {
        // SAFETY: all-zero is a valid, empty `KeptStacks` (plain integers and bools).
        unsafe { Box::<KeptStacks>::new_zeroed().assume_init() }
    }

    type Frame = (u64, u64, u64);

    /// Where a stack from the innermost frame (`ra`, `sp`) filed under `link` is.
    fn filed(ra: u64, sp: u64, link: u64) -> Filing {
        let filing = if link == 0 { Filing::new(ra, sp) } else { Filing::with_link(ra, sp, link) };
        assert_eq!(filing.set, set_of(ra, sp, link));
        filing
    }

    fn find(
        kept: &mut KeptStacks,
        frame: Frame,
        link: u64,
        max_len: usize,
        bounds: StackBounds,
    ) -> Option<u32> {
        kept.find(filed(frame.0, frame.1, link), frame, max_len, bounds)
    }

    fn keep(
        kept: &mut KeptStacks,
        frame: Frame,
        link: u64,
        bp_matters: bool,
        node: u32,
        len: usize,
        checks: &Checks,
    ) {
        kept.keep(filed(frame.0, frame.1, link), frame, bp_matters, node, len, checks);
    }

    /// Whether stacks from the innermost frame (`ra`, `sp`) are filed with a link.
    fn wants_link(kept: &KeptStacks, ra: u64, sp: u64) -> bool {
        kept.wants_link(Filing::new(ra, sp))
    }

    #[test]
    fn a_kept_stack_is_found_only_while_its_words_hold() {
        let mut kept = empty();
        let mut words = Box::new([0x11u64, 0x22, 0x33, 0x44]);
        let sp = words.as_ptr() as u64;
        let bounds = StackBounds::new(sp, sp + 32).expect("bounds");
        let mut checks = Checks::new();
        checks.push(sp + 8, 0x22).expect("room");
        checks.push(sp + 24, 0x44).expect("room");
        assert_eq!(find(&mut kept, (0x1000, sp, 5), 0, 64, bounds), None);
        keep(&mut kept, (0x1000, sp, 5), 0, false, 42, 3, &checks);
        assert_eq!(find(&mut kept, (0x1000, sp, 5), 0, 64, bounds), Some(42));
        // bp does not matter for this stack; the frame's address and sp do.
        assert_eq!(find(&mut kept, (0x1000, sp, 6), 0, 64, bounds), Some(42));
        assert_eq!(find(&mut kept, (0x1001, sp, 5), 0, 64, bounds), None);
        assert_eq!(find(&mut kept, (0x1000, sp + 8, 5), 0, 64, bounds), None);
        // Deeper than the walk may go.
        assert_eq!(find(&mut kept, (0x1000, sp, 5), 0, 2, bounds), None);
        // A changed word, or one outside the bounds, fails the stack.
        words[3] = 0x45;
        assert_eq!(find(&mut kept, (0x1000, sp, 5), 0, 64, bounds), None);
        words[3] = 0x44;
        let short = StackBounds::new(sp, sp + 24).expect("bounds");
        assert_eq!(find(&mut kept, (0x1000, sp, 5), 0, 64, short), None);
        assert_eq!(find(&mut kept, (0x1000, sp, 5), 0, 64, bounds), Some(42));
        kept.forget();
        assert_eq!(find(&mut kept, (0x1000, sp, 5), 0, 64, bounds), None);
        // Checks that are not 8-aligned are never kept.
        let mut odd = Checks::new();
        odd.push(sp + 4, 0x22).expect("room");
        keep(&mut kept, (0x1000, sp, 5), 0, false, 43, 3, &odd);
        assert!(kept.sets.iter().flatten().all(|k| k.node != 43));
    }

    #[test]
    fn bp_is_compared_where_it_matters_and_sets_keep_the_recently_used() {
        let mut kept = empty();
        let checks = Checks::new();
        let bounds = StackBounds::new(0x7000, 0x8000).expect("bounds");
        keep(&mut kept, (0x1000, 0x7000, 5), 0, true, 1, 1, &checks);
        assert_eq!(find(&mut kept, (0x1000, 0x7000, 6), 0, 64, bounds), None);
        assert_eq!(find(&mut kept, (0x1000, 0x7000, 5), 0, 64, bounds), Some(1));
        // Stacks with the same innermost frame (bp differing) fill the set; the least recently
        // used one goes first.
        for bp in 6..6 + WAYS as u64 - 1 {
            keep(&mut kept, (0x1000, 0x7000, bp), 0, true, bp as u32, 1, &checks);
        }
        assert!(find(&mut kept, (0x1000, 0x7000, 5), 0, 64, bounds).is_some());
        keep(&mut kept, (0x1000, 0x7000, 100), 0, true, 100, 1, &checks);
        assert_eq!(find(&mut kept, (0x1000, 0x7000, 5), 0, 64, bounds), Some(1), "recently found: kept");
        assert_eq!(
            find(&mut kept, (0x1000, 0x7000, 6), 0, 64, bounds),
            None,
            "least recently used: replaced"
        );
        assert_eq!(find(&mut kept, (0x1000, 0x7000, 100), 0, 64, bounds), Some(100));
    }

    #[test]
    fn a_frame_whose_stacks_are_not_found_again_is_linked() {
        let mut kept = empty();
        for _ in 1..LINK_AFTER_MISSES {
            kept.missed_again(filed(0x1000, 0x7000, 0));
        }
        assert!(!wants_link(&kept, 0x1000, 0x7000));
        kept.missed_again(filed(0x1000, 0x7000, 0));
        assert!(wants_link(&kept, 0x1000, 0x7000));
        keep(&mut kept, (0x1000, 0x7000, 0), 0, false, 1, 1, &Checks::new());
        kept.forget();
        assert!(!wants_link(&kept, 0x1000, 0x7000), "forgotten with the stacks");
    }

    #[test]
    fn checks_hold_only_when_every_word_does() {
        let words: Vec<u64> = (0..16u64).map(|i| 0x1000 + i * 7).collect();
        let sp = words.as_ptr() as u64;
        for count in 0..12usize {
            // Checks of words out of order (offsets from sp, in words), as a walk's are.
            let offsets: Vec<i16> = (0..count).map(|i| ((i * 5) % 16) as i16).collect();
            let mut values: Vec<u64> = offsets.iter().map(|&o| words[o as usize]).collect();
            // SAFETY: every offset is a word of `words`.
            assert!(unsafe { checks_hold(sp, &offsets, &values) }, "{count} checks");
            for wrong in 0..count {
                values[wrong] ^= 1;
                // SAFETY: as above.
                assert!(!unsafe { checks_hold(sp, &offsets, &values) }, "{count} checks, {wrong} wrong");
                values[wrong] ^= 1;
            }
        }
    }

    #[test]
    fn kept_stacks_are_small() {
        assert_eq!(std::mem::size_of::<Kept>(), 48);
    }

    #[test]
    fn frames_of_one_call_path_spread_over_the_sets() {
        // The innermost frame of one function called at many depths: sp differs by a frame size.
        let sets: std::collections::HashSet<usize> =
            (0..32u64).map(|depth| set_of(0x55a9_760f_f262, 0x7ffc_a0b9_98c0 - depth * 0x30, 0)).collect();
        assert!(sets.len() >= 16, "{} sets used", sets.len());
    }

    #[test]
    fn stacks_sharing_an_innermost_frame_are_filed_apart_by_their_link() {
        // Which sets the stacks fall in depends on sp: try many.
        let mut stacks: Vec<Box<[u64; 4]>> = Vec::new();
        for _ in 0..64 {
            stacks.push(Box::new([0u64; 4]));
            let words = stacks.last_mut().expect("pushed");
            filed_apart_by_their_link(words);
        }
    }

    fn filed_apart_by_their_link(words: &mut [u64; 4]) {
        let mut kept = empty();
        let sp = words.as_ptr() as u64;
        let bounds = StackBounds::new(sp, sp + 32).expect("bounds");
        // 40 stacks from one innermost frame, each with its own caller (the link, also the
        // word the walk read at sp + 8): more than a set holds.
        let link = |i: u64| 0x40_0000 + i * 0x37;
        // Kept without a link, they crowd each other out of their set: the frame is marked.
        assert!(!wants_link(&kept, 0x1000, sp));
        for i in 0..WAYS as u64 {
            let mut checks = Checks::new();
            checks.push(sp + 8, link(i)).expect("room");
            keep(&mut kept, (0x1000, sp, 0), 0, false, i as u32 + 1, 2, &checks);
            assert!(!wants_link(&kept, 0x1000, sp), "room for {i}");
        }
        // (Its check never holds: its set may be one a linked stack below is filed in too.)
        let mut never = Checks::new();
        never.push(sp + 16, 0xdead).expect("room");
        keep(&mut kept, (0x1000, sp, 0), 0, false, 99, 2, &never);
        assert!(wants_link(&kept, 0x1000, sp));
        assert!(!wants_link(&kept, 0x1001, sp) || set_of(0x1001, sp, 0) == set_of(0x1000, sp, 0));
        for i in 0..40u64 {
            let mut checks = Checks::new();
            checks.push(sp + 8, link(i)).expect("room");
            keep(&mut kept, (0x1000, sp, 0), link(i), false, i as u32 + 1, 2, &checks);
        }
        for i in 0..40u64 {
            words[1] = link(i);
            assert_eq!(
                find(&mut kept, (0x1000, sp, 0), link(i), 64, bounds),
                Some(i as u32 + 1),
                "stack {i}"
            );
            // The link only picks the set: the words decide.
            words[1] = link(i) + 1;
            assert_eq!(find(&mut kept, (0x1000, sp, 0), link(i), 64, bounds), None, "stack {i}");
        }
    }

    #[test]
    fn stacks_whose_checks_the_ring_overwrote_are_not_found_unless_found_meanwhile() {
        let words = Box::new([7u64; MAX_CHECKS]);
        let sp = words.as_ptr() as u64;
        let bounds = StackBounds::new(sp, sp + 8 * MAX_CHECKS as u64).expect("bounds");
        let mut checks = Checks::new();
        for i in 0..MAX_CHECKS as u64 {
            checks.push(sp + 8 * i, 7).expect("room");
        }
        let own_set = set_of(0x1000, sp, 0);
        for looked_meanwhile in [false, true] {
            let mut kept = empty();
            keep(&mut kept, (0x1000, sp, 0), 0, false, 1, 2, &checks);
            assert_eq!(find(&mut kept, (0x1000, sp, 0), 0, 64, bounds), Some(1));
            // Other stacks (other innermost frames, other sets) fill the ring twice over.
            let mut filled = 0;
            let mut ra = 0x2000;
            while filled < 2 * RING {
                ra += 1;
                if set_of(ra, sp, 0) == own_set {
                    continue;
                }
                keep(&mut kept, (ra, sp, 0), 0, false, 2, 2, &checks);
                filled += MAX_CHECKS;
                if looked_meanwhile {
                    assert_eq!(find(&mut kept, (0x1000, sp, 0), 0, 64, bounds), Some(1), "found meanwhile");
                }
            }
            let expected = if looked_meanwhile { Some(1) } else { None };
            assert_eq!(
                find(&mut kept, (0x1000, sp, 0), 0, 64, bounds),
                expected,
                "its checks were overwritten"
            );
        }
    }

    #[test]
    fn looking_and_keeping_are_rationed_where_stacks_are_rarely_found() {
        let mut kept = empty();
        let words = Box::new([1u64, 2]);
        let sp = words.as_ptr() as u64;
        let bounds = StackBounds::new(sp, sp + 16).expect("bounds");
        let mut wrong = Checks::new();
        wrong.push(sp + 8, 3).expect("room");
        let mut kept_count = 0;
        // Every capture from this innermost frame is a new stack: keeping never pays.
        for i in 0..1000u32 {
            assert_eq!(find(&mut kept, (0x1000, sp, 0), 0, 64, bounds), None);
            if kept.worth_keeping(filed(0x1000, sp, 0)) {
                keep(&mut kept, (0x1000, sp, 0), 0, false, i, 1, &wrong);
                kept_count += 1;
            }
        }
        assert!(kept.looked < 120, "looked {} times", kept.looked);
        assert!(kept_count < 120, "kept {kept_count} stacks");
        // Where stacks are found again, every one is kept and looked for.
        let mut kept = empty();
        let mut found = 0;
        for i in 0..1000u64 {
            let bp = i % 3;
            match find(
                &mut kept,
                (0x1000, 0x7000, bp),
                0,
                64,
                StackBounds::new(0x7000, 0x8000).expect("bounds"),
            ) {
                Some(_) => found += 1,
                None => {
                    assert!(kept.worth_keeping(filed(0x1000, 0x7000, 0)));
                    keep(&mut kept, (0x1000, 0x7000, bp), 0, true, bp as u32, 1, &Checks::new());
                }
            }
        }
        assert_eq!(found, 997);
    }
}
