//! Runs the recorded program as a child and makes leakview behave like it from the outside:
//!
//! - SIGINT and SIGQUIT (Ctrl-C, Ctrl-\) reach the whole foreground process group; while the child
//!   runs leakview ignores them, so only the child decides what they do. Afterwards they act as
//!   usual again. (The handler is not SIG_IGN, so the child does not inherit an ignored signal.)
//! - SIGTERM and SIGHUP sent to leakview alone are forwarded to the child. The child is never
//!   signalled after it has exited (it is waited for without reaping first, so its pid cannot have
//!   been reused).
//! - [`exit_like`] ends leakview the way the child ended: same exit code, or the same signal.

use std::io;
use std::process::{Child, Command, ExitCode, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use rustix::process::{Pid, Signal, WaitId, WaitIdOptions};
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
use signal_hook::iterator::Signals;

const IGNORED_WHILE_RUNNING: [i32; 2] = [SIGINT, SIGQUIT];
const FORWARDED: [i32; 2] = [SIGTERM, SIGHUP];

/// `false` while a child runs: the signals above then do nothing to leakview itself.
fn default_action_enabled() -> io::Result<&'static Arc<AtomicBool>> {
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    if let Some(flag) = FLAG.get() {
        return Ok(flag);
    }
    let flag = Arc::new(AtomicBool::new(true));
    for signal in IGNORED_WHILE_RUNNING.into_iter().chain(FORWARDED) {
        signal_hook::flag::register_conditional_default(signal, Arc::clone(&flag))?;
    }
    Ok(FLAG.get_or_init(|| flag))
}

/// Starts `command`, waits for it with the signal behaviour described above, returns how it ended.
/// `Err` only if it could not be started or waited for.
pub fn run(command: &mut Command) -> io::Result<ExitStatus> {
    let default_action = default_action_enabled()?;
    let mut forwarded = Signals::new(FORWARDED)?;
    let forward_handle = forwarded.handle();
    default_action.store(false, Ordering::SeqCst);

    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            default_action.store(true, Ordering::SeqCst);
            forward_handle.close();
            return Err(e);
        }
    };
    let pid = Pid::from_child(&child);
    // `Some(pid)` while the child may still be signalled.
    let target = Arc::new(Mutex::new(Some(pid)));
    let forwarder = {
        let target = Arc::clone(&target);
        std::thread::spawn(move || {
            for signal in forwarded.forever() {
                let guard = target.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                if let (Some(pid), Some(signal)) = (*guard, Signal::from_named_raw(signal)) {
                    let _ = rustix::process::kill_process(pid, signal);
                }
            }
        })
    };

    let waited = wait_without_reaping(pid);
    *target.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
    forward_handle.close();
    let _ = forwarder.join();
    let status = reap(&mut child, waited);
    default_action.store(true, Ordering::SeqCst);
    status
}

/// Blocks until the child has exited, leaving it a zombie so its pid stays taken.
fn wait_without_reaping(pid: Pid) -> io::Result<()> {
    loop {
        match rustix::process::waitid(WaitId::Pid(pid), WaitIdOptions::EXITED | WaitIdOptions::NOWAIT) {
            Ok(_) => return Ok(()),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

fn reap(child: &mut Child, waited: io::Result<()>) -> io::Result<ExitStatus> {
    waited?;
    child.wait()
}

/// Ends leakview the way the child ended: returns its exit code, or, if a signal killed it, resets
/// that signal to its default action and raises it on leakview (without a core dump of leakview);
/// if that does not end the process, exits with 128 + the signal number like a shell would report.
pub fn exit_like(status: ExitStatus) -> ExitCode {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        return ExitCode::from(u8::try_from(code & 0xff).unwrap_or(1));
    }
    let Some(signal) = status.signal() else { return ExitCode::from(1) };
    // Our own core dump would be of no use and could overwrite the child's `core` file.
    let core = rustix::process::Resource::Core;
    let hard = rustix::process::getrlimit(core).maximum;
    let _ = rustix::process::setrlimit(core, rustix::process::Rlimit { current: Some(0), maximum: hard });
    let _ = signal_hook::low_level::emulate_default_handler(signal);
    ExitCode::from(u8::try_from((128 + signal) & 0xff).unwrap_or(1))
}
