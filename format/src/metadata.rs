//! Trace metadata stored in the header page: who was recorded, when, and by what. Encoded with
//! bincode behind this module's API so the encoding can be swapped without touching callers.

use bincode::{Decode, Encode};

use crate::layout::{self, METADATA_CAPACITY};

/// How the trace was recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode, Default)]
pub enum RecorderKind {
    /// `libleakview_preload.so` interposing the malloc family of a whole process.
    #[default]
    Preload,
    /// The `leakview` crate's in-process `#[global_allocator]` wrappers.
    RustApi,
    /// Written by a test or a tool, not by a recorder.
    Synthetic,
}

/// Describes the recorded process. New fields are only ever appended (a minor version bump);
/// a reader ignores metadata bytes past the fields it knows.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, Default)]
pub struct TraceMetadata {
    pub pid: u32,
    pub parent_pid: u32,
    /// Path of the recorded executable.
    pub executable: String,
    /// The command line; long ones are shortened to fit the header page.
    pub argv: Vec<String>,
    /// Wall-clock (CLOCK_REALTIME) time of the start, ns since the Unix epoch.
    pub start_unix_ns: u64,
    /// CLOCK_MONOTONIC time of the start, ns; event timestamps use the same clock.
    pub start_monotonic_ns: u64,
    /// The clock of event timestamps (Linux clock id; 1 = CLOCK_MONOTONIC).
    pub clock_id: u32,
    /// Pointer width of the recorded process in bytes.
    pub pointer_width: u8,
    /// CPU architecture (`x86_64`, `aarch64`, ...).
    pub arch: String,
    /// Name and version of the recorder, e.g. `leakview-preload 0.1.0`.
    pub recorder: String,
    pub recorder_kind: RecorderKind,
    /// Maximum stack depth the recorder captured.
    pub max_stack_depth: u32,
    /// When the recorded process started, in clock ticks after boot (`/proc/PID/stat` field
    /// 22): the same in every image an `exec` runs, different in another process that got the
    /// same pid. 0 if unknown (and in traces written before this field existed).
    pub process_start_ticks: u64,
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_little_endian().with_variable_int_encoding()
}

/// Decoding never claims more memory than this, whatever lengths a damaged header states.
const DECODE_LIMIT: usize = 1 << 20;

fn decode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_little_endian().with_variable_int_encoding().with_limit::<DECODE_LIMIT>()
}

impl TraceMetadata {
    /// Encodes the metadata so it fits the header page, dropping trailing arguments (replaced by
    /// `"…"`) and then shortening the executable path if it must. `None` if nothing makes it fit.
    pub fn encode_to_fit(&self) -> Option<Vec<u8>> {
        let mut meta = self.clone();
        loop {
            let bytes = bincode::encode_to_vec(&meta, config()).ok()?;
            if bytes.len() <= METADATA_CAPACITY {
                return Some(bytes);
            }
            if meta.argv.len() > 1 {
                let keep = meta.argv.len() / 2;
                meta.argv.truncate(keep.max(1));
                meta.argv.push("…".to_string());
                if meta.argv.len() == 2 && meta.argv[0] == "…" {
                    meta.argv.clear();
                }
            } else if !meta.argv.is_empty() && meta.argv[0].len() > 256 {
                meta.argv[0] = shorten(&meta.argv[0], 256);
            } else if meta.executable.len() > 256 {
                meta.executable = shorten(&meta.executable, 256);
            } else if meta.recorder.len() > 64 || meta.arch.len() > 64 {
                meta.recorder = shorten(&meta.recorder, 64);
                meta.arch = shorten(&meta.arch, 64);
            } else {
                return None;
            }
        }
    }

    /// Decodes metadata written by format version `major.minor`: this one, a newer minor (its
    /// further fields are ignored), or an older version (the fields appended since read as 0).
    pub fn decode(bytes: &[u8], major: u16, minor: u16) -> Result<Self, String> {
        // Each appended field is an integer, whose 0 is one zero byte.
        let missing = appended_fields(layout::VERSION_MAJOR, layout::VERSION_MINOR)
            .saturating_sub(appended_fields(major, minor));
        let mut complete = Vec::with_capacity(bytes.len() + missing);
        complete.extend_from_slice(bytes);
        complete.resize(bytes.len() + missing, 0);
        bincode::decode_from_slice(&complete, decode_config())
            .map(|(meta, _)| meta)
            .map_err(|e| e.to_string())
    }

    /// The command line joined by spaces, for display (see [`display_command`]).
    pub fn command_line(&self) -> String {
        display_command(&self.argv)
    }
}

/// `argv` joined by spaces for one line of display: control characters (the newlines of a
/// `python3 -c` script, say) are written as escapes (`\n`, `\t`, `\u{1b}`).
pub fn display_command(argv: &[String]) -> String {
    let mut out = String::new();
    for (i, arg) in argv.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        for c in arg.chars() {
            if c.is_control() {
                out.extend(c.escape_default());
            } else {
                out.push(c);
            }
        }
    }
    out
}

fn shorten(s: &str, max: usize) -> String {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Metadata fields appended after version 1.0 that a trace of version `major.minor` holds:
/// 1.1 appended one, 2.0 holds the same fields as 1.1, 2.1 and 2.2 added event sub-kinds and no
/// field. (A minor that appends a field adds its count here.)
fn appended_fields(major: u16, minor: u16) -> usize {
    match major {
        0 | 1 => usize::from(minor.min(1)),
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_show_on_one_line() {
        let argv = vec!["python3".to_string(), "-c".to_string(), "l=[]\nprint(l)\t\u{1b}".to_string()];
        assert_eq!(display_command(&argv), "python3 -c l=[]\\nprint(l)\\t\\u{1b}");
        assert_eq!(display_command(&[]), "");
    }

    fn sample() -> TraceMetadata {
        TraceMetadata {
            pid: 42,
            parent_pid: 1,
            executable: "/usr/bin/sqlite3".into(),
            argv: vec!["sqlite3".into(), ":memory:".into()],
            start_unix_ns: 1_700_000_000_000_000_000,
            start_monotonic_ns: 123,
            clock_id: 1,
            pointer_width: 8,
            arch: "x86_64".into(),
            recorder: "leakview-preload 0.1.0".into(),
            recorder_kind: RecorderKind::Preload,
            max_stack_depth: 64,
            process_start_ticks: 123_456,
        }
    }

    #[test]
    fn round_trips() {
        let meta = sample();
        let bytes = meta.encode_to_fit().expect("fits");
        assert_eq!(TraceMetadata::decode(&bytes, layout::VERSION_MAJOR, layout::VERSION_MINOR), Ok(meta));
    }

    #[test]
    fn metadata_of_version_1_0_reads_the_fields_appended_since_as_zero() {
        let meta = sample();
        let bytes = meta.encode_to_fit().expect("fits");
        // Version 1.0 wrote everything up to max_stack_depth.
        let without = TraceMetadata { process_start_ticks: 0, ..sample() };
        let old = without.encode_to_fit().expect("fits");
        let old = &old[..old.len() - 1];
        assert_eq!(TraceMetadata::decode(old, 1, 0), Ok(without));
        assert!(
            TraceMetadata::decode(old, layout::VERSION_MAJOR, layout::VERSION_MINOR).is_err(),
            "not cut short in this version"
        );
        // Versions 1.1 and 2.0 hold the same fields.
        assert_eq!(TraceMetadata::decode(&bytes, 1, 1), Ok(sample()));
        assert_eq!(TraceMetadata::decode(&bytes, 2, 0), Ok(sample()));
        // A newer minor's further fields are ignored.
        let mut newer = bytes.clone();
        newer.extend_from_slice(&[7, 7]);
        assert_eq!(TraceMetadata::decode(&newer, layout::VERSION_MAJOR, layout::VERSION_MINOR + 1), Ok(meta));
    }

    #[test]
    fn huge_command_lines_are_shortened_to_fit() {
        let mut meta = sample();
        meta.argv = (0..10_000).map(|i| format!("argument-{i}")).collect();
        let bytes = meta.encode_to_fit().expect("shortened");
        assert!(bytes.len() <= METADATA_CAPACITY);
        let back =
            TraceMetadata::decode(&bytes, layout::VERSION_MAJOR, layout::VERSION_MINOR).expect("decodes");
        assert_eq!(back.argv.first().map(String::as_str), Some("argument-0"));
        assert_eq!(back.argv.last().map(String::as_str), Some("…"));
        assert_eq!(back.pid, 42);
    }

    #[test]
    fn absurd_lengths_are_an_error_not_an_allocation() {
        // pid, parent pid, then an executable path claiming 2^56 bytes.
        let bytes = [1, 1, 0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00];
        assert!(TraceMetadata::decode(&bytes, layout::VERSION_MAJOR, layout::VERSION_MINOR).is_err());
        let many_strings = [1, 1, 0, 0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00];
        assert!(TraceMetadata::decode(&many_strings, layout::VERSION_MAJOR, layout::VERSION_MINOR).is_err());
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(TraceMetadata::decode(&[0xff; 3], layout::VERSION_MAJOR, layout::VERSION_MINOR).is_err());
    }
}
