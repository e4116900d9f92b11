//! Why a selection could not be made or read. A leaf, mapped to HTTP in `error.rs`.

use crate::db::error::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum SelectionError {
    #[error("the applicant enterprise was not found")]
    NoEnterprise,
    /// The OS gave no random seed, or a stored decision does not parse: nothing a client can fix.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}
