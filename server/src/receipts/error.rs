//! Why receipts could not be listed. A leaf, mapped to HTTP once in `error.rs`; it imports only the
//! domain and the store's error.

use crate::{db::error::StoreError, domain::NotAllowed};

#[derive(Debug, thiserror::Error)]
pub enum ReceiptsError {
    /// Receipts are an enterprise's: a customs caller has none (a 403).
    #[error(transparent)]
    NotAllowed(#[from] NotAllowed),
    #[error(transparent)]
    Store(#[from] StoreError),
}
