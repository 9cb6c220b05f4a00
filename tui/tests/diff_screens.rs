//! The diff browser on two versions of a traced "server" written with the real trace writer and
//! loaded through the analyzer: what its diff holds, and whole-screen snapshots after scripted
//! key sequences (snapshots in `tests/snapshots/`; a difference fails the test).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::trace::{loaded, write_diff_trace, write_wrapper_trace};
use common::{key, terminal, typed};
use leakview_analyzer::{
    AllocWindow, Analysis, Comparison, DiffBy, DiffStatus, LoadOptions, NoProgress, Selection, Side,
};
use leakview_tui::diff_state::DiffPane;
use leakview_tui::source::{DiffMoment, DiffSort};
use leakview_tui::{ComparisonSource, DiffApp, Theme};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use ratatui::style::Color;

const S: u64 = 1_000_000_000;

struct Traces {
    _dir: tempfile::TempDir,
    a: Arc<Analysis>,
    b: Arc<Analysis>,
}

fn traces() -> Traces {
    let dir = tempfile::tempdir().expect("temp dir");
    let load = |name: &str, after: bool| {
        let path = dir.path().join(name);
        write_diff_trace(&path, after);
        Arc::new(Analysis::open(&path, &LoadOptions::default(), &NoProgress).expect("the trace loads"))
    };
    let (a, b) = (load("v1.bin", false), load("v2.bin", true));
    Traces { _dir: dir, a, b }
}

/// The diff browser on version 1 against version 2, both at their ends.
fn two_versions(theme: Theme) -> (Traces, DiffApp) {
    let t = traces();
    let source = Arc::new(ComparisonSource::new(Comparison::new(t.a.clone(), t.b.clone())));
    let moment =
        DiffMoment { at_a_ns: 10 * S, at_b_ns: 8 * S, by: DiffBy::Stack, what: Selection::Outstanding };
    (t, DiffApp::at(source, moment, theme))
}

fn draw(app: &mut DiffApp, term: &mut Terminal<TestBackend>) {
    term.draw(|f| app.draw(f)).expect("drawing into a test backend");
}

fn press(app: &mut DiffApp, term: &mut Terminal<TestBackend>, keys: &[KeyEvent]) {
    for k in keys {
        app.handle_key(*k);
        draw(app, term);
    }
}

fn screen_text(term: &Terminal<TestBackend>) -> String {
    let buffer = term.backend().buffer();
    let width = usize::from(buffer.area.width);
    buffer
        .content
        .chunks(width)
        .map(|row| row.iter().map(|c| c.symbol()).collect::<String>() + "\n")
        .collect()
}

/// (label, status, A bytes, B bytes) of the rows listed, in order.
fn listed(app: &DiffApp) -> Vec<(String, DiffStatus, u64, u64)> {
    let rows = &app.table().rows;
    app.listed()
        .iter()
        .map(|&i| (rows[i].label.clone(), rows[i].status, rows[i].a.bytes, rows[i].b.bytes))
        .collect()
}

fn row(label: &str, status: DiffStatus, a: u64, b: u64) -> (String, DiffStatus, u64, u64) {
    (label.to_string(), status, a, b)
}

#[test]
fn groups_are_matched_across_versions_and_ranked_by_change() {
    let (_t, app) = two_versions(Theme::colour());
    assert_eq!(
        listed(&app),
        [
            row("server+0x1600", DiffStatus::Fixed, 3000, 0),
            row("server+0x1a00", DiffStatus::New, 0, 1024),
            row("server+0x1c00", DiffStatus::Grew, 640, 1280),
            row("server+0x2200", DiffStatus::Shrank, 256, 64),
            row("server+0x1800", DiffStatus::Same, 40960, 40960),
        ]
    );
    let source = app.source();
    assert_eq!(source.summary(Side::A).title, "server --version 1");
    assert_eq!(source.summary(Side::B).duration_ns, 8 * S);
    assert_eq!(source.trace_name(Side::B), "v2.bin");
}

#[test]
fn opens_at_both_ends_80x24() {
    let (_t, mut app) = two_versions(Theme::colour());
    let mut term = terminal(80, 24);
    draw(&mut app, &mut term);
    insta::assert_snapshot!("diff_open_80x24", term.backend());
}

#[test]
fn each_side_scrubs_on_its_own() {
    let (_t, mut app) = two_versions(Theme::colour());
    let mut term = terminal(100, 30);
    // Side A back to its warmup mark: what A held then against B at its end.
    press(&mut app, &mut term, &[key(KeyCode::Home), key(KeyCode::Char('m'))]);
    assert_eq!((app.state().at_a_ns, app.state().at_b_ns), (2 * S, 8 * S));
    assert_eq!(app.table().moment.at_a_ns, 2 * S, "the diff follows the moment");
    insta::assert_snapshot!("diff_a_at_warmup", term.backend());
    // Then side B, ten steps back from its end, and the selection moved down to the new group.
    press(&mut app, &mut term, &[key(KeyCode::Char('b')), key(KeyCode::Char('[')), key(KeyCode::Down)]);
    assert_eq!((app.state().at_a_ns, app.state().at_b_ns), (2 * S, 7_600_000_000));
    insta::assert_snapshot!("diff_b_stepped_back", term.backend());
}

#[test]
fn the_mouse_chooses_a_side_scrubs_it_and_selects_rows() {
    let (_t, mut app) = two_versions(Theme::monochrome());
    let mut term = terminal(80, 24);
    draw(&mut app, &mut term);
    let mouse = |kind, column, row| MouseEvent { kind, column, row, modifiers: KeyModifiers::NONE };
    let click = MouseEventKind::Down(MouseButton::Left);
    // At 80x24, A's timeline takes rows 1 to 6 and B's rows 7 to 12; their charts start at
    // column 1. The list's rows start at row 15; the details pane at column 54.
    app.handle_mouse(mouse(click, 1, 9));
    assert_eq!((app.state().side, app.state().at_a_ns, app.state().at_b_ns), (Side::B, 10 * S, 0));
    assert_eq!(app.table().moment.at_b_ns, 0, "the diff follows the click");
    app.handle_mouse(mouse(MouseEventKind::ScrollDown, 40, 3));
    assert_eq!(app.state().side, Side::A, "the wheel over A's timeline chooses A");
    assert!(app.state().at_a_ns < 10 * S, "and steps its T back");
    app.handle_mouse(mouse(click, 10, 17));
    assert_eq!((app.state().groups.selected, app.state().focus), (2, DiffPane::List));
    app.handle_mouse(mouse(MouseEventKind::ScrollDown, 10, 17));
    assert_eq!((app.state().groups.selected, app.state().focus), (3, DiffPane::List));
    app.handle_mouse(mouse(MouseEventKind::ScrollUp, 60, 17));
    assert_eq!((app.state().groups.selected, app.state().focus), (3, DiffPane::List), "the details scroll");
    app.handle_mouse(mouse(click, 60, 17));
    assert_eq!(app.state().focus, DiffPane::Details);
    // A click on the border of B's timeline chooses B without moving its T.
    let at_b = app.state().at_b_ns;
    app.handle_mouse(mouse(click, 0, 9));
    assert_eq!(
        (app.state().side, app.state().at_b_ns, app.state().focus),
        (Side::B, at_b, DiffPane::TimelineB)
    );
}

#[test]
fn sort_filter_and_grouping() {
    let (_t, mut app) = two_versions(Theme::colour());
    let mut term = terminal(80, 24);
    press(&mut app, &mut term, &[key(KeyCode::Char('s')), key(KeyCode::Char('s'))]);
    assert_eq!(app.state().sort, DiffSort::BytesB);
    let by_b: Vec<u64> = listed(&app).iter().map(|r| r.3).collect();
    assert!(by_b.windows(2).all(|w| w[0] >= w[1]), "{by_b:?}");
    insta::assert_snapshot!("diff_sorted_by_b", term.backend());

    let mut keys = vec![key(KeyCode::Char('/'))];
    keys.extend(typed("0x1c"));
    press(&mut app, &mut term, &keys);
    insta::assert_snapshot!("diff_filter_typing", term.backend());
    press(&mut app, &mut term, &[key(KeyCode::Enter)]);
    assert_eq!(listed(&app), [row("server+0x1c00", DiffStatus::Grew, 640, 1280)]);

    press(&mut app, &mut term, &[key(KeyCode::Esc), key(KeyCode::Char('g'))]);
    assert_eq!(app.state().by, DiffBy::Function);
    // Every stack of the main thread runs through main: it is one function group.
    let main = listed(&app).into_iter().find(|r| r.0 == "server+0x1200").expect("main's group");
    assert_eq!((main.2, main.3), (3000 + 40960 + 640, 40960 + 1024 + 1280));
    insta::assert_snapshot!("diff_by_function", term.backend());
}

#[test]
fn details_follow_the_chosen_side() {
    let (_t, mut app) = two_versions(Theme::colour());
    let mut term = terminal(100, 30);
    // The fixed group has no stack in B: the details show A's even with side B chosen.
    press(&mut app, &mut term, &[key(KeyCode::Char('b'))]);
    let text = screen_text(&term);
    assert!(text.contains("stack in A (none in B)"), "{text}");
    // The new group is only in B.
    press(&mut app, &mut term, &[key(KeyCode::Down)]);
    let text = screen_text(&term);
    assert!(text.contains("stack in B") && text.contains("server+0x1a00"), "{text}");
    insta::assert_snapshot!("diff_new_group_details", term.backend());
}

#[test]
fn two_moments_of_one_trace() {
    let t = traces();
    let comparison = Comparison::one_trace(t.a.clone());
    let source = Arc::new(ComparisonSource::new(comparison));
    let warmup = source.resolve_when(Side::A, "mark:warmup").expect("the mark");
    let end = source.resolve_when(Side::B, "end").expect("the end");
    let mut app = DiffApp::at(
        source,
        DiffMoment { at_a_ns: warmup, at_b_ns: end, by: DiffBy::Stack, what: Selection::Outstanding },
        Theme::colour(),
    );
    let mut term = terminal(100, 30);
    draw(&mut app, &mut term);
    // At the mark: two of the three 0x1600 blocks; none of the five 0x1c00 blocks yet.
    let statuses: Vec<(String, DiffStatus)> = listed(&app).into_iter().map(|r| (r.0, r.1)).collect();
    assert!(statuses.contains(&("server+0x1600".to_string(), DiffStatus::Grew)), "{statuses:?}");
    assert!(statuses.contains(&("server+0x1c00".to_string(), DiffStatus::New)), "{statuses:?}");
    insta::assert_snapshot!("diff_one_trace_warmup_to_end", term.backend());
}

#[test]
fn help_lists_the_diff_keys() {
    let (_t, mut app) = two_versions(Theme::colour());
    let mut term = terminal(80, 24);
    press(&mut app, &mut term, &[key(KeyCode::Char('?'))]);
    let text = screen_text(&term);
    for binding in leakview_tui::keys::DIFF_KEYS {
        assert!(text.contains(binding.description), "{} missing from the help:\n{text}", binding.description);
    }
    insta::assert_snapshot!("diff_help_80x24", term.backend());
    press(&mut app, &mut term, &[key(KeyCode::Char('q'))]);
    assert!(app.should_quit());
}

#[test]
fn without_colour_the_statuses_still_read() {
    let (_t, mut app) = two_versions(Theme::monochrome());
    let mut term = terminal(80, 24);
    draw(&mut app, &mut term);
    let buffer = term.backend().buffer();
    assert!(
        buffer.content.iter().all(|c| c.fg == Color::Reset && c.bg == Color::Reset),
        "a colour was drawn"
    );
    let text = screen_text(&term);
    for marker in ["- fixed", "+ new", "↑ grew", "↓ shrank", "= same", "▶ A"] {
        assert!(text.contains(marker), "{marker} missing:\n{text}");
    }
}

#[test]
fn background_diffs_arrive_and_match_the_moment() {
    let (_t, app) = two_versions(Theme::colour());
    let mut app = app.in_background();
    let mut term = terminal(80, 24);
    // Several steps queue up; the browser answers each key at once and the diff catches up.
    press(&mut app, &mut term, &[key(KeyCode::Home), key(KeyCode::Char('m')), key(KeyCode::Right)]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while app.busy() {
        assert!(Instant::now() < deadline, "the background diff never arrived");
        app.poll();
        std::thread::sleep(Duration::from_millis(5));
    }
    draw(&mut app, &mut term);
    assert_eq!(app.table().moment, app.state().moment());
    assert_eq!(app.state().at_a_ns, 2_050_000_000);
    assert!(!screen_text(&term).contains("updating"));
}

#[test]
fn w_compares_every_allocation_then_the_temporary_ones() {
    let (t, mut app) = two_versions(Theme::colour());
    let mut term = terminal(100, 30);
    let w = key(KeyCode::Char('w'));
    press(&mut app, &mut term, &[w]);
    assert_eq!(app.table().moment.what, Selection::Allocated);
    // Version 2 frees the three 1000-byte buffers version 1 leaked, but allocates them all the
    // same: fixed among the outstanding blocks, the same among the allocated ones.
    let rows = listed(&app);
    assert!(rows.contains(&row("server+0x1600", DiffStatus::Same, 3000, 3000)), "{rows:?}");
    // The cache allocates 4 KiB every 100 ms until the end: 99 blocks in 10 s, 79 in 8 s.
    assert!(rows.contains(&row("server+0x1800", DiffStatus::Shrank, 99 * 4096, 79 * 4096)), "{rows:?}");
    // Every group and the totals as the analyzer's diff of allocated blocks has them.
    let comparison = Comparison::new(t.a.clone(), t.b.clone());
    let expected = comparison.diff_selected(10 * S, 8 * S, DiffBy::Stack, Selection::Allocated, &NoProgress);
    assert_eq!(rows.len(), expected.groups.len());
    for g in &expected.groups {
        assert!(
            rows.iter().any(|r| (r.1, r.2, r.3) == (g.status, g.bytes_a, g.bytes_b)),
            "{g:?} in {rows:?}"
        );
    }
    let screen = screen_text(&term);
    assert!(screen.contains("groups of allocated blocks"), "{screen}");
    let totals = format!(
        "allocated {} → {}",
        leakview_tui::format::bytes(expected.totals_a.bytes),
        leakview_tui::format::bytes(expected.totals_b.bytes)
    );
    assert!(screen.contains(&totals), "{totals} in {screen}");
    // Each side's timeline charts its bytes allocated so far, up to its trace's total.
    for analysis in [&t.a, &t.b] {
        let all = analysis.select(analysis.duration_ns(), &AllocWindow::all(), Selection::Allocated);
        let total = format!("{} allocated in all ▼", leakview_tui::format::bytes(all.totals().bytes));
        assert!(screen.contains(&total), "{total} in {screen}");
    }
    press(&mut app, &mut term, &[w]);
    assert_eq!(app.table().moment.what, Selection::Temporary);
    assert!(screen_text(&term).contains("of temporary blocks"));
    press(&mut app, &mut term, &[w]);
    assert_eq!(app.table().moment.what, Selection::Outstanding);
    assert!(listed(&app).contains(&row("server+0x1600", DiffStatus::Fixed, 3000, 0)));
}

#[test]
fn stack_rows_of_one_allocation_wrapper_are_told_apart_by_their_callers() {
    // The wrapper `server+0x1600` called from three places, everything outstanding at the end.
    let (_dir, analysis) = loaded(write_wrapper_trace);
    let end = analysis.duration_ns();
    let source = Arc::new(ComparisonSource::new(Comparison::one_trace(Arc::new(analysis))));
    let moment = DiffMoment { at_a_ns: 0, at_b_ns: end, by: DiffBy::Stack, what: Selection::Outstanding };
    let app = DiffApp::at(source, moment, Theme::colour());
    let mut labels: Vec<(String, u64)> = listed(&app).into_iter().map(|r| (r.0, r.3)).collect();
    labels.sort();
    assert_eq!(
        labels,
        [
            ("server+0x1600 ← server+0x1400".to_string(), 200),
            ("server+0x1600 ← … ← server+0x1300".to_string(), 600),
            ("server+0x1600 ← … ← server+0x1310".to_string(), 300),
            ("server+0x1700".to_string(), 400),
        ]
    );
}
