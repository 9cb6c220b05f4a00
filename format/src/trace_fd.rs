//! The trace file's descriptor, kept out of the recorded program's way.
//!
//! A program may close descriptors it did not open (daemons close everything above 2, a shell's
//! `exec 3>file` replaces descriptor 3) and then open files of its own under the same numbers.
//! The writer must never grow or punch holes in such a file. So the descriptor is moved high
//! (near the top of the first 1024), and before each use it is checked to still be the trace
//! (same device and inode). When it is not, the trace is opened again by its absolute path; when
//! that fails too, the caller is told there is no descriptor. Nothing here allocates after
//! [`TraceFd::new`].
//!
//! Device and inode name the trace only while something keeps its inode from being freed and
//! handed to a new file: the writer's shared mapping of the file does, from creation until the
//! writer closes this descriptor (before it unmaps).

use std::ffi::CString;
use std::fs::File;
use std::os::fd::IntoRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};

/// Numbers this far below the lower of 1024 and the descriptor limit are where the trace's
/// descriptor goes (the lowest free one from there).
const BELOW_TOP: u64 = 32;

/// The trace's descriptor and what identifies the file it must refer to.
pub(crate) struct TraceFd {
    fd: AtomicI32,
    dev: u64,
    ino: u64,
    /// The trace's absolute path, for opening it again.
    path: CString,
}

impl TraceFd {
    /// Takes over `file`, the trace just created at `path`, moving its descriptor high.
    pub fn new(file: File, path: &Path) -> std::io::Result<Self> {
        let meta = file.metadata()?;
        let absolute =
            if path.is_absolute() { path.to_path_buf() } else { std::env::current_dir()?.join(path) };
        let path = CString::new(absolute.as_os_str().as_bytes())
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "path holds a NUL byte"))?;
        let fd = move_high(file.into_raw_fd());
        Ok(TraceFd { fd: AtomicI32::new(fd), dev: meta.dev(), ino: meta.ino(), path })
    }

    /// The descriptor, if it still refers to the trace or the trace could be opened again;
    /// `None` means the trace's file must not be touched through any descriptor.
    pub fn get(&self) -> Option<i32> {
        let fd = self.fd.load(Ordering::Acquire);
        if self.is_trace(fd) {
            return Some(fd);
        }
        self.reopen(fd)
    }

    /// Closes the descriptor if it still refers to the trace (a number the program took over is
    /// its own). Later [`TraceFd::get`] calls open the trace again.
    pub fn close(&mut self) {
        let fd = std::mem::replace(self.fd.get_mut(), -1);
        if self.is_trace(fd) {
            // SAFETY: closing our own descriptor, which still refers to the trace.
            unsafe { libc::close(fd) };
        }
    }

    /// Whether descriptor `fd` refers to the trace's file.
    fn is_trace(&self, fd: i32) -> bool {
        let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
        // SAFETY: fstat writes a `stat` into the buffer we pass; on success it is initialised.
        if fd < 0 || unsafe { libc::fstat(fd, stat.as_mut_ptr()) } != 0 {
            return false;
        }
        // SAFETY: fstat returned 0, so it filled the buffer.
        let stat = unsafe { stat.assume_init() };
        stat.st_dev == self.dev && stat.st_ino == self.ino
    }

    /// Opens the trace again by its path after the program closed or replaced `lost` (whose
    /// number is the program's now and is left alone).
    #[cold]
    fn reopen(&self, lost: i32) -> Option<i32> {
        // SAFETY: `path` is a NUL-terminated string that lives as long as `self`.
        let fd = unsafe { libc::open(self.path.as_ptr(), libc::O_RDWR | libc::O_NOFOLLOW | libc::O_CLOEXEC) };
        if fd < 0 {
            return None;
        }
        if !self.is_trace(fd) {
            // SAFETY: closing the descriptor this call opened.
            unsafe { libc::close(fd) };
            return None;
        }
        let fd = move_high(fd);
        match self.fd.compare_exchange(lost, fd, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => Some(fd),
            Err(current) => {
                // Another thread opened it again first: keep its descriptor.
                // SAFETY: closing the descriptor this call opened (and nobody else saw).
                unsafe { libc::close(fd) };
                self.is_trace(current).then_some(current)
            }
        }
    }
}

impl Drop for TraceFd {
    fn drop(&mut self) {
        self.close();
    }
}

/// Moves `fd` to the lowest free number from the high range (see [`BELOW_TOP`]), closing the
/// old number; keeps `fd` where there is no such number.
fn move_high(fd: i32) -> i32 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes the limit into the struct we pass.
    let soft =
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 { limit.rlim_cur } else { 0 };
    let floor = soft.min(1024).saturating_sub(BELOW_TOP);
    if floor <= fd as u64 {
        return fd;
    }
    // SAFETY: duplicating a descriptor we own; no memory is passed.
    let high = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, floor as libc::c_int) };
    if high < 0 {
        return fd;
    }
    // SAFETY: closing the old number of the descriptor we own, now duplicated at `high`.
    unsafe { libc::close(fd) };
    high
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, Write};
    use std::os::fd::AsRawFd;

    fn inode_of(fd: i32) -> Option<u64> {
        let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
        // SAFETY: fstat writes a `stat` into the buffer we pass.
        if unsafe { libc::fstat(fd, stat.as_mut_ptr()) } != 0 {
            return None;
        }
        // SAFETY: fstat returned 0, so it filled the buffer.
        Some(unsafe { stat.assume_init() }.st_ino)
    }

    /// A trace's descriptor, plus a second one that keeps the file's inode alive as the
    /// writer's mapping does.
    fn new_trace(dir: &Path) -> (TraceFd, File, std::path::PathBuf, u64) {
        let path = dir.join("trace.bin");
        let file = File::create_new(&path).expect("create");
        let pin = file.try_clone().expect("second descriptor");
        let ino = file.metadata().expect("metadata").ino();
        (TraceFd::new(file, &path).expect("trace fd"), pin, path, ino)
    }

    fn contents(file: &mut File) -> String {
        let mut text = String::new();
        file.rewind().expect("rewind");
        file.read_to_string(&mut text).expect("read");
        text
    }

    #[test]
    fn the_descriptor_moves_above_the_numbers_programs_open_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (trace, _pin, _, ino) = new_trace(dir.path());
        let fd = trace.get().expect("descriptor");
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit fills the struct.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
        if limit.rlim_cur >= 1024 {
            assert!(fd >= 1024 - BELOW_TOP as i32, "descriptor {fd} stayed low");
        }
        assert_eq!(inode_of(fd), Some(ino));
    }

    #[test]
    fn a_number_the_program_took_over_is_left_to_it_and_the_trace_opened_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (trace, _pin, _, ino) = new_trace(dir.path());
        let old = trace.get().expect("descriptor");
        let mut data = File::create_new(dir.path().join("data.txt")).expect("data");
        data.write_all(b"the program's own file\n").expect("write");
        // SAFETY: replacing the trace's number with the data file, as `exec N>file` would.
        assert_eq!(unsafe { libc::dup2(data.as_raw_fd(), old) }, old);

        let new = trace.get().expect("reopened");
        assert_ne!(new, old);
        assert_eq!(inode_of(new), Some(ino));
        assert_eq!(trace.get(), Some(new), "the reopened descriptor is kept");
        drop(trace);
        assert_eq!(
            inode_of(old),
            Some(data.metadata().expect("metadata").ino()),
            "dropping closed the program's number"
        );
        assert_ne!(inode_of(new), Some(ino), "dropping left the trace open");
        assert_eq!(contents(&mut data), "the program's own file\n");
        // SAFETY: closing the duplicate this test made.
        unsafe { libc::close(old) };
    }

    #[test]
    fn a_trace_gone_from_its_path_gives_no_descriptor() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (trace, _pin, path, _) = new_trace(dir.path());
        let old = trace.get().expect("descriptor");
        // SAFETY: closing the trace's number, as a program closing every descriptor would.
        unsafe { libc::close(old) };
        std::fs::remove_file(&path).expect("remove");
        assert_eq!(trace.get(), None);
        // Another file at the trace's path is not the trace either.
        std::fs::write(&path, b"someone else's\n").expect("write");
        assert_eq!(trace.get(), None);
        assert_eq!(std::fs::read(&path).expect("read"), b"someone else's\n");
    }
}
