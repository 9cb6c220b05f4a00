//! Tests of what every `platform` layer (the Linux engine or the portable one) must do: refuse
//! nested entry on a thread, and capture the caller's stack as addresses.

use super::platform::{StackRef, addresses, enter, hook_here};

#[inline(never)]
pub(super) fn capture_from_here() -> (StackRef, u64) {
    let hook = hook_here();
    let mut entered = enter().expect("entry");
    entered.capture(hook)
}

#[test]
fn nested_entry_is_refused() {
    let outer = enter().expect("first entry");
    assert!(enter().is_none());
    drop(outer);
    assert!(enter().is_some());
}

#[test]
fn captures_resolve_to_addresses() {
    let (stack, tid) = capture_from_here();
    assert_ne!(tid, 0);
    assert_eq!(enter().expect("entry").thread_id(), tid);
    let mut ips = Vec::new();
    addresses(stack, &mut ips);
    assert!(ips.len() >= 2, "stack of {} frames", ips.len());
}
