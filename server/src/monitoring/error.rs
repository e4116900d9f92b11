//! Why a monitoring request was refused. A leaf, mapped to HTTP once in `error.rs` (the codes, sentences
//! and details clients already see); it imports only the domain, which does not import `error.rs`.

use crate::domain::NotAllowed;

#[derive(Debug, thiserror::Error)]
pub enum MonitoringError {
    /// Not a supervisor or an administrator, or one without a customs unit (a 403).
    #[error(transparent)]
    NotAllowed(#[from] NotAllowed),
    /// `field` (`from` or `to`) is no RFC 3339 time; `message` says why.
    #[error("{message}")]
    InvalidTime { field: &'static str, message: String },
    #[error("`from` must be before `to`")]
    BackwardsPeriod,
    /// A period longer than one query may cover (`max_days`).
    #[error("at most {max_days} days at once")]
    PeriodTooLong { max_days: i64 },
    /// The stream tokens are all live: the client waits `retry_after_secs` (a 503 with `Retry-After`).
    #[error("too many stream tokens are live; use the one you have or try again in a minute")]
    TooManyStreamTokens { retry_after_secs: u64 },
    /// No randomness for a stream token: nothing a client can fix, a logged 500.
    #[error("random token: {0}")]
    Randomness(getrandom::Error),
}
