//! Why a signed message was refused. A leaf, mapped to HTTP once in `error.rs`: every refusal the
//! message layer names itself carries its rule in `details.rule`, as senders already read it.

use super::envelope::EnvelopeError;
use crate::{
    applications::{error::ApplicationError, submit_error::SubmitError},
    bookings::error::BookingError,
    certificates::error::CertificateError,
    db::error::{EngineError, StoreError},
    domain::Scope,
    orgs::error::OrgsError,
    workflow::error::WorkflowError,
};

#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    /// The envelope did not parse, or its signature did not hold (`rule` says which).
    #[error("{}", .0.message)]
    Envelope(EnvelopeError),
    /// `expected` is the `typ` a message may carry.
    #[error("`typ` must be `{expected}` when present")]
    WrongTyp { expected: &'static str },
    #[error("no signing key is registered to `{0}`; an administrator or your legal person registers keys")]
    UnknownKey(String),
    /// The signed payload is not JSON of a message's shape (the parser's sentence).
    #[error("the signed payload: {0}")]
    InvalidPayload(String),
    /// The signer used the message id before, for other bytes; the details name the original. Boxed:
    /// the largest refusal would otherwise make every result of the intake as large.
    #[error(
        "message id `{}` was already used by `{}` for a different payload (received {}); \
         use a new id for a new message, or resend the original unchanged",
        .0.id, .0.username, .0.received_at
    )]
    MessageIdReused(Box<Reuse>),
    #[error("no registered enterprise has the customs code {0}")]
    UnknownEnterprise(String),
    #[error(
        "`{username}` may not act for enterprise {enterprise} in `{scope}`: it is not the signer's own enterprise and no live \
         delegation of that scope reaches the signer"
    )]
    NotDelegated { username: String, enterprise: String, scope: Scope },
    #[error("the account `{0}` is not confirmed yet: its key signs nothing until it is")]
    SignerPending(String),
    #[error("the account `{0}` is frozen: its key signs nothing until it is unfrozen")]
    SignerFrozen(String),
    #[error("the account `{0}` was reported lost: its key signs nothing any more")]
    SignerLost(String),
    #[error("the account `{0}` is past its validity")]
    SignerExpired(String),
    #[error("messages are signed by enterprise operators, legal persons or platform signers")]
    SignerNotEnterprise,
    /// `kind` is the message type that needs `content`.
    #[error("a `{0}` message needs `content`")]
    MissingContent(&'static str),
    #[error("`content`: {0}")]
    InvalidContent(String),
    #[error("a `{kind}` message needs `{field}`")]
    MissingField { kind: &'static str, field: &'static str },
    #[error(
        "`application.submit` takes either `content` (file and submit) or `application_id` (submit a draft)"
    )]
    SubmitTakesOne,
    #[error("`content.starts_at`: {0}")]
    InvalidTime(String),
    /// The message names one enterprise; what its content touched is another's.
    #[error("the message names enterprise {0} but its content is another enterprise's")]
    EnterpriseMismatch(String),
    /// What a message's step refers to is not there ("the instruction", "the application").
    #[error("{0} was not found")]
    NotFound(&'static str),
    #[error(transparent)]
    Application(#[from] ApplicationError),
    #[error(transparent)]
    Submit(#[from] SubmitError),
    #[error(transparent)]
    Booking(#[from] BookingError),
    #[error(transparent)]
    Certificate(#[from] CertificateError),
    #[error(transparent)]
    Workflow(#[from] WorkflowError),
    #[error(transparent)]
    Orgs(#[from] OrgsError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// A message id used again for a different payload.
#[derive(Debug)]
pub struct Reuse {
    pub id: String,
    pub username: String,
    /// When the original arrived, RFC 3339.
    pub received_at: String,
    pub evidence_id: i64,
    pub original_sha256: String,
    pub payload_sha256: String,
}

impl From<EngineError> for MessageError {
    fn from(e: EngineError) -> Self {
        MessageError::Store(e.into())
    }
}
