//! Why a registration step was refused. A leaf, mapped to HTTP once in `error.rs` (the codes and sentences
//! clients already see).

use crate::{
    auth::password::strength::PasswordError,
    db::error::{EngineError, StoreError},
    domain::RegistrationState,
    orgs::error::OrgsError,
};

#[derive(Debug, thiserror::Error)]
pub enum OnboardingError {
    /// A text that must say something is blank: `field` is its place in the body, `name` how the
    /// sentence calls it.
    #[error("`{name}` must not be empty")]
    Empty { field: &'static str, name: &'static str },
    #[error("`contact.phone` takes digits, spaces and `+-()`, with at least 5 digits")]
    InvalidPhone,
    #[error("`contact.email` must look like name@example.com")]
    InvalidEmail,
    /// The legal person's name does not make a display name (the parser's sentence).
    #[error("{0}")]
    InvalidLegalPerson(String),
    /// `per_hour` registrations came from the client's address in the last hour; the next is accepted in
    /// `retry_after_secs`.
    #[error("{per_hour} registrations an hour are accepted from one address; try again later")]
    TooManyRegistrations { per_hour: i64, retry_after_secs: u64 },
    /// "the registration", "your registration".
    #[error("{0} was not found")]
    NotFound(&'static str),
    #[error("the registration is {0}; only a returned registration is amended")]
    NotReturned(RegistrationState),
    #[error("the registration is {0}; only a pending one is decided")]
    NotPending(RegistrationState),
    #[error("no unit has the code {0}")]
    UnknownUnit(String),
    #[error("another enterprise has this customs code or unified social credit code")]
    DuplicateEnterprise,
    #[error("say what the enterprise must correct")]
    MissingOpinion,
    #[error(transparent)]
    Orgs(#[from] OrgsError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Password(#[from] PasswordError),
}

impl From<EngineError> for OnboardingError {
    fn from(e: EngineError) -> Self {
        OnboardingError::Store(e.into())
    }
}
