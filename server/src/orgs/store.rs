//! SQL for units, enterprises and users.

use fieldcheck_sync::schema::SitePosition;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{Enterprise, NewEnterprise, NewUser, Unit, User};
use crate::{
    db::scope,
    domain::{AccountStatus, Role, UnitKind},
    error::StoreError,
};

const UNIT_COLS: &str = "id, code, name, kind, parent_id, timezone";

fn unit_row(r: &Row<'_>) -> rusqlite::Result<Unit> {
    Ok(Unit {
        id: r.get(0)?,
        code: r.get(1)?,
        name: r.get(2)?,
        kind: r.get(3)?,
        parent_id: r.get(4)?,
        timezone: r.get(5)?,
    })
}

pub fn unit(c: &Connection, id: i64) -> rusqlite::Result<Option<Unit>> {
    c.query_row(&format!("SELECT {UNIT_COLS} FROM customs_units WHERE id = ?1"), [id], unit_row).optional()
}

/// A site's position from the reference data (`site_locations`), as records carry it; `None` when unknown.
pub fn site_position(c: &Connection, site_id: i64) -> rusqlite::Result<Option<SitePosition>> {
    c.prepare_cached("SELECT latitude, longitude, radius_m FROM site_locations WHERE unit_id = ?1")?
        .query_row([site_id], |r| {
            Ok(SitePosition { latitude: r.get(0)?, longitude: r.get(1)?, radius_m: r.get(2)? })
        })
        .optional()
}

/// Cached, like `enterprise_by_code` and `user_by_name`: every submission looks them up (a bulk of signed
/// messages, thousands of times in one transaction).
pub fn unit_by_code(c: &Connection, code: &str) -> rusqlite::Result<Option<Unit>> {
    c.prepare_cached(&format!("SELECT {UNIT_COLS} FROM customs_units WHERE code = ?1"))?
        .query_row([code], unit_row)
        .optional()
}

/// The unit and every unit below it, in one recursive query.
pub fn subtree(c: &Connection, root: i64) -> rusqlite::Result<Vec<Unit>> {
    let mut stmt = c.prepare(&format!(
        "SELECT {UNIT_COLS} FROM customs_units WHERE {} ORDER BY code",
        scope::unit_in_subtree("id")
    ))?;
    stmt.query_map([root], unit_row)?.collect()
}

pub fn all_units(c: &Connection) -> rusqlite::Result<Vec<Unit>> {
    let mut stmt = c.prepare(&format!("SELECT {UNIT_COLS} FROM customs_units ORDER BY code"))?;
    stmt.query_map([], unit_row)?.collect()
}

/// Is `unit` inside the subtree rooted at `root`? (The predicate lives in [`scope`].)
pub use crate::db::scope::in_subtree;

pub fn insert_unit(
    c: &Connection,
    code: &str,
    name: &str,
    kind: UnitKind,
    parent_id: Option<i64>,
    timezone: &str,
    now: i64,
) -> rusqlite::Result<i64> {
    c.execute(
        "INSERT INTO customs_units (code, name, kind, parent_id, timezone, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![code, name, kind, parent_id, timezone, now],
    )?;
    Ok(c.last_insert_rowid())
}

const ENTERPRISE_COLS: &str = "id, customs_code, uscc, name, credit_rating, unit_id";

fn enterprise_row(r: &Row<'_>) -> rusqlite::Result<Enterprise> {
    Ok(Enterprise {
        id: r.get(0)?,
        customs_code: r.get(1)?,
        uscc: r.get(2)?,
        name: r.get(3)?,
        credit_rating: r.get(4)?,
        unit_id: r.get(5)?,
    })
}

pub fn enterprise(c: &Connection, id: i64) -> rusqlite::Result<Option<Enterprise>> {
    c.query_row(&format!("SELECT {ENTERPRISE_COLS} FROM enterprises WHERE id = ?1"), [id], enterprise_row)
        .optional()
}

pub fn enterprise_by_code(c: &Connection, code: &str) -> rusqlite::Result<Option<Enterprise>> {
    c.prepare_cached(&format!("SELECT {ENTERPRISE_COLS} FROM enterprises WHERE customs_code = ?1"))?
        .query_row([code], enterprise_row)
        .optional()
}

pub fn all_enterprises(c: &Connection) -> rusqlite::Result<Vec<Enterprise>> {
    let mut stmt = c.prepare(&format!("SELECT {ENTERPRISE_COLS} FROM enterprises ORDER BY customs_code"))?;
    stmt.query_map([], enterprise_row)?.collect()
}

/// A registering enterprise's corrected identity (onboarding: a returned registration amended).
pub fn update_enterprise_identity(
    c: &Connection,
    id: i64,
    customs_code: &str,
    uscc: &str,
    name: &str,
    unit_id: i64,
) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE enterprises SET customs_code = ?1, uscc = ?2, name = ?3, unit_id = ?4 WHERE id = ?5",
        params![customs_code, uscc, name, unit_id, id],
    )?;
    Ok(())
}

pub fn insert_enterprise(
    c: &Connection,
    e: &NewEnterprise,
    unit_id: Option<i64>,
    now: i64,
) -> Result<i64, StoreError> {
    c.execute(
        "INSERT INTO enterprises (customs_code, uscc, name, credit_rating, unit_id, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![e.customs_code.as_str(), e.uscc.as_str(), e.name, e.credit_rating, unit_id, now],
    )
    // The customs code was checked first, so what is left to collide is the credit code.
    .map_err(|e| StoreError::constraint(e, "an enterprise with this unified social credit code"))?;
    Ok(c.last_insert_rowid())
}

/// A user row with its secrets; [`UserRow::public`] drops them for answers.
pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub password_hash: String,
    pub role: Role,
    pub unit_id: Option<i64>,
    pub enterprise_id: Option<i64>,
    pub status: AccountStatus,
    pub valid_until: Option<i64>,
    pub signing_key: Option<Vec<u8>>,
    /// The password was chosen by someone else: the first login may only change it.
    pub must_change_password: bool,
}

impl UserRow {
    /// The registered Ed25519 key (strong login, signed messages); `None` if none or unusable.
    pub fn verifying_key(&self) -> Option<ed25519_dalek::VerifyingKey> {
        let bytes = <[u8; 32]>::try_from(self.signing_key.as_deref()?).ok()?;
        ed25519_dalek::VerifyingKey::from_bytes(&bytes).ok()
    }

    pub fn public(self) -> User {
        User {
            id: self.id,
            username: self.username,
            display_name: self.display_name,
            role: self.role,
            unit_id: self.unit_id,
            enterprise_id: self.enterprise_id,
            status: self.status,
            valid_until: self.valid_until,
            has_signing_key: self.signing_key.is_some(),
            must_change_password: self.must_change_password,
        }
    }
}

const USER_COLS: &str = "id, username, display_name, password_hash, role, unit_id, enterprise_id, status, valid_until, signing_key, must_change_password";

fn user_row(r: &Row<'_>) -> rusqlite::Result<UserRow> {
    Ok(UserRow {
        id: r.get(0)?,
        username: r.get(1)?,
        display_name: r.get(2)?,
        password_hash: r.get(3)?,
        role: r.get(4)?,
        unit_id: r.get(5)?,
        enterprise_id: r.get(6)?,
        status: r.get(7)?,
        valid_until: r.get(8)?,
        signing_key: r.get(9)?,
        must_change_password: r.get(10)?,
    })
}

pub fn user(c: &Connection, id: i64) -> rusqlite::Result<Option<UserRow>> {
    c.query_row(&format!("SELECT {USER_COLS} FROM users WHERE id = ?1"), [id], user_row).optional()
}

pub fn user_by_name(c: &Connection, username: &str) -> rusqlite::Result<Option<UserRow>> {
    c.prepare_cached(&format!("SELECT {USER_COLS} FROM users WHERE username = ?1"))?
        .query_row([username], user_row)
        .optional()
}

pub fn enterprise_users(c: &Connection, enterprise_id: i64) -> rusqlite::Result<Vec<User>> {
    let mut stmt =
        c.prepare(&format!("SELECT {USER_COLS} FROM users WHERE enterprise_id = ?1 ORDER BY username"))?;
    stmt.query_map([enterprise_id], user_row)?.map(|r| r.map(UserRow::public)).collect()
}

pub fn all_users(c: &Connection) -> rusqlite::Result<Vec<User>> {
    let mut stmt = c.prepare(&format!("SELECT {USER_COLS} FROM users ORDER BY username"))?;
    stmt.query_map([], user_row)?.map(|r| r.map(UserRow::public)).collect()
}

/// How a new account starts: `Active` with its own password (what an administrator creates), or
/// `Pending` — an operator awaiting its legal person, a registering legal person — and, when someone else
/// chose the password, `must_change_password`.
#[derive(Debug, Clone, Copy)]
pub struct Start {
    pub status: AccountStatus,
    pub must_change_password: bool,
}

impl Start {
    pub const ACTIVE: Start = Start { status: AccountStatus::Active, must_change_password: false };
}

#[allow(clippy::too_many_arguments)]
pub fn insert_user(
    c: &Connection,
    u: &NewUser,
    password_hash: &str,
    unit_id: Option<i64>,
    enterprise_id: Option<i64>,
    start: Start,
    now: i64,
) -> rusqlite::Result<i64> {
    c.execute(
        "INSERT INTO users (username, display_name, password_hash, role, unit_id, enterprise_id, valid_until, created_at,
                            status, must_change_password)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            u.username,
            u.display_name,
            password_hash,
            u.role,
            unit_id,
            enterprise_id,
            u.valid_until,
            now,
            start.status,
            start.must_change_password
        ],
    )?;
    Ok(c.last_insert_rowid())
}

/// Sets a new password hash and clears `must_change_password`.
pub fn update_password(c: &Connection, id: i64, password_hash: &str) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE users SET password_hash = ?1, must_change_password = 0 WHERE id = ?2",
        params![password_hash, id],
    )?;
    Ok(())
}

pub fn update_user_status(c: &Connection, id: i64, status: AccountStatus) -> rusqlite::Result<()> {
    c.execute("UPDATE users SET status = ?1 WHERE id = ?2", params![status, id])?;
    Ok(())
}

pub fn update_user_validity(c: &Connection, id: i64, valid_until: Option<i64>) -> rusqlite::Result<()> {
    c.execute("UPDATE users SET valid_until = ?1 WHERE id = ?2", params![valid_until, id])?;
    Ok(())
}

pub fn update_signing_key(c: &Connection, id: i64, key: &[u8; 32]) -> rusqlite::Result<()> {
    c.execute("UPDATE users SET signing_key = ?1 WHERE id = ?2", params![key.as_slice(), id])?;
    Ok(())
}

pub fn count_users(c: &Connection) -> rusqlite::Result<i64> {
    c.query_row("SELECT count(*) FROM users", [], |r| r.get(0))
}
