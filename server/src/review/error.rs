//! Why a review step was refused. A leaf, mapped to HTTP in `error.rs` (the codes and sentences clients
//! already see).

use crate::{
    applications::error::ApplicationError,
    db::error::{EngineError, StoreError},
    domain::{ApplicationState, NotAllowed},
    instructions::error::InstructionError,
    selection::error::SelectionError,
};

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("returning, suspending or failing a document check needs an opinion")]
    MissingOpinion,
    /// The action (as clients spell it, e.g. `approve`) does not apply in the application's state.
    #[error("cannot {action} an application that is {from}")]
    WrongState { action: &'static str, from: ApplicationState },
    /// Auto-review is switched by the unit whose queue it is, never for another unit.
    #[error("a unit switches auto-review for its own queue only, not for another unit's")]
    NotOwnUnit,
    #[error(transparent)]
    NotAllowed(#[from] NotAllowed),
    #[error(transparent)]
    Application(#[from] ApplicationError),
    #[error(transparent)]
    Instruction(#[from] InstructionError),
    #[error(transparent)]
    Selection(#[from] SelectionError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The unit subtree is still read through the engine's error (`db::scope`).
impl From<EngineError> for ReviewError {
    fn from(e: EngineError) -> Self {
        ReviewError::Store(e.into())
    }
}
