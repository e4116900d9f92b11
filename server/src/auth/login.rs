//! The login steps that decide, apart from HTTP: may this account log in now, does this refresh token
//! still rotate, does this signed challenge prove the user (strong login). Each runs inside the caller's
//! write transaction and answers with what happened; the handlers in `http.rs` only extract, call and map.
//!
//! A refusal here is often still a write that must commit — the audit entry of a failed strong login, the
//! session a reused refresh token ends — so such steps answer an [`Outcome`] (committed either way)
//! instead of an error that would roll the transaction back.

use crate::db::Tx;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde_json::json;

use super::{
    error::{AuthError, LoginError},
    store::{self, Rotation, SessionRow},
};
use crate::{
    audit::{self, Actor},
    db::error::StoreError,
    devices,
    domain::{AccountStatus, Role},
    orgs::{store as orgs_store, store::UserRow},
};

/// How a step that commits even when it refuses ended.
#[derive(Debug)]
pub enum Outcome<T> {
    Granted(T),
    /// Refused; what the step wrote (an audit entry, an ended session) commits all the same.
    Refused(LoginError),
}

impl<T> Outcome<T> {
    /// The next step of a granted outcome, in the same transaction (failing with the caller's own error);
    /// a refusal passes through.
    pub fn then<U, E>(self, f: impl FnOnce(T) -> Result<U, E>) -> Result<Outcome<U>, E> {
        Ok(match self {
            Outcome::Granted(t) => Outcome::Granted(f(t)?),
            Outcome::Refused(e) => Outcome::Refused(e),
        })
    }

    /// After the commit: the refusal becomes the request's error.
    pub fn into_result(self) -> Result<T, LoginError> {
        match self {
            Outcome::Granted(t) => Ok(t),
            Outcome::Refused(e) => Err(e),
        }
    }
}

/// May `user` log in now? Checked before any token is made, on every login and every refresh. A
/// registering legal person may (its session is restricted to the registration, `caller::Restriction`);
/// an operator its legal person has not confirmed may not.
pub fn check_allowed(user: &UserRow, now: i64) -> Result<(), AuthError> {
    match user.status {
        AccountStatus::Active => {}
        AccountStatus::Pending if user.role == Role::EnterpriseLegal => {}
        AccountStatus::Pending => return Err(AuthError::AccountPending),
        AccountStatus::Frozen => return Err(AuthError::AccountFrozen),
        AccountStatus::Lost => return Err(AuthError::AccountLost),
    }
    if user.valid_until.is_some_and(|t| t <= now) {
        return Err(AuthError::AccountExpired);
    }
    Ok(())
}

/// A refresh token that rotated: the session it belongs to and its user, both still allowed. (No `Debug`:
/// the user row holds the password hash.)
pub struct Rotated {
    pub session_id: String,
    pub session: SessionRow,
    pub user: UserRow,
}

/// Spends the refresh token whose hash is `hash`. A token used twice ends its session (a stolen copy
/// is as likely as a retry), and that verdict commits with the refusal.
pub fn rotate_refresh(tx: &Tx<'_>, hash: &[u8], now: i64) -> Result<Outcome<Rotated>, LoginError> {
    let session_id = match store::spend_refresh(tx, hash, now)? {
        Rotation::Rotated { session_id } => session_id,
        Rotation::Reused => {
            audit::append(
                tx,
                now,
                &Actor::Anonymous,
                audit::Action::AuthRefreshReused,
                &audit::Subject::Session,
                json!({}),
            )?;
            return Ok(Outcome::Refused(AuthError::RefreshReused.into()));
        }
        Rotation::Unknown => return Ok(Outcome::Refused(AuthError::UnknownRefresh.into())),
    };
    let session = store::session(tx, &session_id)?.ok_or_else(|| StoreError::NotFound("the session"))?;
    if session.revoked || session.expires_at <= now {
        return Ok(Outcome::Refused(AuthError::SessionEnded.into()));
    }
    let user = orgs_store::user(tx, session.user_id)?.ok_or_else(|| StoreError::NotFound("the user"))?;
    if let Err(e) = check_allowed(&user, now) {
        return Ok(Outcome::Refused(e.into()));
    }
    if let Some(device_id) = &session.device_id
        && let Err(e) = devices::check_usable_by(tx, device_id, user.id)
    {
        return Ok(Outcome::Refused(e.into()));
    }
    Ok(Outcome::Granted(Rotated { session_id, session, user }))
}

/// The exact text a strong-login challenge asks the user to sign.
pub fn challenge_text(challenge_id: &str, username: &str, nonce: &[u8], expires_at: i64) -> String {
    format!(
        "fieldcheck strong login v1\nchallenge:{challenge_id}\nuser:{username}\nnonce:{}\nexpires:{expires_at}",
        hex::encode(nonce)
    )
}

/// A challenge issued to a user with a registered signing key.
#[derive(Debug)]
pub struct Challenge {
    pub id: String,
    pub text: String,
    pub expires_at: i64,
}

/// Stores a new challenge over `nonce` for `username`, who must have a registered signing key.
pub fn issue_challenge(
    tx: &Tx<'_>,
    username: &str,
    nonce: &[u8],
    expires_at: i64,
) -> Result<Challenge, LoginError> {
    let user = orgs_store::user_by_name(tx, username)?
        .filter(|u| u.signing_key.is_some())
        .ok_or(AuthError::NoSigningKey)?;
    let id = store::create_challenge(tx, user.id, nonce, expires_at)?;
    Ok(Challenge { text: challenge_text(&id, &user.username, nonce, expires_at), id, expires_at })
}

/// Spends challenge `challenge_id` and checks `signature` over its text with the user's registered key.
/// Every refusal is audited (with the user when the challenge names one) and commits.
pub fn verify_challenge(
    tx: &Tx<'_>,
    challenge_id: &str,
    signature: &Signature,
    now: i64,
) -> Result<Outcome<UserRow>, LoginError> {
    let refuse =
        |subject: audit::Subject<'_>, why: &str, error: AuthError| -> Result<Outcome<UserRow>, LoginError> {
            audit::append(
                tx,
                now,
                &Actor::Anonymous,
                audit::Action::AuthStrongLoginFailed,
                &subject,
                json!({"reason": why}),
            )?;
            Ok(Outcome::Refused(error.into()))
        };
    let Some(c) = store::take_challenge(tx, challenge_id, now)? else {
        return refuse(audit::Subject::Challenge, "unknown challenge", AuthError::UnknownChallenge);
    };
    let subject = audit::Subject::User(c.user_id);
    if c.used || c.expires_at <= now {
        return refuse(subject, "challenge spent or expired", AuthError::SpentChallenge);
    }
    let user = orgs_store::user(tx, c.user_id)?.ok_or_else(|| StoreError::NotFound("the user"))?;
    let key = user
        .signing_key
        .as_deref()
        .and_then(|k| <[u8; 32]>::try_from(k).ok())
        .and_then(|k| VerifyingKey::from_bytes(&k).ok());
    let text = challenge_text(challenge_id, &user.username, &c.nonce, c.expires_at);
    if key.is_none_or(|k| k.verify(text.as_bytes(), signature).is_err()) {
        return refuse(subject, "bad signature", AuthError::BadSignature);
    }
    if let Err(e) = check_allowed(&user, now) {
        return refuse(subject, "account not active", e);
    }
    Ok(Outcome::Granted(user))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_has_a_stable_code_and_a_sentence_that_says_what_to_do() {
        let all = [
            AuthError::BadCredentials,
            AuthError::AccountFrozen,
            AuthError::AccountLost,
            AuthError::AccountExpired,
            AuthError::AccountPending,
            AuthError::RefreshReused,
            AuthError::UnknownRefresh,
            AuthError::SessionEnded,
            AuthError::NoSigningKey,
            AuthError::UnknownChallenge,
            AuthError::SpentChallenge,
            AuthError::BadSignature,
        ];
        for e in all {
            let api: crate::error::ApiError = LoginError::from(e.clone()).into();
            assert_eq!(api.status(), axum::http::StatusCode::UNAUTHORIZED, "{e:?}");
            assert!(e.code().chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{e:?}");
            assert!(e.to_string().len() > 10, "{e:?}");
        }
    }

    #[test]
    fn the_challenge_text_names_the_challenge_the_user_the_nonce_and_the_expiry() {
        let text = challenge_text("c-1", "ent1-legal", &[0xab, 0xcd], 42);
        assert_eq!(
            text,
            "fieldcheck strong login v1\nchallenge:c-1\nuser:ent1-legal\nnonce:abcd\nexpires:42"
        );
    }
}
