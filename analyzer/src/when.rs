//! `WHEN` strings: a moment of a trace named by the user (`end`, `peak`, `start`, `40%`, `1.5s`,
//! `250ms`, `800us`, `12345ns`, `mark:LABEL`, `mark:LABEL#2`), parsed into [`When`] and resolved
//! against a trace into ns since its start.

use crate::error::WhenError;
use crate::model::Mark;

/// A parsed moment, not yet tied to a trace.
#[derive(Debug, Clone, PartialEq)]
pub enum When {
    Start,
    End,
    /// The moment of maximum live bytes.
    Peak,
    /// A fraction of the trace's duration, 0.0..=100.0.
    Percent(f64),
    /// Nanoseconds from the start.
    Offset(u64),
    /// The `occurrence`-th (1-based) mark labelled `label`. `mark:LABEL#0` parses too, so that
    /// resolving it against a trace can tell how many occurrences there are.
    Mark {
        label: String,
        occurrence: u32,
    },
}

impl When {
    /// Parses a `WHEN` string (surrounding whitespace ignored).
    pub fn parse(text: &str) -> Result<When, WhenError> {
        let s = text.trim();
        if s.is_empty() {
            return Err(WhenError::Empty);
        }
        match s.to_ascii_lowercase().as_str() {
            "end" => return Ok(When::End),
            "peak" => return Ok(When::Peak),
            "start" => return Ok(When::Start),
            _ => {}
        }
        if let Some(rest) = s.strip_prefix("mark:") {
            return parse_mark(rest);
        }
        if let Some(number) = s.strip_suffix('%') {
            let value: f64 = number.trim().parse().map_err(|_| WhenError::BadPercent(s.to_string()))?;
            if !(0.0..=100.0).contains(&value) {
                return Err(WhenError::BadPercent(s.to_string()));
            }
            return Ok(When::Percent(value));
        }
        if s.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
            return parse_duration(s).map(When::Offset);
        }
        Err(WhenError::Unrecognized(s.to_string()))
    }

    /// The moment in ns since the start of a trace of `duration_ns` with its peak at
    /// `peak_at_ns` and these `marks`.
    pub fn resolve(&self, duration_ns: u64, peak_at_ns: u64, marks: &[Mark]) -> Result<u64, WhenError> {
        match self {
            When::Start => Ok(0),
            When::End => Ok(duration_ns),
            When::Peak => Ok(peak_at_ns.min(duration_ns)),
            When::Percent(p) => Ok(((duration_ns as f64) * p / 100.0).round().min(duration_ns as f64) as u64),
            When::Offset(ns) if *ns > duration_ns => {
                Err(WhenError::PastEnd { when: format_duration(*ns), duration_ns })
            }
            When::Offset(ns) => Ok(*ns),
            When::Mark { label, occurrence } => {
                let same: Vec<&Mark> = marks.iter().filter(|m| &m.label == label).collect();
                if same.is_empty() {
                    // A label that itself ends in `#N`.
                    let literal = format!("{label}#{occurrence}");
                    if let Some(m) = marks.iter().find(|m| m.label == literal && m.occurrence == 1) {
                        return Ok(m.at_ns);
                    }
                    let mut known: Vec<String> = marks.iter().map(|m| m.label.clone()).collect();
                    known.sort();
                    known.dedup();
                    return Err(WhenError::UnknownMark { label: label.clone(), known });
                }
                same.iter().find(|m| m.occurrence == *occurrence).map(|m| m.at_ns).ok_or(
                    WhenError::MarkOccurrence {
                        label: label.clone(),
                        occurrence: *occurrence,
                        count: same.len() as u32,
                    },
                )
            }
        }
    }
}

fn parse_mark(rest: &str) -> Result<When, WhenError> {
    if let Some((label, n)) = rest.rsplit_once('#')
        && !n.is_empty()
        && n.bytes().all(|b| b.is_ascii_digit())
    {
        let occurrence: u32 = n.parse().map_err(|_| WhenError::Unrecognized(format!("mark:{rest}")))?;
        return Ok(When::Mark { label: label.to_string(), occurrence });
    }
    Ok(When::Mark { label: rest.to_string(), occurrence: 1 })
}

/// Parses `1.5s`, `250ms`, `800us` (or `µs`), `12345ns` into nanoseconds.
pub fn parse_duration(s: &str) -> Result<u64, WhenError> {
    let bad = || WhenError::BadDuration(s.to_string());
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
    let (number, unit) = s.split_at(split);
    let scale: f64 = match unit.trim() {
        "s" => 1e9,
        "ms" => 1e6,
        "us" | "µs" => 1e3,
        "ns" => 1.0,
        _ => return Err(bad()),
    };
    if unit.trim() == "ns" && !number.contains('.') {
        return number.parse().map_err(|_| bad());
    }
    let value: f64 = number.parse().map_err(|_| bad())?;
    let ns = (value * scale).round();
    if !ns.is_finite() || ns < 0.0 || ns > u64::MAX as f64 {
        return Err(bad());
    }
    Ok(ns as u64)
}

/// Formats ns the way `WHEN` accepts them, with a readable unit: `1.5s`, `250ms`, `800us`,
/// `120ns`.
pub fn format_duration(ns: u64) -> String {
    fn trim(v: f64, digits: usize) -> String {
        let s = format!("{v:.digits$}");
        if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
    }
    if ns >= 1_000_000_000 {
        format!("{}s", trim(ns as f64 / 1e9, 3))
    } else if ns >= 1_000_000 {
        format!("{}ms", trim(ns as f64 / 1e6, 3))
    } else if ns >= 1_000 {
        format!("{}us", trim(ns as f64 / 1e3, 3))
    } else {
        format!("{ns}ns")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marks() -> Vec<Mark> {
        vec![
            Mark { label: "warmup".into(), at_ns: 100, occurrence: 1 },
            Mark { label: "tick#1".into(), at_ns: 150, occurrence: 1 },
            Mark { label: "warmup".into(), at_ns: 300, occurrence: 2 },
        ]
    }

    fn at(s: &str) -> Result<u64, WhenError> {
        When::parse(s)?.resolve(1_000_000_000, 400, &marks())
    }

    #[test]
    fn named_moments() {
        assert_eq!(at("end"), Ok(1_000_000_000));
        assert_eq!(at(" END "), Ok(1_000_000_000));
        assert_eq!(at("start"), Ok(0));
        assert_eq!(at("peak"), Ok(400));
    }

    #[test]
    fn percentages() {
        assert_eq!(at("0%"), Ok(0));
        assert_eq!(at("50%"), Ok(500_000_000));
        assert_eq!(at("12.5%"), Ok(125_000_000));
        assert_eq!(at("100%"), Ok(1_000_000_000));
        assert!(matches!(at("101%"), Err(WhenError::BadPercent(_))));
        assert!(matches!(at("x%"), Err(WhenError::BadPercent(_))));
    }

    #[test]
    fn durations() {
        assert_eq!(at("0.5s"), Ok(500_000_000));
        assert_eq!(at("250ms"), Ok(250_000_000));
        assert_eq!(at("800us"), Ok(800_000));
        assert_eq!(at("12345ns"), Ok(12_345));
        match at("2.5s") {
            Err(err @ WhenError::PastEnd { .. }) => {
                assert_eq!(err.to_string(), "2.5s is past the end of the trace (1s long)")
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(at("12"), Err(WhenError::BadDuration(_))));
        assert!(matches!(at("3h"), Err(WhenError::BadDuration(_))));
        assert!(matches!(at("soon"), Err(WhenError::Unrecognized(_))));
        assert!(matches!(at(""), Err(WhenError::Empty)));
    }

    #[test]
    fn marks_by_label_and_occurrence() {
        assert_eq!(at("mark:warmup"), Ok(100));
        assert_eq!(at("mark:warmup#2"), Ok(300));
        assert_eq!(at("mark:tick#1"), Ok(150));
        assert!(matches!(at("mark:warmup#3"), Err(WhenError::MarkOccurrence { count: 2, .. })));
        match at("mark:warmup#0") {
            Err(err @ WhenError::MarkOccurrence { occurrence: 0, count: 2, .. }) => {
                let message = err.to_string();
                assert!(message.contains("occurs 2 times;") && message.contains("#0"), "{message}");
            }
            other => panic!("unexpected {other:?}"),
        }
        match at("mark:tick#1#2") {
            Err(err) => assert!(err.to_string().contains("mark `tick#1` occurs once;"), "{err}"),
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(at("mark:nope#0"), Err(WhenError::UnknownMark { .. })));
        match at("mark:nope") {
            Err(WhenError::UnknownMark { known, .. }) => assert_eq!(known, vec!["tick#1", "warmup"]),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn formatted_durations_parse_back() {
        for ns in [0u64, 999, 1_500, 250_000_000, 1_500_000_000, 12_345] {
            let text = format_duration(ns);
            let back = parse_duration(&text).expect("parses");
            assert!(back.abs_diff(ns) * 1000 <= ns.max(1), "{ns} -> {text} -> {back}");
        }
    }
}
