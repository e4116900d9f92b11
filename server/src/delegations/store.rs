//! The delegations' tables (`delegations`, `delegation_grants`): every SQL statement of the module,
//! answering [`StoreError`] (not found, already exists, other), never HTTP. Stored scopes are a
//! comma-separated list; one that does not parse is damage, never dropped.

use std::collections::BTreeSet;

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params, types::Type};

use super::{Delegation, Grant};
use crate::{db::StoreError, domain::Scope};

pub fn encode_scopes(scopes: &BTreeSet<Scope>) -> String {
    scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",")
}

/// Column `idx` of `r`, a stored scope list.
fn scopes_column(r: &Row<'_>, idx: usize) -> rusqlite::Result<Vec<Scope>> {
    decode_scopes(idx, &r.get::<_, String>(idx)?)
}

fn decode_scopes(idx: usize, text: &str) -> rusqlite::Result<Vec<Scope>> {
    text.split(',')
        .map(|s| {
            Scope::parse(s).ok_or_else(|| {
                let e = format!("unknown stored scope `{s}`");
                rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, e.into())
            })
        })
        .collect()
}

const D_COLS: &str = "id, principal_id, agent_id, scopes, valid_from, valid_until, revoked_at";

fn delegation_row(r: &Row<'_>) -> rusqlite::Result<Delegation> {
    Ok(Delegation {
        id: r.get(0)?,
        principal_id: r.get(1)?,
        agent_id: r.get(2)?,
        scopes: scopes_column(r, 3)?,
        valid_from: r.get(4)?,
        valid_until: r.get(5)?,
        revoked_at: r.get(6)?,
    })
}

const G_COLS: &str = "id, delegation_id, user_id, scopes, revoked_at";

fn grant_row(r: &Row<'_>) -> rusqlite::Result<Grant> {
    Ok(Grant {
        id: r.get(0)?,
        delegation_id: r.get(1)?,
        user_id: r.get(2)?,
        scopes: scopes_column(r, 3)?,
        revoked_at: r.get(4)?,
    })
}

pub fn get(c: &Connection, id: i64) -> Result<Option<Delegation>, StoreError> {
    Ok(c.query_row(&format!("SELECT {D_COLS} FROM delegations WHERE id = ?1"), [id], delegation_row)
        .optional()?)
}

/// The delegation, or [`StoreError::NotFound`].
pub fn existing(c: &Connection, id: i64) -> Result<Delegation, StoreError> {
    get(c, id)?.ok_or(StoreError::NotFound("the delegation"))
}

pub fn of_enterprise(c: &Connection, enterprise_id: i64) -> Result<Vec<Delegation>, StoreError> {
    let mut stmt = c.prepare(&format!(
        "SELECT {D_COLS} FROM delegations WHERE principal_id = ?1 OR agent_id = ?1 ORDER BY id"
    ))?;
    Ok(stmt.query_map([enterprise_id], delegation_row)?.collect::<Result<_, _>>()?)
}

pub fn grants_of(c: &Connection, delegation_id: i64) -> Result<Vec<Grant>, StoreError> {
    let mut stmt =
        c.prepare(&format!("SELECT {G_COLS} FROM delegation_grants WHERE delegation_id = ?1 ORDER BY id"))?;
    Ok(stmt.query_map([delegation_id], grant_row)?.collect::<Result<_, _>>()?)
}

pub fn grant(c: &Connection, id: i64) -> Result<Grant, StoreError> {
    c.query_row(&format!("SELECT {G_COLS} FROM delegation_grants WHERE id = ?1"), [id], grant_row)
        .optional()?
        .ok_or(StoreError::NotFound("the grant"))
}

/// What a new delegation holds; the id is the store's.
pub struct NewRow<'a> {
    pub principal_id: i64,
    pub agent_id: i64,
    pub scopes: &'a BTreeSet<Scope>,
    pub valid_from: i64,
    pub valid_until: i64,
    pub created_by: i64,
}

pub fn insert(tx: &Transaction<'_>, now: i64, d: NewRow<'_>) -> Result<i64, StoreError> {
    tx.execute(
        "INSERT INTO delegations (principal_id, agent_id, scopes, valid_from, valid_until, created_by, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![d.principal_id, d.agent_id, encode_scopes(d.scopes), d.valid_from, d.valid_until, d.created_by, now],
    )?;
    Ok(tx.last_insert_rowid())
}

/// Revokes the delegation and every live grant under it; answers how many grants ended.
pub fn revoke(tx: &Transaction<'_>, now: i64, id: i64) -> Result<usize, StoreError> {
    tx.execute("UPDATE delegations SET revoked_at = ?1 WHERE id = ?2", params![now, id])?;
    Ok(tx.execute(
        "UPDATE delegation_grants SET revoked_at = ?1 WHERE delegation_id = ?2 AND revoked_at IS NULL",
        params![now, id],
    )?)
}

pub fn insert_grant(
    tx: &Transaction<'_>,
    now: i64,
    delegation_id: i64,
    user_id: i64,
    scopes: &BTreeSet<Scope>,
    created_by: i64,
) -> Result<i64, StoreError> {
    tx.execute(
        "INSERT INTO delegation_grants (delegation_id, user_id, scopes, created_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![delegation_id, user_id, encode_scopes(scopes), created_by, now],
    )?;
    Ok(tx.last_insert_rowid())
}

/// Is a delegation from `principal` to `agent` holding `scope` live at `now`? With `operator`, only
/// through a live grant of that scope to that operator (the agent's legal person needs none).
pub fn live_for(
    c: &Connection,
    principal: i64,
    agent: i64,
    scope: Scope,
    now: i64,
    operator: Option<i64>,
) -> Result<bool, StoreError> {
    let scope_like = format!("%{}%", scope.as_str());
    let live = "d.principal_id = ?1 AND d.agent_id = ?2 AND d.revoked_at IS NULL
                AND d.valid_from <= ?3 AND ?3 < d.valid_until AND d.scopes LIKE ?4";
    Ok(match operator {
        None => c.query_row(
            &format!("SELECT EXISTS (SELECT 1 FROM delegations d WHERE {live})"),
            params![principal, agent, now, scope_like],
            |r| r.get(0),
        )?,
        Some(user) => c.query_row(
            &format!(
                "SELECT EXISTS (SELECT 1 FROM delegations d JOIN delegation_grants g ON g.delegation_id = d.id
                 WHERE {live} AND g.user_id = ?5 AND g.revoked_at IS NULL AND g.scopes LIKE ?4)"
            ),
            params![principal, agent, now, scope_like, user],
            |r| r.get(0),
        )?,
    })
}

/// A delegation live at some instant, as the agent's side sees it.
pub struct Live {
    pub principal: i64,
    pub delegated: Vec<Scope>,
    /// The operator's grant under it (none for the agent's legal person).
    pub granted: Option<Vec<Scope>>,
}

/// The live delegations to `agent` at `now`. With `operator`, only those granted to that operator.
pub fn live_to(c: &Connection, agent: i64, now: i64, operator: Option<i64>) -> Result<Vec<Live>, StoreError> {
    let live = "d.agent_id = ?1 AND d.revoked_at IS NULL AND d.valid_from <= ?2 AND ?2 < d.valid_until";
    let rows = match operator {
        None => {
            let mut stmt =
                c.prepare(&format!("SELECT d.principal_id, d.scopes FROM delegations d WHERE {live}"))?;
            stmt.query_map(params![agent, now], |r| {
                Ok(Live { principal: r.get(0)?, delegated: scopes_column(r, 1)?, granted: None })
            })?
            .collect::<Result<_, _>>()?
        }
        Some(user) => {
            let mut stmt = c.prepare(&format!(
                "SELECT d.principal_id, d.scopes, g.scopes FROM delegations d JOIN delegation_grants g ON g.delegation_id = d.id
                 WHERE {live} AND g.user_id = ?3 AND g.revoked_at IS NULL"
            ))?;
            stmt.query_map(params![agent, now, user], |r| {
                Ok(Live {
                    principal: r.get(0)?,
                    delegated: scopes_column(r, 1)?,
                    granted: Some(scopes_column(r, 2)?),
                })
            })?
            .collect::<Result<_, _>>()?
        }
    };
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_scope_list_with_an_unknown_scope_is_an_error_not_a_shorter_list() {
        assert_eq!(
            decode_scopes(3, "applications,bookings").unwrap(),
            [Scope::Applications, Scope::Bookings]
        );
        assert!(matches!(
            decode_scopes(3, "applications,shipping"),
            Err(rusqlite::Error::FromSqlConversionFailure(3, Type::Text, _))
        ));
    }
}
