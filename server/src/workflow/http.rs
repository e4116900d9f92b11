//! The supervisor's workflow endpoints: assign, cancel, approve, return, resolve a conflict,
//! force-release, disposal done.
//! Each runs one transaction, then wakes receipt long-polls: every one of them tells the enterprise.

use axum::{Json, extract::State};
use serde::Deserialize;

use crate::{
    auth::Caller,
    domain::{Line, Paragraph, time::rfc3339},
    error::{ApiError, ApiJson, ApiPath, ErrorBody},
    instructions::Instruction,
    state::AppState,
};

/// Runs `f` in one write transaction and, once it committed, notifies the listeners.
async fn commit<F>(state: &AppState, f: F) -> Result<Json<Instruction>, ApiError>
where
    F: FnOnce(&crate::db::Tx<'_>) -> Result<Instruction, ApiError> + Send + 'static,
{
    let i = state.db.write(f).await?;
    state.receipts_changed();
    Ok(Json(i))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignRequest {
    /// One to four field officers of your unit's subtree (by id, by username, or both; `GET
    /// /api/v1/officers` lists them); replaces any earlier assignment.
    #[serde(default)]
    pub officer_ids: Vec<i64>,
    #[serde(default)]
    pub officers: Vec<crate::domain::Line<64>>,
}

/// The ids of officers named by username; a name that is no user is refused like a wrong id.
fn officer_ids_of(tx: &crate::db::Tx<'_>, req: &AssignRequest) -> Result<Vec<i64>, ApiError> {
    // Checked again after de-duplication; this bound only keeps a long list from costing lookups.
    if req.officer_ids.len() + req.officers.len() > 4 * crate::instructions::MAX_OFFICERS {
        return Err(crate::error::invalid("officers", "officer_count", "assign 1 to 4 officers"));
    }
    let mut ids = req.officer_ids.clone();
    for name in &req.officers {
        let user = crate::orgs::store::user_by_name(tx, name.trim())?.ok_or_else(|| {
            crate::error::invalid(
                "officers",
                "not_an_officer_here",
                format!("{:?} is not an active field officer of your unit", name.trim()),
            )
        })?;
        ids.push(user.id);
    }
    Ok(ids)
}

#[utoipa::path(post, path = "/api/v1/instructions/{id}/assign", tag = "instructions", request_body = AssignRequest,
    security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = Instruction), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn assign(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<AssignRequest>,
) -> Result<Json<Instruction>, ApiError> {
    let now = state.now_ms();
    commit(&state, move |tx| {
        let officers = officer_ids_of(tx, &req)?;
        Ok(super::assign(tx, now, &caller, id, &officers)?)
    })
    .await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonRequest {
    pub reason: Paragraph<2000>,
}

#[utoipa::path(post, path = "/api/v1/instructions/{id}/cancel", tag = "instructions", request_body = ReasonRequest,
    security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = Instruction), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<ReasonRequest>,
) -> Result<Json<Instruction>, ApiError> {
    super::required_text("reason", "missing_reason", &req.reason, "why the instruction is cancelled")?;
    let now = state.now_ms();
    commit(&state, move |tx| Ok(super::cancel(tx, now, &caller, id, req.reason.trim())?)).await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeadlineRequest {
    /// The new deadline (RFC 3339), later than the current one.
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub deadline: i64,
    /// Why; the enterprise reads it on its receipt.
    pub reason: Paragraph<2000>,
}

/// Customs extends the deadline (with a reason): slots up to the new deadline can be booked. Receipt to the
/// enterprise, audit entry, and the record's copy of the deadline follows.
#[utoipa::path(post, path = "/api/v1/instructions/{id}/deadline", tag = "instructions", request_body = DeadlineRequest,
    security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = Instruction), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn extend_deadline(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<DeadlineRequest>,
) -> Result<Json<Instruction>, ApiError> {
    super::required_text("reason", "missing_reason", &req.reason, "why the deadline is extended")?;
    let now = state.now_ms();
    commit(&state, move |tx| {
        Ok(super::extend_deadline(tx, now, &caller, id, req.deadline, req.reason.trim())?)
    })
    .await
}

#[utoipa::path(post, path = "/api/v1/instructions/{id}/approve", tag = "workflow",
    security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = Instruction), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn approve(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Instruction>, ApiError> {
    let now = state.now_ms();
    commit(&state, move |tx| Ok(super::approve(tx, now, &caller, id)?)).await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnRequest {
    /// What the officers must do; they read it on their handhelds.
    pub opinion: Paragraph<2000>,
}

#[utoipa::path(post, path = "/api/v1/instructions/{id}/return", tag = "workflow", request_body = ReturnRequest,
    security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = Instruction), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn return_result(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<ReturnRequest>,
) -> Result<Json<Instruction>, ApiError> {
    super::required_text("opinion", "missing_opinion", &req.opinion, "what the officers must redo")?;
    let now = state.now_ms();
    commit(&state, move |tx| Ok(super::return_result(tx, now, &caller, id, req.opinion.trim())?)).await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    /// The conflicted field, as the record view's `conflicts[].path` names it: `checks.{item}.result`,
    /// `checks.{item}.value` (a measurement), `verdict.value` or `verdict.disposal`.
    pub path: Line<200>,
    /// The chosen value: a check result (`"pass"`, `"fail"`, `"not_applicable"`), a measurement
    /// (`{"value": -18.5, "unit": "°C"}`) or a verdict (`{"value": "non_conforming", "disposal": "return"}`).
    #[schema(value_type = Object)]
    pub value: serde_json::Value,
    /// Why this value; kept in the audit entry.
    pub reason: Paragraph<2000>,
}

#[utoipa::path(post, path = "/api/v1/instructions/{id}/resolve", tag = "workflow", request_body = ResolveRequest,
    security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = Instruction), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "no such open conflict, or the record is sealed"),
        (status = 422, body = ErrorBody)))]
pub async fn resolve(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<ResolveRequest>,
) -> Result<Json<Instruction>, ApiError> {
    super::required_text("reason", "missing_reason", &req.reason, "why this value is the right one")?;
    let now = state.now_ms();
    commit(&state, move |tx| {
        Ok(super::resolve(tx, now, &caller, id, &req.path, &req.value, req.reason.trim())?)
    })
    .await
}

#[utoipa::path(post, path = "/api/v1/instructions/{id}/force-release", tag = "workflow", request_body = ReasonRequest,
    security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = Instruction), (status = 403, body = ErrorBody, description = "not a strong login"),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn force_release(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<ReasonRequest>,
) -> Result<Json<Instruction>, ApiError> {
    super::required_text("reason", "missing_reason", &req.reason, "why the goods are released by force")?;
    let now = state.now_ms();
    commit(&state, move |tx| Ok(super::force_release(tx, now, &caller, id, req.reason.trim())?)).await
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisposalDoneRequest {
    /// How the disposal was carried out, if worth saying.
    #[serde(default)]
    pub note: Option<Paragraph<2000>>,
}

#[utoipa::path(post, path = "/api/v1/instructions/{id}/disposal-done", tag = "workflow",
    request_body = DisposalDoneRequest, security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = Instruction), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn disposal_done(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<DisposalDoneRequest>,
) -> Result<Json<Instruction>, ApiError> {
    let now = state.now_ms();
    let note = req.note.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
    commit(&state, move |tx| Ok(super::disposal_done(tx, now, &caller, id, note.as_deref())?)).await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpinionRequest {
    /// Why the decision is revoked; the enterprise reads it in its receipt.
    pub opinion: Paragraph<2000>,
}

/// Revoke an application's approval while its instruction is still `issued` (not booked, not assigned):
/// the instruction is cancelled and the application is `submitted` again.
#[utoipa::path(post, path = "/api/v1/applications/{id}/revoke-approval", tag = "workflow", request_body = OpinionRequest,
    security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = crate::applications::Application), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the approval has consequences already, or sealed evidence"),
        (status = 422, body = ErrorBody)))]
pub async fn revoke_approval(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<OpinionRequest>,
) -> Result<Json<crate::applications::Application>, ApiError> {
    super::required_text("opinion", "missing_opinion", &req.opinion, "why the approval is revoked")?;
    let now = state.now_ms();
    let app =
        state.db.write(move |tx| super::revoke_approval(tx, now, &caller, id, req.opinion.trim())).await?;
    state.receipts_changed();
    Ok(Json(app))
}
