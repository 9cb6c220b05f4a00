//! One scrub step of the browser on a 10-million-event trace: the state update (T moves one
//! step, the groups outstanding at the new T are asked for) plus drawing the whole screen into a
//! 120x40 `TestBackend`. The trace is written with the real trace writer and loaded through the
//! analyzer in the setup (not measured).
//!
//! Run: `cargo bench -p leakview-tui --bench scrub` (set `LEAKVIEW_BENCH_EVENTS` for another
//! size). The target is under 50 ms per step. Also measured: switching what is counted (`w`),
//! steps while every allocation is counted, the timeline's charts of allocated and temporary
//! bytes, and steps with the call tree shown (`t`).

#[path = "../tests/common/trace.rs"]
mod trace;

use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};
use leakview_analyzer::{Analysis, LoadOptions, NoProgress, Selection};
use leakview_tui::{AnalysisSource, App, DataSource, Theme};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

fn events() -> u64 {
    std::env::var("LEAKVIEW_BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000_000)
}

/// Presses `code` and redraws: what the runner does for one key.
fn step(app: &mut App<AnalysisSource>, terminal: &mut Terminal<TestBackend>, code: KeyCode) {
    app.handle_key(KeyEvent::new(code, KeyModifiers::NONE));
    terminal.draw(|f| app.draw(f)).expect("draw");
}

/// Benchmarks `name`: `steps` presses of `away`, then as many of `back`, over and over.
fn back_and_forth(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    (app, terminal): (&mut App<AnalysisSource>, &mut Terminal<TestBackend>),
    (away, back, steps): (KeyCode, KeyCode, u64),
) {
    let mut i = 0u64;
    group.bench_function(name, |b| {
        b.iter(|| {
            let code = if i % (2 * steps) < steps { away } else { back };
            i += 1;
            step(app, terminal, code);
        })
    });
}

fn scrub(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bench.bin");
    let started = Instant::now();
    let written = trace::write_synthetic_trace(&path, events());
    eprintln!("wrote {written} events in {:.2?}", started.elapsed());
    let started = Instant::now();
    let analysis = Analysis::open(&path, &LoadOptions::default(), &NoProgress).expect("the trace loads");
    eprintln!(
        "loaded in {:.2?}: {} events, {} blocks outstanding at the end",
        started.elapsed(),
        analysis.summary().events,
        analysis.summary().outstanding_at_end.blocks
    );
    let started = Instant::now();
    let source = AnalysisSource::new(analysis);
    eprintln!("scrub index built in {:.2?}", started.elapsed());
    let started = Instant::now();
    let mut app = App::new(source, Theme::colour());
    let mut terminal = Terminal::new(TestBackend::new(120, 40)).expect("terminal");
    terminal.draw(|f| app.draw(f)).expect("draw");
    eprintln!("first screen (at the end of the trace) in {:.2?}", started.elapsed());

    let mut group = c.benchmark_group("scrub");
    group.sample_size(20).measurement_time(Duration::from_secs(15));

    // Near the end, where the most blocks are outstanding: back and forth over ten steps.
    let near_end = (KeyCode::Left, KeyCode::Right, 10);
    back_and_forth(&mut group, "step_near_end_10m_events", (&mut app, &mut terminal), near_end);

    // Across the whole trace, ten steps at a time.
    step(&mut app, &mut terminal, KeyCode::Home);
    let across = (KeyCode::Char(']'), KeyCode::Char('['), 20);
    back_and_forth(&mut group, "jump_across_trace_10m_events", (&mut app, &mut terminal), across);

    // The same near the end, grouped by function, then by size, then by thread: the rows and
    // the selected group's details of the last two come from the outstanding blocks rather
    // than from per-stack totals alone.
    step(&mut app, &mut terminal, KeyCode::End);
    for grouping in ["function", "size", "thread"] {
        step(&mut app, &mut terminal, KeyCode::Char('g'));
        let name = format!("step_near_end_by_{grouping}_10m_events");
        back_and_forth(&mut group, &name, (&mut app, &mut terminal), near_end);
    }

    // Back to stack groups, then the `w` key: each switch of what is counted (outstanding,
    // every allocation, the temporary ones) rebuilds the aggregates from the analyzer's
    // selection at T.
    step(&mut app, &mut terminal, KeyCode::Char('g'));
    group.bench_function("switch_what_counted_10m_events", |b| {
        b.iter(|| step(&mut app, &mut terminal, KeyCode::Char('w')))
    });
    // Steps near the end while every allocation is counted.
    while app.state().what != Selection::Allocated {
        step(&mut app, &mut terminal, KeyCode::Char('w'));
    }
    back_and_forth(&mut group, "step_near_end_allocated_10m_events", (&mut app, &mut terminal), near_end);
    // The timeline's chart of each growing selection (what a `w` switch recomputes), for a
    // 120-column screen: the source's answer alone.
    for what in [Selection::Allocated, Selection::Temporary] {
        let name = format!("chart_{}_10m_events", what.name());
        group.bench_function(name, |b| b.iter(|| app.source().timeline(236, what)));
    }
    // Steps near the end with the call tree shown (`t`), of every allocation.
    step(&mut app, &mut terminal, KeyCode::Char('t'));
    back_and_forth(&mut group, "step_near_end_call_tree_10m_events", (&mut app, &mut terminal), near_end);
    group.finish();
}

criterion_group!(benches, scrub);
criterion_main!(benches);
