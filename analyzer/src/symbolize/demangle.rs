//! Demangling of function names: Rust (legacy and v0, hash suffixes dropped) and C++ (Itanium).
//! Names that are not mangled, such as C functions, are returned unchanged.

use std::borrow::Cow;

use cpp_demangle::{DemangleOptions, Symbol};

/// The readable form of a (possibly mangled) symbol name.
///
/// Rust is tried first: its legacy scheme is a strict subset of the Itanium grammar, and the C++
/// demangler would otherwise render the Rust hash as a path component.
pub fn demangle(name: &str) -> Cow<'_, str> {
    if let Ok(rust) = rustc_demangle::try_demangle(name) {
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

fn demangle_cpp(name: &str) -> Option<String> {
    let symbol = Symbol::new(name.as_bytes()).ok()?;
    let options = DemangleOptions::new().no_return_type();
    symbol.demangle(&options).ok()
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
