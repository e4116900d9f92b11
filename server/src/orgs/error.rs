//! Why an organisation or account change was refused. A leaf, mapped to HTTP once in `error.rs`.

use crate::{
    db::error::{EngineError, StoreError},
    domain::{AccountStatus, time::PeriodError},
};

#[derive(Debug, thiserror::Error)]
pub enum OrgsError {
    /// Not there, or not the caller's to see (the two are not told apart); the text names what
    /// ("the unit", "the operator").
    #[error("{0} was not found")]
    NotFound(&'static str),
    #[error("`{field}` must have 1 to {max} characters")]
    InvalidText { field: &'static str, max: usize },
    #[error("a username has 3 to 64 characters: letters, digits, `-`, `_` or `.`")]
    InvalidUsername,
    #[error("`{0}` is not an IANA time zone")]
    UnknownTimezone(String),
    #[error("customs and site units need a `parent_code`")]
    MissingParent,
    /// `field` is `parent_code` or `unit_code`.
    #[error("no unit has the code {code}")]
    UnknownUnit { field: &'static str, code: String },
    #[error("a unit with the code {0} exists")]
    DuplicateUnit(String),
    #[error("an enterprise with the customs code {0} exists")]
    DuplicateEnterprise(String),
    #[error("an enterprise with this unified social credit code exists")]
    DuplicateCreditCode,
    #[error("enterprise roles need an `enterprise_code`")]
    MissingEnterprise,
    #[error("no enterprise has the customs code {0}")]
    UnknownEnterprise(String),
    #[error("customs roles need a `unit_code`")]
    MissingUnit,
    #[error("the username {0} is taken")]
    DuplicateUsername(String),
    /// An operator row without its enterprise: the data is broken, a 500.
    #[error("operator {0} has no enterprise")]
    OperatorWithoutEnterprise(i64),
    #[error("the operator is {0}, not waiting for confirmation")]
    NotPending(AccountStatus),
    #[error("a lost account stays lost; create a new account for the person")]
    AccountLost,
    #[error(
        "a pending account becomes active when its legal person confirms it (or its enterprise's registration \
         is approved); until then it can only be reported lost"
    )]
    AccountPending,
    /// The text says what is wrong with the key (not base64, not 32 bytes, not a curve point).
    #[error("{0}")]
    InvalidPublicKey(&'static str),
    #[error("units are listed for customs users")]
    UnitsForCustomsOnly,
    #[error(transparent)]
    Period(#[from] PeriodError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<EngineError> for OrgsError {
    fn from(e: EngineError) -> Self {
        OrgsError::Store(e.into())
    }
}
