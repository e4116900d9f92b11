//! What the auth steps refuse, without HTTP: `error.rs` turns each into the status, code and sentence
//! clients already see. A leaf: it imports only the store's and the devices' errors (`db/error.rs`,
//! `devices/error.rs`, leaves themselves), so that `error.rs` can name it without an import circle.

use crate::{
    db::error::{EngineError, StoreError},
    devices::error::DeviceError,
};

/// Why a login step refused. Each becomes a 401 with a stable code in `error.rs`.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// One answer for an unknown user and a wrong password: the difference would tell who exists.
    #[error("the username or password is wrong")]
    BadCredentials,
    #[error("this account is frozen")]
    AccountFrozen,
    #[error("this account was reported lost")]
    AccountLost,
    #[error("this account's validity has ended")]
    AccountExpired,
    /// An operator its legal person has not confirmed yet.
    #[error("this account is waiting for its legal person's confirmation")]
    AccountPending,
    #[error("this refresh token was already used; the session is ended, log in again")]
    RefreshReused,
    #[error("unknown refresh token")]
    UnknownRefresh,
    #[error("this session has ended; log in again")]
    SessionEnded,
    #[error("no registered signing key for this username; ask an administrator to register one")]
    NoSigningKey,
    #[error("unknown challenge; ask for a new one")]
    UnknownChallenge,
    #[error("this challenge was used or has expired; ask for a new one")]
    SpentChallenge,
    #[error("the signature does not verify with the registered key")]
    BadSignature,
}

impl AuthError {
    /// The stable code clients see.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::BadCredentials => "invalid_credentials",
            AuthError::AccountFrozen => "account_frozen",
            AuthError::AccountLost => "account_lost",
            AuthError::AccountExpired => "account_expired",
            AuthError::AccountPending => "account_pending",
            AuthError::RefreshReused => "refresh_token_reused",
            AuthError::UnknownRefresh => "invalid_refresh_token",
            AuthError::SessionEnded => "session_ended",
            AuthError::NoSigningKey => "no_signing_key",
            AuthError::UnknownChallenge | AuthError::SpentChallenge => "invalid_challenge",
            AuthError::BadSignature => "invalid_signature",
        }
    }
}

/// What a login step (`auth::login`: refresh rotation, strong-login challenge) refused, or why it failed.
/// A refusal travels in `Outcome::Refused` so that what the step wrote (an audit entry, an ended session)
/// still commits; a failure rolls the step back.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// 401 with the refusal's own code.
    #[error(transparent)]
    Refused(#[from] AuthError),
    /// The session's device is not this user's to use (401 `unknown_device`, `device_frozen`, `device_lost`).
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// A session or user that vanished mid-step (404), or a failed statement (500).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The orgs store (user lookups) still answers the engine's error.
impl From<EngineError> for LoginError {
    fn from(e: EngineError) -> Self {
        LoginError::Store(e.into())
    }
}

/// Why an access token is not taken, or could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// 401 `token_expired`.
    #[error("the access token has expired; get a new one with POST /api/v1/auth/refresh")]
    Expired,
    /// 401 `invalid_token`; the text says what is wrong: `bad signature`, `algorithm not accepted`,
    /// `wrong issuer`, `malformed`, `unknown assurance level`.
    #[error("the access token is not valid: {0}; log in again")]
    Invalid(&'static str),
    /// Signing failed, or no randomness for a refresh token: a logged 500.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Why a password login may not be tried now.
#[derive(Debug, thiserror::Error)]
pub enum ThrottleError {
    /// 429 with `Retry-After`; `scope` says which count refused (`from your address`, `for this account
    /// from your address`).
    #[error("too many failed logins {scope}; try again in {retry_after_secs} s")]
    TooManyAttempts { scope: &'static str, retry_after_secs: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}
