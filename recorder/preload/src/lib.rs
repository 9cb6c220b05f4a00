//! LD_PRELOAD shim (filled in by the recorder work).
