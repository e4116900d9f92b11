//! Why a delegation step was refused. A leaf: `error.rs` maps each case to the one error shape (the
//! statuses and codes clients already see), and this file imports nothing that imports `error.rs`.

use crate::{
    db::error::StoreError,
    domain::{NotAllowed, time::PeriodError},
};

#[derive(Debug, thiserror::Error)]
pub enum DelegationError {
    #[error(transparent)]
    NotAllowed(#[from] NotAllowed),
    #[error(transparent)]
    Period(#[from] PeriodError),
    #[error("name at least one scope: applications, bookings, certificates")]
    MissingScopes,
    #[error("an enterprise cannot delegate to itself")]
    SelfDelegation,
    /// Not there, or not the caller's to act on (told apart from nothing, so ids reveal nothing).
    #[error("the delegation was not found")]
    NotFound,
    #[error("this delegation is already revoked")]
    AlreadyRevoked,
    #[error("this delegation is revoked or outside its validity")]
    Inactive,
    /// Scopes asked for that the delegation does not give, by name.
    #[error("the delegation does not include {}", .0.join(", "))]
    ScopeNotDelegated(Vec<&'static str>),
    #[error("the user is not one of your enterprise's operators")]
    UnknownOperator,
    #[error(transparent)]
    Store(#[from] StoreError),
}
