//! Why a records step was refused or failed. A leaf, mapped to HTTP once in `error.rs`.

use fieldcheck_sync::schema::SchemaViolation;

use crate::{
    db::error::{EngineError, StoreError},
    instructions::error::InstructionError,
};

#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    /// The instruction has no record document: none is made before officers are assigned.
    #[error("the record (it is created when officers are assigned) was not found")]
    NoRecord,
    /// A server edit (a review, a resolution, a schedule) would break the record schema; the rule's
    /// name is the code.
    #[error(transparent)]
    Schema(SchemaViolation),
    /// A resolution for an instruction whose record does not exist yet.
    #[error("the record has no conflicts: no officer has written yet")]
    NoRecordYet,
    /// A resolution for a path with no open conflict; `open` lists the paths that have one.
    #[error("{path} has no open conflict")]
    NoSuchConflict { path: String, open: Vec<String> },
    /// A resolution whose value does not fit the conflicted field; `expected` says what does.
    #[error("{path} takes {expected}")]
    UnfitValue { path: String, expected: &'static str },
    /// A stored document that does not load or read, a row its foreign keys promise that is missing, no
    /// randomness: nothing a client can fix, a logged 500.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
    /// The instruction is not there, or not the principal's to see.
    #[error(transparent)]
    Instruction(#[from] InstructionError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl RecordsError {
    /// An internal failure, `context` saying where.
    pub fn internal(context: &str, e: impl std::fmt::Display) -> Self {
        RecordsError::Internal(anyhow::anyhow!("{context}: {e}"))
    }
}

impl From<EngineError> for RecordsError {
    fn from(e: EngineError) -> Self {
        RecordsError::Store(e.into())
    }
}
