//! leakview's recording engine (`engine`), used by the LD_PRELOAD library
//! `libleakview_preload.so` and by the in-process Rust API.
//!
//! The engine records every allocation and free of a process into a leakview trace (see the
//! `leakview-format` crate): per-thread lock-free streams, DWARF-unwound call stacks interned as
//! a trie, and the module map needed to symbolize them offline.

pub mod engine;
