//! Whole-screen snapshots of the browser after scripted key sequences, on an in-memory trace.
//! Snapshots live in `tests/snapshots/`; a difference fails the test (review and accept new
//! ones with `INSTA_UPDATE=always` or `cargo insta review`).

mod common;

use common::*;
use ratatui::crossterm::event::KeyModifiers;
use ratatui::crossterm::event::{KeyCode, MouseButton, MouseEvent, MouseEventKind};

#[test]
fn opens_at_the_end_of_the_trace() {
    let mut app = app(server_source());
    let mut term = terminal(80, 24);
    draw(&mut app, &mut term);
    insta::assert_snapshot!("open_80x24", term.backend());
}

#[test]
fn peak_shows_the_burst() {
    let mut app = app(server_source());
    let mut term = terminal(80, 24);
    press(&mut app, &mut term, &[key(KeyCode::Char('p'))]);
    insta::assert_snapshot!("peak_80x24", term.backend());
}

#[test]
fn stepping_and_marks_move_t() {
    let mut app = app(server_source());
    let mut term = terminal(80, 24);
    press(
        &mut app,
        &mut term,
        &[
            key(KeyCode::Home),
            key(KeyCode::Char('m')),
            key(KeyCode::Right),
            shift(KeyCode::Right),
            key(KeyCode::Char(']')),
        ],
    );
    insta::assert_snapshot!("mark_plus_21_steps", term.backend());
}

#[test]
fn grouping_by_function_then_size() {
    let mut app = app(server_source());
    let mut term = terminal(80, 24);
    press(&mut app, &mut term, &[key(KeyCode::Char('p')), key(KeyCode::Char('g'))]);
    insta::assert_snapshot!("peak_by_function", term.backend());
    press(&mut app, &mut term, &[key(KeyCode::Char('g'))]);
    insta::assert_snapshot!("peak_by_size", term.backend());
}

#[test]
fn grouping_by_thread_then_opening_the_worker() {
    let mut app = app(server_source());
    let mut term = terminal(80, 24);
    let g = key(KeyCode::Char('g'));
    press(&mut app, &mut term, &[g, g, g]);
    insta::assert_snapshot!("end_by_thread", term.backend());
    press(&mut app, &mut term, &[key(KeyCode::Down), key(KeyCode::Enter)]);
    insta::assert_snapshot!("end_worker_open", term.backend());
}

#[test]
fn sorting_by_blocks_then_newest() {
    let mut app = app(server_source());
    let mut term = terminal(80, 24);
    press(&mut app, &mut term, &[key(KeyCode::Char('p')), key(KeyCode::Char('s'))]);
    insta::assert_snapshot!("peak_sorted_by_blocks", term.backend());
    press(&mut app, &mut term, &[key(KeyCode::Char('s'))]);
    insta::assert_snapshot!("peak_sorted_by_newest", term.backend());
}

#[test]
fn sorting_by_suspicion_ranks_stack_groups_by_verdict_with_evidence_in_the_details() {
    let mut app = app(server_source());
    let mut term = terminal(80, 24);
    let sort = key(KeyCode::Char('s'));
    press(&mut app, &mut term, &[sort, sort, sort]);
    insta::assert_snapshot!("end_sorted_by_suspicion", term.backend());
    // Wide enough for the verdicts' full names; the second row's details.
    let mut term = terminal(140, 40);
    press(&mut app, &mut term, &[key(KeyCode::Down)]);
    insta::assert_snapshot!("end_sorted_by_suspicion_140x40", term.backend());
}

#[test]
fn suspicion_keeps_bytes_order_for_other_groupings_and_says_so() {
    let mut app = app(server_source());
    let mut term = terminal(100, 30);
    let sort = key(KeyCode::Char('s'));
    press(&mut app, &mut term, &[key(KeyCode::Char('g')), sort, sort, sort]);
    let screen = format!("{}", term.backend());
    assert!(screen.contains("by function, bytes↓  suspicion: stacks only"), "{screen}");
    assert!(screen.contains("bytes↓ blocks share  function"), "{screen}");
    assert!(!screen.contains("verdict"), "no verdicts on function groups: {screen}");
}

#[test]
fn filter_while_typing_and_after() {
    let mut app = app(server_source());
    let mut term = terminal(80, 24);
    let mut keys = vec![key(KeyCode::Char('p')), key(KeyCode::Char('/'))];
    keys.extend(typed("http"));
    press(&mut app, &mut term, &keys);
    insta::assert_snapshot!("filter_typing", term.backend());
    press(&mut app, &mut term, &[key(KeyCode::Enter)]);
    insta::assert_snapshot!("filter_applied", term.backend());
}

#[test]
fn drill_into_a_group_and_back() {
    let mut app = app(server_source());
    let mut term = terminal(80, 24);
    press(
        &mut app,
        &mut term,
        &[key(KeyCode::Down), key(KeyCode::Enter), key(KeyCode::Char('j')), key(KeyCode::Char('j'))],
    );
    insta::assert_snapshot!("open_group_allocations", term.backend());
    press(&mut app, &mut term, &[key(KeyCode::Esc)]);
    insta::assert_snapshot!("back_from_group", term.backend());
}

#[test]
fn help_overlay_lists_the_key_table() {
    let mut app = app(server_source());
    let mut term = terminal(80, 24);
    press(&mut app, &mut term, &[key(KeyCode::Char('?'))]);
    insta::assert_snapshot!("help_80x24", term.backend());
}

#[test]
fn details_pane_scrolls_when_focused() {
    let mut app = app(server_source());
    let mut term = terminal(80, 24);
    press(&mut app, &mut term, &[key(KeyCode::Tab), key(KeyCode::PageDown)]);
    insta::assert_snapshot!("details_scrolled", term.backend());
}

#[test]
fn large_terminal_layout() {
    let mut app = app(server_source());
    let mut term = terminal(140, 40);
    press(&mut app, &mut term, &[key(KeyCode::Char('p'))]);
    insta::assert_snapshot!("peak_140x40", term.backend());
}

#[test]
fn click_on_the_timeline_moves_t_and_wheel_steps() {
    let mut app = app(server_source());
    let mut term = terminal(80, 24);
    draw(&mut app, &mut term);
    // The timeline's inner area starts at column 1 of row 2 and is 78 columns wide.
    let click = |column| MouseEvent {
        kind: MouseEventKind::Down(MouseButton::Left),
        column,
        row: 4,
        modifiers: KeyModifiers::NONE,
    };
    app.handle_mouse(click(40));
    draw(&mut app, &mut term);
    let clicked = app.state().at_ns;
    assert!(clicked > 4_800_000_000 && clicked < 5_200_000_000, "middle of the trace: {clicked}");
    insta::assert_snapshot!("clicked_middle", term.backend());
    app.handle_mouse(MouseEvent {
        kind: MouseEventKind::ScrollUp,
        column: 40,
        row: 4,
        modifiers: KeyModifiers::NONE,
    });
    assert!(app.state().at_ns > clicked, "the wheel over the timeline moves T forward");
}

#[test]
fn monochrome_theme_draws_no_colour_but_keeps_the_selection_visible() {
    let mut app = leakview_tui::App::new(server_source(), leakview_tui::Theme::monochrome());
    let mut term = terminal(80, 24);
    draw(&mut app, &mut term);
    let buffer = term.backend().buffer();
    let reset = ratatui::style::Color::Reset;
    assert!(
        buffer.content().iter().all(|cell| cell.fg == reset && cell.bg == reset),
        "NO_COLOR: no colours at all"
    );
    let reversed = buffer
        .content()
        .iter()
        .filter(|cell| cell.modifier.contains(ratatui::style::Modifier::REVERSED))
        .count();
    assert!(reversed >= 40, "the selected row is drawn reversed ({reversed} cells)");
}

#[test]
fn a_re_ranked_list_shows_its_top_until_a_row_is_chosen_then_follows_it() {
    let mut app = app(server_source());
    let mut term = terminal(80, 24);
    press(&mut app, &mut term, &[key(KeyCode::Char('p'))]);
    let top_by_bytes = app.state().selected_key;
    // Sorted by blocks at the peak, another group leads: it is selected, at the top.
    press(&mut app, &mut term, &[key(KeyCode::Char('s'))]);
    assert_eq!((app.state().groups.selected, app.state().groups.offset), (0, 0), "the top of the list");
    assert_ne!(app.state().selected_key, top_by_bytes, "the list re-ranked");
    // A chosen row is followed wherever its group goes, as T moves or the sort changes.
    press(&mut app, &mut term, &[key(KeyCode::Down), key(KeyCode::Down)]);
    let chosen = app.state().selected_key;
    press(&mut app, &mut term, &[key(KeyCode::End), key(KeyCode::Char('s'))]);
    assert_eq!(app.state().selected_key, chosen);
    assert_ne!(app.state().groups.selected, 2, "it moved in the list");
}

#[test]
fn a_long_templated_name_is_made_short_in_the_list_and_shown_whole_in_the_stack() {
    let mut app = app(templated_source());
    let mut term = terminal(80, 24);
    draw(&mut app, &mut term);
    insta::assert_snapshot!("templated_80x24", term.backend());
    // Wide enough, the short name is whole: no return type, templates and parameters elided.
    let mut wide = terminal(140, 40);
    draw(&mut app, &mut wide);
    let screen = format!("{}", wide.backend());
    assert!(screen.contains("  app::storage::Registry<…>::build_index<…>(…)│"), "{screen}");
    // The stack of one allocation, scrolled to its end: the whole name, then the 40 callers.
    press(&mut app, &mut term, &[key(KeyCode::Enter), key(KeyCode::Tab)]);
    press(&mut app, &mut term, &[key(KeyCode::PageDown); 12]);
    insta::assert_snapshot!("templated_stack_end_80x24", term.backend());
}

#[test]
fn a_narrow_screen_drops_a_threads_tid_rather_than_cutting_its_name_short() {
    use leakview_tui::MemorySource;
    use leakview_tui::source::{FrameInfo, MemoryAllocation};
    let frames = vec![FrameInfo {
        function: "pool_task".to_string(),
        location: Some("pool.c:7".to_string()),
        module: Some("app".to_string()),
        inlined: false,
    }];
    let allocation = MemoryAllocation {
        address: 0x1000,
        size: 288,
        alloc_ns: 744_100,
        free_ns: None,
        tid: 24679,
        stack: 0,
    };
    let names = std::collections::HashMap::from([(24679, "threadpool-work".to_string())]);
    let source = MemorySource::new("./app", 1_000_000, vec![frames], vec![allocation], vec![], names);
    let mut app = app(source);
    let mut term = terminal(80, 24);
    let g = key(KeyCode::Char('g'));
    press(&mut app, &mut term, &[g, g, g, key(KeyCode::Enter)]);
    let screen = format!("{}", term.backend());
    // Where `name (tid)` does not fit, the tid goes first, then the end of the name.
    assert!(screen.contains("┌ threadpool-work · 1 block at 1.00ms ─"), "{screen}");
    assert!(screen.contains("288 B at 744.1us by threadpool-wo…│"), "{screen}");
    assert!(screen.contains("│0x1000            288 B  744.1us  threadp…││"), "{screen}");
}

/// The "server" with its resident set size sampled every 100 ms from 250 ms on (and at the
/// end): 160 KiB of code and stacks plus the live heap, taken from the allocator in 64 KiB
/// pieces (and given back when the heap shrinks).
fn server_source_with_rss() -> leakview_tui::MemorySource {
    use leakview_tui::source::{DataSource, ResidentSample, Selection};
    const MS: u64 = 1_000_000;
    const PIECE: u64 = 64 << 10;
    let source = server_source();
    let moments = (0..98).map(|i| 250 * MS + i * 100 * MS).chain([10_000 * MS]);
    let samples = moments
        .map(|at_ns| {
            let live = source.totals_at(at_ns, Selection::Outstanding).bytes;
            ResidentSample { at_ns, bytes: (160 << 10) + live.div_ceil(PIECE) * PIECE }
        })
        .collect();
    source.with_resident(samples)
}

/// The cells of the timeline's chart (inside its border, between the marker and axis rows)
/// drawn in `colour`.
fn chart_cells_in(
    term: &ratatui::Terminal<ratatui::backend::TestBackend>,
    colour: ratatui::style::Color,
) -> usize {
    let buffer = term.backend().buffer();
    let chart = ratatui::layout::Rect { x: 1, y: 3, width: buffer.area.width - 2, height: 4 };
    chart.positions().filter(|&at| buffer[at].fg == colour).count()
}

#[test]
fn the_resident_set_size_is_drawn_over_the_heap_and_told_at_t() {
    let mut app = app(server_source_with_rss());
    let mut term = terminal(80, 24);
    // At first the RSS at T is told, and the heap charted alone, on its own scale.
    press(&mut app, &mut term, &[key(KeyCode::Char('p'))]);
    let screen = format!("{}", term.backend());
    assert!(screen.contains("┌ Live heap · RSS at T 480 KiB ─"), "{screen}");
    assert_eq!(chart_cells_in(&term, ratatui::style::Color::Magenta), 0, "{screen}");
    // `r` draws the RSS line over it.
    press(&mut app, &mut term, &[key(KeyCode::Char('r'))]);
    insta::assert_snapshot!("peak_with_rss_80x24", term.backend());
    let screen = format!("{}", term.backend());
    // At the peak (5.999s) the last sample is at 5.950s: 160 KiB + 320 KiB of heap pieces.
    assert!(screen.contains("┌ Live heap · ⠒ RSS at T 480 KiB ─"), "{screen}");
    assert!(chart_cells_in(&term, ratatui::style::Color::Magenta) > 60, "the RSS line: {screen}");
    assert!(chart_cells_in(&term, ratatui::style::Color::Cyan) > 60, "and the heap under it: {screen}");
    // Before the first sample there is no RSS to tell, nor a line at the start.
    press(&mut app, &mut term, &[key(KeyCode::Home)]);
    let screen = format!("{}", term.backend());
    assert!(screen.contains("┌ Live heap · ⠒ RSS at T: none sampled yet ─"), "{screen}");
    let first_chart_column = (3..7).map(|y| term.backend().buffer()[(1, y)].fg);
    assert!(first_chart_column.into_iter().all(|fg| fg != ratatui::style::Color::Magenta));
    // `r` again: the line is gone.
    press(&mut app, &mut term, &[key(KeyCode::End), key(KeyCode::Char('r'))]);
    let screen = format!("{}", term.backend());
    assert!(screen.contains("┌ Live heap · RSS at T "), "{screen}");
    assert_eq!(chart_cells_in(&term, ratatui::style::Color::Magenta), 0, "{screen}");
}

#[test]
fn the_resident_set_size_reads_whole_at_100_columns_and_when_counting_bytes_so_far() {
    let mut app = app(server_source_with_rss());
    let mut term = terminal(100, 30);
    press(&mut app, &mut term, &[key(KeyCode::Char('p')), key(KeyCode::Char('m')), key(KeyCode::Char('r'))]);
    let screen = format!("{}", term.backend());
    assert!(screen.contains("┌ Live heap · ⠒ RSS at T 480 KiB ─"), "{screen}");
    assert!(
        screen.contains(" T 6.000s 60% mark:load-end  live 221 KiB · 103 blocks  by stack, bytes↓"),
        "{screen}"
    );
    // Bytes so far only grow: no RSS line over them, but the RSS at T is still told.
    press(&mut app, &mut term, &[key(KeyCode::Char('w'))]);
    let screen = format!("{}", term.backend());
    assert!(screen.contains("┌ Bytes allocated so far · RSS at T 480 KiB ─"), "{screen}");
    assert_eq!(chart_cells_in(&term, ratatui::style::Color::Magenta), 0, "{screen}");
}
