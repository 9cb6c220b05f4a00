//! The browser on a trace still being recorded: the title says so, and a newer load swapped in
//! keeps what the user looks at (T at the end follows the end, T elsewhere stays; an open group
//! stays open while it is listed, an open line of the call tree while any of its stacks is).

mod common;

use common::*;
use leakview_tui::{App, DataSource, MemorySource};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::KeyCode;

const SECOND: u64 = 1_000_000_000;

#[test]
fn the_title_says_the_trace_is_being_recorded() {
    let mut app = app(server_source_until(5 * SECOND));
    app.set_recording(true);
    let mut term = terminal(80, 24);
    draw(&mut app, &mut term);
    insta::assert_snapshot!("recording_80x24", term.backend());
}

#[test]
fn t_at_the_end_follows_the_end_of_each_newer_load() {
    let mut app = app(server_source_until(5 * SECOND));
    assert_eq!(app.state().at_ns, 5 * SECOND);
    app.replace_source(server_source_until(7 * SECOND));
    assert_eq!(app.state().at_ns, 7 * SECOND);
    let mut term = terminal(80, 24);
    draw(&mut app, &mut term);
    let screen = format!("{:?}", term.backend());
    assert!(screen.contains("At 7.000s"), "{screen}");
    assert!(!screen.contains("recording"), "{screen}");
}

#[test]
fn t_elsewhere_stays_where_it_was() {
    let mut app = app(server_source_until(5 * SECOND));
    let mut term = terminal(80, 24);
    press(&mut app, &mut term, &[key(KeyCode::Home), key(KeyCode::Char('m'))]);
    let at = app.state().at_ns;
    assert_eq!(at, 2 * SECOND, "the mark warmup-done");
    app.replace_source(server_source());
    assert_eq!(app.state().at_ns, at);
    assert_eq!(app.source().summary().duration_ns, 10 * SECOND);
}

/// The browser on a load taken at 5 s, with the group of the function `function` open (found
/// through the filter).
fn opened_at_5s(function: &str) -> (App<MemorySource>, Terminal<TestBackend>) {
    let mut app = app(server_source_until(5 * SECOND));
    let mut term = terminal(80, 24);
    let mut keys = vec![key(KeyCode::Char('/'))];
    keys.extend(typed(function));
    keys.extend([key(KeyCode::Enter), key(KeyCode::Enter)]);
    press(&mut app, &mut term, &keys);
    assert!(app.state().open.is_some(), "the {function} group is open");
    (app, term)
}

#[test]
fn an_open_group_stays_open_while_it_is_listed() {
    let (mut app, mut term) = opened_at_5s("leak_buffer");
    app.replace_source(server_source());
    draw(&mut app, &mut term);
    assert!(app.state().open.is_some());
    let screen = format!("{:?}", term.backend());
    assert!(screen.contains("100 blocks at 10.000s"), "{screen}");
}

#[test]
fn an_open_group_closes_once_it_is_gone() {
    // The header buffers (parse_header) are outstanding at 5 s and all freed at 6 s.
    let (mut app, mut term) = opened_at_5s("parse_header");
    let open = app.state().open.clone().expect("open");
    app.replace_source(server_source());
    assert_eq!(app.state().open, None);
    assert_eq!(app.state().focus, open.focus_before);
    draw(&mut app, &mut term);
    let screen = format!("{:?}", term.backend());
    assert!(screen.contains("At 10.000s · by stack · 0 groups"), "{screen}");
}

/// The browser on a load taken at 5 s, with the call tree's line of the function `function`
/// open (the first line whose text starts with it).
fn tree_line_opened_at_5s(function: &str) -> (App<MemorySource>, Terminal<TestBackend>) {
    let mut app = app(server_source_until(5 * SECOND));
    let mut term = terminal(80, 24);
    press(&mut app, &mut term, &[key(KeyCode::Char('t'))]);
    for _ in 0..20 {
        let selected = app.state().tree_cursor.selected;
        press(&mut app, &mut term, &[key(KeyCode::Enter)]);
        if app.state().open.as_ref().is_some_and(|o| o.label.starts_with(function)) {
            return (app, term);
        }
        press(&mut app, &mut term, &[key(KeyCode::Esc), key(KeyCode::Down)]);
        assert_ne!(app.state().tree_cursor.selected, selected, "no line of {function}");
    }
    panic!("no line of {function}");
}

#[test]
fn an_open_tree_line_stays_open_while_its_stacks_are_listed() {
    let (mut app, mut term) = tree_line_opened_at_5s("leak_buffer");
    app.replace_source(server_source());
    draw(&mut app, &mut term);
    assert!(app.state().open.is_some());
    let screen = format!("{:?}", term.backend());
    assert!(screen.contains("leak_buffer") && screen.contains("100 blocks at 10.000s"), "{screen}");
}

#[test]
fn an_open_tree_line_closes_once_its_stacks_are_gone() {
    // The header buffers (parse_header) are outstanding at 5 s and all freed at 6 s.
    let (mut app, mut term) = tree_line_opened_at_5s("parse_header");
    app.replace_source(server_source());
    assert_eq!(app.state().open, None);
    draw(&mut app, &mut term);
    let screen = format!("{:?}", term.backend());
    assert!(screen.contains("At 10.000s · call tree"), "{screen}");
}
