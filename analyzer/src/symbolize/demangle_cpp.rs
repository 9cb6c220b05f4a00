//! Itanium C++ demangling that reads as GNU `c++filt` prints it.
//!
//! `cpp_demangle` parses the names; where its printing differs from `c++filt`, this module
//! corrects it: a templated constructor lost its first parameter (the
//! printer took it for a return type, which these functions do not have), and the rest of the
//! differences are conventions of the text, fixed in [`super::cpp_conventions`].

use cpp_demangle::{DemangleOptions, Symbol};

use super::cpp_conventions::to_cxxfilt_conventions;

/// The readable form of an Itanium-mangled name (`_Z...`, clone suffixes included), or `None`
/// when it does not parse.
pub fn demangle_cpp(name: &str) -> Option<String> {
    let printed = print(name, DemangleOptions::new())?;
    let printed = repair_template_constructor(name, &printed).unwrap_or(printed);
    Some(to_cxxfilt_conventions(&printed))
}

fn print(name: &str, options: DemangleOptions) -> Option<String> {
    Symbol::new(name.as_bytes()).ok()?.demangle(&options).ok()
}

fn bare_name(name: &str) -> Option<String> {
    print(name, DemangleOptions::new().no_params().no_return_type())
}

/// Markers of constructors (`C1`..`C5`) followed by template arguments (`I`): their mangled
/// parameter list starts with the first parameter even though they have template arguments.
fn may_be_template_constructor(name: &str) -> bool {
    ["C1I", "C2I", "C3I", "C4I", "C5I"].iter().any(|marker| name.contains(marker))
}

/// For a templated constructor, the name printed with every parameter.
///
/// The Itanium ABI encodes a return type first for template functions except constructors,
/// destructors and conversion operators; `cpp_demangle` skips the first type of any template
/// function, so for these it drops a parameter. The repair puts a `v` (void, never a
/// substitution candidate, so no back reference moves) where the name ends, as if a return type
/// were there, which the printer then skips. The end of the name is the first position after an
/// `E` where the insertion parses and leaves the printed name unchanged.
fn repair_template_constructor(name: &str, printed: &str) -> Option<String> {
    if !may_be_template_constructor(name) {
        return None;
    }
    let bare = bare_name(name)?;
    // A template function with a return type prints it before the name; these do not.
    if !bare.ends_with('>') || !printed.starts_with(&bare) {
        return None;
    }
    let ends = name.match_indices('E').map(|(at, _)| at + 1);
    for end in ends {
        let candidate = format!("{}v{}", &name[..end], &name[end..]);
        if bare_name(&candidate).as_deref() == Some(bare.as_str()) {
            return print(&candidate, DemangleOptions::new());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templated_constructors_keep_their_first_parameter() {
        assert_eq!(
            demangle_cpp("_ZN2ns3BoxIiEC2IdEET_i").as_deref(),
            Some("ns::Box<int>::Box<double>(double, int)")
        );
        assert_eq!(
            demangle_cpp("_ZN2ns3BoxIiEC1IcEERKSt6vectorIT_SaIS4_EE").as_deref(),
            Some("ns::Box<int>::Box<char>(std::vector<char, std::allocator<char> > const&)")
        );
    }

    #[test]
    fn template_functions_keep_their_return_type_and_parameters() {
        assert_eq!(demangle_cpp("_Z6sfinaeIivET_S0_").as_deref(), Some("int sfinae<int, void>(int)"));
    }

    #[test]
    fn plain_constructors_are_left_alone() {
        assert_eq!(
            demangle_cpp("_ZN2ns3BoxIiEC2ERKS1_").as_deref(),
            Some("ns::Box<int>::Box(ns::Box<int> const&)")
        );
    }
}
