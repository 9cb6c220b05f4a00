//! Whether a trace is still being recorded: its writer has not finished it and the process it
//! records is running on this machine (the same pid, started at the same time, still running
//! the same executable): `Summary::recording`. A browser follows such a trace, loading it again
//! as it grows.

use leakview_format::{HeaderInfo, TraceMetadata};

/// True while the trace with this header and metadata is unfinished and its process runs;
/// false for a finished trace, or one whose process has ended (crashed, killed), runs another
/// executable or runs elsewhere.
pub(crate) fn recorded_now(header: &HeaderInfo, metadata: &TraceMetadata) -> bool {
    !header.finished()
        && leakview_format::process_running(metadata.pid, metadata.process_start_ticks)
        && runs_executable(metadata.pid, &metadata.executable)
}

/// Whether process `pid` still runs `executable`, the image the trace records: after an `exec`
/// of another program the trace no longer grows (the new image records into a trace of its
/// own), though the process runs on. True when that cannot be told (another user's process, no
/// executable recorded).
fn runs_executable(pid: u32, executable: &str) -> bool {
    let Ok(running) = std::fs::read_link(format!("/proc/{pid}/exe")) else { return true };
    let running = running.to_string_lossy();
    // A binary replaced on disk while it runs reads " (deleted)".
    executable.is_empty() || running.strip_suffix(" (deleted)").unwrap_or(&running) == executable
}

#[cfg(test)]
mod tests {
    use leakview_format::{Event, RecorderKind, ThreadStream, TraceMetadata, TraceWriter, WriterOptions};

    use super::*;

    fn still_recording(path: &std::path::Path) -> bool {
        let Ok(head) = leakview_format::read_head(path) else { return false };
        recorded_now(&head.header, &head.metadata)
    }

    fn this_process_start_ticks() -> u64 {
        let stat = std::fs::read("/proc/self/stat").expect("/proc/self/stat");
        leakview_format::start_ticks_in_stat(&stat).expect("start time")
    }

    #[test]
    fn a_trace_is_recorded_until_finished_and_only_while_its_process_runs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.bin");
        let exe = std::fs::read_link("/proc/self/exe").expect("/proc/self/exe");
        let meta = TraceMetadata {
            pid: std::process::id(),
            process_start_ticks: this_process_start_ticks(),
            executable: exe.display().to_string(),
            start_monotonic_ns: 1_000,
            recorder_kind: RecorderKind::Synthetic,
            ..TraceMetadata::default()
        };
        let writer = TraceWriter::create(&path, &meta, &WriterOptions::default()).expect("create");
        let mut stream = ThreadStream::new(1);
        let alloc = Event::Alloc { ts: 2_000, addr: 0x1000, size: 8, align: 0, stack: 0 };
        writer.append(&mut stream, &alloc).expect("append");
        assert!(still_recording(&path), "unfinished, and this process runs");

        let other = dir.path().join("other.bin");
        let gone = TraceMetadata { process_start_ticks: meta.process_start_ticks + 1, ..meta.clone() };
        drop(TraceWriter::create(&other, &gone, &WriterOptions::default()).expect("create"));
        assert!(!still_recording(&other), "the pid's process started at another time");

        let replaced = dir.path().join("replaced.bin");
        let exec_d = TraceMetadata { executable: "/bin/another-program".into(), ..meta.clone() };
        drop(TraceWriter::create(&replaced, &exec_d, &WriterOptions::default()).expect("create"));
        assert!(!still_recording(&replaced), "the process runs another executable since an exec");

        writer.finish(3_000);
        assert!(!still_recording(&path), "finished");
        assert!(!still_recording(&dir.path().join("missing.bin")));
    }
}
