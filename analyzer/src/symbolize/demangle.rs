//! Demangling of function names: Rust (legacy and v0, hash suffixes dropped, as `rustfilt`
//! prints them) and C++ (Itanium, as GNU `c++filt` prints them). Names that are not mangled,
//! such as C functions, are returned unchanged.

use std::borrow::Cow;

use super::demangle_cpp::demangle_cpp;

/// The readable form of a (possibly mangled) symbol name.
///
/// A name is read as Rust when it is v0-mangled (`_R`) or legacy-mangled with the
/// `17h<16 hex digits>E` hash element that every legacy Rust symbol ends with; anything else
/// starting with `_Z` is C++. Without the hash test, C++ data names such as
/// `_ZN12_GLOBAL__N_15countE` would pass as Rust and print `_GLOBAL__N_1::count`.
pub fn demangle(name: &str) -> Cow<'_, str> {
    if (name.starts_with("_R") || has_legacy_rust_hash(name))
        && let Ok(rust) = rustc_demangle::try_demangle(name)
    {
        // The alternate form omits the `::h0123456789abcdef` hash suffix.
        return Cow::Owned(format!("{rust:#}"));
    }
    if name.starts_with("_Z")
        && let Some(cpp) = demangle_cpp(name)
    {
        return Cow::Owned(cpp);
    }
    Cow::Borrowed(name)
}

/// Whether `name` is `_ZN<len><ident>...E` whose last element is a Rust hash, `h` and 16 hex
/// digits.
fn has_legacy_rust_hash(name: &str) -> bool {
    let Some(mut rest) = name.strip_prefix("_ZN") else { return false };
    let mut last = "";
    while !rest.starts_with('E') {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let Ok(len) = rest[..digits].parse::<usize>() else { return false };
        let Some(element) = rest.get(digits..digits + len) else { return false };
        last = element;
        rest = &rest[digits + len..];
    }
    last.len() == 17 && last.starts_with('h') && last[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_legacy_names_lose_their_hash() {
        assert_eq!(demangle("_ZN4core3ptr13drop_in_place17h0123456789abcdefE"), "core::ptr::drop_in_place");
        assert_eq!(
            demangle("_ZN5alloc5alloc12alloc_global17h2f3e4a5b6c7d8e9fE.llvm.123"),
            "alloc::alloc::alloc_global"
        );
    }

    #[test]
    fn rust_v0_names_are_demangled() {
        let name = demangle("_RNvCs1234_7mycrate3foo");
        assert_eq!(name, "mycrate::foo");
        let generic = demangle("_RINvNtCs1234_4core3mem4swaplEB4_");
        assert!(generic.starts_with("core::mem::swap::<i32>"), "{generic}");
    }

    #[test]
    fn cpp_names_are_demangled_with_namespaces_and_templates() {
        assert_eq!(demangle("_ZN2ns3Foo3barEi"), "ns::Foo::bar(int)");
        assert_eq!(
            demangle("_ZN16leakview_fixture4PoolIiE4grabEm"),
            "leakview_fixture::Pool<int>::grab(unsigned long)"
        );
    }

    #[test]
    fn c_names_and_garbage_are_kept_as_they_are() {
        assert_eq!(demangle("malloc"), "malloc");
        assert_eq!(demangle("helper.part.0"), "helper.part.0");
        assert_eq!(demangle("_Zgarbage"), "_Zgarbage");
        assert_eq!(demangle(""), "");
    }
}
