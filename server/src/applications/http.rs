//! Application endpoints for enterprises (file, amend, submit, copy) and customs staff (read).

use axum::{Json, extract::State, http::StatusCode};
use serde::Deserialize;

use super::{
    Application, ApplicationContent,
    filing::{self, amend, create_draft, load_visible, require_enterprise, submit_in},
    store,
};
use crate::{
    auth::Caller,
    domain::{ApplicationState, time::rfc3339},
    error::{ApiError, ApiJson, ApiPath, ApiQuery, ErrorBody, invalid},
    state::AppState,
};

#[utoipa::path(post, path = "/api/v1/applications", tag = "applications", request_body = ApplicationContent,
    security(("bearer" = [])),
    responses((status = 201, body = Application), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(content): ApiJson<ApplicationContent>,
) -> Result<(StatusCode, Json<Application>), ApiError> {
    require_enterprise(&caller)?;
    let now = state.now_ms();
    let app = state.db.write(move |tx| create_draft(tx, now, &caller, content, None)).await?;
    state.receipts_changed();
    Ok((StatusCode::CREATED, Json(app)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub state: Option<ApplicationState>,
    pub inspection_no: Option<String>,
    /// Created at or after (RFC 3339).
    pub from: Option<String>,
    /// Created before (RFC 3339).
    pub to: Option<String>,
    /// Only this enterprise (one of yours, or one you act for).
    pub enterprise_id: Option<i64>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/applications", tag = "applications", security(("bearer" = [])), params(ListQuery),
    responses((status = 200, body = Vec<Application>), (status = 422, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Vec<Application>>, ApiError> {
    let parse = |field: &str, v: &Option<String>| -> Result<Option<i64>, ApiError> {
        v.as_deref().map(|s| rfc3339::parse(s).map_err(|m| invalid(field, "invalid_time", m))).transpose()
    };
    let from = parse("from", &q.from)?;
    let to = parse("to", &q.to)?;
    let now = state.now_ms();
    let apps = state
        .db
        .read(move |c| -> Result<_, ApiError> {
            if let Some(no) = &q.inspection_no {
                // A typo is told as a typo, not answered with an empty list.
                filing::typed_inspection_no(c, no)?;
            }
            let filter = store::Filter {
                state: q.state.map(|s| s.as_str().to_string()),
                inspection_no: q.inspection_no,
                from,
                to,
                enterprise: q.enterprise_id,
                limit: crate::error::in_range("limit", q.limit, 100, 1, 500)?,
                offset: q.offset.unwrap_or(0).max(0),
                ..Default::default()
            };
            Ok(filing::list_visible(c, &caller, filter, now)?)
        })
        .await?;
    Ok(Json(apps))
}

#[utoipa::path(get, path = "/api/v1/applications/{id}", tag = "applications", security(("bearer" = [])),
    params(("id" = i64, Path)), responses((status = 200, body = Application), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Application>, ApiError> {
    let now = state.now_ms();
    Ok(Json(state.db.read(move |c| load_visible(c, &caller, id, now)).await?))
}

#[utoipa::path(get, path = "/api/v1/applications/{id}/e-record", tag = "applications", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = super::ERecord), (status = 404, body = ErrorBody, description = "not released (yet)")))]
pub async fn e_record(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<super::ERecord>, ApiError> {
    let now = state.now_ms();
    let record = state
        .db
        .read(move |c| -> Result<_, ApiError> {
            load_visible(c, &caller, id, now)?;
            super::e_record(c, id)?.ok_or_else(|| ApiError::not_found("the electronic record"))
        })
        .await?;
    Ok(Json(record))
}

#[utoipa::path(put, path = "/api/v1/applications/{id}", tag = "applications", request_body = ApplicationContent,
    security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = Application), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(content): ApiJson<ApplicationContent>,
) -> Result<Json<Application>, ApiError> {
    require_enterprise(&caller)?;
    let now = state.now_ms();
    let app = state.db.write(move |tx| amend(tx, now, &caller, id, content)).await?;
    state.receipts_changed();
    Ok(Json(app))
}

#[utoipa::path(post, path = "/api/v1/applications/{id}/submit", tag = "applications", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = Application), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, description = "rules broken; `details.violations` lists each with its field", body = ErrorBody)))]
pub async fn submit(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Application>, ApiError> {
    require_enterprise(&caller)?;
    let now = state.now_ms();
    let deadline = state.settings.workflow.inspection_deadline_ms();
    let year = filing_year(&state)?;
    let app = state.db.write(move |tx| submit_in(tx, now, &caller, id, year, deadline)).await?;
    state.receipts_changed();
    Ok(Json(app))
}

/// The year inspection numbers are counted in: the calendar year in China, where the districts are.
pub fn filing_year(state: &AppState) -> Result<i16, ApiError> {
    Ok(state
        .clock
        .now()
        .to_zoned(jiff::tz::TimeZone::get("Asia/Shanghai").map_err(anyhow::Error::from)?)
        .year())
}

#[utoipa::path(post, path = "/api/v1/applications/{id}/copy", tag = "applications", security(("bearer" = [])),
    params(("id" = i64, Path)), responses((status = 201, body = Application), (status = 404, body = ErrorBody)))]
pub async fn copy(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<(StatusCode, Json<Application>), ApiError> {
    require_enterprise(&caller)?;
    let now = state.now_ms();
    let app = state.db.write(move |tx| Ok::<_, ApiError>(filing::copy(tx, now, &caller, id)?)).await?;
    state.receipts_changed();
    Ok((StatusCode::CREATED, Json(app)))
}

#[utoipa::path(get, path = "/api/v1/applications/{id}/history", tag = "applications", security(("bearer" = [])),
    params(("id" = i64, Path)), responses((status = 200, body = Vec<store::HistoryEntry>), (status = 404, body = ErrorBody)))]
pub async fn history(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Vec<store::HistoryEntry>>, ApiError> {
    let now = state.now_ms();
    let h = state
        .db
        .read(move |c| -> Result<_, ApiError> {
            load_visible(c, &caller, id, now)?;
            Ok::<_, ApiError>(store::history(c, id)?)
        })
        .await?;
    Ok(Json(h))
}
