//! Short human-readable numbers for narrow columns: bytes, counts, durations, addresses.

use leakview_analyzer::report::units::binary_units;

/// `"0 B"`, `"999 B"`, `"1.5 KiB"`, `"12.3 MiB"`, `"512 MiB"`: at most 9 characters.
pub fn bytes(n: u64) -> String {
    match binary_units(n) {
        None => format!("{n} B"),
        Some((value, unit)) if value >= 100.0 => format!("{value:.0} {unit}"),
        Some((value, unit)) => format!("{value:.1} {unit}"),
    }
}

/// A change of bytes: `"+1.0 KiB"`, `"-640 B"`, `"0 B"`: at most 10 characters.
pub fn signed_bytes(change: i64) -> String {
    match change {
        0 => "0 B".to_string(),
        1.. => format!("+{}", bytes(change.unsigned_abs())),
        _ => format!("-{}", bytes(change.unsigned_abs())),
    }
}

/// A change of a count: `"+5"`, `"-1,024"`, `"0"`.
pub fn signed_count(change: i64) -> String {
    match change {
        0 => "0".to_string(),
        1.. => format!("+{}", count(change.unsigned_abs())),
        _ => format!("-{}", count(change.unsigned_abs())),
    }
}

/// `"1,234,567"`: the same thousands separators as the text report.
pub use leakview_analyzer::report::units::count;

/// `"1 block"`, `"1,234 blocks"`.
pub fn blocks(n: u64) -> String {
    if n == 1 { "1 block".to_string() } else { format!("{} blocks", count(n)) }
}

/// A count for a narrow column: `"99,999"`, then `"123k"`, `"12.3M"`, `"4.5G"`: at most 6
/// characters.
pub fn compact_count(n: u64) -> String {
    match n {
        0..=99_999 => count(n),
        100_000..=999_999 => format!("{}k", n / 1_000),
        1_000_000..=99_999_999 => format!("{:.1}M", n as f64 / 1e6),
        100_000_000..=999_999_999 => format!("{}M", n / 1_000_000),
        _ => format!("{:.1}G", n as f64 / 1e9),
    }
}

/// A time from the start: `"0s"`, `"850ns"`, `"12.5us"`, `"3.20ms"`, `"1.234s"`, `"2m05.3s"`.
pub fn duration(ns: u64) -> String {
    match ns {
        0 => "0s".to_string(),
        1..=999 => format!("{ns}ns"),
        1_000..=999_999 => format!("{:.1}us", ns as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.2}ms", ns as f64 / 1e6),
        1_000_000_000..=59_999_999_999 => format!("{:.3}s", ns as f64 / 1e9),
        _ => {
            let secs = ns as f64 / 1e9;
            let minutes = (secs / 60.0).floor();
            format!("{}m{:04.1}s", minutes as u64, secs - minutes * 60.0)
        }
    }
}

/// `part` as a percentage of `whole`, `"62%"`, or `"<1%"` for small non-zero parts.
pub fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "-".to_string();
    }
    let p = part as f64 * 100.0 / whole as f64;
    if part > 0 && p < 1.0 { "<1%".to_string() } else { format!("{:.0}%", p) }
}

/// `"0x7f12_3456_7890"`-style address without separators: `"0x7f1234567890"`.
pub fn address(addr: u64) -> String {
    format!("{addr:#x}")
}

/// A thread as the browser names it, like `leakview report --group-by thread`: `worker-0 (573)`
/// when it was named, `thread 573` otherwise.
pub fn thread(tid: u32, name: Option<&str>) -> String {
    match name {
        Some(name) => format!("{name} ({tid})"),
        None => format!("thread {tid}"),
    }
}

/// A thread in at most `width` characters: as [`thread`] names it when that fits, else its name
/// alone (cut with `…` if need be), else its tid.
pub fn thread_within(tid: u32, name: Option<&str>, width: usize) -> String {
    let full = thread(tid, name);
    if full.chars().count() <= width {
        return full;
    }
    match name {
        Some(name) => fit(name, width),
        None => fit(&tid.to_string(), width),
    }
}

/// Shortens `s` to `width` characters, ending in `…` when cut.
pub fn fit(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(width - 1).collect();
    out.push('…');
    out
}

/// Breaks `text` into lines of at most `width` characters at spaces (a word longer than
/// `width` gets a line of its own, cut with [`fit`]).
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let len = line.chars().count();
        if len > 0 && len + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines.into_iter().map(|l| fit(&l, width)).collect()
}

/// A function name made short for a narrow column: template arguments and parameter lists are
/// elided (`<…>`, `(…)`) and a C++ return type is dropped, so
/// `void std::vector<int>::push_back(int const&)` reads `std::vector<…>::push_back(…)`. Operators
/// (`operator<<`, `operator()`), `(anonymous namespace)` and a Rust `<T as Trait>` prefix are
/// kept. Names without brackets are returned as they are.
pub fn short_function(name: &str) -> String {
    const ANONYMOUS: &str = "(anonymous namespace)";
    let mut out = String::with_capacity(name.len());
    let mut depth = 0usize;
    let mut rest = name;
    while let Some(c) = rest.chars().next() {
        if depth == 0 && rest.starts_with(ANONYMOUS) {
            out.push_str(ANONYMOUS);
            rest = &rest[ANONYMOUS.len()..];
            continue;
        }
        if depth == 0 && out.ends_with("operator") {
            // The operator's own symbol: `<<`, `()`, `->`, `<=>`, `[]`...
            let symbol: String = rest.chars().take_while(|c| "<>=!()[]-+*/%^&|~,".contains(*c)).collect();
            let symbol = if symbol.starts_with("()") {
                "()".to_string()
            } else {
                symbol.trim_end_matches('(').to_string()
            };
            if !symbol.is_empty() {
                out.push_str(&symbol);
                rest = &rest[symbol.len()..];
                continue;
            }
        }
        rest = &rest[c.len_utf8()..];
        match c {
            // A Rust `<T as Trait>::method` keeps its leading `<...>`.
            '<' if out.is_empty() => {
                let end = matching(rest, '<', '>').unwrap_or(rest.len());
                out.push('<');
                out.push_str(&short_function(&rest[..end]));
                rest = &rest[end..];
            }
            '<' | '(' => {
                if depth == 0 {
                    out.push(c);
                    out.push('…');
                }
                depth += 1;
            }
            '>' | ')' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    out.push(c);
                }
            }
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    // `void f(…)` and `std::pair<…> g<…>(…)`: the return type is what comes before the last
    // space outside brackets ahead of the parameters.
    // (Rust names have no parameter list, and their `<T as Trait>` has a space of its own.)
    let Some(params) = out.rfind("(…)") else { return out };
    // The space of `(anonymous namespace)` is part of a name (same length, so the same indices).
    let probe = out[..params].replace(ANONYMOUS, "(anonymous_namespace)");
    match probe.rfind(' ') {
        Some(space) if !probe[..space].ends_with("operator") => out[space + 1..].to_string(),
        _ => out,
    }
}

/// Where the bracket `open` opened just before `text` is closed in `text`.
fn matching(text: &str, open: char, close: char) -> Option<usize> {
    let mut depth = 1usize;
    for (i, c) in text.char_indices() {
        if c == open {
            depth += 1;
        } else if c == close {
            depth -= 1;
            if depth == 0 {
                return Some(i);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_pick_a_unit_and_stay_short() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(300 * 1024 * 1024), "300 MiB");
        assert!(bytes(u64::MAX).len() <= 9);
    }

    #[test]
    fn changes_carry_their_sign() {
        assert_eq!(signed_bytes(0), "0 B");
        assert_eq!(signed_bytes(1024), "+1.0 KiB");
        assert_eq!(signed_bytes(-640), "-640 B");
        assert_eq!(signed_bytes(i64::MIN), "-8.0 EiB");
        assert_eq!(signed_count(-1024), "-1,024");
        assert_eq!(signed_count(5), "+5");
    }

    #[test]
    fn counts_group_thousands() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
    }

    #[test]
    fn compact_counts_stay_narrow() {
        assert_eq!(compact_count(99_999), "99,999");
        assert_eq!(compact_count(123_456), "123k");
        assert_eq!(compact_count(12_345_678), "12.3M");
        assert_eq!(compact_count(123_456_789), "123M");
        assert_eq!(compact_count(4_500_000_000), "4.5G");
    }

    #[test]
    fn durations_scale() {
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(850), "850ns");
        assert_eq!(duration(12_500), "12.5us");
        assert_eq!(duration(3_200_000), "3.20ms");
        assert_eq!(duration(1_234_000_000), "1.234s");
        assert_eq!(duration(125_300_000_000), "2m05.3s");
    }

    #[test]
    fn percent_and_fit() {
        assert_eq!(percent(1, 3), "33%");
        assert_eq!(percent(1, 1000), "<1%");
        assert_eq!(percent(0, 0), "-");
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("abc", 4), "abc");
    }

    #[test]
    fn threads_are_named_by_name_and_tid_or_by_tid() {
        assert_eq!(thread(573, Some("worker-0")), "worker-0 (573)");
        assert_eq!(thread(573, None), "thread 573");
        assert_eq!(thread_within(573, Some("worker-0"), 20), "worker-0 (573)");
        assert_eq!(thread_within(573, Some("worker-0"), 8), "worker-0", "narrow: the name alone");
        assert_eq!(thread_within(573, Some("worker-0"), 5), "work…");
        assert_eq!(thread_within(573, None, 10), "thread 573");
        assert_eq!(thread_within(573, None, 8), "573");
    }

    #[test]
    fn wrap_breaks_at_spaces_within_the_width() {
        assert_eq!(wrap("one two three four", 9), ["one two", "three", "four"]);
        assert_eq!(wrap("a verylongword b", 5), ["a", "very…", "b"]);
        assert!(wrap("", 10).is_empty());
    }

    #[test]
    fn short_function_names_elide_templates_parameters_and_return_types() {
        let cases = [
            ("main", "main"),
            ("leak_buffer", "leak_buffer"),
            ("void std::vector<int>::push_back(int const&)", "std::vector<…>::push_back(…)"),
            (
                "std::pair<std::string, std::unordered_map<std::string, double>> build_index<double>(int)",
                "build_index<…>(…)",
            ),
            (
                "app::Registry<int, std::vector<int>>::make_bucket<main::{lambda(int)#1}>(int const&, main::{lambda(int)#1}&&)",
                "app::Registry<…>::make_bucket<…>(…)",
            ),
            ("std::ostream::operator<<(int)", "std::ostream::operator<<(…)"),
            ("Foo::operator()(int) const", "Foo::operator()(…) const"),
            ("bool operator<(A const&, A const&)", "operator<(…)"),
            ("(anonymous namespace)::helper(int)", "(anonymous namespace)::helper(…)"),
            (
                "<alloc::vec::Vec<T> as core::ops::Drop>::drop",
                "<alloc::vec::Vec<…> as core::ops::Drop>::drop",
            ),
            (
                "std::__new_allocator<char>::allocate(unsigned long, void const*)",
                "std::__new_allocator<…>::allocate(…)",
            ),
            ("libstdc++.so.6+0xab12", "libstdc++.so.6+0xab12"),
        ];
        for (name, short) in cases {
            assert_eq!(short_function(name), short, "{name}");
        }
    }
}
