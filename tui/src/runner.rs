//! The terminal runner: raw mode, alternate screen and mouse capture on the way in; the terminal
//! restored on the way out and on panic. The trace (or traces) load on a background thread while
//! a progress screen keeps drawing and answering keys; then a [`Browser`] runs until it quits.

use std::io::{self, IsTerminal, Stdout};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{
    self, DisableMouseCapture, EnableMouseCapture, Event, KeyCode, KeyEvent, KeyModifiers, MouseEvent,
};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::{Frame, Terminal};

use crate::app::App;
use crate::diff_app::DiffApp;
use crate::error::TuiError;
use crate::source::DataSource;
use crate::view::loading::{self, LoadProgress};
use crate::view::theme::Theme;

/// How often the loading screen redraws.
const LOADING_FRAME: Duration = Duration::from_millis(80);
/// How often the runner looks for background work finished while a browser is busy.
const BUSY_POLL: Duration = Duration::from_millis(25);

/// What the runner drives: a screen that draws itself and answers keys and the mouse.
pub trait Browser {
    fn draw(&mut self, frame: &mut Frame<'_>);
    fn handle_key(&mut self, event: KeyEvent);
    fn handle_mouse(&mut self, event: MouseEvent);
    fn should_quit(&self) -> bool;
    /// Whether work is under way in the background; the runner then looks for it with
    /// [`Browser::poll`] while waiting for input.
    fn busy(&self) -> bool {
        false
    }
    /// Picks up finished background work; returns whether the screen needs drawing.
    fn poll(&mut self) -> bool {
        false
    }
}

impl<S: DataSource> Browser for App<S> {
    fn draw(&mut self, frame: &mut Frame<'_>) {
        App::draw(self, frame);
    }
    fn handle_key(&mut self, event: KeyEvent) {
        App::handle_key(self, event);
    }
    fn handle_mouse(&mut self, event: MouseEvent) {
        App::handle_mouse(self, event);
    }
    fn should_quit(&self) -> bool {
        App::should_quit(self)
    }
}

impl Browser for DiffApp {
    fn draw(&mut self, frame: &mut Frame<'_>) {
        DiffApp::draw(self, frame);
    }
    fn handle_key(&mut self, event: KeyEvent) {
        DiffApp::handle_key(self, event);
    }
    fn handle_mouse(&mut self, event: MouseEvent) {
        DiffApp::handle_mouse(self, event);
    }
    fn should_quit(&self) -> bool {
        DiffApp::should_quit(self)
    }
    fn busy(&self) -> bool {
        DiffApp::busy(self)
    }
    fn poll(&mut self) -> bool {
        DiffApp::poll(self)
    }
}

/// Reports loading progress to the loading screen; cheap to call often.
pub type ProgressFn<'a> = &'a (dyn Fn(LoadProgress) + Sync);

enum Loading<S> {
    Progress(LoadProgress),
    Done(Result<S, String>),
}

/// Puts the terminal back as it was. Safe to call more than once.
fn restore_terminal() {
    let _ = disable_raw_mode();
    let _ =
        execute!(io::stdout(), DisableMouseCapture, LeaveAlternateScreen, ratatui::crossterm::cursor::Show);
}

/// Restores the terminal when dropped, whether the browser returns or unwinds.
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

fn enter_terminal() -> Result<(TerminalGuard, Terminal<CrosstermBackend<Stdout>>), TuiError> {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        previous(info);
    }));
    enable_raw_mode()?;
    let guard = TerminalGuard;
    execute!(io::stdout(), EnterAlternateScreen, EnableMouseCapture)?;
    let mut terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
    terminal.hide_cursor()?;
    terminal.clear()?;
    Ok((guard, terminal))
}

fn is_abort(event: &Event) -> bool {
    match event {
        Event::Key(k) => {
            matches!(k.code, KeyCode::Char('q') | KeyCode::Esc)
                || (k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL))
        }
        _ => false,
    }
}

/// Loads a trace with `load` on a background thread (showing `label` and its progress), then
/// runs the browser on it until the user quits. Returns `Ok` after a quit, including a quit
/// while loading.
pub fn run<S, F>(label: &str, load: F) -> Result<(), TuiError>
where
    S: DataSource + Send + 'static,
    F: FnOnce(ProgressFn<'_>) -> Result<S, String> + Send + 'static,
{
    run_with(label, load, App::new)
}

/// Loads with `load` on a background thread (showing `label` and its progress), makes a browser
/// of what was loaded with `make` and runs it until the user quits. Returns `Ok` after a quit,
/// including a quit while loading.
pub fn run_with<T, B, F, M>(label: &str, load: F, make: M) -> Result<(), TuiError>
where
    T: Send + 'static,
    B: Browser,
    F: FnOnce(ProgressFn<'_>) -> Result<T, String> + Send + 'static,
    M: FnOnce(T, Theme) -> B,
{
    if !io::stdout().is_terminal() || !io::stdin().is_terminal() {
        return Err(TuiError::NotATerminal);
    }
    let theme = Theme::from_env();
    let (_guard, mut terminal) = enter_terminal()?;

    let (tx, rx) = mpsc::channel::<Loading<T>>();
    let progress_tx = tx.clone();
    thread::Builder::new().name("leakview-load".into()).spawn(move || {
        let report = move |p: LoadProgress| {
            let _ = progress_tx.send(Loading::Progress(p));
        };
        let result = load(&report);
        let _ = tx.send(Loading::Done(result));
    })?;

    let mut progress = LoadProgress::default();
    let mut tick = 0usize;
    let loaded = loop {
        terminal.draw(|f| loading::draw(f, label, &progress, tick, &theme))?;
        tick += 1;
        if event::poll(Duration::ZERO)? && is_abort(&event::read()?) {
            return Ok(());
        }
        let mut received = match rx.recv_timeout(LOADING_FRAME) {
            Ok(message) => vec![message],
            Err(RecvTimeoutError::Timeout) => vec![],
            Err(RecvTimeoutError::Disconnected) => {
                return Err(TuiError::Load("loading the trace failed unexpectedly".into()));
            }
        };
        // Take a whole burst of reports at once; only the latest progress is drawn.
        received.extend(rx.try_iter());
        let mut loaded = None;
        for message in received {
            match message {
                Loading::Progress(p) => progress = p,
                Loading::Done(Ok(value)) => loaded = Some(value),
                Loading::Done(Err(message)) => return Err(TuiError::Load(message)),
            }
        }
        if let Some(value) = loaded {
            break value;
        }
    };

    let mut app = make(loaded, theme);
    let mut redraw = true;
    while !app.should_quit() {
        if redraw {
            terminal.draw(|f| app.draw(f))?;
        }
        // Wait for input; while background work is under way, wake up now and then for it.
        let first = if !app.busy() || event::poll(BUSY_POLL)? { Some(event::read()?) } else { None };
        redraw = first.is_some();
        // Handle everything already waiting before drawing again, so holding a key down never
        // queues up redraws.
        let mut next = first;
        while let Some(ev) = next.take() {
            match ev {
                Event::Key(key) => app.handle_key(key),
                Event::Mouse(mouse) => app.handle_mouse(mouse),
                _ => {}
            }
            if app.should_quit() {
                break;
            }
            if event::poll(Duration::ZERO)? {
                next = Some(event::read()?);
            }
        }
        redraw |= app.poll();
    }
    Ok(())
}
