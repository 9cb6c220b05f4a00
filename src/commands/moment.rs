//! A moment named on the command line (`--at`, `--at-a`, `--allocated-after`, ...) once resolved
//! against a trace: its error names the flag and what was given.

use anyhow::anyhow;
use leakview_analyzer::WhenError;

/// `resolved` (the moment `text`, given with `flag`), or the one-line error saying why not.
pub fn named(resolved: Result<u64, WhenError>, flag: &str, text: &str) -> anyhow::Result<u64> {
    resolved.map_err(|err| anyhow!("{flag} {text}: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn occurrence_zero_says_occurrences_count_from_1() {
        let err = WhenError::MarkOccurrence { label: "round".into(), occurrence: 0, count: 3 };
        let message = named(Err(err), "--at", "mark:round#0").expect_err("an error").to_string();
        assert!(message.starts_with("--at mark:round#0: "), "{message}");
        assert!(message.contains("occurs 3 times;"), "{message}");
        assert!(message.contains("count from 1"), "{message}");
        let err = WhenError::MarkOccurrence { label: "round".into(), occurrence: 4, count: 3 };
        let message = named(Err(err), "--at", "mark:round#4").expect_err("an error").to_string();
        assert!(!message.contains("count from 1"), "{message}");
        assert_eq!(named(Ok(5), "--at", "5ns").ok(), Some(5));
    }
}
