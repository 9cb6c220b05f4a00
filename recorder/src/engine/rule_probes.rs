//! Reads the unwind rule of one code address off framehop, for [`UnwindRules`](super::unwind_rules::UnwindRules).
//!
//! After framehop has stepped out of a frame for real, its own cache holds the frame's rule,
//! and a step by a cached rule (framehop 0.16's `UnwindRuleX86_64::exec`) is a function of sp,
//! bp and the stack words it reads alone. So framehop is made to step the same address twice
//! more, over synthetic registers and a synthetic stack whose every word encodes its own address
//! ("probes"), and must report a cache hit each time. The first probe's outcome shows the
//! rule's shape exactly: which register the new sp derives from and by how much, which word
//! the new bp came from, where the return address was. The second probe, with other registers,
//! must give exactly what the learned shape predicts. (framehop's rules also pop other
//! registers; those reads lie between sp and the return-address slot, so in a real walk they
//! succeed exactly when the return address can be read, and the values are never used.)

use crate::engine::modules::Snapshot;
use crate::engine::unwind_rules::{BP_UNCHANGED, FramehopCache, MAX_OFFSET, Rule, apply};
use framehop::x86_64::UnwindRegsX86_64;
use framehop::{FrameAddress, Unwinder as _};

/// The rule framehop steps `address` by, if it is a cached rule of one of the shapes
/// [`Rule`] describes (call after a real step from `address`, which caches its rule).
pub fn probe_rule(snapshot: &Snapshot, cache: &mut FramehopCache, address: FrameAddress) -> Option<Rule> {
    let first = probe(snapshot, cache, address, PROBES[0]);
    let second = probe(snapshot, cache, address, PROBES[1]);
    learn_from_probes(first, second)
}

/// Marks a synthetic stack word: word(address) = address ^ PROBE_TAG (never 0 for the probe
/// addresses, and never equal to a probe's registers).
const PROBE_TAG: u64 = 0x5a00_0000_0000_0000;
/// The probes' (sp, bp): far apart, so that no sp offset can be mistaken for the bp distance.
const PROBES: [(u64, u64); 2] = [(0x1000_0000_0000, 0x1040_0000_0000), (0x2000_0001_0008, 0x2010_0000_0000)];

fn probe_word(address: u64) -> u64 {
    address ^ PROBE_TAG
}

/// What one framehop step did on a synthetic stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe {
    pub result: Result<Option<u64>, ()>,
    pub sp: u64,
    pub bp: u64,
    /// framehop stepped by a rule from its cache.
    pub hit: bool,
}

fn probe(
    snapshot: &Snapshot,
    cache: &mut FramehopCache,
    address: FrameAddress,
    (sp, bp): (u64, u64),
) -> Probe {
    let mut regs = UnwindRegsX86_64::new(address.address(), sp, bp);
    let hits = cache.stats().hit_count;
    let mut read = |a: u64| Ok(probe_word(a));
    let result = snapshot.unwinder.unwind_frame(address, &mut regs, cache, &mut read).map_err(|_| ());
    Probe { result, sp: regs.sp(), bp: regs.bp(), hit: cache.stats().hit_count > hits }
}

/// The rule behind two probes (made at `PROBES`), if both were by a cached rule of one of
/// the three shapes and the second is exactly what the shape learned from the first predicts.
pub fn learn_from_probes(first: Probe, second: Probe) -> Option<Rule> {
    if !first.hit || !second.hit {
        return None;
    }
    let (sp, bp) = PROBES[0];
    let rule = match first.result {
        Ok(None) => Rule::End,
        Ok(Some(ra)) => {
            if first.sp == bp + 16 && first.bp == probe_word(bp) && ra == probe_word(bp + 8) {
                Rule::FramePointer
            } else {
                let offset =
                    first.sp.checked_sub(sp).filter(|&o| o > 0 && o < MAX_OFFSET && o.is_multiple_of(8))?;
                if ra != probe_word(first.sp - 8) {
                    return None;
                }
                let bp_slot = if first.bp == bp {
                    None
                } else {
                    let slot = first.bp ^ PROBE_TAG;
                    Some(i32::try_from(slot.wrapping_sub(sp) as i64).ok().filter(|&s| s != BP_UNCHANGED)?)
                };
                Rule::Sp { offset: offset as u32, bp_slot }
            }
        }
        Err(()) => return None,
    };
    let (sp2, bp2) = PROBES[1];
    let predicted = apply(rule, sp2, bp2, |a| Some(probe_word(a)));
    let actual = match second.result {
        Ok(Some(ra)) if second.sp > sp2 && ra != 0 => Some((ra, second.sp, second.bp)),
        _ => None,
    };
    (predicted == actual).then_some(rule)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What framehop's step by `rule` gives on the synthetic stack at `at` (written out from
    /// framehop 0.16's `UnwindRuleX86_64::exec` for each shape).
    fn framehop_like(rule: Rule, (sp, bp): (u64, u64)) -> Probe {
        let (new_sp, new_bp) = match rule {
            Rule::End => return Probe { result: Ok(None), sp, bp, hit: true },
            Rule::Sp { offset, bp_slot } => {
                (sp + u64::from(offset), bp_slot.map_or(bp, |s| probe_word(sp.wrapping_add_signed(s.into()))))
            }
            Rule::FramePointer => (bp + 16, probe_word(bp)),
        };
        Probe { result: Ok(Some(probe_word(new_sp - 8))), sp: new_sp, bp: new_bp, hit: true }
    }

    #[test]
    fn every_shape_is_learned_exactly() {
        let rules = [
            Rule::End,
            Rule::FramePointer,
            Rule::Sp { offset: 8, bp_slot: None },
            Rule::Sp { offset: 48, bp_slot: Some(16) },
            Rule::Sp { offset: 8 * 70000, bp_slot: Some(8 * 69990) },
            Rule::Sp { offset: 24, bp_slot: Some(-8) },
        ];
        for rule in rules {
            let learned = learn_from_probes(framehop_like(rule, PROBES[0]), framehop_like(rule, PROBES[1]));
            assert_eq!(learned, Some(rule));
        }
    }

    #[test]
    fn misses_and_disagreeing_probes_are_left_to_framehop() {
        let rule = Rule::Sp { offset: 16, bp_slot: None };
        let first = framehop_like(rule, PROBES[0]);
        let missed = Probe { hit: false, ..framehop_like(rule, PROBES[1]) };
        assert_eq!(learn_from_probes(first, missed), None);
        // The second probe behaves like another shape: not one of ours.
        let other = framehop_like(Rule::Sp { offset: 32, bp_slot: None }, PROBES[1]);
        assert_eq!(learn_from_probes(first, other), None);
        let failed = Probe { result: Err(()), ..first };
        assert_eq!(learn_from_probes(failed, failed), None);
        // A return address that is not at new sp - 8.
        let odd = Probe { result: Ok(Some(probe_word(first.sp - 16))), ..first };
        assert_eq!(learn_from_probes(odd, framehop_like(rule, PROBES[1])), None);
    }
}
