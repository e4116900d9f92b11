//! Delegation: an enterprise's legal person lets an agent enterprise (报关行) act for it in some scopes,
//! for a validity period; the agent's legal person passes scopes on to its own operators as grants.
//!
//! Validity is checked at use time against the clock, so an expired delegation stops working by itself;
//! revoking a delegation revokes every grant under it in the same transaction.

pub mod http;

use std::collections::BTreeSet;

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use serde::Serialize;
use serde_json::json;

use crate::{
    audit::{self, Actor},
    auth::Caller,
    domain::{
        Role, Scope,
        time::{Period, rfc3339},
    },
    error::{ApiError, invalid},
};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Delegation {
    pub id: i64,
    pub principal_id: i64,
    pub agent_id: i64,
    pub scopes: Vec<Scope>,
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub valid_from: i64,
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub valid_until: i64,
    #[serde(with = "rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Grant {
    pub id: i64,
    pub delegation_id: i64,
    pub user_id: i64,
    pub scopes: Vec<Scope>,
    #[serde(with = "rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<i64>,
}

fn encode_scopes(scopes: &BTreeSet<Scope>) -> String {
    scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",")
}

fn decode_scopes(text: &str) -> Vec<Scope> {
    text.split(',').filter_map(Scope::parse).collect()
}

/// Parses a requested scope list: non-empty, no repeats that hide typos.
pub fn scope_set(scopes: &[Scope]) -> Result<BTreeSet<Scope>, ApiError> {
    let set: BTreeSet<Scope> = scopes.iter().copied().collect();
    if set.is_empty() {
        return Err(invalid(
            "scopes",
            "missing_scopes",
            "name at least one scope: applications, bookings, certificates",
        ));
    }
    Ok(set)
}

fn delegation_row(r: &Row<'_>) -> rusqlite::Result<Delegation> {
    Ok(Delegation {
        id: r.get(0)?,
        principal_id: r.get(1)?,
        agent_id: r.get(2)?,
        scopes: decode_scopes(&r.get::<_, String>(3)?),
        valid_from: r.get(4)?,
        valid_until: r.get(5)?,
        revoked_at: r.get(6)?,
    })
}

const D_COLS: &str = "id, principal_id, agent_id, scopes, valid_from, valid_until, revoked_at";

pub fn get(c: &Connection, id: i64) -> rusqlite::Result<Option<Delegation>> {
    c.query_row(&format!("SELECT {D_COLS} FROM delegations WHERE id = ?1"), [id], delegation_row).optional()
}

/// Delegations the enterprise gave or received.
pub fn of_enterprise(c: &Connection, enterprise_id: i64) -> rusqlite::Result<Vec<Delegation>> {
    let mut stmt = c.prepare(&format!(
        "SELECT {D_COLS} FROM delegations WHERE principal_id = ?1 OR agent_id = ?1 ORDER BY id"
    ))?;
    stmt.query_map([enterprise_id], delegation_row)?.collect()
}

fn grant_row(r: &Row<'_>) -> rusqlite::Result<Grant> {
    Ok(Grant {
        id: r.get(0)?,
        delegation_id: r.get(1)?,
        user_id: r.get(2)?,
        scopes: decode_scopes(&r.get::<_, String>(3)?),
        revoked_at: r.get(4)?,
    })
}

pub fn grants_of(c: &Connection, delegation_id: i64) -> rusqlite::Result<Vec<Grant>> {
    let mut stmt = c.prepare(
        "SELECT id, delegation_id, user_id, scopes, revoked_at FROM delegation_grants WHERE delegation_id = ?1 ORDER BY id",
    )?;
    stmt.query_map([delegation_id], grant_row)?.collect()
}

pub struct NewDelegation {
    pub agent_id: i64,
    pub scopes: BTreeSet<Scope>,
    pub valid_from: i64,
    pub valid_until: i64,
}

pub fn create(
    tx: &Transaction<'_>,
    now: i64,
    caller: &Caller,
    new: NewDelegation,
) -> Result<Delegation, ApiError> {
    let principal = caller.enterprise()?;
    if new.agent_id == principal {
        return Err(invalid(
            "agent_customs_code",
            "self_delegation",
            "an enterprise cannot delegate to itself",
        ));
    }
    Period::new(new.valid_from, Some(new.valid_until), now)?;
    tx.execute(
        "INSERT INTO delegations (principal_id, agent_id, scopes, valid_from, valid_until, created_by, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![principal, new.agent_id, encode_scopes(&new.scopes), new.valid_from, new.valid_until, caller.user_id, now],
    )?;
    let id = tx.last_insert_rowid();
    audit::append(
        tx,
        now,
        &Actor::User(caller.user_id),
        audit::Action::DelegationGrant,
        &format!("delegation:{id}"),
        json!({"principal": principal, "agent": new.agent_id, "scopes": encode_scopes(&new.scopes),
               "valid_from": new.valid_from, "valid_until": new.valid_until}),
    )?;
    get(tx, id)?.ok_or_else(|| ApiError::not_found("the delegation"))
}

/// Revokes a delegation the caller's enterprise gave, and with it every grant under it.
pub fn revoke(tx: &Transaction<'_>, now: i64, caller: &Caller, id: i64) -> Result<Delegation, ApiError> {
    let d = get(tx, id)?
        .filter(|d| Some(d.principal_id) == caller.enterprise_id)
        .ok_or_else(|| ApiError::not_found("the delegation"))?;
    if d.revoked_at.is_some() {
        return Err(ApiError::conflict("already_revoked", "this delegation is already revoked"));
    }
    tx.execute("UPDATE delegations SET revoked_at = ?1 WHERE id = ?2", params![now, id])?;
    let grants = tx.execute(
        "UPDATE delegation_grants SET revoked_at = ?1 WHERE delegation_id = ?2 AND revoked_at IS NULL",
        params![now, id],
    )?;
    audit::append(
        tx,
        now,
        &Actor::User(caller.user_id),
        audit::Action::DelegationRevoke,
        &format!("delegation:{id}"),
        json!({"grants_revoked": grants}),
    )?;
    get(tx, id)?.ok_or_else(|| ApiError::not_found("the delegation"))
}

/// The agent's legal person passes (some of) a delegation's scopes on to one of its own operators.
pub fn grant(
    tx: &Transaction<'_>,
    now: i64,
    caller: &Caller,
    delegation_id: i64,
    user_id: i64,
    scopes: BTreeSet<Scope>,
) -> Result<Grant, ApiError> {
    let d = get(tx, delegation_id)?
        .filter(|d| Some(d.agent_id) == caller.enterprise_id)
        .ok_or_else(|| ApiError::not_found("the delegation"))?;
    if !is_live(&d, now) {
        return Err(ApiError::conflict(
            "delegation_inactive",
            "this delegation is revoked or outside its validity",
        ));
    }
    let extra: Vec<&str> = scopes.iter().filter(|s| !d.scopes.contains(s)).map(|s| s.as_str()).collect();
    if !extra.is_empty() {
        return Err(invalid(
            "scopes",
            "scope_not_delegated",
            format!("the delegation does not include {}", extra.join(", ")),
        ));
    }
    let user =
        crate::orgs::store::user(tx, user_id)?.filter(|u| u.enterprise_id == Some(d.agent_id)).ok_or_else(
            || invalid("user_id", "unknown_operator", "the user is not one of your enterprise's operators"),
        )?;
    tx.execute(
        "INSERT INTO delegation_grants (delegation_id, user_id, scopes, created_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![delegation_id, user.id, encode_scopes(&scopes), caller.user_id, now],
    )?;
    let id = tx.last_insert_rowid();
    audit::append(
        tx,
        now,
        &Actor::User(caller.user_id),
        audit::Action::DelegationSubgrant,
        &format!("grant:{id}"),
        json!({"delegation": delegation_id, "user": user.id, "scopes": encode_scopes(&scopes)}),
    )?;
    tx.query_row(
        "SELECT id, delegation_id, user_id, scopes, revoked_at FROM delegation_grants WHERE id = ?1",
        [id],
        grant_row,
    )
    .map_err(Into::into)
}

fn is_live(d: &Delegation, now: i64) -> bool {
    d.revoked_at.is_none() && d.valid_from <= now && now < d.valid_until
}

/// May the caller act for `enterprise_id` in `scope` now? Own enterprise: yes. An agent's legal person:
/// through a live delegation with that scope. An agent's operator: through a live grant under one.
pub fn may_act_for(
    c: &Connection,
    caller: &Caller,
    enterprise_id: i64,
    scope: Scope,
    now: i64,
) -> Result<bool, ApiError> {
    let Some(own) = caller.enterprise_id else { return Ok(false) };
    if own == enterprise_id {
        return Ok(true);
    }
    let scope_like = format!("%{}%", scope.as_str());
    let live = "d.principal_id = ?1 AND d.agent_id = ?2 AND d.revoked_at IS NULL
                AND d.valid_from <= ?3 AND ?3 < d.valid_until AND d.scopes LIKE ?4";
    let found: bool = if caller.role == Role::EnterpriseLegal {
        c.query_row(
            &format!("SELECT EXISTS (SELECT 1 FROM delegations d WHERE {live})"),
            params![enterprise_id, own, now, scope_like],
            |r| r.get(0),
        )?
    } else {
        c.query_row(
            &format!(
                "SELECT EXISTS (SELECT 1 FROM delegations d JOIN delegation_grants g ON g.delegation_id = d.id
                 WHERE {live} AND g.user_id = ?5 AND g.revoked_at IS NULL AND g.scopes LIKE ?4)"
            ),
            params![enterprise_id, own, now, scope_like, caller.user_id],
            |r| r.get(0),
        )?
    };
    Ok(found)
}

/// Enterprises the caller may see at all: its own plus those delegating to it in any scope.
pub fn may_see(c: &Connection, caller: &Caller, enterprise_id: i64, now: i64) -> Result<bool, ApiError> {
    for scope in Scope::ALL {
        if may_act_for(c, caller, enterprise_id, *scope, now)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Enterprises the caller may act for through delegation now, with the scopes it holds for each.
pub fn principals_of(c: &Connection, caller: &Caller, now: i64) -> Result<Vec<(i64, Vec<Scope>)>, ApiError> {
    let Some(own) = caller.enterprise_id else { return Ok(Vec::new()) };
    let live = "d.agent_id = ?1 AND d.revoked_at IS NULL AND d.valid_from <= ?2 AND ?2 < d.valid_until";
    let rows: Vec<(i64, String, Option<String>)> = if caller.role == Role::EnterpriseLegal {
        let mut stmt =
            c.prepare(&format!("SELECT d.principal_id, d.scopes, NULL FROM delegations d WHERE {live}"))?;
        stmt.query_map(params![own, now], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?
    } else {
        let mut stmt = c.prepare(&format!(
            "SELECT d.principal_id, d.scopes, g.scopes FROM delegations d JOIN delegation_grants g ON g.delegation_id = d.id
             WHERE {live} AND g.user_id = ?3 AND g.revoked_at IS NULL"
        ))?;
        stmt.query_map(params![own, now, caller.user_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?
    };
    let mut out: Vec<(i64, Vec<Scope>)> = Vec::new();
    for (principal, delegated, granted) in rows {
        let delegated = decode_scopes(&delegated);
        let scopes: Vec<Scope> = match granted {
            Some(g) => decode_scopes(&g).into_iter().filter(|s| delegated.contains(s)).collect(),
            None => delegated,
        };
        match out.iter_mut().find(|(p, _)| *p == principal) {
            Some((_, existing)) => {
                for s in scopes {
                    if !existing.contains(&s) {
                        existing.push(s);
                    }
                }
            }
            None => out.push((principal, scopes)),
        }
    }
    Ok(out)
}

/// The caller's own enterprise plus those delegating any of `scopes` to it now.
pub fn enterprises_for(
    c: &Connection,
    caller: &Caller,
    scopes: &[Scope],
    now: i64,
) -> Result<Vec<i64>, ApiError> {
    let mut ids = vec![caller.enterprise()?];
    for (principal, held) in principals_of(c, caller, now)? {
        if held.iter().any(|s| scopes.contains(s)) && !ids.contains(&principal) {
            ids.push(principal);
        }
    }
    Ok(ids)
}
