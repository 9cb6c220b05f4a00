//! Whole-screen snapshots of the browser on a trace written with the real trace writer and
//! loaded through the analyzer (`AnalysisSource`), after scripted key sequences.

mod common;

use common::trace::{loaded, write_server_trace};
use common::*;
use leakview_analyzer::TreeOrder;
use leakview_tui::source::{DataSource, GroupQuery, Grouping, Selection};
use leakview_tui::{AnalysisSource, App};
use ratatui::crossterm::event::KeyCode;

fn server() -> (tempfile::TempDir, App<AnalysisSource>) {
    let (dir, analysis) = loaded(write_server_trace);
    (dir, app(AnalysisSource::new(analysis)))
}

#[test]
fn source_answers_match_the_scenario() {
    let (_dir, app) = server();
    let source = app.source();
    let summary = source.summary();
    assert_eq!(summary.title, "server --port 8080");
    assert_eq!(summary.duration_ns, 10_000_000_000);
    assert_eq!(
        summary.marks.iter().map(|m| m.label.as_str()).collect::<Vec<_>>(),
        ["warmup-done", "load-start", "load-end"]
    );
    // At the end: 100 leaked KiB, the 40 cache blocks of the last 2 s, 5 worker blocks.
    let end = source.totals_at(summary.duration_ns, Selection::Outstanding);
    assert_eq!(end.blocks, 100 + 40 + 5);
    assert_eq!(end.bytes, 100 * 1024 + 40 * 4096 + 5 * 256);
    let groups = source.groups(&GroupQuery { at_ns: summary.duration_ns, ..GroupQuery::default() });
    assert_eq!(groups.len(), 3);
    assert_eq!(groups[0].label, "server+0x1800", "the cache holds the most bytes at the end");
    let at_peak =
        GroupQuery { at_ns: summary.peak_at_ns, grouping: Grouping::Function, ..GroupQuery::default() };
    let functions = source.groups(&at_peak);
    assert!(functions.iter().any(|g| g.label == "libhttp.so+0x2a00"), "{functions:?}");
    let details = source
        .group_details(&GroupQuery { at_ns: summary.duration_ns, ..GroupQuery::default() }, groups[1].key);
    let details = details.expect("the leak has details");
    assert_eq!(details.totals.blocks, 100);
    // Its history: 1 KiB more every 100 ms, the k-th point at (k + 1) × 100 ms.
    let leaked: Vec<u64> = (1..=100).map(|k| k * 1024).collect();
    assert_eq!((details.history.as_slice(), details.history_at), (leaked.as_slice(), 99));
    let cache = source
        .group_details(&GroupQuery { at_ns: 5_000_000_000, ..GroupQuery::default() }, groups[0].key)
        .expect("the cache has details");
    // 4 KiB every 50 ms, each freed 2 s later: 40 blocks from 2 s on (39 just before each free).
    assert_eq!((cache.history[9], cache.history[19], cache.history[99]), (20 * 4096, 40 * 4096, 40 * 4096));
    assert_eq!(cache.history_at, 49);
    assert_eq!(details.frames.len(), 3);
    assert_eq!(details.threads.first().and_then(|t| t.name.as_deref()), Some("main"));
}

#[test]
fn opens_at_the_end() {
    let (_dir, mut app) = server();
    let mut term = terminal(80, 24);
    draw(&mut app, &mut term);
    insta::assert_snapshot!("trace_open_80x24", term.backend());
}

#[test]
fn peak_then_function_grouping_then_filter() {
    let (_dir, mut app) = server();
    let mut term = terminal(80, 24);
    press(&mut app, &mut term, &[key(KeyCode::Char('p'))]);
    insta::assert_snapshot!("trace_peak", term.backend());
    press(&mut app, &mut term, &[key(KeyCode::Char('g'))]);
    insta::assert_snapshot!("trace_peak_by_function", term.backend());
    let mut keys = vec![key(KeyCode::Char('/'))];
    keys.extend(typed("libhttp"));
    keys.push(key(KeyCode::Enter));
    press(&mut app, &mut term, &keys);
    insta::assert_snapshot!("trace_peak_filtered", term.backend());
}

#[test]
fn marks_and_drill_down() {
    let (_dir, mut app) = server();
    let mut term = terminal(100, 30);
    press(
        &mut app,
        &mut term,
        &[
            key(KeyCode::Home),
            key(KeyCode::Char('m')),
            key(KeyCode::Char('m')),
            key(KeyCode::Enter),
            key(KeyCode::Down),
        ],
    );
    insta::assert_snapshot!("trace_load_start_open", term.backend());
}

#[test]
fn sorted_by_suspicion_with_the_analyzers_verdicts() {
    let (_dir, mut app) = server();
    let mut term = terminal(100, 30);
    let sort = key(KeyCode::Char('s'));
    press(&mut app, &mut term, &[sort, sort, sort]);
    let end = app.source().summary().duration_ns;
    let groups = app.source().groups(&GroupQuery { at_ns: end, ..GroupQuery::default() });
    let verdicts = app.suspicion().at(end).expect("judged at the end");
    assert!(
        groups.iter().all(|g| verdicts.of(g.key).is_some()),
        "every stack group has a verdict: {groups:?}"
    );
    insta::assert_snapshot!("trace_sorted_by_suspicion", term.backend());
}

fn threads() -> (tempfile::TempDir, App<AnalysisSource>) {
    let (dir, analysis) = loaded(common::trace::write_threads_trace);
    (dir, app(AnalysisSource::new(analysis)))
}

/// The lines of the screen, without the quotes the backend's display puts around them.
fn screen_lines(term: &ratatui::Terminal<ratatui::backend::TestBackend>) -> Vec<String> {
    let buffer = term.backend().buffer();
    let width = usize::from(buffer.area.width);
    let symbols: Vec<&str> = buffer.content().iter().map(|c| c.symbol()).collect();
    symbols.chunks(width).map(|row| row.concat()).collect()
}

/// The rows of the list pane (the body's left pane, below the timeline), trimmed.
fn list_rows(term: &ratatui::Terminal<ratatui::backend::TestBackend>) -> Vec<String> {
    screen_lines(term)
        .iter()
        // Past the timeline's pane (its title says what it charts) to the list's.
        .skip_while(|line| !line.starts_with('┌'))
        .skip(1)
        .skip_while(|line| !line.starts_with('┌'))
        .skip(1)
        .take_while(|line| !line.starts_with('└'))
        .filter_map(|line| line.strip_prefix('│'))
        .filter_map(|line| line.split_once('│').map(|(list, _)| list.trim().to_string()))
        .filter(|row| !row.is_empty())
        .collect()
}

#[test]
fn grouped_by_thread_then_a_thread_opened() {
    let (_dir, mut app) = threads();
    let mut term = terminal(100, 30);
    let g = key(KeyCode::Char('g'));
    press(&mut app, &mut term, &[g, g, g]);
    assert_eq!(app.state().grouping, Grouping::Thread);
    insta::assert_snapshot!("threads_by_thread", term.backend());
    assert_eq!(
        list_rows(&term),
        [
            "bytes↓ blocks share  thread",
            "6.5 KiB      8   56%  worker-0 (301)",
            "4.1 KiB      6   35%  main (300)",
            "1.1 KiB      3    9%  thread 302",
        ]
    );
    // worker-0's blocks come from two stacks: its own buffers, then the shared helper's.
    let j = key(KeyCode::Char('j'));
    press(&mut app, &mut term, &[key(KeyCode::Enter), j, j, j]);
    insta::assert_snapshot!("threads_worker_open", term.backend());
    let rows = list_rows(&term);
    assert_eq!(rows.len(), 1 + 8, "the header and worker-0's 8 blocks: {rows:#?}");
    assert!(rows[1..].iter().all(|r| r.ends_with("  worker-0 (301)")), "{rows:#?}");
    let screen = screen_lines(&term).join("\n");
    assert!(screen.contains("100 B at 550.00ms by worker-0 (301)"), "{screen}");
    assert!(screen.contains(" 0 server+0x1500"), "the shared helper's stack: {screen}");
}

#[test]
fn thread_groups_follow_t_the_filter_and_the_sort() {
    let (_dir, mut app) = threads();
    let mut term = terminal(100, 30);
    let g = key(KeyCode::Char('g'));
    press(&mut app, &mut term, &[g, g, g, key(KeyCode::Char('p'))]);
    assert_eq!(
        list_rows(&term),
        [
            "bytes↓ blocks share  thread",
            "44.1 KiB     16   88%  main (300)",
            "6.0 KiB      3   12%  worker-0 (301)",
        ],
        "at the peak main holds its cache; thread 302 has not allocated yet"
    );
    let mut keys = vec![key(KeyCode::End), key(KeyCode::Char('/'))];
    keys.extend(typed("0x1500"));
    keys.push(key(KeyCode::Enter));
    press(&mut app, &mut term, &keys);
    assert_eq!(
        list_rows(&term),
        [
            "bytes↓ blocks share  thread",
            "500 B      5    4%  worker-0 (301)",
            "200 B      2    2%  main (300)",
            "64 B      1   <1%  thread 302",
        ],
        "only the shared helper's blocks, on each thread that allocated them"
    );
    let s = key(KeyCode::Char('s'));
    press(&mut app, &mut term, &[key(KeyCode::Esc), s, s]);
    assert_eq!(
        list_rows(&term),
        [
            "bytes blocks share  thread (newest first)",
            "1.1 KiB      3    9%  thread 302",
            "6.5 KiB      8   56%  worker-0 (301)",
            "4.1 KiB      6   35%  main (300)",
        ]
    );
    press(&mut app, &mut term, &[s]);
    let screen = screen_lines(&term).join("\n");
    assert!(screen.contains("by thread, bytes↓  suspicion: stacks only"), "{screen}");
    assert_eq!(list_rows(&term)[1], "6.5 KiB      8   56%  worker-0 (301)", "bytes order");
}

#[test]
fn the_w_key_counts_every_allocation_then_the_temporary_ones() {
    let (_dir, mut app) = server();
    let mut term = terminal(100, 30);
    let w = key(KeyCode::Char('w'));
    press(&mut app, &mut term, &[w]);
    assert_eq!(app.state().what, Selection::Allocated);
    // Every block allocated by the end, freed or not: the cache's 199, the leak's 100, the 200
    // header buffers, the worker's 50.
    assert_eq!(
        list_rows(&term),
        [
            "bytes↓ blocks share  top frame",
            "796 KiB    199   83%  server+0x1800",
            "100 KiB    100   10%  server+0x1600",
            "46.9 KiB    200    5%  libhttp.so+0x2a00",
            "12.5 KiB     50    1%  server+0x2200",
        ]
    );
    let screen = screen_lines(&term).join("\n");
    assert!(screen.contains("allocated 955 KiB · 549 blocks"), "{screen}");
    assert!(screen.contains(" At 10.000s · allocated · by stack · 4 groups "), "{screen}");
    // The timeline charts the bytes allocated so far, up to the same total at the end.
    assert!(screen.contains("┌ Bytes allocated so far ─"), "{screen}");
    assert!(screen.contains(" 955 KiB allocated in all ▼│"), "{screen}");
    assert!(!screen.contains("▼ peak"), "{screen}");
    // Temporary: freed before their thread allocated again. Only the worker frees each buffer
    // before its next one (45 of 50; every tenth is kept); the main thread's blocks all
    // outlive its next allocation.
    press(&mut app, &mut term, &[w]);
    assert_eq!(app.state().what, Selection::Temporary);
    insta::assert_snapshot!("trace_temporary", term.backend());
    assert_eq!(list_rows(&term), ["bytes↓ blocks share  top frame", "11.2 KiB     45  100%  server+0x2200"]);
    // Before the worker's first free (at 157 ms) nothing is temporary yet.
    press(&mut app, &mut term, &[key(KeyCode::Home)]);
    let screen = screen_lines(&term).join("\n");
    assert!(screen.contains("nothing temporary by T"), "{screen}");
    // The worker's group opened lists its temporary blocks; `w` again keeps it open, on the
    // blocks it still holds.
    press(&mut app, &mut term, &[key(KeyCode::End), key(KeyCode::Enter)]);
    let rows = list_rows(&term);
    assert_eq!(rows.len(), 1 + 14, "the header and a page of the 45: {rows:#?}");
    assert!(
        rows[9].contains(" 1.607s ") && rows[10].contains(" 2.007s "),
        "the kept 1.807s one is not: {rows:#?}"
    );
    assert!(screen_lines(&term).join("\n").contains("server+0x2200 · temporary · 45 blocks by 10.000s"));
    press(&mut app, &mut term, &[w]);
    assert_eq!(app.state().what, Selection::Outstanding);
    let screen = screen_lines(&term).join("\n");
    assert!(screen.contains("server+0x2200 · 5 blocks at 10.000s"), "the 5 kept buffers: {screen}");
    assert!(screen.contains("live 261 KiB · 145 blocks"), "{screen}");
    assert!(screen.contains("┌ Live heap ─") && screen.contains("▼ peak 268 KiB at 5.999s"), "{screen}");
    // Leak verdicts judge outstanding blocks only: sorted by suspicion, allocated blocks keep
    // bytes order and nobody judges them.
    let sort = key(KeyCode::Char('s'));
    press(&mut app, &mut term, &[key(KeyCode::Esc), w, sort, sort, sort]);
    let screen = screen_lines(&term).join("\n");
    assert!(screen.contains("by stack, bytes↓  suspicion: outstanding only"), "{screen}");
    assert_eq!(list_rows(&term)[1], "796 KiB    199   83%  server+0x1800");
    assert_eq!(app.suspicion().times_asked(), 0);
}

/// The list pane's rows by its width (the tree's branch lines use the border's `│`).
fn tree_rows(term: &ratatui::Terminal<ratatui::backend::TestBackend>) -> Vec<String> {
    let lines = screen_lines(term);
    let mut panes = lines.iter().enumerate().filter(|(_, l)| l.starts_with('┌'));
    let Some((top, border)) = panes.nth(1) else { return Vec::new() };
    let width = border.chars().position(|c| c == '┐').unwrap_or(0).saturating_sub(1);
    lines[top + 1..]
        .iter()
        .take_while(|l| !l.starts_with('└'))
        .map(|l| l.chars().skip(1).take(width).collect::<String>().trim().to_string())
        .filter(|row| !row.is_empty())
        .collect()
}

#[test]
fn t_draws_the_call_tree_of_the_stacks_at_t() {
    let (_dir, mut app) = server();
    let mut term = terminal(100, 30);
    press(&mut app, &mut term, &[key(KeyCode::Char('t'))]);
    assert_eq!(app.state().tree, Some(TreeOrder::TopDown));
    insta::assert_snapshot!("trace_call_tree", term.backend());
    // The cache's and the leak's stacks part at the frame they share; the worker's is its own root.
    assert_eq!(
        tree_rows(&term),
        [
            "bytes↓ blocks share  outermost frame first",
            "260 KiB    140  100%  ├─ server+0x1200",
            "260 KiB    140  100%  │  server+0x1400",
            "160 KiB     40   61%  │  ├─ server+0x1800",
            "100 KiB    100   38%  │  └─ server+0x1600",
            "1.2 KiB      5   <1%  └─ server+0x2000",
            "1.2 KiB      5   <1%     server+0x2200",
        ]
    );
    let screen = screen_lines(&term).join("\n");
    assert!(screen.contains(" At 10.000s · call tree · 3 stacks "), "{screen}");
    assert!(screen.contains("live 261 KiB · 145 blocks  call tree, bytes↓"), "{screen}");
    assert!(screen.contains("260 KiB · 140 blocks below this frame"), "{screen}");
    // A click on a line selects it (rows start on screen row 13: title, timeline, border, header).
    app.handle_mouse(ratatui::crossterm::event::MouseEvent {
        kind: ratatui::crossterm::event::MouseEventKind::Down(ratatui::crossterm::event::MouseButton::Left),
        column: 10,
        row: 16,
        modifiers: ratatui::crossterm::event::KeyModifiers::NONE,
    });
    common::draw(&mut app, &mut term);
    assert_eq!(app.state().tree_cursor.selected, 3);
    assert!(screen_lines(&term).join("\n").contains("100 KiB · 100 blocks below this frame"));
    // Every allocation, ranked by blocks: the 200 header buffers' stack comes first.
    let (w, s) = (key(KeyCode::Char('w')), key(KeyCode::Char('s')));
    press(&mut app, &mut term, &[w, s, key(KeyCode::Down), key(KeyCode::Down)]);
    let rows = tree_rows(&term);
    assert_eq!(rows[0], "bytes blocks↓ share  outermost frame first", "{rows:#?}");
    assert_eq!(rows.len(), 1 + 7, "{rows:#?}");
    assert!(rows[1].ends_with("├─ server+0x1200") && rows[1].contains(" 499 "), "{rows:#?}");
    let screen = screen_lines(&term).join("\n");
    assert!(screen.contains(" At 10.000s · allocated · call tree · 4 stacks "), "{screen}");
    assert!(screen.contains("call tree, blocks↓"), "{screen}");
    // Nothing is counted at the start; Esc goes back to the groups.
    press(&mut app, &mut term, &[key(KeyCode::Home)]);
    assert!(screen_lines(&term).join("\n").contains("nothing allocated by T"));
    press(&mut app, &mut term, &[key(KeyCode::End), key(KeyCode::Esc)]);
    assert_eq!(app.state().tree, None);
    assert_eq!(list_rows(&term)[0], "bytes blocks↓ share  top frame");
}

#[test]
fn enter_on_a_tree_line_lists_the_blocks_it_counts() {
    let (_dir, mut app) = server();
    let mut term = terminal(100, 30);
    let down = key(KeyCode::Down);
    // The line where the stacks part (server+0x1400: the cache's 40 blocks and the leak's 100).
    press(&mut app, &mut term, &[key(KeyCode::Char('t')), down, key(KeyCode::Enter)]);
    insta::assert_snapshot!("trace_call_tree_line_open", term.backend());
    let screen = screen_lines(&term).join("\n");
    assert!(screen.contains("┌ server+0x1400 · 140 blocks at 10.000s ─"), "{screen}");
    // Biggest first: the cache's 4 KiB blocks, then the leak's 1 KiB ones.
    let rows = list_rows(&term);
    assert!(rows[1].contains("4.0 KiB") && rows.last().is_some_and(|r| r.contains("4.0 KiB")), "{rows:#?}");
    press(&mut app, &mut term, &[key(KeyCode::End)]);
    let open = app.state().open.as_ref().map(|o| o.label.as_str());
    assert_eq!(open, Some("server+0x1400"));
    // Scrolled to the last block: one of the leak's, its stack in the details pane.
    press(&mut app, &mut term, &[key(KeyCode::PageDown); 20]);
    let rows = list_rows(&term);
    assert!(rows.last().is_some_and(|r| r.contains("1.0 KiB")), "{rows:#?}");
    assert!(screen_lines(&term).join("\n").contains("server+0x1600"));
    // Esc goes back to the tree, the line still selected; the worker's line holds its 5 blocks.
    press(&mut app, &mut term, &[key(KeyCode::Esc)]);
    assert_eq!((app.state().open.is_none(), app.state().tree_cursor.selected), (true, 1));
    press(&mut app, &mut term, &[down, down, down, key(KeyCode::Enter)]);
    let screen = screen_lines(&term).join("\n");
    assert!(screen.contains("┌ server+0x2000 · 5 blocks at 10.000s ─"), "{screen}");
    // At the start nothing of it is outstanding.
    press(&mut app, &mut term, &[key(KeyCode::Home)]);
    assert!(screen_lines(&term).join("\n").contains("nothing of this group is outstanding"));
}

#[test]
fn t_twice_draws_the_call_tree_bottom_up() {
    let (_dir, mut app) = server();
    let mut term = terminal(100, 30);
    let t = key(KeyCode::Char('t'));
    press(&mut app, &mut term, &[t, t]);
    assert_eq!(app.state().tree, Some(TreeOrder::BottomUp));
    // Each allocating frame first, its callers below it: the leak's and the cache's frames are
    // roots of their own, their shared callers under each.
    assert_eq!(
        tree_rows(&term),
        [
            "bytes↓ blocks share  allocating frame first",
            "160 KiB     40   61%  ├─ server+0x1800",
            "160 KiB     40   61%  │  server+0x1400",
            "160 KiB     40   61%  │  server+0x1200",
            "100 KiB    100   38%  ├─ server+0x1600",
            "100 KiB    100   38%  │  server+0x1400",
            "100 KiB    100   38%  │  server+0x1200",
            "1.2 KiB      5   <1%  └─ server+0x2200",
            "1.2 KiB      5   <1%     server+0x2000",
        ]
    );
    let screen = screen_lines(&term).join("\n");
    assert!(screen.contains(" At 10.000s · call tree bottom up · 3 stacks "), "{screen}");
    assert!(screen.contains("live 261 KiB · 145 blocks  call tree bottom up, bytes↓"), "{screen}");
    assert!(screen.contains("160 KiB · 40 blocks on this path"), "{screen}");
    // A third `t` goes back to the groups.
    press(&mut app, &mut term, &[t]);
    assert_eq!(app.state().tree, None);
    assert_eq!(list_rows(&term)[0], "bytes↓ blocks share  top frame");
}

#[test]
fn a_trace_with_resident_set_size_samples_charts_them_and_tells_the_rss_at_t() {
    let (_dir, analysis) = loaded(common::trace::write_resident_trace);
    let mut app = app(AnalysisSource::new(analysis));
    let samples = app.source().resident().expect("the trace has RSS samples").samples().to_vec();
    assert_eq!(samples.len(), 11, "{samples:?}");
    assert_eq!((samples[0].at_ns, samples[0].bytes), (50_000_000, (1 << 20) + (16 << 10)));
    assert_eq!((samples[10].at_ns, samples[10].bytes), (1_000_000_000, 2 << 20));
    let mut term = terminal(80, 24);
    draw(&mut app, &mut term);
    let screen = format!("{}", term.backend());
    assert!(screen.contains("┌ Live heap · RSS at T 2.0 MiB ─"), "at the end: {screen}");
    press(&mut app, &mut term, &[key(KeyCode::Char('r'))]);
    let screen = format!("{}", term.backend());
    assert!(screen.contains("┌ Live heap · ⠒ RSS at T 2.0 MiB ─"), "charted: {screen}");
    press(&mut app, &mut term, &[key(KeyCode::Home)]);
    let screen = format!("{}", term.backend());
    assert!(screen.contains("┌ Live heap · ⠒ RSS at T: none sampled yet ─"), "{screen}");
}

#[test]
fn a_trace_without_resident_set_size_samples_has_no_rss() {
    let (_dir, app) = server();
    assert!(app.source().resident().is_none());
}
