//! Why a notice cannot be printed. A leaf, mapped to HTTP once in `error.rs` (the codes and sentences
//! clients already see).

use crate::{
    applications::error::ApplicationError,
    bookings::error::BookingError,
    db::error::{EngineError, StoreError},
    domain::{ApplicationState, BookingState},
    instructions::error::InstructionError,
};

#[derive(Debug, thiserror::Error)]
pub enum NoticeError {
    /// What a notice speaks of is not there: "the application", "the customs unit", ….
    #[error("{0} was not found")]
    NotFound(&'static str),
    /// The instruction (by id) was cancelled.
    #[error("instruction {0} was cancelled; it has no notice")]
    Void(i64),
    #[error("booking {id} is {state}; only a confirmed booking has a confirmation")]
    NotConfirmed { id: i64, state: BookingState },
    /// The application (by id) has no approved non-conforming result.
    #[error("application {0} has no approved non-conforming result to dispose of")]
    NoDisposal(i64),
    #[error("application {id} is {state}; it was not released")]
    NotReleased { id: i64, state: ApplicationState },
    #[error(transparent)]
    Instruction(#[from] InstructionError),
    #[error(transparent)]
    Application(#[from] ApplicationError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Damaged data (a released application without a number): a logged 500.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
    #[error(transparent)]
    Booking(#[from] BookingError),
}

impl From<EngineError> for NoticeError {
    fn from(e: EngineError) -> Self {
        NoticeError::Store(e.into())
    }
}
