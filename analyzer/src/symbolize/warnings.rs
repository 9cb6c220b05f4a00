//! Problems met while symbolizing that degrade the output without stopping it. They are
//! collected (see `Symbolizer::warnings`) for the caller to show or ignore; nothing is printed.

use std::path::PathBuf;

/// Why a module's frames are less complete than they could be.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SymbolizeWarning {
    /// The module's file could not be opened or parsed, and no separate debug file was found.
    #[error("cannot read {}: {reason}", path.display())]
    Unreadable { path: PathBuf, reason: String },
    /// The file on disk is not the one that was recorded (its build-id differs), so its symbols
    /// would be wrong and are not used.
    #[error(
        "{} changed since it was recorded (build-id {found}, recorded {expected}); its symbols are not used",
        path.display()
    )]
    BuildIdMismatch { path: PathBuf, expected: String, found: String },
    /// Neither the module nor a separate debug file has DWARF: function names come from the
    /// symbol table only, without files and lines.
    #[error("no debug info for {}", path.display())]
    NoDebugInfo { path: PathBuf },
    /// A candidate debug file exists but belongs to another build (CRC or build-id differ).
    #[error("debug file {} does not match {}", debug_file.display(), path.display())]
    DebugFileMismatch { path: PathBuf, debug_file: PathBuf },
    /// The debug info refers to a supplementary (dwz) file that was not found; frames whose
    /// info lives there lose names or lines.
    #[error("supplementary debug file {name} for {} not found", path.display())]
    MissingSupplementary { path: PathBuf, name: String },
}

/// Lower-case hex of a build-id.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lower_case_and_padded() {
        assert_eq!(hex(&[0x0a, 0xff, 0x00]), "0aff00");
        assert_eq!(hex(&[]), "");
    }

    #[test]
    fn messages_name_the_module() {
        let w = SymbolizeWarning::NoDebugInfo { path: PathBuf::from("/usr/bin/x") };
        assert_eq!(w.to_string(), "no debug info for /usr/bin/x");
    }
}
