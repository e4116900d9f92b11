//! Why an instruction step was refused. A leaf, mapped to HTTP in `error.rs`.

use crate::{
    db::error::StoreError,
    delegations::error::DelegationError,
    domain::{InstructionState, NotAllowed},
};

#[derive(Debug, thiserror::Error)]
pub enum InstructionError {
    /// Not there, or not the caller's to see or supervise (the two are not told apart).
    #[error("the instruction was not found")]
    NotFound,
    /// An instruction is created for a submitted (numbered) application only.
    #[error("not submitted")]
    NotNumbered,
    #[error("application {application} has instruction {instruction} already ({state})")]
    Exists { application: i64, instruction: i64, state: InstructionState },
    #[error("assign 1 to {0} officers")]
    OfficerCount(usize),
    #[error("user {0} is not an active field officer of your unit")]
    NotAnOfficerHere(i64),
    /// A list filter names a unit or site code nobody has (`field` is `site` or `unit`).
    #[error("no customs unit or site has the code {code:?}")]
    UnknownUnit { field: &'static str, code: String },
    /// A list filter names an officer by a username nobody has.
    #[error("no user is called {0:?}")]
    UnknownOfficer(String),
    #[error(transparent)]
    NotAllowed(#[from] NotAllowed),
    #[error(transparent)]
    Delegation(#[from] DelegationError),
    #[error(transparent)]
    Store(#[from] StoreError),
}
