//! What a module's store answers when it cannot: storage knows nothing of HTTP. `error.rs` turns it into
//! the one error shape once (404, 409, or a logged 500), so stores and the domain code above them never
//! build an `ApiError` for a missing or duplicate row.
//!
//! A leaf: it imports nothing of the crate. [`Db`](super::Db)'s reads and writes answer whatever error
//! their closure answers, as long as it can hold a `StoreError` (the database's own failures).

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
    /// The database itself failed around the caller's work: the group's commit, the writer thread, or a
    /// reader task. Nothing of the write is stored; the text says what failed (logged, a 500).
    #[error("{0}")]
    Failed(String),
}

impl StoreError {
    /// The database failed (rather than a row being absent or already there): nothing a client did.
    pub fn is_failure(&self) -> bool {
        matches!(self, StoreError::Other(_) | StoreError::Failed(_))
    }

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
