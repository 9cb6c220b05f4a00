//! Analyzer (filled in by the analyzer work).
