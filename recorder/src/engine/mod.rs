//! The recording engine, shared by the LD_PRELOAD library and the in-process Rust API.
//!
//! - [`recorder`]: the entry points hooks call (alloc, free, realloc, mark, module changes,
//!   process lifecycle) and the per-thread reentrancy [`recorder::Guard`].
//! - [`session`]: the process-wide trace being written and its lifecycle (lazy start, fork, exit);
//!   [`fork_canary`] tells it when a child was forked without the fork handlers.
//! - [`thread`]: per-thread state in initial-exec TLS (C shim) and thread-exit handling;
//!   [`capture_pool`] hands ended threads' capture states to new ones.
//! - [`stack`]: call-stack capture with framehop over in-memory unwind tables, and its
//!   per-thread caches: [`kept_stacks`] (recent stacks recognised by their stack words),
//!   [`unwind_rules`] (rules by code address, read off framehop by [`rule_probes`]) and
//!   [`stack_cache`] (whole stacks to trie nodes); [`word_ring`] holds the words the kept
//!   stacks and the stack cache check against (a ring with epochs) and their hash mixing;
//!   [`side_stack`] runs walks where the thread's stack is short, [`stack_copy`] copies stacks
//!   of unknown bounds (coroutines) to walk.
//! - [`trie`]: lock-free interning of stacks into dense node ids.
//! - [`modules`]: the module map (scan, load/unload events, unwinder snapshots).
//! - [`config`], [`output`]: environment settings and where the trace file goes.
//! - [`resident`]: samples of the process's resident set size, taken on the allocation path.
//! - [`clock`], [`sys`], [`elf`]: small system helpers.

pub mod capture_pool;
pub mod clock;
pub mod config;
pub mod deferred;
pub mod elf;
pub mod fork_canary;
pub mod heap_scan;
#[cfg(target_arch = "x86_64")]
pub mod kept_stacks;
pub mod memory_map;
pub mod modules;
pub mod output;
pub mod own_memory;
pub mod recorder;
pub mod resident;
#[cfg(target_arch = "x86_64")]
pub mod rule_probes;
pub mod session;
pub mod side_stack;
pub mod stack;
pub mod stack_cache;
#[cfg(target_arch = "x86_64")]
pub mod stack_copy;
pub mod sys;
pub mod thread;
pub mod trie;
#[cfg(target_arch = "x86_64")]
pub mod unwind_rules;
pub mod word_ring;
