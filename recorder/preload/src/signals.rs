//! The program's signal handlers run inside a wrapper that counts them on the thread
//! (`InSignalHandler`), so that an allocation or free a handler makes while the thread is
//! inside a hook is told apart from the allocator's and the recorder's own nested calls, and is
//! recorded (see `Guard`) instead of lost.
//!
//! `sigaction` and `signal` (and `siginterrupt`, whose setting `signal` follows) are
//! interposed: a handler the program installs is kept in a table and the kernel is given the
//! wrapper, with `SA_SIGINFO` added and every other flag, the mask and the alternate stack as
//! the program asked. Asked for the current action, `sigaction` answers with the program's own
//! handler and flags. The wrapper passes the kernel's three arguments on to the handler
//! (harmless for a one-argument handler on every supported ABI), so `siginfo_t` and the
//! `ucontext` a handler reads or changes are the kernel's. Handlers installed by other means
//! (the raw system call, glibc-internal calls) are not wrapped: their allocations during a hook
//! pass through unrecorded, as before. Everything here is async-signal-safe: the table is
//! atomics, the wrapper touches only the thread's TLS block.

use std::ffi::c_int;
use std::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering};

use leakview::engine::thread::InSignalHandler;

use crate::real;

/// Signals 1..=64 (index 0 unused).
const SIGNALS: usize = 65;

/// The program's handler for each signal whose kernel action is the wrapper.
static HANDLERS: [AtomicUsize; SIGNALS] = [const { AtomicUsize::new(0) }; SIGNALS];
/// The program's `sa_flags` for each.
static FLAGS: [AtomicI32; SIGNALS] = [const { AtomicI32::new(0) }; SIGNALS];
/// Signals `siginterrupt` made interrupt system calls (bit n - 1: signal n), for `signal`.
static INTERRUPTING: AtomicU64 = AtomicU64::new(0);

type Handler = unsafe extern "C" fn(c_int, *mut libc::siginfo_t, *mut libc::c_void);

/// What the kernel calls for a wrapped signal.
extern "C" fn wrapper(sig: c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    let _counted = InSignalHandler::enter();
    let handler =
        usize::try_from(sig).ok().and_then(|s| HANDLERS.get(s)).map_or(0, |h| h.load(Ordering::Acquire));
    if is_function(handler) {
        // SAFETY: only `sigaction` stores here, always a handler the program gave for this
        // signal; the arguments are the kernel's own.
        unsafe { std::mem::transmute::<usize, Handler>(handler)(sig, info, context) };
    }
}

/// Whether `handler` is a function (not `SIG_DFL`, `SIG_IGN` or `SIG_ERR`).
fn is_function(handler: usize) -> bool {
    handler != libc::SIG_DFL && handler != libc::SIG_IGN && handler != libc::SIG_ERR
}

fn slot(sig: c_int) -> Option<usize> {
    usize::try_from(sig).ok().filter(|&s| s > 0 && s < SIGNALS)
}

/// # Safety
/// The C `sigaction` contract.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn sigaction(
    sig: c_int,
    act: *const libc::sigaction,
    old: *mut libc::sigaction,
) -> c_int {
    let index = slot(sig);
    // SAFETY: the caller passes a valid `act` or null.
    let wanted = unsafe { act.as_ref() };
    let previous = index.map(|i| (HANDLERS[i].load(Ordering::Acquire), FLAGS[i].load(Ordering::Acquire)));
    let mut given = wanted.copied();
    // (An action naming the wrapper itself, as the raw system call reports it, stays as it is:
    // the table keeps the program's handler.)
    if let (Some(i), Some(action)) = (index, given.as_mut())
        && is_function(action.sa_sigaction)
        && action.sa_sigaction != wrapper as Handler as usize
    {
        FLAGS[i].store(action.sa_flags, Ordering::Release);
        HANDLERS[i].store(action.sa_sigaction, Ordering::Release);
        action.sa_sigaction = wrapper as Handler as usize;
        action.sa_flags |= libc::SA_SIGINFO;
    }
    // SAFETY: an all-zero sigaction is a valid value to be overwritten.
    let mut kernel_old: libc::sigaction = unsafe { std::mem::zeroed() };
    let given_ptr = given.as_ref().map_or(std::ptr::null(), |a| a as *const libc::sigaction);
    // SAFETY: valid pointers (or null for `act`), as the real function requires.
    let rc = unsafe { real::sigaction(sig, given_ptr, &mut kernel_old) };
    if rc != 0 {
        if let (Some(i), Some((handler, flags))) = (index, previous) {
            FLAGS[i].store(flags, Ordering::Release);
            HANDLERS[i].store(handler, Ordering::Release);
        }
        return rc;
    }
    if !old.is_null() {
        if kernel_old.sa_sigaction == wrapper as Handler as usize
            && let Some((handler, flags)) = previous
        {
            kernel_old.sa_sigaction = handler;
            kernel_old.sa_flags = flags;
        }
        // SAFETY: the caller passes a writable `old` when not null.
        unsafe { *old = kernel_old };
    }
    rc
}

/// `signal`: glibc's BSD semantics (the signal blocked while its handler runs, system calls
/// restarted unless `siginterrupt` said otherwise), through [`sigaction`].
///
/// # Safety
/// The C `signal` contract.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn signal(sig: c_int, handler: libc::sighandler_t) -> libc::sighandler_t {
    // SAFETY: an all-zero sigaction (empty mask, no flags) is valid to fill in.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = handler;
    let interrupting = slot(sig).is_some_and(|i| INTERRUPTING.load(Ordering::Acquire) & (1 << (i - 1)) != 0);
    action.sa_flags = if interrupting { 0 } else { libc::SA_RESTART };
    // SAFETY: a valid, empty signal set to add to (an invalid signal is refused by sigaction).
    unsafe {
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaddset(&mut action.sa_mask, sig);
    }
    // SAFETY: as above.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers.
    if unsafe { sigaction(sig, &action, &mut old) } < 0 {
        return libc::SIG_ERR;
    }
    old.sa_sigaction
}

/// `siginterrupt`: remembered for [`signal`], then the real call (which changes the current
/// action's `SA_RESTART`, keeping the wrapper).
///
/// # Safety
/// The C `siginterrupt` contract.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn siginterrupt(sig: c_int, flag: c_int) -> c_int {
    // SAFETY: forwarding the caller's arguments.
    let rc = unsafe { real::siginterrupt(sig, flag) };
    if rc == 0
        && let Some(i) = slot(sig)
    {
        if flag != 0 {
            INTERRUPTING.fetch_or(1 << (i - 1), Ordering::AcqRel);
        } else {
            INTERRUPTING.fetch_and(!(1 << (i - 1)), Ordering::AcqRel);
        }
        let restart = FLAGS[i].load(Ordering::Acquire) & !libc::SA_RESTART;
        FLAGS[i].store(if flag != 0 { restart } else { restart | libc::SA_RESTART }, Ordering::Release);
    }
    rc
}
