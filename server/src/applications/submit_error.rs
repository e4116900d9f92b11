//! Why a submission was refused: the application's own rules, or the automatic review it runs (whose
//! `ReviewError` wraps `ApplicationError`, so that enum cannot also wrap it). A leaf beside both, mapped
//! to HTTP in `error.rs` with the codes and sentences clients already see.

use crate::{applications::error::ApplicationError, db::error::StoreError, review::error::ReviewError};

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error(transparent)]
    Application(#[from] ApplicationError),
    /// The district's automatic review refused or failed.
    #[error(transparent)]
    Review(#[from] ReviewError),
    #[error(transparent)]
    Store(#[from] StoreError),
}
