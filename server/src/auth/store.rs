//! SQL for sessions, refresh tokens, strong-login challenges and login limits. Every function answers
//! [`StoreError`], which `error.rs` maps (a failed statement is a logged 500).

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::{
    db::error::StoreError,
    domain::{AccountStatus, Role, UserStatus},
};

pub fn create_session(
    tx: &Transaction<'_>,
    user_id: i64,
    device_id: Option<&str>,
    aal: u8,
    now: i64,
    expires_at: i64,
) -> Result<String, StoreError> {
    let id = uuid::Uuid::new_v4().to_string();
    tx.execute(
        "INSERT INTO sessions (id, user_id, device_id, aal, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![id, user_id, device_id, aal, now, expires_at],
    )?;
    Ok(id)
}

pub fn store_refresh(
    tx: &Transaction<'_>,
    hash: &[u8],
    session_id: &str,
    now: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO refresh_tokens (token_hash, session_id, issued_at) VALUES (?1, ?2, ?3)",
        params![hash, session_id, now],
    )?;
    Ok(())
}

pub enum Rotation {
    /// The token was live: it is now spent; continue the session.
    Rotated {
        session_id: String,
    },
    /// The token was spent already: someone replayed it. The whole session is revoked.
    Reused,
    Unknown,
}

/// Spends a refresh token. A second use of the same token means it leaked (or a client bug), and the safe
/// answer to both is ending the session (RFC 6819 §5.2.2.3 refresh token rotation).
pub fn spend_refresh(tx: &Transaction<'_>, hash: &[u8], now: i64) -> Result<Rotation, StoreError> {
    let row: Option<(String, Option<i64>)> = tx
        .query_row(
            "SELECT session_id, used_at FROM refresh_tokens WHERE token_hash = ?1",
            params![hash],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    match row {
        None => Ok(Rotation::Unknown),
        Some((sid, Some(_))) => {
            revoke_session(tx, &sid, now, "refresh token reused")?;
            Ok(Rotation::Reused)
        }
        Some((sid, None)) => {
            tx.execute("UPDATE refresh_tokens SET used_at = ?1 WHERE token_hash = ?2", params![now, hash])?;
            Ok(Rotation::Rotated { session_id: sid })
        }
    }
}

pub fn revoke_session(tx: &Transaction<'_>, session_id: &str, now: i64, why: &str) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE sessions SET revoked_at = ?1, revoked_why = ?2 WHERE id = ?3 AND revoked_at IS NULL",
        params![now, why, session_id],
    )?;
    Ok(())
}

pub fn revoke_device_sessions(
    tx: &Transaction<'_>,
    device_id: &str,
    now: i64,
    why: &str,
) -> Result<usize, StoreError> {
    Ok(tx.execute(
        "UPDATE sessions SET revoked_at = ?1, revoked_why = ?2 WHERE device_id = ?3 AND revoked_at IS NULL",
        params![now, why, device_id],
    )?)
}

pub fn revoke_user_sessions(
    tx: &Transaction<'_>,
    user_id: i64,
    now: i64,
    why: &str,
) -> Result<usize, StoreError> {
    Ok(tx.execute(
        "UPDATE sessions SET revoked_at = ?1, revoked_why = ?2 WHERE user_id = ?3 AND revoked_at IS NULL",
        params![now, why, user_id],
    )?)
}

/// Everything that can end a live token before it expires, read in one indexed lookup per request.
pub struct SessionStatus {
    pub user_status: AccountStatus,
    pub user_role: Role,
    pub must_change_password: bool,
    pub user_valid_until: Option<i64>,
    pub revoked_at: Option<i64>,
    pub expires_at: i64,
    pub device_status: Option<UserStatus>,
}

pub fn session_status(conn: &Connection, session_id: &str) -> Result<Option<SessionStatus>, StoreError> {
    // Cached: every authenticated request runs it.
    Ok(conn
        .prepare_cached(
            "SELECT u.status, u.valid_until, s.revoked_at, s.expires_at, d.status, u.role, u.must_change_password
             FROM sessions s JOIN users u ON u.id = s.user_id LEFT JOIN devices d ON d.id = s.device_id
             WHERE s.id = ?1",
        )?
        .query_row(
            params![session_id],
            |r| {
                Ok(SessionStatus {
                    user_status: r.get(0)?,
                    user_valid_until: r.get(1)?,
                    revoked_at: r.get(2)?,
                    expires_at: r.get(3)?,
                    device_status: r.get(4)?,
                    user_role: r.get(5)?,
                    must_change_password: r.get(6)?,
                })
            },
        )
        .optional()?)
}

pub struct SessionRow {
    pub user_id: i64,
    pub device_id: Option<String>,
    pub aal: u8,
    pub expires_at: i64,
    pub revoked: bool,
}

pub fn session(conn: &Connection, session_id: &str) -> Result<Option<SessionRow>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT user_id, device_id, aal, expires_at, revoked_at IS NOT NULL FROM sessions WHERE id = ?1",
            params![session_id],
            |r| {
                Ok(SessionRow {
                    user_id: r.get(0)?,
                    device_id: r.get(1)?,
                    aal: r.get(2)?,
                    expires_at: r.get(3)?,
                    revoked: r.get(4)?,
                })
            },
        )
        .optional()?)
}

pub fn create_challenge(
    tx: &Transaction<'_>,
    user_id: i64,
    nonce: &[u8],
    expires_at: i64,
) -> Result<String, StoreError> {
    let id = uuid::Uuid::new_v4().to_string();
    tx.execute(
        "INSERT INTO login_challenges (id, user_id, nonce, expires_at) VALUES (?1, ?2, ?3, ?4)",
        params![id, user_id, nonce, expires_at],
    )?;
    Ok(id)
}

pub struct Challenge {
    pub user_id: i64,
    pub nonce: Vec<u8>,
    pub expires_at: i64,
    pub used: bool,
}

/// Marks the challenge used in the same statement that reads it, so it can be answered once only.
pub fn take_challenge(tx: &Transaction<'_>, id: &str, now: i64) -> Result<Option<Challenge>, StoreError> {
    let c = tx
        .query_row(
            "SELECT user_id, nonce, expires_at, used_at IS NOT NULL FROM login_challenges WHERE id = ?1",
            params![id],
            |r| {
                Ok(Challenge { user_id: r.get(0)?, nonce: r.get(1)?, expires_at: r.get(2)?, used: r.get(3)? })
            },
        )
        .optional()?;
    if c.is_some() {
        tx.execute(
            "UPDATE login_challenges SET used_at = ?1 WHERE id = ?2 AND used_at IS NULL",
            params![now, id],
        )?;
    }
    Ok(c)
}

/// Forgets the login counts whose last wait ended before `before`.
pub fn forget_login_limits(tx: &Transaction<'_>, before: i64) -> Result<(), StoreError> {
    tx.execute("DELETE FROM login_limits WHERE next_at <= ?1", [before])?;
    Ok(())
}

/// A throttle key's failures and the time before which it must wait, if counted.
pub fn login_limit(c: &Connection, key: &str) -> Result<Option<(u32, i64)>, StoreError> {
    Ok(c.query_row("SELECT failures, next_at FROM login_limits WHERE key = ?1", [key], |r| {
        Ok((r.get::<_, u32>(0)?, r.get::<_, i64>(1)?))
    })
    .optional()?)
}

pub fn set_login_limit(
    tx: &Transaction<'_>,
    key: &str,
    failures: u32,
    next_at: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO login_limits (key, failures, next_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (key) DO UPDATE SET failures = excluded.failures, next_at = excluded.next_at",
        params![key, failures, next_at],
    )?;
    Ok(())
}

/// A right password: the account key's count is dropped and the address key gives one attempt back.
pub fn login_succeeded(tx: &Transaction<'_>, account_key: &str, address_key: &str) -> Result<(), StoreError> {
    tx.execute("DELETE FROM login_limits WHERE key = ?1", [account_key])?;
    tx.execute(
        "UPDATE login_limits SET failures = failures - 1 WHERE key = ?1 AND failures > 0",
        [address_key],
    )?;
    Ok(())
}
