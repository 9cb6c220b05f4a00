//! Terminal browser (filled in by the TUI work).
