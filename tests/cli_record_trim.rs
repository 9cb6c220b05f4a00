//! `leakview record` trims the disk space reserved ahead of use once the program has ended:
//! the file holds the header and the chunks that were used, nothing more, and reads complete.

use std::process::Command;

use leakview_format::{TraceReader, layout};

#[test]
fn recorded_trace_is_trimmed_to_its_used_chunks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let trace = dir.path().join("sh.bin");
    let status = Command::new(env!("CARGO_BIN_EXE_leakview"))
        .args(["record", "-o"])
        .arg(&trace)
        .args(["--", "sh", "-c", "x=$(echo a b c); echo \"$x\" > /dev/null"])
        .status()
        .expect("run leakview record");
    assert!(status.success());
    let reader = TraceReader::open(&trace).expect("open trace");
    let header = reader.header();
    assert!(reader.is_complete());
    assert!(!reader.chunks().is_empty(), "the shell allocates, so the trace has events");
    let used = header.chunks_claimed.min(header.chunks_reserved);
    assert_eq!(header.chunks_reserved, used, "no chunk is reserved beyond the used ones");
    assert_eq!(reader.file_len(), layout::chunk_offset(used, header.chunk_size));
}
