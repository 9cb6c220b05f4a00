//! Errors of the browser.

/// Why the browser could not run.
#[derive(Debug, thiserror::Error)]
pub enum TuiError {
    #[error("the browser needs a terminal (standard input and output must be one); try `leakview report`")]
    NotATerminal,
    #[error("terminal: {0}")]
    Terminal(#[from] std::io::Error),
    #[error("{0}")]
    Load(String),
}
