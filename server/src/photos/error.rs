//! Why a photo step was refused, and why a received file did not become a photo. A leaf, mapped to HTTP
//! once in `error.rs` (the codes and sentences clients already see).

use super::inspect::Refusal;
use crate::{
    db::error::{EngineError, StoreError},
    domain::{InstructionState, NotAllowed},
};

#[derive(Debug, thiserror::Error)]
pub enum PhotoError {
    #[error("a photo or document is named by its SHA-256: 64 hex digits")]
    InvalidSha256,
    /// The caller is no officer assigned to the instruction an upload names (told as "not found", the
    /// field named, so an officer learns nothing about instructions that are not theirs).
    #[error("the instruction was not found")]
    NotAssigned,
    /// "the instruction", "the photo", "the upload".
    #[error("{0} was not found")]
    NotFound(&'static str),
    #[error("the instruction is {0}; it takes no more evidence")]
    InstructionClosed(InstructionState),
    #[error(transparent)]
    NotAllowed(#[from] NotAllowed),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Damaged state (a photo row gone while being recorded): a logged 500.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<EngineError> for PhotoError {
    fn from(e: EngineError) -> Self {
        PhotoError::Store(e.into())
    }
}

/// Why a received file did not become a photo.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("the body hashes to {actual}, not to the name {expected}")]
    HashMismatch { expected: String, actual: String },
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
