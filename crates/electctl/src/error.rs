//! What can go wrong, each kind with its exit status, and how electctl
//! says it.

use std::io::Write as _;

/// Writes `electctl: MESSAGE` on a line of standard error. A reader that
/// went away (`electctl watch 2>&1 | head -2`) is no failure of ours: what
/// it does not take is dropped, never a panic.
pub fn warn(message: impl std::fmt::Display) {
    let _ = writeln!(std::io::stderr().lock(), "electctl: {message}");
}

/// Why a command did not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input: a URL that is not one, an unreadable token file. Exit 2,
    /// as clap's own usage errors.
    #[error("{0}")]
    Usage(String),
    /// A node refused, or cannot do it: the sentence says what to do. Exit 1.
    #[error("{0}")]
    Refused(String),
    /// A node did not answer (or its answer broke off). Exit 3.
    #[error("no answer from {url}: {reason}")]
    NoAnswer { url: String, reason: String },
    /// What was waited for did not happen in time. Exit 3.
    #[error("{0}")]
    TimedOut(String),
    /// Standard output cannot be written. Exit 1; a reader that went away
    /// (`electctl watch | head -1`) is no failure, and exits 0.
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
}

impl Error {
    /// The process's exit status for this error.
    pub fn exit_status(&self) -> u8 {
        match self {
            Error::Output(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
            Error::Refused(_) | Error::Output(_) => 1,
            Error::Usage(_) => 2,
            Error::NoAnswer { .. } | Error::TimedOut(_) => 3,
        }
    }

    /// A request to `url` that got no (whole) answer: the innermost cause,
    /// which says why ("Connection refused", "operation timed out").
    pub fn no_answer(url: &str, err: &reqwest::Error) -> Error {
        if err.is_timeout() {
            return Error::no_answer_in_time(url);
        }
        let mut cause: &dyn std::error::Error = err;
        while let Some(inner) = cause.source() {
            cause = inner;
        }
        Error::NoAnswer {
            url: url.to_owned(),
            reason: cause.to_string(),
        }
    }

    /// A request to `url` that was not answered within its bound.
    pub fn no_answer_in_time(url: &str) -> Error {
        Error::NoAnswer {
            url: url.to_owned(),
            reason: "no answer in time".to_owned(),
        }
    }
}
