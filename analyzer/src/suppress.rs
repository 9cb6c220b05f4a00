//! LeakSanitizer-style suppressions: `leak:PATTERN` lines, `#` comments, blank lines ignored.
//! A PATTERN may contain `*` (any run of characters) and be anchored with a leading `^` or a
//! trailing `$`; otherwise it matches anywhere inside a frame's function, file or module.

use std::path::{Path, PathBuf};

use crate::symbolize::Frame;

/// Why a suppressions file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SuppressionError {
    /// The OS error is in the message, not a `source()`, so error chains print it once.
    #[error("cannot read suppressions {path}: {error}")]
    Io { path: PathBuf, error: std::io::Error },
    /// A line that is not `leak:PATTERN`; `path` is the file's when it was read from one.
    #[error("suppressions{} line {line}: `{text}` is not `leak:PATTERN`", in_file(.path.as_deref()))]
    Syntax { path: Option<PathBuf>, line: usize, text: String },
}

/// ` FILE` for a syntax error in a file, nothing for text parsed on its own.
fn in_file(path: Option<&Path>) -> String {
    path.map(|p| format!(" {}", p.display())).unwrap_or_default()
}

/// One `leak:` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The pattern as written.
    pub pattern: String,
    /// 1-based line number in the file.
    pub line: usize,
}

/// A set of suppression rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Suppressions {
    rules: Vec<Rule>,
}

impl Suppressions {
    /// Parses suppressions text.
    pub fn parse(text: &str) -> Result<Self, SuppressionError> {
        let mut rules = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let Some((kind, pattern)) = line.split_once(':') else {
                return Err(SuppressionError::Syntax {
                    path: None,
                    line: i + 1,
                    text: raw.trim().to_string(),
                });
            };
            let pattern = pattern.trim();
            if kind.trim() != "leak" || pattern.is_empty() {
                return Err(SuppressionError::Syntax {
                    path: None,
                    line: i + 1,
                    text: raw.trim().to_string(),
                });
            }
            rules.push(Rule { pattern: pattern.to_string(), line: i + 1 });
        }
        Ok(Suppressions { rules })
    }

    /// Reads and parses a suppressions file.
    pub fn load(path: &Path) -> Result<Self, SuppressionError> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| SuppressionError::Io { path: path.to_path_buf(), error })?;
        Self::parse(&text).map_err(|error| match error {
            SuppressionError::Syntax { line, text, .. } => {
                SuppressionError::Syntax { path: Some(path.to_path_buf()), line, text }
            }
            other => other,
        })
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The index of the first rule matching any of `frames`' function, file or module (or, for
    /// a frame without a function name, its `module+0xOFFSET` / `0xADDRESS` name).
    pub fn matching_rule(&self, frames: &[Frame]) -> Option<usize> {
        self.rules.iter().position(|rule| {
            frames.iter().any(|f| {
                [&f.function, &f.file, &f.module]
                    .into_iter()
                    .flatten()
                    .any(|text| pattern_matches(&rule.pattern, text))
                    || (f.function.is_none() && pattern_matches(&rule.pattern, &f.display_name()))
            })
        })
    }
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

    #[test]
    fn files_parse_with_comments_and_report_bad_lines() {
        let s = Suppressions::parse("# third party\nleak:libfoo.so\n\n  leak:parse_*_config  # known\n")
            .expect("parses");
        let patterns: Vec<_> = s.rules().iter().map(|r| (r.pattern.as_str(), r.line)).collect();
        assert_eq!(patterns, vec![("libfoo.so", 2), ("parse_*_config", 4)]);
        match Suppressions::parse("leak:ok\nrace:foo\n") {
            Err(SuppressionError::Syntax { line: 2, .. }) => {}
            other => panic!("unexpected {other:?}"),
        }
        assert!(Suppressions::parse("leak:\n").is_err());
    }

    #[test]
    fn any_frame_field_can_match() {
        let frame = Frame {
            function: Some("parse_user_config".into()),
            file: Some("/src/config.c".into()),
            line: Some(3),
            module: Some("/usr/lib/libfoo.so.1".into()),
            address: 0x10,
            module_offset: Some(0x10),
            inlined: false,
        };
        let s = Suppressions::parse("leak:nomatch\nleak:config.c\n").expect("parses");
        assert_eq!(s.matching_rule(std::slice::from_ref(&frame)), Some(1));
        let s = Suppressions::parse("leak:libfoo.so").expect("parses");
        assert_eq!(s.matching_rule(std::slice::from_ref(&frame)), Some(0));
        let s = Suppressions::parse("leak:main").expect("parses");
        assert_eq!(s.matching_rule(&[frame]), None);
    }
}
