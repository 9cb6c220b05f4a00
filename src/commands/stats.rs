//! `leakview stats TRACE`: the trace's header, event counts per kind, and the analyzer's figures
//! (allocations, frees, peak, outstanding at the end, their leak kinds).

use std::fmt::Write;
use std::process::ExitCode;

use leakview_analyzer::report::units::{bytes, count, plural, share};
use leakview_analyzer::{Analysis, Mark, format_duration};
use leakview_format::{RecorderKind, TraceReader};

use super::leak_kinds;
use super::loading::{self, Bars};
use crate::cli::StatsArgs;
use crate::messages;

pub fn run(args: &StatsArgs) -> anyhow::Result<ExitCode> {
    let reader = loading::open_reader(&args.trace)?;
    let bars = Bars::new();
    // The reader already maps (and reads in) the whole trace: load from it, not from a second map.
    let analysis = loading::load_from(&reader, &bars)?;
    drop(bars);
    messages::print_result(&render(&reader, &analysis)?, "statistics")?;
    Ok(ExitCode::SUCCESS)
}

fn render(reader: &TraceReader, analysis: &Analysis) -> anyhow::Result<String> {
    let s = analysis.summary();
    let t = &s.totals;
    let meta = reader.metadata();
    let header = reader.header();
    let mut out = String::new();
    let w = &mut out;
    writeln!(w, "trace        {}", s.path.display())?;
    writeln!(w, "format       {}.{}", header.version_major, header.version_minor)?;
    writeln!(w, "command      {}", meta.command_line())?;
    writeln!(w, "executable   {}", meta.executable)?;
    writeln!(w, "pid          {} (parent {})", meta.pid, meta.parent_pid)?;
    writeln!(w, "recorder     {} ({})", meta.recorder, recorder_kind(meta.recorder_kind))?;
    writeln!(w, "arch         {} ({}-bit)", meta.arch, u32::from(meta.pointer_width) * 8)?;
    writeln!(
        w,
        "started      {} ({} ns since the Unix epoch)",
        utc_time(meta.start_unix_ns),
        meta.start_unix_ns
    )?;
    if s.truncated && s.duration_ns > s.last_event_ns {
        writeln!(
            w,
            "duration     {} (recorded: the first {})",
            format_duration(s.duration_ns),
            format_duration(s.last_event_ns)
        )?;
    } else if !s.complete && s.duration_ns > s.last_event_ns {
        writeln!(
            w,
            "duration     {} (events read: the first {})",
            format_duration(s.duration_ns),
            format_duration(s.last_event_ns)
        )?;
    } else {
        writeln!(w, "duration     {}", format_duration(s.duration_ns))?;
    }
    writeln!(w, "threads      {}", s.threads)?;
    writeln!(w, "modules      {}", s.modules)?;
    writeln!(w, "stacks       {}", count(s.stacks))?;
    writeln!(
        w,
        "file size    {} in {} chunks of {}",
        bytes(s.file_bytes),
        count(reader.chunks().len() as u64),
        bytes(u64::from(header.chunk_size))
    )?;
    writeln!(w, "events       {}", count(s.events))?;
    // The heap scan's kinds only where the trace has them (most do not).
    let kinds: Vec<(&str, u64)> =
        s.event_counts.by_kind().into_iter().filter(|(k, n)| *n > 0 || !k.starts_with("scan-")).collect();
    let width = kinds.iter().map(|(k, _)| k.len() + 1).max().unwrap_or(0).max(15);
    for (kind, n) in kinds {
        writeln!(w, "  {kind:<width$}{}", count(n))?;
    }
    if s.events > 0 {
        writeln!(w, "bytes/event  {:.2}", s.event_bytes as f64 / s.events as f64)?;
    }
    writeln!(w, "allocations  {} ({} allocated)", count(t.allocations), bytes(t.bytes_allocated))?;
    writeln!(w, "frees        {}", count(t.frees))?;
    let temporary = analysis.temporary_count();
    if temporary > 0 {
        writeln!(
            w,
            "temporary    {} ({} of the blocks): freed before their thread allocated again",
            count(temporary),
            share(temporary, analysis.block_count() as u64)
        )?;
    }
    if t.unmatched_frees > 0 {
        writeln!(
            w,
            "  unmatched  {} (memory allocated before recording began, or double frees)",
            count(t.unmatched_frees)
        )?;
    }
    if t.reordered_pairs > 0 {
        writeln!(
            w,
            "  reordered  {} (an allocation and a free of one address on two threads whose times \
             the clock had swapped, applied in their true order)",
            count(t.reordered_pairs)
        )?;
    }
    writeln!(
        w,
        "peak         {} in {} at {}",
        bytes(t.peak_bytes),
        plural(t.peak_blocks, "block", "blocks"),
        format_duration(t.peak_at_ns)
    )?;
    let at_the_end = if s.truncated {
        format!("when recording stopped ({})", format_duration(s.last_event_ns))
    } else {
        "at the end".to_string()
    };
    writeln!(
        w,
        "outstanding  {} in {} {at_the_end}",
        bytes(s.outstanding_at_end.bytes),
        plural(s.outstanding_at_end.blocks, "block", "blocks")
    )?;
    leak_kinds::write_summary(w, analysis)?;
    write_resident(w, analysis)?;
    write_marks(w, analysis.marks())?;
    writeln!(w, "complete     {}", if s.complete { "yes" } else { "no" })?;
    if s.recording {
        writeln!(
            w,
            "  still being recorded (pid {} is running); read up to the last published event",
            s.pid
        )?;
    } else if !s.finished {
        writeln!(
            w,
            "  the recorder did not finish (program killed or still running); read up to the last published event"
        )?;
    }
    if s.truncated {
        // The recorder counts every event it could not offer once the trace was cut short.
        let missing = match s.lost_events {
            0 => "events after it were not recorded".to_string(),
            n => format!("{} after it were not recorded", plural(n, "event", "events")),
        };
        writeln!(
            w,
            "  recording stopped early (disk full or size limit) at {}, the last recorded event; {missing}",
            format_duration(s.last_event_ns)
        )?;
    }
    if s.damaged_chunks + s.undecodable_chunks > 0 {
        writeln!(
            w,
            "  {}, {}",
            plural(s.damaged_chunks, "damaged or missing chunk", "damaged or missing chunks"),
            plural(s.undecodable_chunks, "undecodable chunk tail", "undecodable chunk tails")
        )?;
    }
    Ok(out)
}

/// How the trace was recorded, in words.
fn recorder_kind(kind: RecorderKind) -> &'static str {
    match kind {
        RecorderKind::Preload => "preload library, whole process",
        RecorderKind::RustApi => "Rust API, in-process",
        RecorderKind::Synthetic => "written by a tool",
    }
}

/// The resident set size the recorder sampled: its peak and its last sample.
fn write_resident(w: &mut String, analysis: &Analysis) -> std::fmt::Result {
    let memory = analysis.resident_memory();
    let (Some(peak), Some(last)) = (memory.peak(), memory.last()) else {
        return writeln!(w, "RSS          not sampled");
    };
    writeln!(
        w,
        "RSS          peak {} at {}, {} at {} ({})",
        bytes(peak.bytes),
        format_duration(peak.at_ns),
        bytes(last.bytes),
        format_duration(last.at_ns),
        plural(memory.samples().len() as u64, "sample", "samples")
    )
}

/// Marks listed after the count, each as `--at` names it, at most [`MARKS_LISTED`].
const MARKS_LISTED: usize = 20;

/// `marks  N`, then one line per mark: its time and the `--at` moment that names it.
fn write_marks(w: &mut String, marks: &[Mark]) -> std::fmt::Result {
    writeln!(w, "marks        {}", count(marks.len() as u64))?;
    let times: Vec<String> = marks.iter().take(MARKS_LISTED).map(|m| format_duration(m.at_ns)).collect();
    let width = times.iter().map(String::len).max().unwrap_or(0);
    for (mark, time) in marks.iter().zip(&times) {
        let nth = if mark.occurrence > 1 { format!("#{}", mark.occurrence) } else { String::new() };
        writeln!(w, "  {time:>width$}  mark:{}{nth}", mark.label)?;
    }
    if marks.len() > MARKS_LISTED {
        writeln!(w, "  ... and {} more", count((marks.len() - MARKS_LISTED) as u64))?;
    }
    Ok(())
}

/// `2026-11-22 14:22:45.199 UTC`: a wall-clock time, `unix_ns` since the Unix epoch.
fn utc_time(unix_ns: u64) -> String {
    const NS_PER_S: u64 = 1_000_000_000;
    let secs = unix_ns / NS_PER_S;
    let millis = unix_ns % NS_PER_S / 1_000_000;
    let (year, month, day) = civil_date(secs / 86_400);
    let in_day = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{millis:03} UTC",
        in_day / 3600,
        in_day % 3600 / 60,
        in_day % 60
    )
}

/// The proleptic Gregorian (year, month, day) of `days` since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_date(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(label: &str, at_ns: u64, occurrence: u32) -> Mark {
        Mark { label: label.into(), at_ns, occurrence }
    }

    #[test]
    fn marks_are_listed_as_at_names_them() {
        let mut out = String::new();
        let marks = [mark("warm", 1_500, 1), mark("warm", 2_000_000, 2), mark("done", 9, 1)];
        write_marks(&mut out, &marks).expect("write");
        assert_eq!(out, "marks        3\n  1.5us  mark:warm\n    2ms  mark:warm#2\n    9ns  mark:done\n");
    }

    #[test]
    fn long_mark_lists_are_cut() {
        let marks: Vec<Mark> = (1..=25).map(|i| mark("tick", i * 1000, i as u32)).collect();
        let mut out = String::new();
        write_marks(&mut out, &marks).expect("write");
        assert_eq!(out.lines().count(), 1 + MARKS_LISTED + 1, "{out}");
        assert!(out.ends_with("  ... and 5 more\n"), "{out}");
        assert!(out.contains("mark:tick#20\n") && !out.contains("mark:tick#21"), "{out}");
    }

    #[test]
    fn recorder_kinds_read_as_words() {
        assert_eq!(recorder_kind(RecorderKind::Preload), "preload library, whole process");
        assert_eq!(recorder_kind(RecorderKind::RustApi), "Rust API, in-process");
    }

    #[test]
    fn start_times_read_as_utc_dates() {
        assert_eq!(utc_time(0), "1970-01-01 00:00:00.000 UTC");
        assert_eq!(utc_time(951_782_400_000_000_000), "2000-02-29 00:00:00.000 UTC");
        assert_eq!(utc_time(1_795_357_365_199_497_635), "2026-11-22 14:22:45.199 UTC");
        assert_eq!(utc_time(4_102_444_799_999_999_999), "2099-12-31 23:59:59.999 UTC");
        assert_eq!(utc_time(u64::MAX), "2554-07-21 23:34:33.709 UTC");
    }
}
