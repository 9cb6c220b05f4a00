//! The suspects as text: the trace's header, how many stacks got each verdict, then the ranked
//! suspects, each with one line of evidence for its verdict and its stack (and from how many
//! call sites, where stacks that read the same were judged as one).

use std::fmt::Write;

use super::report::SuspectReport;
use super::{CHECKPOINTS, Suspect, Verdict, checkpoints};
use crate::report::units::{bytes, count, duration, plural};
use crate::report::{write_frames_up_to, write_incomplete_warning, write_trace_lines, write_window};

const VERDICTS: [Verdict; 4] = [Verdict::Growing, Verdict::Outlived, Verdict::NeverFreed, Verdict::InUse];

pub(super) fn render(report: &SuspectReport<'_>) -> String {
    let mut out = String::new();
    let s = report.analysis.summary();
    write_trace_lines(s, &mut out);
    let _ = writeln!(
        out,
        "at       {} ({} of {}): {} in {} outstanding, from {}",
        report.when,
        duration(report.at_ns),
        duration(s.duration_ns),
        bytes(report.totals.bytes),
        plural(report.totals.blocks, "block", "blocks"),
        plural(report.suspects.len() as u64, "stack", "stacks"),
    );
    let counts: Vec<String> =
        VERDICTS.iter().map(|&v| format!("{} {}", count(report.count(v) as u64), v.name())).collect();
    write_window(&report.window, &mut out);
    let _ = writeln!(out, "verdicts {}", counts.join(", "));
    write_incomplete_warning(s, &mut out);
    if report.suspects.is_empty() {
        let _ = writeln!(out, "\nNo outstanding allocations.");
        return out;
    }
    let rows: Vec<[String; 4]> = report
        .shown()
        .iter()
        .enumerate()
        .map(|(i, x)| {
            [
                format!("#{}", i + 1),
                x.verdict.name().to_string(),
                bytes(x.bytes),
                plural(x.blocks, "block", "blocks"),
            ]
        })
        .collect();
    let width = |k: usize| rows.iter().map(|r| r[k].chars().count()).max().unwrap_or(0);
    let widths = [width(0), width(1), width(2), width(3)];
    for (x, row) in report.shown().iter().zip(&rows) {
        let _ = writeln!(
            out,
            "\n{:<w0$}  {:<w1$}  {:>w2$}  {:>w3$}  allocated {}",
            row[0],
            row[1],
            row[2],
            row[3],
            span(x.first_alloc_ns, x.last_alloc_ns),
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3]
        );
        let _ = writeln!(out, "    {}", evidence(x, report.at_ns));
        write_frames_up_to(&report.analysis.stack_frames(x.stack), usize::MAX, &mut out);
        // Stacks that read the same, judged as one: recorded from several return addresses.
        if x.stacks.len() > 1 {
            let _ = writeln!(out, "    from {} call sites with these frames", count(x.stacks.len() as u64));
        }
    }
    let hidden = report.suspects.len() - report.shown;
    if hidden > 0 {
        let noun = if hidden == 1 { "stack" } else { "stacks" };
        let _ = writeln!(out, "\n… and {} more {noun} (--top 0 shows all)", count(hidden as u64));
    }
    out
}

/// One line saying why the suspect got its verdict.
pub fn evidence(x: &Suspect, at_ns: u64) -> String {
    let kept =
        format!("{} of {} not freed", count(x.blocks), plural(x.allocations, "allocation", "allocations"));
    match x.verdict {
        Verdict::Growing => {
            let since = checkpoints(x.stack_first_alloc_ns, at_ns)[0];
            format!(
                "live blocks rose steadily, {} at {} to {} at {} (R² {:.2}, {} a second); {kept}",
                count(x.live_at_checkpoints[0]),
                duration(since),
                count(x.live_at_checkpoints[CHECKPOINTS - 1]),
                duration(at_ns),
                x.trend.r2,
                rate(x.blocks_per_second(at_ns)),
            )
        }
        Verdict::Outlived => {
            // The few freed blocks that lived about as long as the survivors, where there were any.
            let long_lived = match x.freed_long_lived {
                0 => String::new(),
                n => format!(", {} of them {} or longer", count(n), duration(x.long_lived_ns)),
            };
            format!(
                "{} of {} freed, after {} on average (at most {}{long_lived}); the {} left are {} old",
                count(x.frees),
                plural(x.allocations, "allocation", "allocations"),
                duration(x.freed_lifetime_mean_ns.unwrap_or(0)),
                duration(x.freed_lifetime_max_ns.unwrap_or(0)),
                count(x.blocks),
                ages(x),
            )
        }
        Verdict::NeverFreed => match x.allocations {
            1 => "allocated once, never freed".to_string(),
            n => format!(
                "none of {} freed, and their number did not grow steadily",
                plural(n, "allocation", "allocations")
            ),
        },
        Verdict::InUse => format!(
            "{} of {} lived {} or longer (a tenth of the median survivor's age): the {} left may still be in use; {kept}",
            count(x.freed_long_lived),
            plural(x.frees, "freed block", "freed blocks"),
            duration(x.long_lived_ns),
            count(x.blocks),
        ),
    }
}

fn ages(x: &Suspect) -> String {
    if x.ages.min == x.ages.max {
        duration(x.ages.min)
    } else {
        format!("{}..{}", duration(x.ages.min), duration(x.ages.max))
    }
}

fn span(first: u64, last: u64) -> String {
    if first == last {
        format!("at {}", duration(first))
    } else {
        format!("{}..{}", duration(first), duration(last))
    }
}

/// Blocks per second, to two significant digits below 10.
fn rate(per_second: f64) -> String {
    if per_second >= 10.0 { count(per_second.round() as u64) } else { format!("{per_second:.2}") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suspects::{Ages, Fit};

    fn suspect(verdict: Verdict) -> Suspect {
        Suspect {
            stack: crate::model::StackId(1),
            stacks: vec![crate::model::StackId(1)],
            verdict,
            blocks: 10,
            bytes: 320,
            allocations: 100,
            frees: 90,
            freed_long_lived: 0,
            long_lived_ns: 500_000,
            freed_lifetime_max_ns: Some(5_000),
            freed_lifetime_mean_ns: Some(2_000),
            ages: Ages { min: 1_000_000, median: 5_000_000, max: 9_000_000 },
            first_alloc_ns: 1_000_000,
            last_alloc_ns: 9_000_000,
            stack_first_alloc_ns: 0,
            live_at_checkpoints: std::array::from_fn(|i| i as u64),
            trend: Fit { slope: 1.0, r2: 0.97 },
        }
    }

    #[test]
    fn each_verdict_states_its_evidence() {
        let at = 16_000_000;
        let growing = evidence(&suspect(Verdict::Growing), at);
        assert_eq!(
            growing,
            "live blocks rose steadily, 0 at 1ms to 15 at 16ms (R² 0.97, 1,000 a second); 10 of 100 allocations not freed"
        );
        let outlived = evidence(&suspect(Verdict::Outlived), at);
        assert_eq!(
            outlived,
            "90 of 100 allocations freed, after 2us on average (at most 5us); the 10 left are 1ms..9ms old"
        );
        let mut few_slow = suspect(Verdict::Outlived);
        few_slow.freed_long_lived = 2;
        assert_eq!(
            evidence(&few_slow, at),
            "90 of 100 allocations freed, after 2us on average (at most 5us, 2 of them 500us or longer); the 10 left are 1ms..9ms old"
        );
        let mut once = suspect(Verdict::NeverFreed);
        once.allocations = 1;
        assert_eq!(evidence(&once, at), "allocated once, never freed");
        let mut held = suspect(Verdict::InUse);
        held.freed_long_lived = 40;
        assert_eq!(
            evidence(&held, at),
            "40 of 90 freed blocks lived 500us or longer (a tenth of the median survivor's age): the 10 left may still be in use; 10 of 100 allocations not freed"
        );
    }

    #[test]
    fn rates_keep_small_values_readable() {
        assert_eq!(rate(0.25), "0.25");
        assert_eq!(rate(1234.4), "1,234");
    }
}
