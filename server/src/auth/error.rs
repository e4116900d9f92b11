//! What the auth steps refuse, without HTTP: `error.rs` turns each into the status, code and sentence
//! clients already see. A leaf: it imports only the store's error (`db/error.rs`, itself a leaf), so that
//! `error.rs` can name it without an import circle.

use crate::db::error::StoreError;

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
