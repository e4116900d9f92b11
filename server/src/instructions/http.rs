//! Instructions: list, read; counts by state. Assigning, cancelling and deciding are `workflow::http`.

use axum::{Json, extract::State};
use serde::Deserialize;

use super::{Instruction, StateCount};
use crate::{
    auth::Caller,
    domain::{InstructionState, time::rfc3339},
    error::{ApiError, ApiPath, ApiQuery, ErrorBody, invalid},
    state::AppState,
};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub state: Option<InstructionState>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/instructions", tag = "instructions", security(("bearer" = [])), params(ListQuery),
    responses((status = 200, body = Vec<Instruction>)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Vec<Instruction>>, ApiError> {
    let now = state.now_ms();
    let limit = q.limit.unwrap_or(100).clamp(1, 500);
    let offset = q.offset.unwrap_or(0).max(0);
    Ok(Json(state.db.read(move |c| super::list(c, &caller, q.state, limit, offset, now)).await?))
}

#[utoipa::path(get, path = "/api/v1/instructions/{id}", tag = "instructions", security(("bearer" = [])),
    params(("id" = i64, Path)), responses((status = 200, body = Instruction), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Instruction>, ApiError> {
    let now = state.now_ms();
    Ok(Json(state.db.read(move |c| super::visible(c, &caller, id, now)).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StatsQuery {
    /// Count what was created at or after this time (RFC 3339).
    pub from: Option<String>,
    /// ... and before this time.
    pub to: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/stats", tag = "instructions", security(("bearer" = [])), params(StatsQuery),
    responses((status = 200, body = Vec<StateCount>), (status = 422, body = ErrorBody)))]
pub async fn stats(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<StatsQuery>,
) -> Result<Json<Vec<StateCount>>, ApiError> {
    let parse = |field: &str, v: &Option<String>| -> Result<Option<i64>, ApiError> {
        v.as_deref().map(|s| rfc3339::parse(s).map_err(|m| invalid(field, "invalid_time", m))).transpose()
    };
    let from = parse("from", &q.from)?.unwrap_or(i64::MIN);
    let to = parse("to", &q.to)?.unwrap_or(i64::MAX);
    let unit = caller.unit()?;
    let counts = state.db.read(move |c| Ok(super::state_counts(c, unit, from, to)?)).await?;
    Ok(Json(counts))
}
