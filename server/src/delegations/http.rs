//! Delegations between enterprises, and grants to the agent's operators.

use axum::{Json, extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};

use super::{Delegation, Grant, NewDelegation};
use crate::{
    auth::Caller,
    domain::{CustomsCode, Scope, time::rfc3339},
    error::{ApiError, ApiJson, ApiPath, ErrorBody, invalid},
    orgs::store as orgs_store,
    state::AppState,
};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DelegationRequest {
    /// The agent enterprise's customs code.
    pub agent_customs_code: CustomsCode,
    pub scopes: Vec<Scope>,
    /// Defaults to now.
    #[serde(default, with = "rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub valid_from: Option<i64>,
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub valid_until: i64,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantRequest {
    /// One of the agent enterprise's operators.
    pub user_id: i64,
    pub scopes: Vec<Scope>,
}

#[utoipa::path(post, path = "/api/v1/delegations", tag = "delegations", request_body = DelegationRequest,
    security(("bearer" = [])),
    responses((status = 201, body = Delegation), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<DelegationRequest>,
) -> Result<(StatusCode, Json<Delegation>), ApiError> {
    let scopes = super::scope_set(&req.scopes)?;
    let now = state.now_ms();
    let d = state
        .db
        .write(move |tx| -> Result<_, ApiError> {
            let agent =
                orgs_store::nameable_enterprise(tx, req.agent_customs_code.as_str())?.ok_or_else(|| {
                    invalid("agent_customs_code", "unknown_enterprise", "no enterprise has this customs code")
                })?;
            let new = NewDelegation {
                agent_id: agent.id,
                scopes,
                valid_from: req.valid_from.unwrap_or(now),
                valid_until: req.valid_until,
            };
            Ok(super::create(tx, now, &caller, new)?)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(d)))
}

#[utoipa::path(get, path = "/api/v1/delegations", tag = "delegations", security(("bearer" = [])),
    responses((status = 200, body = Vec<Delegation>)))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Vec<Delegation>>, ApiError> {
    let own = caller.enterprise()?;
    Ok(Json(state.db.read(move |c| super::of_enterprise(c, own)).await?))
}

#[utoipa::path(post, path = "/api/v1/delegations/{id}/revoke", tag = "delegations", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = Delegation), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Delegation>, ApiError> {
    let now = state.now_ms();
    Ok(Json(state.db.write(move |tx| super::revoke(tx, now, &caller, id)).await?))
}

#[utoipa::path(post, path = "/api/v1/delegations/{id}/grants", tag = "delegations", request_body = GrantRequest,
    security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 201, body = Grant), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn grant(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<GrantRequest>,
) -> Result<(StatusCode, Json<Grant>), ApiError> {
    let scopes = super::scope_set(&req.scopes)?;
    let now = state.now_ms();
    let g = state.db.write(move |tx| super::grant(tx, now, &caller, id, req.user_id, scopes)).await?;
    Ok((StatusCode::CREATED, Json(g)))
}

#[utoipa::path(get, path = "/api/v1/delegations/{id}/grants", tag = "delegations", security(("bearer" = [])),
    params(("id" = i64, Path)), responses((status = 200, body = Vec<Grant>), (status = 404, body = ErrorBody)))]
pub async fn grants(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Vec<Grant>>, ApiError> {
    let own = caller.enterprise()?;
    let grants = state
        .db
        .read(move |c| -> Result<_, ApiError> {
            super::get(c, id)?
                .filter(|d| d.principal_id == own || d.agent_id == own)
                .ok_or_else(|| ApiError::not_found("the delegation"))?;
            Ok(super::grants_of(c, id)?)
        })
        .await?;
    Ok(Json(grants))
}

/// One delegation as the principal's legal person reviews it: the agent and who there holds what.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DelegateAccess {
    pub delegation: Delegation,
    pub agent_customs_code: String,
    pub agent_name: String,
    /// Whether it is in force now (started, not ended, not revoked).
    pub live: bool,
    /// The agent's operators the agent's legal person passed scopes on to.
    pub grants: Vec<Grant>,
}

/// "Who can act on my data": every account of the enterprise and every delegation with its grants.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WhoCanAct {
    pub accounts: Vec<crate::orgs::User>,
    pub delegations: Vec<DelegateAccess>,
}

#[utoipa::path(get, path = "/api/v1/enterprise/access", tag = "enterprise", security(("bearer" = [])),
    responses((status = 200, body = WhoCanAct)))]
pub async fn who_can_act(State(state): State<AppState>, caller: Caller) -> Result<Json<WhoCanAct>, ApiError> {
    let own = caller.enterprise()?;
    let now = state.now_ms();
    let answer = state
        .db
        .read(move |c| -> Result<_, ApiError> {
            let accounts = orgs_store::enterprise_users(c, own)?;
            let mut delegations = Vec::new();
            for d in super::of_enterprise(c, own)?.into_iter().filter(|d| d.principal_id == own) {
                let agent = orgs_store::enterprise(c, d.agent_id)?
                    .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("agent {} vanished", d.agent_id)))?;
                let live = d.revoked_at.is_none() && d.valid_from <= now && now < d.valid_until;
                let grants = super::grants_of(c, d.id)?;
                delegations.push(DelegateAccess {
                    agent_customs_code: agent.customs_code,
                    agent_name: agent.name,
                    live,
                    grants,
                    delegation: d,
                });
            }
            Ok(WhoCanAct { accounts, delegations })
        })
        .await?;
    Ok(Json(answer))
}
