//! LeakSanitizer's suppression lines, `leak:PATTERN`: the PATTERN (with `*` wildcards, anchored
//! with a leading `^` or a trailing `$`) matches anywhere inside any frame's function, file or
//! module.

use crate::symbolize::Frame;

/// Whether the `leak:` pattern matches any of `frames`' function, file or module (or, for a
/// frame without a function name, its `module+0xOFFSET` / `0xADDRESS` name).
pub(super) fn matches_any_frame(pattern: &str, frames: &[Frame]) -> bool {
    frames.iter().any(|f| {
        [&f.function, &f.file, &f.module].into_iter().flatten().any(|text| pattern_matches(pattern, text))
            || (f.function.is_none() && pattern_matches(pattern, &f.display_name()))
    })
}

/// LeakSanitizer's template match: `*` wildcards, optional `^`/`$` anchors, substring otherwise.
pub fn pattern_matches(pattern: &str, text: &str) -> bool {
    let (anchored_start, p) = match pattern.strip_prefix('^') {
        Some(rest) => (true, rest),
        None => (false, pattern),
    };
    let (anchored_end, p) = match p.strip_suffix('$') {
        Some(rest) => (true, rest),
        None => (false, p),
    };
    let parts: Vec<&str> = p.split('*').collect();
    let n = parts.len();
    if n == 1 {
        return match (anchored_start, anchored_end) {
            (true, true) => text == p,
            (true, false) => text.starts_with(p),
            (false, true) => text.ends_with(p),
            (false, false) => text.contains(p),
        };
    }
    let first = parts[0];
    let mut pos = if anchored_start {
        if !text.starts_with(first) {
            return false;
        }
        first.len()
    } else {
        match text.find(first) {
            Some(at) => at + first.len(),
            None => return false,
        }
    };
    for part in &parts[1..n - 1] {
        match text[pos..].find(part) {
            Some(at) => pos += at + part.len(),
            None => return false,
        }
    }
    let last = parts[n - 1];
    if anchored_end {
        text.len() >= pos + last.len() && text.ends_with(last)
    } else {
        text[pos..].contains(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_like_leak_sanitizer() {
        assert!(pattern_matches("make_leak", "make_leak"));
        assert!(pattern_matches("leak", "make_leak_now"));
        assert!(pattern_matches("make*now", "make_leak_now"));
        assert!(pattern_matches("^make", "make_leak"));
        assert!(!pattern_matches("^leak", "make_leak"));
        assert!(pattern_matches("leak$", "make_leak"));
        assert!(!pattern_matches("make$", "make_leak"));
        assert!(pattern_matches("^make_leak$", "make_leak"));
        assert!(!pattern_matches("^make_leak$", "make_leak2"));
        assert!(pattern_matches("libfoo*.so", "/usr/lib/libfoo-1.2.so"));
        assert!(pattern_matches("*", "anything"));
        assert!(pattern_matches("^*$", "anything"));
        assert!(!pattern_matches("a*b*c", "acb"));
        assert!(pattern_matches("a*b*c", "xaxbxcx"));
        assert!(pattern_matches("^a*c$", "abc"));
        assert!(!pattern_matches("^a*c$", "abcd"));
    }
}
