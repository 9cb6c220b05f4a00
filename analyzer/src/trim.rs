//! Which frames belong to the allocator or to leakview itself, so they can be trimmed from the
//! top of a stack: the user wants to see who called `malloc`, not `malloc`.

use crate::symbolize::Frame;

/// C allocation functions (and their glibc-internal aliases, checked by prefix below).
const C_ALLOCATORS: &[&str] = &[
    "malloc",
    "calloc",
    "realloc",
    "free",
    "cfree",
    "posix_memalign",
    "aligned_alloc",
    "memalign",
    "valloc",
    "pvalloc",
    "reallocarray",
    "malloc_usable_size",
];

/// Prefixes of function names that are allocator or leakview frames.
const PREFIXES: &[&str] = &[
    // C++ operator new/delete, demangled (all variants: [], aligned, nothrow) and mangled.
    "operator new",
    "operator delete",
    "_Znw",
    "_Zna",
    "_Zdl",
    "_Zda",
    // Rust's allocation shims.
    "__rust_alloc",
    "__rust_realloc",
    "__rust_dealloc",
    "__rdl_",
    "__rg_",
    // The same shims as newer toolchains name them, and std's default allocator.
    "__rustc::__rust_",
    "__rustc::__rdl_",
    "__rustc::__rg_",
    "std::alloc::",
    "alloc::alloc::",
    "<alloc::alloc::Global as core::alloc::Allocator>",
    // leakview's own frames.
    "leakview_",
    "leakview::",
    "<leakview::",
];

/// File name of the preload recorder.
const PRELOAD_MODULE: &str = "libleakview_preload.so";

fn is_allocator_function(name: &str) -> bool {
    let bare = name.split('@').next().unwrap_or(name);
    let bare = bare.strip_suffix("()").unwrap_or(bare);
    for stripped in [
        Some(bare),
        bare.strip_prefix("__GI___libc_"),
        bare.strip_prefix("__libc_"),
        bare.strip_prefix("__GI_"),
        bare.strip_prefix("_int_"),
    ]
    .into_iter()
    .flatten()
    {
        if C_ALLOCATORS.contains(&stripped) {
            return true;
        }
    }
    PREFIXES.iter().any(|p| bare.starts_with(p))
}

fn is_leakview_module(module: &str) -> bool {
    let file = module.rsplit('/').next().unwrap_or(module);
    file == PRELOAD_MODULE || file.starts_with("libleakview_preload.so.")
}

/// Whether `frame` belongs to the allocator or to leakview.
pub fn is_trimmed_frame(frame: &Frame) -> bool {
    frame.function.as_deref().is_some_and(is_allocator_function)
        || frame.module.as_deref().is_some_and(is_leakview_module)
}

/// The number of leading (innermost) frames to drop.
pub fn trimmed_prefix_len(frames: &[Frame]) -> usize {
    frames.iter().take_while(|f| is_trimmed_frame(f)).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(function: Option<&str>, module: Option<&str>) -> Frame {
        Frame {
            function: function.map(str::to_string),
            file: None,
            line: None,
            module: module.map(str::to_string),
            address: 1,
            module_offset: None,
            inlined: false,
        }
    }

    #[test]
    fn allocator_names_are_recognised() {
        for name in [
            "malloc",
            "__libc_malloc",
            "__GI___libc_realloc",
            "calloc",
            "posix_memalign",
            "aligned_alloc",
            "reallocarray",
            "operator new(unsigned long)",
            "operator new[](unsigned long, std::nothrow_t const&)",
            "operator new(unsigned long, std::align_val_t)",
            "_Znwm",
            "_ZnamSt11align_val_t",
            "__rust_alloc",
            "__rustc::__rust_alloc",
            "__rustc::__rdl_alloc_zeroed",
            "std::alloc::__default_lib_allocator::__rdl_alloc",
            "alloc::alloc::alloc",
            "<leakview::api::alloc::Diagnostic<A> as core::alloc::global::GlobalAlloc>::alloc",
            "leakview_malloc_hook",
        ] {
            assert!(is_allocator_function(name), "{name}");
        }
        for name in ["main", "make_leak", "mallocator", "my_malloc_wrapper", "std::vector<int>::push_back"] {
            assert!(!is_allocator_function(name), "{name}");
        }
    }

    #[test]
    fn only_the_top_is_trimmed() {
        let frames = vec![
            frame(None, Some("/usr/lib/libleakview_preload.so")),
            frame(Some("malloc"), Some("/lib/libc.so.6")),
            frame(Some("make_leak"), Some("/bin/app")),
            frame(Some("free"), Some("/bin/app")),
            frame(Some("main"), Some("/bin/app")),
        ];
        assert_eq!(trimmed_prefix_len(&frames), 2);
        assert!(is_trimmed_frame(&frames[3]));
        assert!(!is_trimmed_frame(&frames[2]));
    }
}
