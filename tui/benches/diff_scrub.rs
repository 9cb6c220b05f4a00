//! One scrub step of the diff browser on a 10-million-event trace (two moments of it: A at the
//! half-way mark, B stepped near the end, where the most blocks are outstanding):
//! - `diff_step_inline`: the key, the diff at the new moment and drawing the whole screen into a
//!   120x40 `TestBackend`, all on one thread (what a step costs in all);
//! - `diff_step_screen_with_worker`: what the UI thread does per key when diffs are computed on
//!   the worker thread, as in the terminal (the key and the redraw; the diff arrives later).
//!
//! The trace is written with the real trace writer and loaded through the analyzer in the setup
//! (not measured). Run: `cargo bench -p leakview-tui --bench diff_scrub` (set
//! `LEAKVIEW_BENCH_EVENTS` for another size).

#[path = "../tests/common/trace.rs"]
mod trace;

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use leakview_analyzer::{Analysis, Comparison, DiffBy, LoadOptions, NoProgress, Selection};
use leakview_tui::source::DiffMoment;
use leakview_tui::{ComparisonSource, DiffApp, Theme};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

fn events() -> u64 {
    std::env::var("LEAKVIEW_BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000_000)
}

/// Presses `code` and redraws: what the runner does for one key.
fn step(app: &mut DiffApp, terminal: &mut Terminal<TestBackend>, code: KeyCode) {
    app.handle_key(KeyEvent::new(code, KeyModifiers::NONE));
    terminal.draw(|f| app.draw(f)).expect("draw");
}

fn scrub(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bench.bin");
    let written = trace::write_synthetic_trace(&path, events());
    let analysis = Analysis::open(&path, &LoadOptions::default(), &NoProgress).expect("the trace loads");
    eprintln!(
        "{written} events, {} blocks outstanding at the end",
        analysis.summary().outstanding_at_end.blocks
    );
    let end = analysis.duration_ns();
    let source = Arc::new(ComparisonSource::new(Comparison::one_trace(Arc::new(analysis))));
    let moment =
        DiffMoment { at_a_ns: end / 2, at_b_ns: end, by: DiffBy::Stack, what: Selection::Outstanding };
    let started = Instant::now();
    let mut app = DiffApp::at(source.clone(), moment, Theme::colour());
    let mut terminal = Terminal::new(TestBackend::new(120, 40)).expect("terminal");
    terminal.draw(|f| app.draw(f)).expect("draw");
    eprintln!("first screen (symbolizing every stack) in {:.2?}", started.elapsed());
    // Side B: the time keys move the end.
    step(&mut app, &mut terminal, KeyCode::Char('b'));

    let mut group = c.benchmark_group("diff_scrub");
    group.sample_size(10).measurement_time(Duration::from_secs(15));
    let mut i = 0u64;
    group.bench_function("diff_step_inline", |b| {
        b.iter(|| {
            let code = if i % 20 < 10 { KeyCode::Left } else { KeyCode::Right };
            i += 1;
            step(&mut app, &mut terminal, code);
        })
    });

    let mut app = DiffApp::at(source, moment, Theme::colour()).in_background();
    step(&mut app, &mut terminal, KeyCode::Char('b'));
    let mut i = 0u64;
    group.bench_function("diff_step_screen_with_worker", |b| {
        b.iter(|| {
            let code = if i % 20 < 10 { KeyCode::Left } else { KeyCode::Right };
            i += 1;
            step(&mut app, &mut terminal, code);
            app.poll();
        })
    });
    group.finish();
}

criterion_group!(benches, scrub);
criterion_main!(benches);
