//! Instructions: list, read; counts by state. Assigning, cancelling and deciding are `workflow::http`.

use axum::{
    Json,
    extract::State,
    http::HeaderMap,
    response::{IntoResponse, Response},
};
use serde::Deserialize;

use super::{Instruction, InstructionSummary, StateCount};
use crate::{
    auth::Caller,
    domain::{InstructionState, time::rfc3339},
    error::{ApiError, ApiPath, ApiQuery, ErrorBody, invalid},
    monitoring::{
        OverdueRules,
        csv::{self, Table},
    },
    state::AppState,
};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub state: Option<InstructionState>,
    /// Assigned to this officer: a user id or a username.
    pub officer: Option<String>,
    /// At this site (4-digit unit code).
    pub site: Option<String>,
    /// Of this unit's subtree (4-digit unit code), by district or site.
    pub unit: Option<String>,
    /// Only overdue ones (`true`) or only those that are not (`false`); rules in docs/monitoring.md.
    pub overdue: Option<bool>,
    /// Created at or after (RFC 3339).
    pub from: Option<String>,
    /// Created before (RFC 3339).
    pub to: Option<String>,
    /// Page size, 1–500 (100).
    pub limit: Option<i64>,
    /// Rows to skip.
    pub offset: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/instructions", tag = "instructions", security(("bearer" = [])), params(ListQuery),
    responses((status = 200, body = Vec<InstructionSummary>,
        description = "summaries (the checklist is on the item); JSON, or CSV with `Accept: text/csv`"),
        (status = 422, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    let now = state.now_ms();
    let limit = crate::error::in_range("limit", q.limit, 100, 1, 500)?;
    let offset = crate::error::in_range("offset", q.offset, 0, 0, i64::MAX)?;
    let time = |field: &str, v: &Option<String>| -> Result<Option<i64>, ApiError> {
        v.as_deref().map(|s| rfc3339::parse(s).map_err(|m| invalid(field, "invalid_time", m))).transpose()
    };
    let (from, to) = (time("from", &q.from)?, time("to", &q.to)?);
    let overdue = OverdueRules::new(&state.settings.monitoring, now).any();
    let query = super::ListQuery {
        state: q.state,
        officer: q.officer,
        site: q.site,
        unit: q.unit,
        from,
        to,
        overdue: q.overdue,
    };
    let rows = state.db.read(move |c| super::list(c, &caller, query, overdue, (limit, offset), now)).await?;
    if csv::wanted(&headers) {
        let mut t = Table::new(&[
            "id",
            "inspection_no",
            "state",
            "unit_id",
            "site_id",
            "deadline",
            "due_at",
            "officers",
            "created_at",
        ]);
        for i in &rows {
            t.row([
                i.id.to_string(),
                i.inspection_no.clone(),
                i.state.as_str().to_string(),
                i.unit_id.to_string(),
                i.site_id.to_string(),
                rfc3339::to_string(i.deadline),
                csv::opt(i.due_at.map(rfc3339::to_string)),
                i.officers.iter().map(|o| o.to_string()).collect::<Vec<_>>().join(" "),
                rfc3339::to_string(i.created_at),
            ]);
        }
        return Ok(t.into_response("instructions.csv"));
    }
    Ok(Json(rows).into_response())
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
    let counts = state.db.read(move |c| super::state_counts(c, unit, from, to)).await?;
    Ok(Json(counts))
}
