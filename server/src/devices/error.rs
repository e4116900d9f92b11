//! Why a device step was refused. A leaf, mapped to HTTP once in `error.rs` (the codes and sentences
//! clients already see; a device a session may not use is a 401, as at login).

use crate::db::error::{EngineError, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("`name` must have 1 to 100 characters")]
    InvalidName,
    #[error("{0} was not found")]
    NotFound(&'static str),
    /// Not registered, or registered to another officer (the two are not told apart).
    #[error("this device is not registered to you; register it first")]
    NotYours,
    #[error("this device is frozen")]
    Frozen,
    #[error("this device was reported lost")]
    Lost,
    /// A status change away from `lost`.
    #[error("a lost device stays lost; register the replacement handheld as a new device")]
    StaysLost,
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No randomness for a new actor id: a logged 500.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<EngineError> for DeviceError {
    fn from(e: EngineError) -> Self {
        DeviceError::Store(e.into())
    }
}
