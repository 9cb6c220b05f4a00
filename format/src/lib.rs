//! The leakview trace format: on-disk layout, event encoding, a lock-free concurrent writer and a
//! zero-copy reader.
//!
//! A trace is one file per recorded process: a 4 KiB header page followed by fixed-size chunks.
//! Each writing thread owns one chunk at a time, appends varint/delta-encoded events to it and
//! publishes the chunk's valid length after every event, so a trace cut short by a crash is still
//! readable up to its last published event. `FORMAT.md` beside this crate is the byte-level spec.
//!
//! - [`TraceWriter`] + [`ThreadStream`]: the writer side; never allocates after creation.
//! - [`TraceReader`]: the reader side; never panics on damaged input.
//! - [`Event`]: what a trace holds.
//! - [`TraceMetadata`]: who was recorded, when, and how.

#[cfg(not(target_endian = "little"))]
compile_error!("leakview-format supports little-endian targets only");

pub mod allocator_names;
mod codec;
mod error;
mod event;
mod exec_end;
pub mod layout;
mod metadata;
mod process;
mod reader;
pub mod rust_std_names;
#[doc(hidden)]
pub mod testing;
mod trace_fd;
mod trim;
pub mod varint;
mod writer;

pub use codec::{DecodeState, DeltaState, EncodeState, MAX_HOT_EVENT_LEN, decode_event, encode_event};
pub use error::{DecodeError, ReadError, WriteError};
pub use event::{Event, EventKind, OwnedEvent, References, Segment, Segments, region_kind};
pub use exec_end::finish_replaced_image;
pub use metadata::{RecorderKind, TraceMetadata, display_command};
pub use process::{process_running, start_ticks_in_stat};
pub use reader::{ChunkEvents, ChunkInfo, EventSink, HeaderInfo, TraceHead, TraceReader, read_head};
pub use trim::trim_finished;
pub use writer::{ThreadStream, TraceWriter, WriterOptions};
