//! Report-time symbolization of return addresses (never on the allocation path): function,
//! source file and line through the `backtrace` crate's resolver (inline frames included), the
//! module through `dladdr`. Results are cached per address for the life of the process. Runs
//! with the thread's reentrancy guard held, so what the resolver allocates is never tracked.
//!
//! Also decides which leading frames belong to the allocator or to leakview (the same rules as
//! the analyzer's report), so reports start at the program's own code.

use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::Mutex;

use leakview_format::allocator_names::{is_allocator_function, is_allocator_source};
use leakview_format::rust_std_names::{FrameName, is_rust_library_frame, is_rust_std_own_block};

use super::leak::Frame;
use super::platform;

static CACHE: Mutex<Option<HashMap<usize, Vec<Frame>>>> = Mutex::new(None);

/// Symbolizes return addresses (innermost first) into frames, innermost first; an address in
/// inlined code gives several frames (all but the last marked `inlined`).
pub(crate) fn resolve(addresses: &[usize]) -> Vec<Frame> {
    let _guard = platform::enter();
    let mut cache = CACHE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let cache = cache.get_or_insert_with(HashMap::new);
    let mut frames = Vec::with_capacity(addresses.len());
    for &address in addresses {
        let resolved = cache.entry(address).or_insert_with(|| resolve_one(address));
        frames.extend(resolved.iter().cloned());
    }
    frames
}

fn resolve_one(address: usize) -> Vec<Frame> {
    let module = module_of(address);
    let mut frames = Vec::new();
    backtrace::resolve(address as *mut c_void, |symbol| {
        frames.push(Frame {
            function: symbol.name().map(|name| format!("{name:#}")),
            file: symbol.filename().map(|path| path.display().to_string()),
            line: symbol.lineno(),
            module: module.clone(),
            address,
            inlined: true,
        });
    });
    match frames.last_mut() {
        Some(last) => last.inlined = false,
        None => {
            frames.push(Frame { function: None, file: None, line: None, module, address, inlined: false })
        }
    }
    frames
}

/// Path of the loaded object that holds `address`.
fn module_of(address: usize) -> Option<String> {
    // SAFETY: an all-zero Dl_info is a valid value for dladdr to fill in.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: dladdr only reads the loader's tables; `info` is ours.
    let found = unsafe { libc::dladdr(address as *const c_void, &mut info) } != 0;
    if !found || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: dli_fname points to a NUL-terminated string owned by the loader.
    let name = unsafe { std::ffi::CStr::from_ptr(info.dli_fname) }.to_string_lossy().into_owned();
    if name.contains('/') {
        return Some(name);
    }
    // The main program may be named without a path (or not at all).
    std::env::current_exe().ok().map(|p| p.display().to_string()).or(Some(name).filter(|n| !n.is_empty()))
}

/// Source directory of this API, as the debug info of the program names it.
const API_SOURCES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/api/");

/// Whether `frame` belongs to the allocator or to leakview. By name (as the analyzer decides),
/// or by source file: optimised builds with line tables only name functions without their
/// module (`alloc`, not `alloc::alloc::alloc`).
pub(crate) fn is_allocator_frame(frame: &Frame) -> bool {
    if let Some(file) = frame.file.as_deref()
        && (file.starts_with(API_SOURCES) || is_allocator_source(file))
    {
        return true;
    }
    frame.function.as_deref().is_some_and(is_allocator_function)
}

/// Number of leading allocator/leakview frames.
pub(crate) fn allocator_prefix_len(frames: &[Frame]) -> usize {
    frames.iter().take_while(|f| is_allocator_frame(f)).count()
}

/// Whether `frame` is standard-library code (`leakview_format::rust_std_names`) or this API's
/// (`LeakTracker::run_scoped` and the like, between a test and its closure): summaries pass
/// over both.
pub(crate) fn is_library_frame(frame: &Frame) -> bool {
    frame.file.as_deref().is_some_and(|file| file.starts_with(API_SOURCES))
        || is_rust_library_frame(frame_name(frame))
}

fn frame_name(frame: &Frame) -> FrameName<'_> {
    FrameName { function: frame.function.as_deref(), file: frame.file.as_deref() }
}

/// Whether a block with these frames (all of them, innermost first) is one the standard library
/// keeps for itself (`leakview_format::rust_std_names`), which `verify_no_leaks` does not count.
pub(crate) fn is_std_own_block(frames: &[Frame]) -> bool {
    let user = &frames[allocator_prefix_len(frames)..];
    is_rust_std_own_block(user.iter().map(frame_name))
}

/// Whether `frame` is where the Rust runtime hands over to `main` or to a thread's closure:
/// what lies beyond it is start-up code.
pub(crate) fn is_runtime_start(frame: &Frame) -> bool {
    frame.function.as_deref().is_some_and(|name| name.contains("__rust_begin_short_backtrace"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str) -> Frame {
        Frame {
            function: Some(name.to_string()),
            file: None,
            line: None,
            module: None,
            address: 1,
            inlined: false,
        }
    }

    #[test]
    fn allocator_frames_are_recognised_like_the_analyzer() {
        for name in [
            "__rust_alloc",
            "__rustc::__rust_alloc_zeroed",
            "alloc::alloc::alloc",
            "<leakview::api::alloc::Adaptive<A> as core::alloc::global::GlobalAlloc>::alloc",
            "leakview::api::hooks::track_alloc",
            "malloc",
            "__libc_malloc",
            "operator new(unsigned long)",
        ] {
            assert!(is_allocator_frame(&named(name)), "{name}");
        }
        for name in ["main", "my_crate::leaky", "mallocator", "alloc::vec::Vec<T>::push"] {
            assert!(!is_allocator_frame(&named(name)), "{name}");
        }
        let frames = [named("__rust_alloc"), named("alloc::raw_vec::finish_grow"), named("app::run")];
        assert_eq!(allocator_prefix_len(&frames), 1);
        assert!(is_library_frame(&frames[1]));
        assert!(!is_library_frame(&frames[2]));
        let generic = Frame {
            file: Some("/rustc/0123abcd/library/alloc/src/slice.rs".to_string()),
            ..named("<T as alloc::slice::<impl [T]>::to_vec_in::ConvertVec>::to_vec")
        };
        assert!(is_library_frame(&generic));
        let scoped = Frame {
            file: Some(format!("{API_SOURCES}tracker.rs")),
            ..named("leakview::api::tracker::LeakTracker::run_scoped")
        };
        assert!(is_library_frame(&scoped));
        let short_names = [
            Frame { file: Some(format!("{API_SOURCES}hooks.rs")), ..named("alloc<std::alloc::System>") },
            Frame { file: Some("/rustc/0123abcd/library/alloc/src/alloc.rs".to_string()), ..named("alloc") },
            named("__rust_alloc"),
            Frame { file: Some("/home/me/app/src/main.rs".to_string()), ..named("alloc") },
        ];
        assert_eq!(allocator_prefix_len(&short_names), 3);
    }

    #[inline(never)]
    fn a_function_to_find() -> Vec<usize> {
        let mut ips = [0usize; 16];
        let n = super::super::capture_backtrace::trace_into(&mut ips, 0);
        std::hint::black_box(ips[..n].to_vec())
    }

    #[test]
    fn the_standard_librarys_own_blocks_are_told_apart() {
        let stack = |names: &[&str]| names.iter().map(|n| named(n)).collect::<Vec<_>>();
        // The allocator's and leakview's frames first, as captured.
        assert!(is_std_own_block(&stack(&["__rustc::__rust_alloc", "std::io::stdio::_print", "t::main"])));
        assert!(is_std_own_block(&stack(&["std::panicking::default_hook::{closure#1}", "x"])));
        assert!(!is_std_own_block(&stack(&["__rustc::__rust_alloc", "t::report", "std::io::stdio::_print"])));
        assert!(!is_std_own_block(&[]));
    }

    #[test]
    fn resolves_a_known_function() {
        let addresses = a_function_to_find();
        let frames = resolve(&addresses);
        let found: Vec<_> = frames
            .iter()
            .filter(|f| f.function.as_deref().is_some_and(|n| n.contains("a_function_to_find")))
            .collect();
        assert!(!found.is_empty(), "{frames:?}");
        assert!(found[0].module.as_deref().is_some_and(|m| m.contains('/')));
        assert!(found[0].line.is_some());
        assert!(frames.iter().all(|f| addresses.contains(&f.address)));
        // Cached: the same frames again.
        assert_eq!(resolve(&addresses), frames);
    }
}
