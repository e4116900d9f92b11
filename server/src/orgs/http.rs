//! Units, enterprises and accounts: the administrator's API and the legal person's operator management.

use axum::{Json, extract::State, http::StatusCode};
use serde::Deserialize;

use super::{Enterprise, NewEnterprise, NewUnit, NewUser, Unit, User, store};
use crate::{
    audit::Actor,
    auth::{Caller, password},
    domain::{AccountStatus, Line, Paragraph, Role, UserStatus, events::AccountEvent, time::rfc3339},
    error::{ApiError, ApiJson, ApiPath, ErrorBody, invalid},
    state::AppState,
};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    pub status: UserStatus,
    pub reason: Paragraph<2000>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidityChange {
    /// New end of validity; `null` = no end.
    #[serde(with = "rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub valid_until: Option<i64>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SigningKey {
    /// Standard base64 of the 32-byte Ed25519 public key.
    pub public_key: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOperator {
    pub username: String,
    pub display_name: Line<200>,
    pub password: String,
    #[serde(default, with = "rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub valid_until: Option<i64>,
}

fn actor(caller: &Caller) -> Actor {
    Actor::User(caller.user_id)
}

#[utoipa::path(post, path = "/api/v1/admin/units", tag = "admin", request_body = NewUnit, security(("bearer" = [])),
    responses((status = 201, body = Unit), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_unit(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<NewUnit>,
) -> Result<(StatusCode, Json<Unit>), ApiError> {
    let now = state.now_ms();
    let unit = state.db.write(move |tx| super::create_unit(tx, now, &actor(&caller), req)).await?;
    Ok((StatusCode::CREATED, Json(unit)))
}

#[utoipa::path(post, path = "/api/v1/admin/enterprises", tag = "admin", request_body = NewEnterprise,
    security(("bearer" = [])),
    responses((status = 201, body = Enterprise), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_enterprise(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<NewEnterprise>,
) -> Result<(StatusCode, Json<Enterprise>), ApiError> {
    let now = state.now_ms();
    let e = state.db.write(move |tx| super::create_enterprise(tx, now, &actor(&caller), req)).await?;
    Ok((StatusCode::CREATED, Json(e)))
}

#[utoipa::path(post, path = "/api/v1/admin/users", tag = "admin", request_body = NewUser, security(("bearer" = [])),
    responses((status = 201, body = User), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<NewUser>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    super::check_username(&req.username)?;
    password::check_strength(&req.password)?;
    let hash = state.passwords.hash(req.password.clone()).await?;
    let now = state.now_ms();
    let user = state
        .db
        .write(move |tx| super::create_user(tx, now, &actor(&caller), &req, &hash, store::Start::ACTIVE))
        .await?;
    Ok((StatusCode::CREATED, Json(user)))
}

#[utoipa::path(get, path = "/api/v1/admin/users", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = Vec<User>)))]
pub async fn list_users(State(state): State<AppState>) -> Result<Json<Vec<User>>, ApiError> {
    Ok(Json(state.db.read(|c| Ok::<_, ApiError>(store::all_users(c)?)).await?))
}

#[utoipa::path(post, path = "/api/v1/admin/users/{id}/status", tag = "admin", request_body = StatusChange,
    security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = User), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn set_user_status(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<StatusChange>,
) -> Result<Json<User>, ApiError> {
    require_reason(&req.reason)?;
    let now = state.now_ms();
    Ok(Json(
        state
            .db
            .write(move |tx| super::set_user_status(tx, now, &actor(&caller), id, req.status, &req.reason))
            .await?,
    ))
}

#[utoipa::path(put, path = "/api/v1/admin/users/{id}/signing-key", tag = "admin", request_body = SigningKey,
    security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = User), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_signing_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<SigningKey>,
) -> Result<Json<User>, ApiError> {
    let now = state.now_ms();
    Ok(Json(
        state
            .db
            .write(move |tx| super::set_signing_key(tx, now, &actor(&caller), id, &req.public_key))
            .await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/units", tag = "organisation", security(("bearer" = [])),
    responses((status = 200, body = Vec<Unit>)))]
pub async fn list_units(State(state): State<AppState>, caller: Caller) -> Result<Json<Vec<Unit>>, ApiError> {
    let units = state.db.read(move |c| super::visible_units(c, &caller)).await?;
    Ok(Json(units))
}

#[utoipa::path(get, path = "/api/v1/enterprises/{id}", tag = "organisation", security(("bearer" = [])),
    params(("id" = i64, Path)), responses((status = 200, body = Enterprise), (status = 404, body = ErrorBody)))]
pub async fn get_enterprise(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Enterprise>, ApiError> {
    let now = state.now_ms();
    let e = state.db.read(move |c| super::visible_enterprise(c, &caller, id, now)).await?;
    Ok(Json(e))
}

#[utoipa::path(get, path = "/api/v1/enterprise/operators", tag = "enterprise", security(("bearer" = [])),
    responses((status = 200, body = Vec<User>)))]
pub async fn list_operators(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<User>>, ApiError> {
    let own = caller.enterprise()?;
    Ok(Json(state.db.read(move |c| Ok::<_, ApiError>(store::enterprise_users(c, own)?)).await?))
}

#[utoipa::path(post, path = "/api/v1/enterprise/operators", tag = "enterprise", request_body = NewOperator,
    security(("bearer" = [])),
    responses((status = 201, body = User), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_operator(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<NewOperator>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    super::check_username(&req.username)?;
    password::check_strength(&req.password)?;
    let own = caller.enterprise()?;
    let hash = state.passwords.hash(req.password.clone()).await?;
    let now = state.now_ms();
    let user = state
        .db
        .write(move |tx| -> Result<_, ApiError> {
            let enterprise =
                store::enterprise(tx, own)?.ok_or_else(|| ApiError::not_found("your enterprise"))?;
            let new = NewUser {
                username: req.username,
                display_name: req.display_name,
                password: String::new(),
                role: Role::EnterpriseOperator,
                unit_code: None,
                enterprise_code: Some(
                    crate::domain::CustomsCode::parse(&enterprise.customs_code).map_err(|e| {
                        ApiError::Internal(anyhow::anyhow!("stored customs code invalid: {e}"))
                    })?,
                ),
                valid_until: req.valid_until,
            };
            // Pending until the legal person confirms it, and its first login may only change the
            // password the legal person chose.
            let start = store::Start { status: AccountStatus::Pending, must_change_password: true };
            let user = super::create_user(tx, now, &actor(&caller), &new, &hash, start)?;
            super::record_operator(tx, now, &actor(&caller), &user, AccountEvent::OperatorCreated)?;
            Ok(user)
        })
        .await?;
    state.receipts_changed();
    Ok((StatusCode::CREATED, Json(user)))
}

#[utoipa::path(post, path = "/api/v1/enterprise/operators/{id}/confirm", tag = "enterprise",
    security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = User, description = "the operator is active and may log in"),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "`not_pending`: the operator is not waiting for confirmation")))]
pub async fn confirm_operator(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<User>, ApiError> {
    let now = state.now_ms();
    let user = state
        .db
        .write(move |tx| {
            super::own_operator(tx, &caller, id)?;
            super::confirm_operator(tx, now, &actor(&caller), id)
        })
        .await?;
    state.receipts_changed();
    Ok(Json(user))
}

fn require_reason(reason: &str) -> Result<(), ApiError> {
    if reason.trim().is_empty() {
        return Err(invalid("reason", "missing_reason", "say why the status changes"));
    }
    Ok(())
}

#[utoipa::path(post, path = "/api/v1/enterprise/operators/{id}/status", tag = "enterprise",
    request_body = StatusChange, security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = User), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn set_operator_status(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<StatusChange>,
) -> Result<Json<User>, ApiError> {
    require_reason(&req.reason)?;
    let now = state.now_ms();
    let user = state
        .db
        .write(move |tx| {
            super::own_operator(tx, &caller, id)?;
            super::set_user_status(tx, now, &actor(&caller), id, req.status, &req.reason)
        })
        .await?;
    Ok(Json(user))
}

#[utoipa::path(post, path = "/api/v1/enterprise/operators/{id}/validity", tag = "enterprise",
    request_body = ValidityChange, security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = User), (status = 404, body = ErrorBody)))]
pub async fn set_operator_validity(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<ValidityChange>,
) -> Result<Json<User>, ApiError> {
    let now = state.now_ms();
    let user = state
        .db
        .write(move |tx| {
            super::own_operator(tx, &caller, id)?;
            super::set_user_validity(tx, now, &actor(&caller), id, req.valid_until)
        })
        .await?;
    Ok(Json(user))
}

#[utoipa::path(put, path = "/api/v1/enterprise/operators/{id}/signing-key", tag = "enterprise",
    request_body = SigningKey, security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = User), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn set_operator_signing_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<SigningKey>,
) -> Result<Json<User>, ApiError> {
    let now = state.now_ms();
    let user = state
        .db
        .write(move |tx| {
            super::own_operator(tx, &caller, id)?;
            super::set_signing_key(tx, now, &actor(&caller), id, &req.public_key)
        })
        .await?;
    Ok(Json(user))
}
