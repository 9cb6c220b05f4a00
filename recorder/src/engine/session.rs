//! The process-wide recording session: the trace writer, the stack trie and the module map of
//! the trace this process is writing, created lazily by the first recorded event.
//!
//! Lifecycle: [`current_or_start`] creates the session (never waiting on another thread that is
//! creating it — that thread may hold a loader lock this one needs); [`finish`] marks the trace
//! complete at exit; the fork handlers make a child drop its parent's session (the child must
//! never write into the parent's mapping) so that its first event starts its own trace. A child
//! forked without them (a raw fork system call) is told apart by [`fork_canary`]: it sees no
//! session until its first allocation does the same.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, AtomicU64, Ordering};

use leakview_format::{Event, RecorderKind, TraceMetadata, TraceWriter, WriteError, WriterOptions};

use crate::engine::config::{self, Config};
use crate::engine::modules::{self, ModuleRegistry};
use crate::engine::output;
use crate::engine::own_memory;
use crate::engine::sys;
use crate::engine::thread::{self, ThreadState};
use crate::engine::trie::StackTable;
use crate::engine::{clock, fork_canary, resident};

/// Who is recording: goes into the trace metadata.
#[derive(Debug)]
pub struct Profile {
    /// Name and version, e.g. `leakview-preload 0.1.0`.
    pub recorder: &'static str,
    pub kind: RecorderKind,
}

/// Most stack nodes one trace can define (address space is reserved, memory used as needed).
const NODE_CAPACITY: u32 = 1 << 26;
/// Under an address space limit (`ulimit -v`), the share of it the trace's mapping may take, and
/// the share the stack nodes may: the rest is the program's.
const TRACE_SHARE_OF_LIMIT: u64 = 8;
const NODES_SHARE_OF_LIMIT: u64 = 16;

/// One trace being written.
pub struct Session {
    pub id: u64,
    pub pid: u32,
    pub writer: TraceWriter,
    pub stacks: StackTable,
    pub modules: ModuleRegistry,
    pub max_depth: usize,
    /// Use the per-thread unwind-rule and stack caches (see `stack::CaptureState::set_caching`).
    pub stack_reuse: bool,
    /// Check every cached stack against a full unwind (`LEAKVIEW_STACK_VERIFY=1`).
    pub verify_stacks: bool,
    /// `stack_reuse` and not `verify_stacks`: a kept stack found is the capture's result.
    pub kept_stacks_as_found: bool,
    pub path: PathBuf,
    /// Scan memory for references to heap blocks at exit (`LEAKVIEW_HEAP_SCAN`; preload only).
    pub heap_scan: bool,
    warned: AtomicBool,
    /// Under `leakview record` (a manifest is set), which tells of traces cut short once for the
    /// whole run: this process then says nothing of it on the program's stderr.
    quiet_when_cut_short: bool,
}

const IDLE: u8 = 0;
const STARTING: u8 = 1;
const RUNNING: u8 = 2;
const OFF: u8 = 3;

static SESSION: AtomicPtr<Session> = AtomicPtr::new(std::ptr::null_mut());
static STATE: AtomicU8 = AtomicU8::new(IDLE);
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Allocations are recorded while this is set (`leakview_enable` / `leakview_disable`).
/// Frees are always recorded, so blocks allocated while enabled are never falsely outstanding.
pub static ALLOCATIONS_ENABLED: AtomicBool = AtomicBool::new(true);

/// The running session, if any. `None` in a child forked without the fork handlers until
/// [`current_or_start`] gives it a trace of its own: it never writes into its parent's.
#[inline]
pub fn current() -> Option<&'static Session> {
    // The canary first: `after_fork_in_child` clears the session before it re-arms the canary.
    if fork_canary::tripped() {
        return None;
    }
    let ptr = SESSION.load(Ordering::Acquire);
    if ptr.is_null() {
        return None;
    }
    // SAFETY: a published session stays alive until a forked child replaces it, and the child
    // has only the one thread that does so.
    Some(unsafe { &*ptr })
}

/// The session that threads marked ready for it may record into without asking anything else
/// (see `recorder::ready_session`), or null: the running session while its writer has not
/// stopped. It lives in the fork canary's page where there is one, so a forked child finds it
/// null (its parent's session is not the child's) and takes the full path, which sorts that out.
#[inline(always)]
pub fn live() -> *const Session {
    fork_canary::live().load(Ordering::Relaxed).cast_const().cast()
}

/// Ends recording into `session` at once (its writer stopped).
fn not_live(session: &Session) {
    let _ = fork_canary::live().compare_exchange(
        (session as *const Session).cast_mut().cast(),
        std::ptr::null_mut(),
        Ordering::AcqRel,
        Ordering::Relaxed,
    );
}

/// The running session, starting it if nobody has. Returns `None` while another thread is
/// starting it and once recording is off. Call with the guard held (starting allocates).
pub fn current_or_start(profile: &Profile, state: &mut ThreadState) -> Option<&'static Session> {
    if let Some(session) = current() {
        return Some(session);
    }
    if fork_canary::tripped() {
        // Forked without the handlers (a raw fork system call): what they would have done.
        after_fork_in_child(state);
    }
    if STATE.compare_exchange(IDLE, STARTING, Ordering::AcqRel, Ordering::Acquire).is_err() {
        return None;
    }
    if !config::records_this_process() {
        // Left out on purpose (`leakview record --no-children`): nothing to say.
        STATE.store(OFF, Ordering::Release);
        return None;
    }
    match start(profile, state, None) {
        Ok(session) => {
            let session = publish(session);
            // The starting thread's first event is the trace's start: its name goes in now.
            record_thread_name(state);
            Some(session)
        }
        Err(reason) => {
            STATE.store(OFF, Ordering::Release);
            // Under `leakview record`, the manifest carries the reason to it (one message for
            // all the processes of a run); without one, or if it is gone, stderr does.
            let told = Config::from_env()
                .manifest
                .is_some_and(|manifest| output::announce_failure(&manifest, &reason).is_ok());
            if !told {
                let line = format!("leakview: recording disabled: {reason}\n");
                sys::warn(line.as_bytes());
            }
            None
        }
    }
}

fn read_cmdline() -> Vec<String> {
    std::fs::read("/proc/self/cmdline")
        .map(|bytes| {
            bytes
                .split(|&b| b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// When this process started, in clock ticks after boot.
fn process_start_ticks() -> Option<u64> {
    leakview_format::start_ticks_in_stat(&std::fs::read("/proc/self/stat").ok()?)
}

/// Starts the session now, writing to `path` instead of the configured output (an in-process
/// recorder that chooses its own file). Like the configured output, an existing file is never
/// clobbered: the trace then goes to an alternative name beside it (`Session::path` tells).
/// Fails if a session is running or being started, or if the trace cannot be created (a later
/// call may then try again). Call with the guard held.
pub fn start_at(profile: &Profile, state: &mut ThreadState, path: &Path) -> Result<&'static Session, String> {
    if STATE.compare_exchange(IDLE, STARTING, Ordering::AcqRel, Ordering::Acquire).is_err() {
        return Err("a trace is already being recorded in this process".into());
    }
    match start(profile, state, Some(path)) {
        Ok(session) => Ok(publish(session)),
        Err(reason) => {
            STATE.store(IDLE, Ordering::Release);
            Err(reason)
        }
    }
}

fn publish(session: Session) -> &'static Session {
    let session = Box::leak(Box::new(session));
    SESSION.store(session, Ordering::Release);
    STATE.store(RUNNING, Ordering::Release);
    if !session.stopped() {
        fork_canary::live().store((session as *mut Session).cast(), Ordering::Release);
    }
    session
}

/// `chosen_output`: the trace path chosen by the caller, instead of the configured one.
fn start(
    profile: &Profile,
    state: &mut ThreadState,
    chosen_output: Option<&Path>,
) -> Result<Session, String> {
    if !thread::block_size_matches() {
        return Err("internal error: TLS block size mismatch".into());
    }
    thread::set_exit_hook(release_thread);
    let config = Config::from_env();
    if profile.kind == RecorderKind::Preload {
        // The preload's fork handler re-arms it in a child (`after_fork_in_child`); the in-process
        // API has fork handlers of its own and no raw-fork detection.
        fork_canary::arm();
    }
    // The in-process API takes its timestamps with clock_gettime (api/mem.rs): its traces stay
    // on that clock throughout.
    clock::calibrate(config.tsc_clock && profile.kind == RecorderKind::Preload);
    let pid = sys::getpid();
    let executable = modules::executable_path();
    let start_ts = clock::monotonic_ns();
    resident::configure(config.rss_interval_ns, start_ts);
    if config.heap_scan {
        own_memory::track_dead_stacks();
    }
    let metadata = TraceMetadata {
        pid,
        // SAFETY: getppid cannot fail.
        parent_pid: unsafe { libc::getppid() } as u32,
        executable: String::from_utf8_lossy(&executable).into_owned(),
        argv: read_cmdline(),
        start_unix_ns: clock::realtime_ns(),
        start_monotonic_ns: start_ts,
        clock_id: clock::CLOCK_ID,
        pointer_width: std::mem::size_of::<usize>() as u8,
        arch: std::env::consts::ARCH.to_string(),
        recorder: profile.recorder.to_string(),
        recorder_kind: profile.kind,
        max_stack_depth: config.max_depth as u32,
        process_start_ticks: process_start_ticks().unwrap_or(0),
    };
    let primary = match chosen_output {
        Some(path) => path.to_path_buf(),
        None => output::primary_path(config.output.as_deref(), &executable, pid),
    };
    // The address space reserved for the trace and the stacks fits a limit the program has, with
    // room left for the program. The stacks come first: a failure then leaves no file behind.
    let limit = sys::address_space_limit();
    let node_capacity = limit.map_or(NODE_CAPACITY, |limit| {
        StackTable::capacity_within(limit / NODES_SHARE_OF_LIMIT).min(NODE_CAPACITY)
    });
    let stacks = StackTable::new(node_capacity).ok_or("cannot reserve memory for stacks")?;
    let mut options = WriterOptions::default();
    if let Some(limit) = limit {
        options.max_file_size = options.max_file_size.min(limit / TRACE_SHARE_OF_LIMIT);
    }
    let (writer, path) = output::create_trace(&primary, pid, &metadata, &options)?;
    let session = Session {
        id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        pid,
        writer,
        stacks,
        modules: ModuleRegistry::new(),
        max_depth: config.max_depth,
        stack_reuse: config.stack_reuse,
        verify_stacks: config.verify_stacks,
        kept_stacks_as_found: config.stack_reuse && !config.verify_stacks,
        path,
        heap_scan: config.heap_scan && profile.kind == RecorderKind::Preload,
        warned: AtomicBool::new(false),
        quiet_when_cut_short: config.manifest.is_some(),
    };
    let stream = state.bind(session.id);
    session.modules.rescan(start_ts, &mut |event| {
        let _ = session.writer.append(stream, event);
    });
    if let Some(bytes) = resident::now() {
        let _ = session.writer.append(stream, &Event::ResidentMemory { ts: start_ts, bytes });
    }
    // A manifest that is gone belongs to a `leakview record` that has finished: this process
    // outlived the program recorded (a daemon); nobody is left to read the list, nothing to say.
    if let Some(manifest) = &config.manifest
        && let Err(err) = output::announce(manifest, &session.path)
        && err.kind() != std::io::ErrorKind::NotFound
    {
        let line = format!(
            "leakview: cannot add {} to the manifest {}: {err}\n",
            session.path.display(),
            String::from_utf8_lossy(manifest)
        );
        sys::warn(line.as_bytes());
    }
    Ok(session)
}

impl Session {
    /// Appends an event to the thread's stream; the first failure prints the one warning.
    /// Inlined into every hook, so that each encodes its one kind of event without a match.
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn append(&self, stream: &mut leakview_format::ThreadStream, event: &Event<'_>) -> bool {
        match self.writer.append(stream, event) {
            Ok(()) => true,
            Err(err) => {
                self.write_failed(&err);
                false
            }
        }
    }

    /// Appends an event to the stream of a thread ready for this session (see
    /// `recorder::ready_session`): as [`Session::append`], without asking again what the
    /// thread's readiness says.
    ///
    /// # Safety
    /// `stream` must be the stream of a thread bound to this session (used with this session's
    /// writer only).
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub unsafe fn append_ready(&self, stream: &mut leakview_format::ThreadStream, event: &Event<'_>) -> bool {
        // SAFETY: the caller's promise is the writer's.
        match unsafe { self.writer.append_to_own(stream, event) } {
            Ok(()) => true,
            Err(err) => {
                self.write_failed(&err);
                false
            }
        }
    }

    #[cold]
    fn write_failed(&self, err: &WriteError) {
        if self.stopped() {
            not_live(self);
        }
        if matches!(err, WriteError::EventTooLarge) {
            return;
        }
        if !self.warned.swap(true, Ordering::Relaxed) && !self.quiet_when_cut_short {
            sys::warn(
                b"leakview: cannot write the trace any more (disk full, size limit reached or its file \
gone); recording stopped, the program continues\n",
            );
        }
    }

    /// Whether recording into this session has stopped.
    #[inline]
    pub fn stopped(&self) -> bool {
        self.writer.is_stopped()
    }

    /// An event not recorded because recording stopped: counted in the trace when the stop cut
    /// the trace short (a full disk, the size limit), so that it can say how much is missing.
    #[cold]
    pub fn count_unrecorded(&self) {
        if self.writer.is_truncated() {
            self.writer.count_lost();
        }
    }
}

/// The kernel's name of the calling thread (`PR_GET_NAME`, at most 15 bytes), read into `buf`
/// without allocating: the `_exit` hook may run in a signal handler.
fn own_thread_name(buf: &mut [u8; 16]) -> Option<&[u8]> {
    // SAFETY: PR_GET_NAME writes at most 16 bytes, the name and its NUL, into `buf`.
    let rc = unsafe { libc::prctl(libc::PR_GET_NAME, buf.as_mut_ptr() as libc::c_ulong, 0, 0, 0) };
    if rc != 0 {
        return None;
    }
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    (len > 0).then(|| &buf[..len])
}

/// Records the calling thread's current name (at its first event, and again when it ends:
/// threads usually name themselves after they start). `state` is the calling thread's; guard
/// held.
pub fn record_thread_name(state: &mut ThreadState) {
    let mut buf = [0u8; 16];
    if let Some(session) = current()
        && state.session_id() == session.id
        && let Some(name) = own_thread_name(&mut buf)
        && state.note_name(name)
        && let Some(stream) = state.stream()
    {
        let tid = stream.tid();
        session.append(stream, &Event::ThreadName { ts: clock::monotonic_ns(), tid, name });
    }
}

/// A thread ending (or the process): appends what its signal handlers left deferred and its
/// name if it changed. Guard held.
pub fn settle_thread(state: &mut ThreadState) {
    if let Some(session) = current()
        && state.session_id() == session.id
        && !session.stopped()
    {
        crate::engine::recorder::flush_deferred(session, state);
    }
    record_thread_name(state);
}

/// An exiting thread: records its name and releases its chunk (thread-exit destructor, guard
/// held).
fn release_thread(state: &mut ThreadState) {
    settle_thread(state);
    if let Some(session) = current()
        && state.session_id() == session.id
        && let Some(stream) = state.stream()
    {
        session.writer.release(stream);
    }
}

/// Marks the trace complete (at process exit).
pub fn finish() {
    if let Some(session) = current() {
        session.writer.finish(clock::monotonic_ns());
    }
}

/// fork, before: hold the registry lock so the child never sees it mid-update.
pub fn before_fork() {
    if let Some(session) = current() {
        session.modules.lock_for_fork();
    }
}

/// fork, in the parent: let go of the lock.
pub fn after_fork_in_parent() {
    if let Some(session) = current() {
        session.modules.unlock_after_fork();
    }
}

/// fork, in the child: forget the parent's trace (never write into its mapping) so the child's
/// first event starts the child's own trace.
pub fn after_fork_in_child(state: &mut ThreadState) {
    if fork_canary::is_set() {
        // Done already: a hook that ran before this handler found the canary tripped and did it.
        return;
    }
    // (Null already where the live word is in the canary's page, which the child got zeroed.)
    fork_canary::live().store(std::ptr::null_mut(), Ordering::Release);
    let old = SESSION.swap(std::ptr::null_mut(), Ordering::AcqRel);
    let was_off = STATE.load(Ordering::Acquire) == OFF;
    STATE.store(if was_off { OFF } else { IDLE }, Ordering::Release);
    // Only now: a thread that finds the canary set must not find the parent's session.
    fork_canary::arm();
    state.after_fork_in_child();
    clock::after_fork_in_child();
    if !old.is_null() {
        // SAFETY: the session was leaked from a Box; the child has no other thread that could
        // use it, and nothing refers to it any more. Dropping unmaps the parent's trace from
        // the child and closes the child's copy of the descriptor.
        drop(unsafe { Box::from_raw(old) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_a_start_time() {
        assert!(process_start_ticks().is_some_and(|ticks| ticks > 0));
    }
}
