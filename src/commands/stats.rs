//! `leakview stats TRACE`: header metadata and counts per event kind.

use std::collections::BTreeMap;
use std::process::ExitCode;

use leakview_format::{EventKind, TraceReader};

use crate::cli::StatsArgs;

pub fn run(args: &StatsArgs) -> anyhow::Result<ExitCode> {
    let reader = TraceReader::open(&args.trace)?;
    let meta = reader.metadata();
    let header = reader.header();
    let mut counts: BTreeMap<EventKind, u64> = BTreeMap::new();
    let mut threads = std::collections::BTreeSet::new();
    let mut first_ts = u64::MAX;
    let mut last_ts = 0u64;
    let mut decode_errors = 0u64;
    for chunk in reader.chunks() {
        threads.insert(chunk.tid);
        for event in reader.events(chunk) {
            match event {
                Ok(event) => {
                    *counts.entry(event.kind()).or_default() += 1;
                    if let Some(ts) = event.timestamp() {
                        first_ts = first_ts.min(ts);
                        last_ts = last_ts.max(ts);
                    }
                }
                Err(_) => decode_errors += 1,
            }
        }
    }
    let total: u64 = counts.values().sum();
    let mut out = String::new();
    use std::fmt::Write;
    let w = &mut out;
    writeln!(w, "trace        {}", args.trace.display())?;
    writeln!(w, "format       {}.{}", header.version_major, header.version_minor)?;
    writeln!(w, "command      {}", meta.command_line())?;
    writeln!(w, "executable   {}", meta.executable)?;
    writeln!(w, "pid          {} (parent {})", meta.pid, meta.parent_pid)?;
    writeln!(w, "recorder     {} ({:?})", meta.recorder, meta.recorder_kind)?;
    writeln!(w, "arch         {} ({}-bit)", meta.arch, u32::from(meta.pointer_width) * 8)?;
    writeln!(w, "started      {} ns since the Unix epoch", meta.start_unix_ns)?;
    if total > 0 && last_ts >= first_ts {
        writeln!(w, "duration     {:.3} s", (last_ts - first_ts) as f64 / 1e9)?;
    }
    writeln!(w, "threads      {}", threads.len())?;
    writeln!(
        w,
        "file size    {} bytes in {} chunks of {} bytes",
        reader.file_len(),
        reader.chunks().len(),
        header.chunk_size
    )?;
    writeln!(w, "events       {total}")?;
    for kind in EventKind::ALL {
        writeln!(w, "  {:<13}{}", kind.name(), counts.get(&kind).copied().unwrap_or(0))?;
    }
    if total > 0 {
        writeln!(
            w,
            "bytes/event  {:.2}",
            reader.chunks().iter().map(|c| c.body_len() as u64).sum::<u64>() as f64 / total as f64
        )?;
    }
    let complete = reader.is_complete() && decode_errors == 0;
    writeln!(w, "complete     {}", if complete { "yes" } else { "no" })?;
    if !header.finished() {
        writeln!(
            w,
            "  the recorder did not finish (program killed or still running); read up to the last published event"
        )?;
    }
    if header.truncated() {
        writeln!(
            w,
            "  recording stopped early (disk full or size limit); {} events lost",
            header.lost_events
        )?;
    }
    if reader.damaged_chunks() + reader.missing_chunks() > 0 || decode_errors > 0 {
        writeln!(
            w,
            "  {} damaged chunks, {} missing chunks, {} undecodable chunk tails",
            reader.damaged_chunks(),
            reader.missing_chunks(),
            decode_errors
        )?;
    }
    print!("{out}");
    Ok(ExitCode::SUCCESS)
}
