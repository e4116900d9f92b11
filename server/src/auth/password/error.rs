//! Why a password could not be hashed or checked now. A leaf (imports nothing of the crate), mapped to
//! HTTP once in `error.rs`: the 503 with `Retry-After` clients already see, or a logged 500.

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// The hashing queue is full: 503 `overloaded`, `Retry-After: retry_after_secs`.
    #[error("too many logins at once; try again in {retry_after_secs} s")]
    Overloaded { retry_after_secs: u64 },
    /// Argon2 parameters or memory, a stored hash that does not parse, a hashing task that died: a logged
    /// 500 (the client cannot act on it).
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// The blocking task a hash runs on panicked or was cancelled.
impl From<tokio::task::JoinError> for HashError {
    fn from(e: tokio::task::JoinError) -> Self {
        HashError::Internal(anyhow::Error::new(e).context("blocking task"))
    }
}
