//! Why a workflow step was refused. A leaf, mapped to HTTP once in `error.rs`.

use crate::{
    applications::error::ApplicationError,
    bookings::error::BookingError,
    db::error::StoreError,
    domain::{ApplicationState, InstructionState},
    instructions::{error::InstructionError, machine::IllegalTransition},
    records::error::RecordsError,
    review::error::ReviewError,
};

#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    /// The instruction's state does not allow the event (the state and the event go into the details).
    #[error(transparent)]
    Illegal(#[from] IllegalTransition),
    #[error("the instruction was not found")]
    InstructionNotFound,
    /// Not there, or not the caller's to review (the two are not told apart).
    #[error("the application was not found")]
    ApplicationNotFound,
    /// An approved or force-released instruction's decision sealed evidence; it is never revoked.
    #[error(
        "instruction {instruction} is {state}: its decision sealed the evidence and is never undone; correct it \
         with a new decision that references it"
    )]
    SealedDecision { instruction: i64, state: InstructionState },
    #[error(
        "instruction {instruction} is {state} already; only an approval whose instruction is still issued (not \
         booked, not assigned) can be revoked — cancel the instruction instead"
    )]
    ApprovalHasConsequences { instruction: i64, state: InstructionState },
    #[error(
        "application {application} is {state}; only an approval that sent the goods to on-site inspection can \
         be revoked"
    )]
    NotRevocable { application: i64, state: ApplicationState },
    /// The new deadline is not later than `current` (already formatted as RFC 3339).
    #[error("the new deadline must be later than the current one, {current}")]
    NotAnExtension { current: String },
    #[error("the record has no verdict; return it to the officers")]
    NoVerdict,
    /// A conflict cannot be resolved in a sealed record.
    #[error("the instruction is {0}; its record is sealed")]
    Sealed(InstructionState),
    #[error("your username cannot be written into a record")]
    UnusableUsername,
    #[error("the application is {0}; only goods under inspection or awaiting disposal can be force-released")]
    NotReleasable(ApplicationState),
    #[error("the application is {0}; only one awaiting disposal can be closed this way")]
    NoDisposalPending(ApplicationState),
    #[error(transparent)]
    Instruction(#[from] InstructionError),
    #[error(transparent)]
    Application(#[from] ApplicationError),
    #[error(transparent)]
    Booking(#[from] BookingError),
    #[error(transparent)]
    Review(#[from] ReviewError),
    #[error(transparent)]
    Records(#[from] RecordsError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A mandatory free-text field (a reason, an opinion) left blank: a 422 on `field` with `code`
/// (`missing_reason`, `missing_opinion`); `what` is what the text must say.
#[derive(Debug, thiserror::Error)]
#[error("say {what}")]
pub struct BlankText {
    pub field: &'static str,
    pub code: &'static str,
    pub what: &'static str,
}
