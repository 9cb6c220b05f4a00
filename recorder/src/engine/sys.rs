//! Thin, allocation-free wrappers over the system calls the engine needs on hot or fragile paths:
//! anonymous memory regions, errno, thread ids and the one-line stderr warning.

use std::ptr::NonNull;

use crate::engine::own_memory;

/// An anonymous private mapping, reserved with `MAP_NORESERVE`: untouched pages cost nothing.
/// The engine's own memory comes from here, never from the program's allocator.
pub struct Region {
    ptr: NonNull<u8>,
    len: usize,
    /// Its slot in the list of the recorder's own memory (see [`own_memory`]), if listed.
    listed: Option<u32>,
}

// SAFETY: a region is plain memory; the types built on it synchronise their own accesses.
unsafe impl Send for Region {}
// SAFETY: as above.
unsafe impl Sync for Region {}

impl Region {
    /// Maps `len` bytes (rounded up to whole pages) of zeroed memory, or `None`.
    pub fn new(len: usize) -> Option<Region> {
        let len = len.max(1).div_ceil(4096) * 4096;
        // SAFETY: a fresh anonymous mapping; no existing memory is affected.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return None;
        }
        let ptr = NonNull::new(ptr.cast::<u8>())?;
        let listed = own_memory::add_region(ptr.as_ptr() as u64, len as u64);
        Some(Region { ptr, len, listed })
    }

    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        if let Some(slot) = self.listed {
            own_memory::remove_region(slot);
        }
        // SAFETY: unmapping the mapping this region created; its users are gone (`&mut self`).
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// Reads the file at `path` (a `/proc` file: short, no interposed `open`) into `buf` with raw
/// system calls, without allocating; the length read, or `None` if it cannot be read or does
/// not fit in `buf`.
pub fn read_file(path: &std::ffi::CStr, buf: &mut [u8]) -> Option<usize> {
    // SAFETY: a NUL-terminated path; raw system calls (a program's own `open` interposer, if
    // any, is not called from inside its allocator); reads go into `buf` within its length; the
    // descriptor is closed before returning.
    unsafe {
        let fd =
            libc::syscall(libc::SYS_openat, libc::AT_FDCWD, path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return None;
        }
        let mut len = 0usize;
        let result = loop {
            if len == buf.len() {
                break None;
            }
            match libc::syscall(libc::SYS_read, fd, buf.as_mut_ptr().add(len), buf.len() - len) {
                0 => break Some(len),
                n if n > 0 => len += n as usize,
                _ if errno() == libc::EINTR => {}
                _ => break None,
            }
        };
        libc::syscall(libc::SYS_close, fd);
        result
    }
}

/// The process's address space limit (`RLIMIT_AS`, `ulimit -v`) in bytes, if it has one.
pub fn address_space_limit() -> Option<u64> {
    let mut limit = libc::rlimit { rlim_cur: libc::RLIM_INFINITY, rlim_max: libc::RLIM_INFINITY };
    // SAFETY: getrlimit writes the limit into the struct we pass.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut limit) };
    (rc == 0 && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
}

/// The calling thread's errno slot (the same for the thread's whole life).
#[inline]
pub fn errno_slot() -> *mut i32 {
    // SAFETY: __errno_location has no preconditions.
    unsafe { libc::__errno_location() }
}

/// The calling thread's errno value.
#[inline]
pub fn errno() -> i32 {
    // SAFETY: __errno_location returns this thread's errno slot, valid for the thread's life.
    unsafe { *libc::__errno_location() }
}

/// Restores the calling thread's errno (hooks must leave it as the real allocator set it).
#[inline]
pub fn set_errno(value: i32) {
    // SAFETY: as in `errno`.
    unsafe { *libc::__errno_location() = value };
}

/// The kernel thread id of the calling thread.
pub fn gettid() -> u32 {
    // SAFETY: gettid has no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as u32 }
}

/// The process id.
pub fn getpid() -> u32 {
    // SAFETY: getpid cannot fail.
    unsafe { libc::getpid() as u32 }
}

/// Writes `message` to stderr with one write(2): no buffering, no allocation, no formatting.
/// A stderr that is a pipe nobody reads any more does not end the program: the SIGPIPE such a
/// write raises is blocked for the write and taken back (one the program had pending is left).
pub fn warn(message: &[u8]) {
    let mut pipe = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    let mut before = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    let mut pending = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset/sigaddset initialise the set we pass; pthread_sigmask fills `before`
    // when it returns 0, and sigpending fills `pending` when it does.
    let blocked = unsafe {
        libc::sigemptyset(pipe.as_mut_ptr());
        libc::sigaddset(pipe.as_mut_ptr(), libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, pipe.as_ptr(), before.as_mut_ptr()) == 0
    };
    // SAFETY: as above.
    let had_pending = blocked
        && unsafe {
            libc::sigpending(pending.as_mut_ptr()) == 0
                && libc::sigismember(pending.as_ptr(), libc::SIGPIPE) == 1
        };
    // SAFETY: writing a caller-provided byte slice to fd 2; failure is ignored on purpose.
    let written = unsafe { libc::write(2, message.as_ptr().cast(), message.len()) };
    if blocked {
        if written < 0 && errno() == libc::EPIPE && !had_pending {
            let now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
            // SAFETY: takes this write's SIGPIPE, pending on this thread, without waiting.
            unsafe { libc::sigtimedwait(pipe.as_ptr(), std::ptr::null_mut(), &now) };
        }
        // SAFETY: `before` was filled by the successful pthread_sigmask above.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, before.as_ptr(), std::ptr::null_mut()) };
    }
}

/// A line of text for [`warn`], built without allocating (cut short past 128 bytes).
pub struct Line {
    bytes: [u8; 128],
    len: usize,
}

impl Default for Line {
    fn default() -> Line {
        Line::new()
    }
}

impl Line {
    pub fn new() -> Line {
        Line { bytes: [0; 128], len: 0 }
    }

    pub fn push(&mut self, part: &[u8]) {
        let room = &mut self.bytes[self.len..];
        let n = part.len().min(room.len());
        room[..n].copy_from_slice(&part[..n]);
        self.len += n;
    }

    pub fn push_decimal(&mut self, mut n: u64) {
        let mut digits = [0u8; 20];
        let mut start = digits.len();
        loop {
            start -= 1;
            digits[start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.push(&digits[start..]);
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// Reads a NUL-terminated C string into a byte slice (without the NUL).
///
/// # Safety
/// `ptr` must be null or point to a NUL-terminated string that outlives the returned slice.
pub unsafe fn c_bytes<'a>(ptr: *const libc::c_char) -> &'a [u8] {
    if ptr.is_null() {
        return &[];
    }
    // SAFETY: the caller guarantees a live NUL-terminated string.
    unsafe { std::ffi::CStr::from_ptr(ptr) }.to_bytes()
}

/// A tiny spin lock for the engine's rare slow paths (module rescans). Never held while calling
/// into the dynamic loader or the program's allocator.
pub struct SpinLock {
    locked: std::sync::atomic::AtomicBool,
}

impl SpinLock {
    pub const fn new() -> Self {
        SpinLock { locked: std::sync::atomic::AtomicBool::new(false) }
    }

    pub fn lock(&self) -> SpinGuard<'_> {
        use std::sync::atomic::Ordering;
        while self.locked.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
            std::hint::spin_loop();
            // SAFETY: sched_yield has no preconditions.
            unsafe { libc::sched_yield() };
        }
        SpinGuard { lock: self }
    }

    /// Takes the lock without a guard object (fork handlers lock in one call, unlock in another).
    pub fn raw_lock(&self) {
        std::mem::forget(self.lock());
    }

    /// Releases a lock taken with [`SpinLock::raw_lock`].
    pub fn raw_unlock(&self) {
        self.locked.store(false, std::sync::atomic::Ordering::Release);
    }
}

impl Default for SpinLock {
    fn default() -> Self {
        Self::new()
    }
}

pub struct SpinGuard<'a> {
    lock: &'a SpinLock,
}

impl Drop for SpinGuard<'_> {
    fn drop(&mut self) {
        self.lock.raw_unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_takes_text_and_numbers_and_stops_at_its_room() {
        for n in [0u64, 7, 10, 1234567, u64::MAX] {
            let mut line = Line::new();
            line.push(b"n=");
            line.push_decimal(n);
            assert_eq!(line.as_bytes(), format!("n={n}").as_bytes());
        }
        let mut line = Line::new();
        line.push(b"checked ");
        line.push_decimal(0);
        line.push(b" of ");
        line.push_decimal(u64::MAX);
        assert_eq!(line.as_bytes(), b"checked 0 of 18446744073709551615");
        line.push(&[b'x'; 200]);
        assert_eq!(line.as_bytes().len(), 128);
    }

    #[test]
    fn region_is_zeroed_and_page_rounded() {
        let region = Region::new(10).expect("mmap");
        assert_eq!(region.len(), 4096);
        // SAFETY: the region is 4096 readable bytes.
        let bytes = unsafe { std::slice::from_raw_parts(region.as_ptr(), region.len()) };
        assert!(bytes.iter().all(|&b| b == 0));
    }

    #[test]
    fn errno_round_trips() {
        let saved = errno();
        set_errno(libc::ENOMEM);
        assert_eq!(errno(), libc::ENOMEM);
        set_errno(saved);
    }

    #[test]
    fn spin_lock_excludes() {
        let lock = SpinLock::new();
        let guard = lock.lock();
        assert!(
            lock.locked
                .compare_exchange(
                    false,
                    true,
                    std::sync::atomic::Ordering::Acquire,
                    std::sync::atomic::Ordering::Relaxed
                )
                .is_err()
        );
        drop(guard);
        let _again = lock.lock();
    }
}
