//! Rewrites `cpp_demangle`'s text into GNU `c++filt`'s conventions, where the two print the same
//! parsed name differently:
//! - special names: `{vtable(T)}` reads `vtable for T`, `{vtt(T)}` reads `VTT for T`, thunks read
//!   `non-virtual thunk to f()` / `virtual thunk to f()`;
//! - integer literals in template arguments: `(unsigned int)4` reads `4u`, `(long)-3` reads `-3l`
//!   (types without a suffix, such as `(char)120`, keep their cast);
//! - an empty parameter pack leaves no `, ` behind: `Manager<Module, >` reads `Manager<Module>`;
//! - a function type inside template arguments has a space before its parameters:
//!   `std::function<int (int)>`, not `std::function<int(int)>`;
//! - the type of `nullptr` reads `decltype(nullptr)`, not `std::nullptr_t`;
//! - the standard abbreviations read in full, as `c++filt` prints them: `std::string` reads
//!   `std::basic_string<char, std::char_traits<char>, std::allocator<char> >`, likewise the
//!   stream abbreviations.

/// `cpp_demangle`'s output with `c++filt`'s conventions.
pub fn to_cxxfilt_conventions(printed: &str) -> String {
    let text = special_name(printed).unwrap_or_else(|| printed.to_owned());
    let text = literal_suffixes(&text);
    let text = without_empty_packs(&text);
    let text = spaced_function_types(&text);
    // `Dn`, the type of `nullptr`.
    let text = replace_word(&text, "std::nullptr_t", "decltype(nullptr)");
    full_standard_names(&text)
}

/// `{vtable(T)}`, `{vtt(T)}` and `{virtual override thunk(offset, f)}` as `c++filt` names them.
fn special_name(printed: &str) -> Option<String> {
    let inner = printed.strip_prefix('{')?.strip_suffix('}')?;
    if let Some(ty) = inner.strip_prefix("vtable(").and_then(|rest| rest.strip_suffix(')')) {
        return Some(format!("vtable for {ty}"));
    }
    if let Some(ty) = inner.strip_prefix("vtt(").and_then(|rest| rest.strip_suffix(')')) {
        return Some(format!("VTT for {ty}"));
    }
    let thunk = inner.strip_prefix("virtual override thunk(")?.strip_suffix(')')?;
    if let Some(rest) = thunk.strip_prefix("{offset(") {
        let (_, function) = rest.split_once(")}, ")?;
        return Some(format!("non-virtual thunk to {function}"));
    }
    if let Some(rest) = thunk.strip_prefix("{virtual offset(") {
        let (_, function) = rest.split_once(")}, ")?;
        return Some(format!("virtual thunk to {function}"));
    }
    None
}

/// `c++filt`'s suffix for an integer literal of each builtin type that has one.
const LITERAL_SUFFIXES: [(&str, &str); 6] = [
    ("(int)", ""),
    ("(unsigned int)", "u"),
    ("(long)", "l"),
    ("(unsigned long)", "ul"),
    ("(long long)", "ll"),
    ("(unsigned long long)", "ull"),
];

/// `(unsigned int)4` → `4u`, `(long)-3` → `-3l`, `(int)7` → `7`.
fn literal_suffixes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    'scan: while let Some(open) = rest.find('(') {
        out.push_str(&rest[..open]);
        let at = &rest[open..];
        let after_identifier = out.chars().next_back().is_some_and(is_identifier_char);
        if !after_identifier {
            for (cast, suffix) in LITERAL_SUFFIXES {
                let Some(value) = at.strip_prefix(cast) else { continue };
                let digits_start = usize::from(value.starts_with('-'));
                let digits = value[digits_start..].bytes().take_while(u8::is_ascii_digit).count();
                if digits == 0 {
                    continue;
                }
                let number_len = digits_start + digits;
                out.push_str(&value[..number_len]);
                out.push_str(suffix);
                rest = &value[number_len..];
                continue 'scan;
            }
        }
        out.push('(');
        rest = &at[1..];
    }
    out.push_str(rest);
    out
}

/// Drops what an empty parameter pack leaves: `<A, >` → `<A>`, `(, B)` → `(B)`, and the
/// reference of an empty `Args&&...`: `f<>(&&)` → `f<>()` (but `int (&&) [3]`, a reference to
/// an array, and `void (&)(int)`, to a function, stay).
fn without_empty_packs(text: &str) -> String {
    let mut text = text.to_owned();
    let leftovers = [
        (", const&)", ")"),
        ("(const&)", "()"),
        (", &&)", ")"),
        ("(&&)", "()"),
        (", , ", ", "),
        (", >", ">"),
        (", )", ")"),
        ("<, ", "<"),
        ("(, ", "("),
    ];
    for (from, to) in leftovers {
        let mut out = String::with_capacity(text.len());
        let mut rest = text.as_str();
        while let Some(at) = rest.find(from) {
            let after = &rest[at + from.len()..];
            let declarator = from.ends_with(')') && (after.starts_with(" [") || after.starts_with('('));
            out.push_str(&rest[..at]);
            out.push_str(if declarator { from } else { to });
            rest = after;
        }
        out.push_str(rest);
        text = out;
    }
    text
}

/// What an open bracket in the text is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Bracket {
    Angle,
    Paren,
    /// Parentheses of `decltype`/`sizeof`-like expressions, left as printed.
    Expression,
    Brace,
}

/// Words after which `(` opens an expression, not a parameter list.
const EXPRESSION_WORDS: [&str; 5] = ["decltype", "sizeof", "alignof", "typeid", "noexcept"];

/// `<int(int)>` → `<int (int)>`: a `(` right after a type, directly inside template arguments,
/// opens a function type's parameters. Operator names (`operator<<`) are copied as they are.
fn spaced_function_types(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut open: Vec<Bracket> = Vec::new();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix("operator") {
            let symbols = after.bytes().take_while(|b| b"<>=-!+*/%^&|~,[]()".contains(b)).count();
            out.push_str(&rest[.."operator".len() + symbols]);
            rest = &after[symbols..];
            continue;
        }
        match c {
            '<' => open.push(Bracket::Angle),
            '{' => open.push(Bracket::Brace),
            '(' => {
                let word_start = out.trim_end_matches(is_identifier_char).len();
                let word = &out[word_start..];
                let kind = if open.contains(&Bracket::Expression) || EXPRESSION_WORDS.contains(&word) {
                    Bracket::Expression
                } else {
                    Bracket::Paren
                };
                let after_type =
                    out.chars().next_back().is_some_and(|p| is_identifier_char(p) || "&*>".contains(p));
                let function_type =
                    open.last() == Some(&Bracket::Angle) && after_type && !names_a_scope(rest);
                if kind == Bracket::Paren && function_type {
                    out.push(' ');
                }
                open.push(kind);
            }
            '>' | ')' | '}' => {
                open.pop();
            }
            _ => {}
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Whether the parenthesis opening `text` closes into `::` (possibly after cv-qualifiers), as the
/// parameters of a function whose local entity is named, `f(int) const::{lambda()#1}`, do.
fn names_a_scope(text: &str) -> bool {
    let mut depth = 0usize;
    for (at, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    let after = text[at + 1..].trim_start_matches([' ', '&']);
                    let after = after.strip_prefix("const").unwrap_or(after).trim_start_matches([' ', '&']);
                    let after =
                        after.strip_prefix("volatile").unwrap_or(after).trim_start_matches([' ', '&']);
                    return after.starts_with("::");
                }
            }
            _ => {}
        }
    }
    false
}

/// The standard abbreviations `c++filt` spells out, with the names of their constructors and
/// destructors.
const STANDARD_NAMES: [(&str, &str, &str); 4] = [
    ("std::string", "std::basic_string<char, std::char_traits<char>, std::allocator<char> >", "basic_string"),
    ("std::istream", "std::basic_istream<char, std::char_traits<char> >", "basic_istream"),
    ("std::ostream", "std::basic_ostream<char, std::char_traits<char> >", "basic_ostream"),
    ("std::iostream", "std::basic_iostream<char, std::char_traits<char> >", "basic_iostream"),
];

/// `std::string` → `std::basic_string<char, ...>`, `std::string::~string` → `...::~basic_string`.
fn full_standard_names(text: &str) -> String {
    if !text.contains("std::") {
        return text.to_owned();
    }
    let mut text = text.to_owned();
    for (short, full, class) in STANDARD_NAMES {
        let member = &short["std::".len()..];
        text = replace_word(&text, &format!("{short}::{member}"), &format!("{full}::{class}"));
        text = replace_word(&text, &format!("{short}::~{member}"), &format!("{full}::~{class}"));
        text = replace_word(&text, short, full);
    }
    text
}

/// Replaces `word` where it stands as a whole name: not part of a longer identifier or a longer
/// qualified name on either side.
fn replace_word(text: &str, word: &str, with: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(word) {
        out.push_str(&rest[..at]);
        let before = out.chars().next_back();
        let after = rest[at + word.len()..].chars().next();
        let starts_word = !before.is_some_and(|c| is_identifier_char(c) || c == ':');
        let ends_word = !after.is_some_and(is_identifier_char);
        if starts_word && ends_word {
            out.push_str(with);
            // `c++filt` keeps closing angle brackets apart: `hash<basic_string<...> >`.
            if with.ends_with('>') && after == Some('>') {
                out.push(' ');
            }
        } else {
            out.push_str(word);
        }
        rest = &rest[at + word.len()..];
    }
    out.push_str(rest);
    out
}

fn is_identifier_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_names_read_as_cxxfilt_prints_them() {
        assert_eq!(to_cxxfilt_conventions("{vtable(ns::A)}"), "vtable for ns::A");
        assert_eq!(to_cxxfilt_conventions("{vtt(ns::A<int>)}"), "VTT for ns::A<int>");
        assert_eq!(
            to_cxxfilt_conventions("{virtual override thunk({offset(-16)}, ns::A::f(int))}"),
            "non-virtual thunk to ns::A::f(int)"
        );
        assert_eq!(
            to_cxxfilt_conventions("{virtual override thunk({virtual offset(0, -24)}, ns::A::~A())}"),
            "virtual thunk to ns::A::~A()"
        );
    }

    #[test]
    fn integer_literals_take_suffixes() {
        assert_eq!(literal_suffixes("V<(unsigned int)4, (long)-3, (int)7>"), "V<4u, -3l, 7>");
        assert_eq!(literal_suffixes("V<(char)120, (unsigned long)2>"), "V<(char)120, 2ul>");
        assert_eq!(literal_suffixes("f(int)"), "f(int)");
        assert_eq!(literal_suffixes("void (*)(long)"), "void (*)(long)");
    }

    #[test]
    fn function_types_in_template_arguments_are_spaced() {
        assert_eq!(spaced_function_types("f(std::function<int(int)>)"), "f(std::function<int (int)>)");
        assert_eq!(spaced_function_types("A<void (*)(int)>::g(int)"), "A<void (*)(int)>::g(int)");
        assert_eq!(spaced_function_types("X::operator<<(int)"), "X::operator<<(int)");
        assert_eq!(spaced_function_types("h<main::{lambda(int)#1}>(int)"), "h<main::{lambda(int)#1}>(int)");
        assert_eq!(spaced_function_types("g<decltype(f(0))>()"), "g<decltype(f(0))>()");
        assert_eq!(
            spaced_function_types("h<X::f(int) const::{lambda()#1}>()"),
            "h<X::f(int) const::{lambda()#1}>()"
        );
    }

    #[test]
    fn empty_packs_leave_no_separator() {
        assert_eq!(without_empty_packs("M<llvm::Module, >&"), "M<llvm::Module>&");
        assert_eq!(without_empty_packs("f(int, )"), "f(int)");
        assert_eq!(without_empty_packs("g<>(&&)"), "g<>()");
        assert_eq!(without_empty_packs("g<>(int, &&)"), "g<>(int)");
        assert_eq!(without_empty_packs("f(int (&&) [3])"), "f(int (&&) [3])");
    }

    #[test]
    fn standard_abbreviations_are_spelled_out() {
        let full = "std::basic_string<char, std::char_traits<char>, std::allocator<char> >";
        assert_eq!(full_standard_names("f(std::string const&)"), format!("f({full} const&)"));
        assert_eq!(full_standard_names("std::string::~string()"), format!("{full}::~basic_string()"));
        assert_eq!(full_standard_names("f(std::string_view)"), "f(std::string_view)");
        assert_eq!(full_standard_names("my::std::string"), "my::std::string");
        assert_eq!(full_standard_names("std::hash<std::string>"), format!("std::hash<{full} >"));
    }
}
