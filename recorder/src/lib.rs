//! Recording engine (filled in by the recorder work).
