//! How a valgrind suppression's names compare with leakview's frames: valgrind's whole-string
//! wildcard match, function names compared in the forms both tools may print (mangled or not,
//! with or without a parameter list, a symbol version or a compiler clone suffix, qualified or
//! bare, glibc's internal aliases or its exported names, valgrind's `(below main)`), and module
//! paths compared as recorded and as the file they resolve to.

use std::cell::RefCell;
use std::collections::HashMap;

use crate::symbolize::demangle;

/// Valgrind's wildcard match: `*` any run of characters, `?` any one character, the rest
/// literal, over the whole of `text`.
pub(super) fn glob_matches(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // Greedy matching with one backtrack point (the last `*`): linear for patterns of one star,
    // at worst quadratic.
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < t.len() {
        match p.get(i) {
            Some('*') => {
                star = Some((i, j));
                i += 1;
            }
            Some(&c) if c == '?' || c == t[j] => {
                i += 1;
                j += 1;
            }
            _ => match star {
                Some((si, sj)) => {
                    i = si + 1;
                    j = sj + 1;
                    star = Some((si, sj + 1));
                }
                None => return false,
            },
        }
    }
    p[i..].iter().all(|&c| c == '*')
}

/// `name` without what the two tools print differently around the same function: a symbol
/// version (`memcpy@@GLIBC_2.14`), compiler clone suffixes (`call_init.part.0`, `.isra.0`,
/// `.constprop.0`, `.cold`), a trailing parameter list and `const` (`make()`, `Foo::get() const`).
pub(super) fn plain_function_name(name: &str) -> &str {
    let mut name = name.split('@').next().unwrap_or(name).trim_end();
    // A demangled clone: `foo(int) [clone .isra.0] [clone .cold]`.
    while let Some(stem) = name.strip_suffix(']')
        && let Some((stem, _)) = stem.rsplit_once(" [clone ")
    {
        name = stem.trim_end();
    }
    name = name.strip_suffix(" const").unwrap_or(name);
    if name.ends_with(')')
        && let Some(open) = parameter_list_start(name)
    {
        name = &name[..open];
    }
    while let Some((stem, suffix)) = name.rsplit_once('.')
        && !stem.is_empty()
        && is_clone_suffix(suffix)
    {
        name = stem;
    }
    name
}

/// The names glibc exports for one of its functions that debug information names by an internal
/// alias (`__GI___nss_passwd_lookup2`, `__getpwuid_r`, `___dlopen`, `_IO_new_file_overflow`,
/// `_IO_fputs`, `__libc_start_main_impl`): valgrind prints an exported one. Only the prefixes
/// and suffixes glibc uses for the purpose.
pub(super) fn glibc_export_names(name: &str) -> impl Iterator<Item = String> + '_ {
    let bare = name.strip_prefix("__GI_").unwrap_or(name);
    let candidates = [
        (bare != name).then(|| bare.to_string()),
        bare.strip_prefix("__")
            .map(|rest| rest.trim_start_matches('_'))
            .filter(|r| !r.is_empty())
            .map(str::to_string),
        bare.strip_prefix("_IO_new_").map(|rest| format!("_IO_{rest}")),
        bare.strip_prefix("_IO_").filter(|rest| !rest.starts_with("new_")).map(str::to_string),
        bare.strip_suffix("_impl").filter(|stem| stem.starts_with("__libc_")).map(str::to_string),
    ];
    candidates.into_iter().flatten()
}

/// Whether a frame named `name` is one valgrind folds into its `(below main)` frame: the C
/// library's code that calls `main`.
pub(super) fn is_below_main(name: &str) -> bool {
    let name = plain_function_name(name);
    let below = |name: &str| {
        matches!(name, "__libc_start_main" | "__libc_start_call_main" | "generic_start_main" | "_start")
    };
    below(name) || glibc_export_names(name).any(|exported| below(&exported))
}

/// Where the parameter list that ends `name` opens (its `(` balancing the final `)`), unless
/// that is the name's start.
fn parameter_list_start(name: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (at, c) in name.char_indices().rev() {
        match c {
            ')' => depth += 1,
            '(' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return (at > 0).then_some(at);
                }
            }
            _ => {}
        }
    }
    None
}

/// GCC's and LLVM's suffixes of cloned or split functions: `part`, `isra`, `constprop`,
/// `cold`, `lto_priv`, `llvm` and a number after some of them.
fn is_clone_suffix(suffix: &str) -> bool {
    suffix.chars().all(|c| c.is_ascii_digit())
        || matches!(suffix, "part" | "isra" | "constprop" | "cold" | "lto_priv" | "llvm" | "localalias")
}

/// Whether the `fun:` pattern of a valgrind suppression matches the function `name` (valgrind's
/// `???` when the frame has none): as written, or with both sides in their plain form, the
/// pattern demangled first when it is a mangled C++ or Rust name without wildcards. An
/// unqualified pattern (valgrind names inlined C++ functions by their bare DWARF name,
/// `allocate`, `basic_string<>`, `operator[]`) also matches the last part of a qualified name,
/// template arguments left out on both sides.
pub(super) fn function_matches(pattern: &str, name: &str) -> bool {
    if glob_matches(pattern, name) {
        return true;
    }
    let plain_name = plain_function_name(name);
    let wildcard = pattern.contains(['*', '?']);
    let readable = if !wildcard && (pattern.starts_with("_Z") || pattern.starts_with("_R")) {
        demangle(pattern)
    } else {
        std::borrow::Cow::Borrowed(pattern)
    };
    let plain_pattern = plain_function_name(&readable);
    if glob_matches(plain_pattern, plain_name) {
        return true;
    }
    last_part(plain_pattern) == plain_pattern
        && glob_matches(
            without_template_arguments(plain_pattern),
            without_template_arguments(last_part(plain_name)),
        )
}

/// The part of a qualified name after its last `::` outside template arguments
/// (`std::vector<a::b>::vector` → `vector`).
fn last_part(name: &str) -> &str {
    let mut depth = 0i32;
    let bytes = name.as_bytes();
    for at in (1..bytes.len()).rev() {
        match bytes[at] {
            b'>' => depth += 1,
            b'<' => depth -= 1,
            b':' if depth == 0 && bytes[at - 1] == b':' => return &name[at + 1..],
            _ => {}
        }
    }
    name
}

/// `name` without the template argument list that ends it (`basic_string<char>` →
/// `basic_string`), unless the brackets do not balance (`operator>>`).
fn without_template_arguments(name: &str) -> &str {
    if !name.ends_with('>') {
        return name;
    }
    let mut depth = 0usize;
    for (at, c) in name.char_indices().rev() {
        match c {
            '>' => depth += 1,
            '<' => {
                let Some(d) = depth.checked_sub(1) else { return name };
                depth = d;
                if depth == 0 {
                    return if at > 0 { &name[..at] } else { name };
                }
            }
            _ => {}
        }
    }
    name
}

thread_local! {
    /// Module paths already resolved (a module's frames are met once per stack).
    static RESOLVED: RefCell<HashMap<String, Option<String>>> = RefCell::new(HashMap::new());
}

/// The file `module` resolves to, where it differs: the trace names a library as the loader
/// found it (`/lib/x86_64-linux-gnu/libstdc++.so.6`), valgrind as the mapped file
/// (`/usr/lib/x86_64-linux-gnu/libstdc++.so.6.0.30`). `None` if it cannot be resolved here
/// (a trace read on another machine).
fn resolved_module(module: &str) -> Option<String> {
    RESOLVED.with(|cache| {
        cache
            .borrow_mut()
            .entry(module.to_string())
            .or_insert_with(|| {
                std::fs::canonicalize(module)
                    .ok()
                    .map(|p| p.to_string_lossy().into_owned())
                    .filter(|p| p != module)
            })
            .clone()
    })
}

/// Whether the `obj:` pattern of a valgrind suppression matches the module path `module`, as
/// recorded or as the file it resolves to.
pub(super) fn module_matches(pattern: &str, module: &str) -> bool {
    glob_matches(pattern, module) || resolved_module(module).is_some_and(|path| glob_matches(pattern, &path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_the_whole_text() {
        assert!(glob_matches("malloc", "malloc"));
        assert!(!glob_matches("malloc", "xmalloc"));
        assert!(glob_matches("*alloc", "calloc"));
        assert!(glob_matches("*alloc", "alloc"));
        assert!(!glob_matches("*alloc", "allocate"));
        assert!(glob_matches("?alloc", "calloc"));
        assert!(!glob_matches("?alloc", "alloc"));
        assert!(glob_matches("*lib*.so*", "/usr/lib/libfoo.so.1"));
        assert!(glob_matches("a*b*c", "axxbyyc"));
        assert!(!glob_matches("a*b*c", "axxbyy"));
        assert!(glob_matches("*", ""));
        assert!(!glob_matches("?", ""));
    }

    #[test]
    fn plain_names_drop_what_the_tools_print_differently() {
        assert_eq!(plain_function_name("make()"), "make");
        assert_eq!(plain_function_name("Foo::get() const"), "Foo::get");
        assert_eq!(plain_function_name("call_init.part.0"), "call_init");
        assert_eq!(plain_function_name("helper.isra.0.cold"), "helper");
        assert_eq!(plain_function_name("memcpy@@GLIBC_2.14"), "memcpy");
        assert_eq!(
            plain_function_name(
                "std::vector<int, std::allocator<int> >::vector(unsigned long, std::allocator<int> const&)"
            ),
            "std::vector<int, std::allocator<int> >::vector"
        );
        assert_eq!(plain_function_name("operator()(int)"), "operator()");
        assert_eq!(plain_function_name("(anonymous namespace)::f()"), "(anonymous namespace)::f");
        assert_eq!(plain_function_name("main"), "main");
        assert_eq!(plain_function_name("foo(int) [clone .isra.0] [clone .cold]"), "foo");
    }

    #[test]
    fn mangled_patterns_match_demangled_frames() {
        assert!(function_matches("_ZL4makev", "make"));
        assert!(function_matches("_ZN3FooC1Ev", "Foo::Foo()"));
        assert!(function_matches("_ZN3FooC1Ev", "Foo::Foo"));
        assert!(!function_matches("_ZN3FooC1Ev", "Bar::Bar()"));
        assert!(function_matches(
            "_ZNSt6vectorIiSaIiEEC1EmRKS0_",
            "std::vector<int, std::allocator<int> >::vector(unsigned long, std::allocator<int> const&)"
        ));
        assert!(function_matches("call_init", "call_init.part.0"));
        assert!(is_below_main("__libc_start_main_impl") && is_below_main("__libc_start_call_main"));
        assert!(!is_below_main("main"));
        assert!(function_matches("call_init.part.0", "call_init"));
        assert!(function_matches("*", "???"));
        // Valgrind's names of inlined C++ functions are bare.
        assert!(function_matches(
            "allocate",
            "std::__new_allocator<int>::allocate(unsigned long, void const*)"
        ));
        assert!(function_matches(
            "basic_string<>",
            "std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> >::basic_string<std::allocator<char> >(unsigned long, char, std::allocator<char> const&)"
        ));
        assert!(function_matches(
            "_M_create_node<const std::piecewise_construct_t&, std::tuple<int const&>, std::tuple<> >",
            "std::_Rb_tree<int, std::pair<int const, int>, std::_Select1st<std::pair<int const, int> >, std::less<int>, std::allocator<std::pair<int const, int> > >::_M_create_node<std::piecewise_construct_t const&, std::tuple<int const&>, std::tuple<> >(std::piecewise_construct_t const&, std::tuple<int const&>&&, std::tuple<>&&)"
        ));
        assert!(function_matches(
            "operator[]",
            "std::map<int, int, std::less<int>, std::allocator<std::pair<int const, int> > >::operator[](int const&)"
        ));
        assert!(!function_matches("allocate", "std::__new_allocator<int>::deallocate(int*, unsigned long)"));
        // A qualified pattern is compared whole.
        assert!(!function_matches("Bar::make", "Foo::make()"));
        assert_eq!(without_template_arguments("operator>>"), "operator>>");
        assert_eq!(last_part("std::vector<a::b>::vector"), "vector");
        assert!(!function_matches("main", "???"));
    }

    #[test]
    fn glibc_aliases_give_the_exported_names() {
        let names = |n: &str| glibc_export_names(n).collect::<Vec<_>>();
        assert_eq!(names("__GI___nss_passwd_lookup2"), vec!["__nss_passwd_lookup2", "nss_passwd_lookup2"]);
        assert_eq!(names("__getpwuid_r"), vec!["getpwuid_r"]);
        assert_eq!(names("___dlopen"), vec!["dlopen"]);
        assert_eq!(names("_IO_new_file_overflow"), vec!["_IO_file_overflow"]);
        assert_eq!(names("__GI__IO_fputs"), vec!["_IO_fputs", "fputs"]);
        assert_eq!(names("__libc_start_main_impl"), vec!["libc_start_main_impl", "__libc_start_main"]);
        assert!(names("getpwuid").is_empty());
    }

    #[test]
    fn modules_match_as_recorded_or_resolved() {
        assert!(module_matches("*/libfoo.so*", "/usr/lib/libfoo.so.1"));
        assert!(!module_matches("/usr/lib/libfoo.so.1", "/nowhere/libbar.so"));
        // A symlink resolves to its target.
        let dir = tempfile::tempdir().expect("temp dir");
        let target = dir.path().join("libreal.so.1.2");
        std::fs::write(&target, b"").expect("write");
        let link = dir.path().join("libreal.so.1");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        let resolved = std::fs::canonicalize(&target).expect("resolves");
        let (link, resolved) = (link.to_string_lossy(), resolved.to_string_lossy());
        assert!(module_matches(&resolved, &link));
        assert!(module_matches("*/libreal.so.1.2", &link));
    }
}
