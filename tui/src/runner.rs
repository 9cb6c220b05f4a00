//! The terminal runner: raw mode, alternate screen and mouse capture on the way in; the terminal
//! restored on the way out and on panic. The trace loads on a background thread while a
//! progress screen keeps drawing and answering keys.

use std::io::{self, IsTerminal, Stdout};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{
    self, DisableMouseCapture, EnableMouseCapture, Event, KeyCode, KeyModifiers,
};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};

use crate::app::App;
use crate::error::TuiError;
use crate::source::DataSource;
use crate::view::loading::{self, LoadProgress};
use crate::view::theme::Theme;

/// How often the loading screen redraws.
const LOADING_FRAME: Duration = Duration::from_millis(80);

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
    if !io::stdout().is_terminal() || !io::stdin().is_terminal() {
        return Err(TuiError::NotATerminal);
    }
    let theme = Theme::from_env();
    let (_guard, mut terminal) = enter_terminal()?;

    let (tx, rx) = mpsc::channel::<Loading<S>>();
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
    let source = loop {
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
                Loading::Done(Ok(source)) => loaded = Some(source),
                Loading::Done(Err(message)) => return Err(TuiError::Load(message)),
            }
        }
        if let Some(source) = loaded {
            break source;
        }
    };

    let mut app = App::new(source, theme);
    while !app.should_quit() {
        terminal.draw(|f| app.draw(f))?;
        // Handle everything already waiting before drawing again, so holding a key down never
        // queues up redraws.
        let mut next = Some(event::read()?);
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
    }
    Ok(())
}
