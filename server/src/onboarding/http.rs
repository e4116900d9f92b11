//! Registration endpoints: public `POST /api/v1/registrations`, the registrant's own
//! `GET`/`PUT /api/v1/registration`, and the administrator's queue and decisions.

use axum::{Json, extract::State, http::StatusCode};
use serde::Deserialize;

use super::{Decision, NewRegistration, Registration, RegistrationDetails, store};
use crate::{
    auth::{Caller, throttle::ClientAddr},
    domain::{Paragraph, RegistrationState},
    error::{ApiError, ApiJson, ApiPath, ApiQuery, ErrorBody},
    state::AppState,
};

#[utoipa::path(post, path = "/api/v1/registrations", tag = "onboarding", request_body = NewRegistration,
    responses((status = 201, body = Registration, description = "registered, `pending`: the legal person may log in and follow it"),
        (status = 409, body = ErrorBody, description = "the customs code, credit code or username is taken"),
        (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody, description = "too many registrations from this address; `Retry-After` says when"),
        (status = 503, body = ErrorBody, description = "too many password hashes at once; `Retry-After` says when")))]
pub async fn register(
    State(state): State<AppState>,
    client: ClientAddr,
    ApiJson(req): ApiJson<NewRegistration>,
) -> Result<(StatusCode, Json<Registration>), ApiError> {
    // Everything that costs nothing first: the fields, then this address's rate; only then the hash.
    super::check_new(&req)?;
    let per_hour = state.settings.onboarding.registrations_per_hour;
    let client = client.to_string();
    let now = state.now_ms();
    let address = client.clone();
    state.db.read(move |c| Ok::<_, ApiError>(super::check_rate(c, &address, per_hour, now)?)).await?;
    let hash = state.passwords.hash(req.password.clone()).await?;
    let now = state.now_ms();
    let registration =
        state.db.write(move |tx| super::register(tx, now, &client, per_hour, &req, &hash)).await?;
    state.receipts_changed();
    Ok((StatusCode::CREATED, Json(registration)))
}

#[utoipa::path(get, path = "/api/v1/registration", tag = "onboarding", security(("bearer" = [])),
    responses((status = 200, body = Registration), (status = 404, body = ErrorBody)))]
pub async fn own(State(state): State<AppState>, caller: Caller) -> Result<Json<Registration>, ApiError> {
    let own = caller.enterprise()?;
    let r = state
        .db
        .read(move |c| {
            store::of_enterprise(c, own)?.ok_or_else(|| ApiError::not_found("a registration of yours"))
        })
        .await?;
    Ok(Json(r))
}

#[utoipa::path(put, path = "/api/v1/registration", tag = "onboarding", request_body = RegistrationDetails,
    security(("bearer" = [])),
    responses((status = 200, body = Registration, description = "amended and pending again"),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "`not_returned`: only a returned registration is amended"),
        (status = 422, body = ErrorBody)))]
pub async fn amend(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<RegistrationDetails>,
) -> Result<Json<Registration>, ApiError> {
    let own = caller.enterprise()?;
    let now = state.now_ms();
    let r = state.db.write(move |tx| super::resubmit(tx, now, caller.user_id, own, &req)).await?;
    state.receipts_changed();
    Ok(Json(r))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RegistrationQuery {
    /// Only registrations in this state (`pending` is the queue).
    pub state: Option<RegistrationState>,
    /// Cursor: registrations after this id.
    pub after: Option<i64>,
    /// At most this many (default 100, at most 500).
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/admin/registrations", tag = "onboarding", security(("bearer" = [])),
    params(RegistrationQuery), responses((status = 200, body = Vec<Registration>)))]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<RegistrationQuery>,
) -> Result<Json<Vec<Registration>>, ApiError> {
    let limit = crate::error::in_range("limit", q.limit, 100, 1, 500)?;
    let after = q.after.unwrap_or(0).max(0);
    Ok(Json(state.db.read(move |c| store::list(c, q.state, after, limit)).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    /// Required to return a registration: what the enterprise must correct.
    pub opinion: Option<Paragraph<2000>>,
}

async fn decide(
    state: AppState,
    caller: Caller,
    id: i64,
    decision: Decision,
    opinion: Option<Paragraph<2000>>,
) -> Result<Json<Registration>, ApiError> {
    let now = state.now_ms();
    let r = state
        .db
        .write(move |tx| super::decide(tx, now, caller.user_id, id, decision, opinion.as_deref()))
        .await?;
    state.receipts_changed();
    Ok(Json(r))
}

#[utoipa::path(post, path = "/api/v1/admin/registrations/{id}/approve", tag = "onboarding",
    request_body = DecisionRequest, security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = Registration), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`not_pending`")))]
pub async fn approve(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<DecisionRequest>,
) -> Result<Json<Registration>, ApiError> {
    decide(state, caller, id, Decision::Approve, req.opinion).await
}

#[utoipa::path(post, path = "/api/v1/admin/registrations/{id}/return", tag = "onboarding",
    request_body = DecisionRequest, security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = Registration), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`not_pending`"), (status = 422, body = ErrorBody)))]
pub async fn return_(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<DecisionRequest>,
) -> Result<Json<Registration>, ApiError> {
    decide(state, caller, id, Decision::Return, req.opinion).await
}
