//! The names of allocator and leakview functions, the frames a report trims from the top of a
//! stack (the user wants to see who called `malloc`, not `malloc`). Shared by the analyzer and
//! the recorder's in-process API so both trim the same frames.

/// C allocation functions (and their glibc-internal aliases, matched by prefix below).
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

/// Whether the function `name` (demangled or not, with or without a `@version` suffix or an
/// empty parameter list) is an allocator's or leakview's own.
pub fn is_allocator_function(name: &str) -> bool {
    let bare = name.split('@').next().unwrap_or(name);
    let bare = bare.strip_suffix("()").unwrap_or(bare);
    let glibc_aliases = [
        Some(bare),
        bare.strip_prefix("__GI___libc_"),
        bare.strip_prefix("__libc_"),
        bare.strip_prefix("__GI_"),
        bare.strip_prefix("_int_"),
    ];
    glibc_aliases.into_iter().flatten().any(|stripped| C_ALLOCATORS.contains(&stripped))
        || PREFIXES.iter().any(|prefix| bare.starts_with(prefix))
}

/// Whether `file` (a frame's source file) is the Rust global allocator's entry (`alloc::alloc`):
/// optimised builds with line tables only name its inlined functions without their module
/// (`alloc`, `alloc_impl`, `allocate`), so the file is what tells them apart.
pub fn is_allocator_source(file: &str) -> bool {
    file.starts_with("/rustc/") && file.ends_with("/library/alloc/src/alloc.rs")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocator_names_are_recognised() {
        for name in [
            "malloc",
            "malloc@GLIBC_2.2.5",
            "__libc_malloc",
            "__GI___libc_realloc",
            "_int_free",
            "calloc",
            "posix_memalign",
            "aligned_alloc",
            "reallocarray",
            "operator new(unsigned long)",
            "operator new[](unsigned long, std::nothrow_t const&)",
            "operator new(unsigned long, std::align_val_t)",
            "operator delete(void*)",
            "_Znwm",
            "_ZnamSt11align_val_t",
            "__rust_alloc",
            "__rustc::__rust_alloc",
            "__rustc::__rust_alloc_zeroed",
            "__rustc::__rdl_alloc_zeroed",
            "std::alloc::__default_lib_allocator::__rdl_alloc",
            "alloc::alloc::alloc",
            "<leakview::api::alloc::Diagnostic<A> as core::alloc::global::GlobalAlloc>::alloc",
            "leakview::api::hooks::track_alloc",
            "leakview_malloc_hook",
        ] {
            assert!(is_allocator_function(name), "{name}");
        }
        for name in [
            "main",
            "make_leak",
            "mallocator",
            "my_malloc_wrapper",
            "my_crate::leaky",
            "alloc::vec::Vec<T>::push",
            "std::vector<int>::push_back",
        ] {
            assert!(!is_allocator_function(name), "{name}");
        }
    }
}
