//! Suppressions for `leakview check`, in LeakSanitizer's syntax (`leak:PATTERN` lines, see
//! [`leak_sanitizer`]) or valgrind's (`{ ... }` entries, see [`valgrind`]), one file holding
//! either or both; `#` starts a comment, blank lines are ignored.

mod leak_sanitizer;
mod names;
mod valgrind;

use std::path::{Path, PathBuf};

use crate::symbolize::Frame;

pub use leak_sanitizer::pattern_matches;
pub use valgrind::FrameLine;

/// Why a suppressions file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SuppressionError {
    /// The OS error is in the message, not a `source()`, so error chains print it once.
    #[error("cannot read suppressions {path}: {error}")]
    Io { path: PathBuf, error: std::io::Error },
    /// A line that is neither `leak:PATTERN` nor part of a valgrind entry; `path` is the file's
    /// when it was read from one.
    #[error("suppressions{} line {line}: `{text}` is not `leak:PATTERN` or a valgrind `{{ ... }}` entry", in_file(.path.as_deref()))]
    Syntax { path: Option<PathBuf>, line: usize, text: String },
    /// A line of a valgrind entry that does not fit there.
    #[error("suppressions{} line {line}: `{text}` {why}", in_file(.path.as_deref()))]
    Valgrind { path: Option<PathBuf>, line: usize, text: String, why: &'static str },
}

impl SuppressionError {
    /// The same error, naming the file it was read from.
    fn in_file(self, file: &Path) -> Self {
        let path = Some(file.to_path_buf());
        match self {
            SuppressionError::Syntax { line, text, .. } => SuppressionError::Syntax { path, line, text },
            SuppressionError::Valgrind { line, text, why, .. } => {
                SuppressionError::Valgrind { path, line, text, why }
            }
            other => other,
        }
    }
}

/// ` FILE` for a syntax error in a file, nothing for text parsed on its own.
fn in_file(path: Option<&Path>) -> String {
    path.map(|p| format!(" {}", p.display())).unwrap_or_default()
}

/// What a rule matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleKind {
    /// `leak:PATTERN`: the pattern anywhere in any frame.
    LeakSanitizer,
    /// A valgrind `Memcheck:Leak` entry: its frame lines from the allocation on.
    Valgrind(Vec<FrameLine>),
}

/// One rule: a `leak:` line or a valgrind entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The `leak:` pattern as written, or the valgrind entry's name.
    pub pattern: String,
    /// 1-based line number in the file (of a valgrind entry, its `{`).
    pub line: usize,
    pub kind: RuleKind,
}

impl Rule {
    /// How the rule is named in a report: `leak:PATTERN`, or `{NAME} (line N)` for a valgrind
    /// entry (generated entries all have the same name).
    pub fn label(&self) -> String {
        match self.kind {
            RuleKind::LeakSanitizer => format!("leak:{}", self.pattern),
            RuleKind::Valgrind(_) => format!("{{{}}} (line {})", self.pattern, self.line),
        }
    }

    fn matches(&self, frames: &[Frame]) -> bool {
        match &self.kind {
            RuleKind::LeakSanitizer => leak_sanitizer::matches_any_frame(&self.pattern, frames),
            RuleKind::Valgrind(lines) => valgrind::stack_matches(lines, frames),
        }
    }
}

/// A set of suppression rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Suppressions {
    rules: Vec<Rule>,
}

/// A line without its comment (valgrind entries: only whole-line comments) and surrounding
/// blanks.
fn content(raw: &str, in_entry: bool) -> &str {
    let line = raw.trim();
    if line.starts_with('#') {
        ""
    } else if in_entry {
        line
    } else {
        line.split('#').next().unwrap_or("").trim()
    }
}

impl Suppressions {
    /// Parses suppressions text.
    pub fn parse(text: &str) -> Result<Self, SuppressionError> {
        let mut rules = Vec::new();
        let mut lines = text.lines().enumerate();
        while let Some((i, raw)) = lines.next() {
            let line = content(raw, false);
            if line.is_empty() {
                continue;
            }
            if line == "{" {
                rules.extend(parse_valgrind_entry(i + 1, &mut lines)?);
                continue;
            }
            let syntax =
                || SuppressionError::Syntax { path: None, line: i + 1, text: raw.trim().to_string() };
            let (kind, pattern) = line.split_once(':').ok_or_else(syntax)?;
            let pattern = pattern.trim();
            if kind.trim() != "leak" || pattern.is_empty() {
                return Err(syntax());
            }
            rules.push(Rule { pattern: pattern.to_string(), line: i + 1, kind: RuleKind::LeakSanitizer });
        }
        Ok(Suppressions { rules })
    }

    /// Reads and parses a suppressions file.
    pub fn load(path: &Path) -> Result<Self, SuppressionError> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| SuppressionError::Io { path: path.to_path_buf(), error })?;
        Self::parse(&text).map_err(|error| error.in_file(path))
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The index of the first rule matching the stack `frames` (innermost first, as shown:
    /// without the allocation functions).
    pub fn matching_rule(&self, frames: &[Frame]) -> Option<usize> {
        self.rules.iter().position(|rule| rule.matches(frames))
    }
}

/// Reads a valgrind entry whose `{` is on line `open` up to its `}`: the rule, or `None` for an
/// entry of another error kind or tool.
fn parse_valgrind_entry<'a>(
    open: usize,
    lines: &mut impl Iterator<Item = (usize, &'a str)>,
) -> Result<Option<Rule>, SuppressionError> {
    let mut body: Vec<(usize, &str)> = Vec::new();
    let close = loop {
        let Some((i, raw)) = lines.next() else {
            return Err(SuppressionError::Valgrind {
                path: None,
                line: open,
                text: "{".into(),
                why: "opens a valgrind entry that no `}` closes",
            });
        };
        match content(raw, true) {
            "" => {}
            "}" => break i + 1,
            line => body.push((i + 1, line)),
        }
    };
    let texts: Vec<&str> = body.iter().map(|&(_, text)| text).collect();
    match valgrind::parse_entry(&texts) {
        Ok(entry) => {
            Ok(entry.map(|e| Rule { pattern: e.name, line: open, kind: RuleKind::Valgrind(e.frames) }))
        }
        Err(e) => {
            let (line, text) = body.get(e.at).map_or((close, "}"), |&(line, text)| (line, text));
            Err(SuppressionError::Valgrind { path: None, line, text: text.to_string(), why: e.why })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn valgrind_entries_parse_beside_leak_lines() {
        let text = "# ours\nleak:libfoo.so\n{\n   my-leak\n   Memcheck:Leak\n   match-leak-kinds: definite\n\
            # inside\n   fun:malloc\n   fun:make_leak\n}\n{\n   cond\n   Memcheck:Cond\n   fun:f\n}\n";
        let s = Suppressions::parse(text).expect("parses");
        let rules: Vec<_> = s.rules().iter().map(|r| (r.label(), r.line)).collect();
        assert_eq!(rules, vec![("leak:libfoo.so".to_string(), 2), ("{my-leak} (line 3)".to_string(), 3)]);
        assert_eq!(
            s.rules()[1].kind,
            RuleKind::Valgrind(vec![
                FrameLine::Function("malloc".into()),
                FrameLine::Function("make_leak".into())
            ])
        );
    }

    #[test]
    fn bad_valgrind_entries_name_their_line() {
        let line_of = |text: &str| match Suppressions::parse(text) {
            Err(SuppressionError::Valgrind { line, .. }) => line,
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(line_of("leak:a\n{\n  name\n  Memcheck:Leak\n  fun:malloc\n"), 2);
        assert_eq!(line_of("{\n  name\n  Memcheck:Leak\n  fun:malloc\n  fn:oops\n}\n"), 5);
        assert_eq!(line_of("{\n  name\n  Memcheck:Leak\n}\n"), 4);
        assert_eq!(line_of("{\n  name\n  no kind here\n}\n"), 3);
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("bad.supp");
        std::fs::write(&path, "{\n  name\n  Memcheck:Leak\n  fn:oops\n}\n").expect("write");
        let message = Suppressions::load(&path).expect_err("bad").to_string();
        assert_eq!(
            message,
            format!(
                "suppressions {} line 4: `fn:oops` is not a frame line (`fun:`, `obj:`, `src:` or `...`)",
                path.display()
            )
        );
        // A stray `}` is neither syntax.
        assert!(matches!(Suppressions::parse("}\n"), Err(SuppressionError::Syntax { line: 1, .. })));
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
