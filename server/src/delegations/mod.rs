//! Delegation: an enterprise's legal person lets an agent enterprise (报关行) act for it in some scopes,
//! for a validity period; the agent's legal person passes scopes on to its own operators as grants.
//!
//! Validity is checked at use time against the clock, so an expired delegation stops working by itself;
//! revoking a delegation revokes every grant under it in the same transaction.
//!
//! # Layout
//! - this file: the rules: who may delegate, grant and revoke, and `may_act_for`, the one scoping check
//!   other modules call.
//! - [`error`]: [`DelegationError`], why a step was refused (mapped to HTTP in `error.rs`).
//! - [`store`]: the module's SQL, answering `db::StoreError`.
//! - [`http`]: the handlers.

pub mod error;
pub mod http;
pub mod store;

pub use error::DelegationError;

use std::collections::BTreeSet;

use crate::db::{Conn, Tx};
use serde::Serialize;
use serde_json::json;

use crate::{
    audit::{self, Actor},
    domain::Principal,
    domain::{
        Role, Scope,
        time::{Period, rfc3339},
    },
    error::StoreError,
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

pub fn scope_set(scopes: &[Scope]) -> Result<BTreeSet<Scope>, DelegationError> {
    let set: BTreeSet<Scope> = scopes.iter().copied().collect();
    if set.is_empty() {
        return Err(DelegationError::MissingScopes);
    }
    Ok(set)
}

pub use store::{get, grants_of, of_enterprise};

pub struct NewDelegation {
    pub agent_id: i64,
    pub scopes: BTreeSet<Scope>,
    pub valid_from: i64,
    pub valid_until: i64,
}

pub fn create(
    tx: &Tx<'_>,
    now: i64,
    caller: &Principal,
    new: NewDelegation,
) -> Result<Delegation, DelegationError> {
    let principal = caller.enterprise()?;
    if new.agent_id == principal {
        return Err(DelegationError::SelfDelegation);
    }
    Period::new(new.valid_from, Some(new.valid_until), now)?;
    let row = store::NewRow {
        principal_id: principal,
        agent_id: new.agent_id,
        scopes: &new.scopes,
        valid_from: new.valid_from,
        valid_until: new.valid_until,
        created_by: caller.user_id,
    };
    let id = store::insert(tx, now, row)?;
    audit::append(
        tx,
        now,
        &Actor::User(caller.user_id),
        audit::Action::DelegationGrant,
        &audit::Subject::Delegation(id),
        json!({"principal": principal, "agent": new.agent_id, "scopes": store::encode_scopes(&new.scopes),
               "valid_from": new.valid_from, "valid_until": new.valid_until}),
    )?;
    Ok(store::existing(tx, id)?)
}

/// Revokes a delegation the caller's enterprise gave, and with it every grant under it.
pub fn revoke(tx: &Tx<'_>, now: i64, caller: &Principal, id: i64) -> Result<Delegation, DelegationError> {
    let d = get(tx, id)?
        .filter(|d| Some(d.principal_id) == caller.enterprise_id)
        .ok_or(DelegationError::NotFound)?;
    if d.revoked_at.is_some() {
        return Err(DelegationError::AlreadyRevoked);
    }
    let grants = store::revoke(tx, now, id)?;
    audit::append(
        tx,
        now,
        &Actor::User(caller.user_id),
        audit::Action::DelegationRevoke,
        &audit::Subject::Delegation(id),
        json!({"grants_revoked": grants}),
    )?;
    Ok(store::existing(tx, id)?)
}

/// The agent's legal person passes (some of) a delegation's scopes on to one of its own operators.
pub fn grant(
    tx: &Tx<'_>,
    now: i64,
    caller: &Principal,
    delegation_id: i64,
    user_id: i64,
    scopes: BTreeSet<Scope>,
) -> Result<Grant, DelegationError> {
    let d = get(tx, delegation_id)?
        .filter(|d| Some(d.agent_id) == caller.enterprise_id)
        .ok_or(DelegationError::NotFound)?;
    if !is_live(&d, now) {
        return Err(DelegationError::Inactive);
    }
    let extra: Vec<&'static str> =
        scopes.iter().filter(|s| !d.scopes.contains(s)).map(|s| s.as_str()).collect();
    if !extra.is_empty() {
        return Err(DelegationError::ScopeNotDelegated(extra));
    }
    let user = crate::orgs::store::user(tx, user_id)
        .map_err(StoreError::from)?
        .filter(|u| u.enterprise_id == Some(d.agent_id))
        .ok_or(DelegationError::UnknownOperator)?;
    let id = store::insert_grant(tx, now, delegation_id, user.id, &scopes, caller.user_id)?;
    audit::append(
        tx,
        now,
        &Actor::User(caller.user_id),
        audit::Action::DelegationSubgrant,
        &audit::Subject::Grant(id),
        json!({"delegation": delegation_id, "user": user.id, "scopes": store::encode_scopes(&scopes)}),
    )?;
    Ok(store::grant(tx, id)?)
}

fn is_live(d: &Delegation, now: i64) -> bool {
    d.revoked_at.is_none() && d.valid_from <= now && now < d.valid_until
}

/// May the caller act for `enterprise_id` in `scope` now? Own enterprise: yes. An agent's legal person:
/// through a live delegation with that scope. An agent's operator: through a live grant under one.
pub fn may_act_for(
    c: &Conn,
    caller: &Principal,
    enterprise_id: i64,
    scope: Scope,
    now: i64,
) -> Result<bool, StoreError> {
    let Some(own) = caller.enterprise_id else { return Ok(false) };
    if own == enterprise_id {
        return Ok(true);
    }
    // The agent's legal person acts under the delegation itself; an operator only through a grant.
    let operator = (caller.role != Role::EnterpriseLegal).then_some(caller.user_id);
    let found = store::live_for(c, enterprise_id, own, scope, now, operator)?;
    Ok(found)
}

/// Enterprises the caller may see at all: its own plus those delegating to it in any scope.
pub fn may_see(c: &Conn, caller: &Principal, enterprise_id: i64, now: i64) -> Result<bool, StoreError> {
    for scope in Scope::ALL {
        if may_act_for(c, caller, enterprise_id, *scope, now)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Enterprises the caller may act for through delegation now, with the scopes it holds for each.
pub fn principals_of(c: &Conn, caller: &Principal, now: i64) -> Result<Vec<(i64, Vec<Scope>)>, StoreError> {
    let Some(own) = caller.enterprise_id else { return Ok(Vec::new()) };
    let operator = (caller.role != Role::EnterpriseLegal).then_some(caller.user_id);
    let rows = store::live_to(c, own, now, operator)?;
    let mut out: Vec<(i64, Vec<Scope>)> = Vec::new();
    for store::Live { principal, delegated, granted } in rows {
        let scopes: Vec<Scope> = match granted {
            Some(g) => g.into_iter().filter(|s| delegated.contains(s)).collect(),
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
    c: &Conn,
    caller: &Principal,
    scopes: &[Scope],
    now: i64,
) -> Result<Vec<i64>, DelegationError> {
    let mut ids = vec![caller.enterprise()?];
    for (principal, held) in principals_of(c, caller, now)? {
        if held.iter().any(|s| scopes.contains(s)) && !ids.contains(&principal) {
            ids.push(principal);
        }
    }
    Ok(ids)
}
