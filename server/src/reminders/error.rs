//! Why a reminder sweep failed. A leaf, mapped to HTTP once in `error.rs` (a sweep has no client: it is
//! logged); it imports only the store's and the records' errors, which are leaves.

use crate::{db::error::StoreError, records::error::RecordsError};

#[derive(Debug, thiserror::Error)]
pub enum ReminderError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Putting a deadline reminder into the assigned officers' handheld indexes failed.
    #[error(transparent)]
    Records(#[from] RecordsError),
}
