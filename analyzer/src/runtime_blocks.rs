//! The runtimes' own blocks: memory glibc, its dynamic loader, libstdc++ and the Rust standard
//! library allocate for themselves and keep for the life of the process — stdio buffers, locale
//! and message catalogs, NSS modules and the static buffers of `getpwuid` and friends, time zone
//! data, the loader's link maps, libstdc++'s emergency exception pool. glibc frees them only in
//! `__libc_freeres`, which valgrind calls at exit by default and a program never does, so without
//! this every program that prints a line would "leak" its stdout buffer. `leakview check` leaves
//! them out of its verdict by default (valgrind ships default suppressions for the same reason;
//! LeakSanitizer never reports them, as they stay reachable); `leakview report` shows them like
//! any block.
//!
//! A block is the runtime's when
//! - no frame of its stack belongs to the program: the runtime allocated it on its own (static
//!   initialisers of libstdc++, the loader at start-up); or
//! - the frames at its allocating end — from the innermost up to the first frame outside the
//!   runtime's libraries — pass through one of the runtime functions below that keep what they
//!   allocate. Functions that hand the program memory it must free (`fopen`, `strdup`,
//!   `getaddrinfo`, `newlocale`, ...) are not among them, so their leaks still count. A thread's
//!   TLS block (`_dl_allocate_tls`, under `pthread_create`) is the runtime's: glibc keeps it with
//!   the thread's stack, and keeps both in its cache of stacks after the thread is joined (a
//!   thread never joined keeps them too; that is a thread leak, whose stack is not heap).
//!
//! The Rust standard library is linked into the program, so its blocks are told by its own rules
//! (stdout's buffer, its stack-overflow bookkeeping, ...: see `leakview_format::rust_std_names`).
//!
//! Frames are matched by function name, which needs the runtime's symbols: glibc's exported
//! entry points (`setlocale`, `getpwuid`, `_IO_file_doallocate`) are named even without its
//! debug files; its internal functions (`_nl_*`, `__nss_*`) only with them.

use std::path::Path;

use leakview_format::rust_std_names::{FrameName, is_rust_std_own_block};

use crate::symbolize::Frame;

/// File-name prefixes of the runtime's libraries.
const RUNTIME_LIBRARIES: &[&str] = &[
    "libc.so",
    "ld-linux",
    "ld64.so",
    "libstdc++.so",
    "libgcc_s.so",
    "libm.so",
    "libdl.so",
    "libpthread.so",
    "libnss_",
    "libresolv.so",
];

/// Runtime functions that allocate state the runtime keeps (names without glibc's `__GI_` alias
/// prefix).
const KEEPING_FUNCTIONS: &[&str] = &[
    // stdio: the buffer of stdin, stdout, stderr (and of any stream, whose FILE itself is the
    // program's to close)
    "_IO_file_doallocate",
    // locale, message catalogs
    "setlocale",
    "textdomain",
    "bindtextdomain",
    "bind_textdomain_codeset",
    "__dcigettext",
    // NSS lookups with static result buffers
    "getpwuid",
    "getpwnam",
    "getpwent",
    "getgrgid",
    "getgrnam",
    "getgrent",
    "getspnam",
    "getlogin",
    "gethostbyname",
    "gethostbyname2",
    "gethostbyaddr",
    "getservbyname",
    "getservbyport",
    "getprotobyname",
    "getprotobynumber",
    "getnetbyname",
    // time zone data
    "tzset",
    "tzset_internal",
    "__tzfile_read",
    "localtime",
    "localtime_r",
    "mktime",
    // per-thread message buffers
    "strerror",
    "strsignal",
    "dlerror",
    "_dlerror_run",
    // the environment (glibc keeps every string setenv made)
    "setenv",
    "putenv",
    "__add_to_environ",
    // exit handlers beyond the first block
    "__new_exitfn",
    // dynamic loading
    "dlopen",
    "dlmopen",
];

/// Prefixes of runtime-internal function families that keep what they allocate.
const KEEPING_PREFIXES: &[&str] = &["_nl_", "__nss_", "nss_", "_dl_", "__gconv_", "__resolv_"];

/// Whether a block allocated with this stack (innermost frame first, allocator frames trimmed)
/// is the runtime's own: the C runtime's (above) or the Rust standard library's
/// (`leakview_format::rust_std_names`, the rules the in-process tracker also follows).
pub fn is_runtime_block(frames: &[Frame]) -> bool {
    if frames.is_empty() {
        return false;
    }
    let names = frames.iter().map(|f| FrameName { function: f.function.as_deref(), file: f.file.as_deref() });
    if is_rust_std_own_block(names) {
        return true;
    }
    let allocating_end = frames.iter().take_while(|f| in_runtime_library(f)).collect::<Vec<_>>();
    if allocating_end.len() == frames.len() {
        return true;
    }
    allocating_end.iter().filter_map(|f| f.function.as_deref()).map(plain_name).any(|n| {
        // glibc's debug names are often the internal `__name` of the exported `name`
        // (`__bindtextdomain`, `__textdomain`).
        let keeps =
            |n: &str| KEEPING_FUNCTIONS.contains(&n) || KEEPING_PREFIXES.iter().any(|p| n.starts_with(p));
        keeps(n) || n.strip_prefix("__").is_some_and(keeps)
    })
}

/// Whether the frame's module is one of the runtimes' libraries (libc, the loader, libstdc++, ...).
pub(crate) fn in_runtime_library(frame: &Frame) -> bool {
    frame
        .module
        .as_deref()
        .and_then(|m| Path::new(m).file_name())
        .and_then(|n| n.to_str())
        .is_some_and(|name| RUNTIME_LIBRARIES.iter().any(|lib| name.starts_with(lib)))
}

/// `name` without glibc's internal alias prefix (`__GI_setlocale` is `setlocale`).
fn plain_name(name: &str) -> &str {
    name.strip_prefix("__GI_").unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIBC: &str = "/usr/lib/x86_64-linux-gnu/libc.so.6";
    const LOADER: &str = "/usr/lib64/ld-linux-x86-64.so.2";
    const CXX: &str = "/usr/lib/x86_64-linux-gnu/libstdc++.so.6";
    const PROGRAM: &str = "/home/me/app";

    fn frame(module: &str, function: Option<&str>) -> Frame {
        Frame::in_module(function, module)
    }

    fn stack(frames: &[(&str, Option<&str>)]) -> Vec<Frame> {
        frames.iter().map(|&(m, f)| frame(m, f)).collect()
    }

    #[test]
    fn stdio_buffers_locale_and_nss_state_are_the_runtimes() {
        let stdout_buffer = stack(&[
            (LIBC, Some("__GI__IO_file_doallocate")),
            (LIBC, Some("_IO_new_file_overflow")),
            (LIBC, Some("__printf")),
            (PROGRAM, Some("main")),
        ]);
        assert!(is_runtime_block(&stdout_buffer));
        // Without libc's debug files: internal frames unnamed, the entry point named.
        let locale = stack(&[(LIBC, None), (LIBC, None), (LIBC, Some("setlocale")), (PROGRAM, Some("main"))]);
        assert!(is_runtime_block(&locale));
        let passwd = stack(&[(LIBC, Some("__nss_module_allocate")), (LIBC, None), (PROGRAM, None)]);
        assert!(is_runtime_block(&passwd));
        // Message catalogs, under glibc's internal names (as its debug information gives them).
        let binding = stack(&[
            (LIBC, Some("set_binding_values")),
            (LIBC, Some("__bindtextdomain")),
            (PROGRAM, Some("main")),
        ]);
        assert!(is_runtime_block(&binding));
        let domain =
            stack(&[(LIBC, Some("__strdup")), (LIBC, Some("__textdomain")), (PROGRAM, Some("main"))]);
        assert!(is_runtime_block(&domain));
        // A thread's TLS block, which glibc keeps with the stack in its cache of stacks.
        let thread = stack(&[
            (LOADER, Some("allocate_dtv")),
            (LOADER, Some("_dl_allocate_tls")),
            (LIBC, Some("allocate_stack")),
            (LIBC, Some("__pthread_create_2_1")),
            (PROGRAM, Some("spawn_worker")),
        ]);
        assert!(is_runtime_block(&thread));
    }

    #[test]
    fn what_the_runtime_hands_to_the_program_is_the_programs() {
        let file = stack(&[
            (LIBC, Some("__fopen_internal")),
            (LIBC, Some("_IO_new_fopen")),
            (PROGRAM, Some("open_log")),
        ]);
        assert!(!is_runtime_block(&file));
        let copy = stack(&[(LIBC, Some("__strdup")), (PROGRAM, Some("main"))]);
        assert!(!is_runtime_block(&copy));
        // A keeping function further out than the program's frame does not count.
        let callback =
            stack(&[(PROGRAM, Some("compare")), (LIBC, Some("setlocale")), (PROGRAM, Some("main"))]);
        assert!(!is_runtime_block(&callback));
        let unknown_module = vec![Frame { module: None, ..frame(LIBC, Some("setlocale")) }];
        assert!(!is_runtime_block(&unknown_module));
        assert!(!is_runtime_block(&[]));
    }

    #[test]
    fn the_rust_standard_librarys_own_blocks_are_the_runtimes() {
        let guard_info = stack(&[
            (PROGRAM, Some("std::sys::pal::unix::stack_overflow::thread_info::set_current_info")),
            (PROGRAM, Some("std::rt::lang_start_internal")),
            (PROGRAM, Some("main")),
        ]);
        assert!(is_runtime_block(&guard_info));
        let program = stack(&[(PROGRAM, Some("app::load")), (PROGRAM, Some("std::io::stdio::_print"))]);
        assert!(!is_runtime_block(&program));
    }

    #[test]
    fn blocks_allocated_with_no_program_frame_are_the_runtimes() {
        let emergency_pool = stack(&[(CXX, None), (CXX, None), (LOADER, Some("_dl_init")), (LOADER, None)]);
        assert!(is_runtime_block(&emergency_pool));
    }
}
