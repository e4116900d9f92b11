//! What a module's store answers when it cannot: storage knows nothing of HTTP. `error.rs` turns it into
//! the one error shape once (404, 409, or a logged 500), so stores and the domain code above them never
//! build an `ApiError` for a missing or duplicate row.
//!
//! A leaf: it imports nothing of the crate, so `error.rs` can name it without an import circle through
//! `db` (which answers `ApiError`).

/// The storage engine's own error, under a name the error mapping may use without naming the engine.
pub use rusqlite::Error as EngineError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No row; the text names what was looked for ("the device").
    #[error("{0} was not found")]
    NotFound(&'static str),
    /// A row with that key already exists.
    #[error("{0} already exists")]
    Conflict(&'static str),
    #[error(transparent)]
    Other(#[from] EngineError),
}

impl StoreError {
    /// `e` as a [`StoreError::Conflict`] when it is a uniqueness or primary-key violation.
    pub fn unique(e: EngineError, what: &'static str) -> StoreError {
        use rusqlite::ffi::{SQLITE_CONSTRAINT_PRIMARYKEY, SQLITE_CONSTRAINT_UNIQUE};
        match &e {
            EngineError::SqliteFailure(f, _)
                if matches!(f.extended_code, SQLITE_CONSTRAINT_PRIMARYKEY | SQLITE_CONSTRAINT_UNIQUE) =>
            {
                StoreError::Conflict(what)
            }
            _ => StoreError::Other(e),
        }
    }

    /// `e` as a [`StoreError::Conflict`] when it breaks any constraint (unique, check, foreign key).
    pub fn constraint(e: EngineError, what: &'static str) -> StoreError {
        match &e {
            EngineError::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                StoreError::Conflict(what)
            }
            _ => StoreError::Other(e),
        }
    }
}
