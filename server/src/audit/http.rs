//! Reading and verifying the audit log (administrators).

use axum::{Json, extract::State};
use serde::Deserialize;

use super::AuditEntry;
use crate::{
    error::{ApiError, ApiQuery},
    state::AppState,
};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Entries after this sequence number.
    pub after: Option<i64>,
    /// At most this many entries (default 100, at most 1000).
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/admin/audit", tag = "admin", security(("bearer" = [])), params(AuditQuery),
    responses((status = 200, body = Vec<AuditEntry>)))]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    let after = q.after.unwrap_or(0);
    let limit = crate::error::in_range("limit", q.limit, 100, 1, 1000)?;
    let entries = state.db.read(move |c| super::entries(c, after, limit)).await?;
    Ok(Json(entries))
}

#[utoipa::path(get, path = "/api/v1/admin/audit/verify", tag = "admin", security(("bearer" = [])),
    responses((status = 200, description = "`{entries, first_broken}`; `first_broken` is null when the chain holds")))]
pub async fn verify(State(state): State<AppState>) -> Result<Json<super::ChainReport>, ApiError> {
    Ok(Json(state.db.read(super::verify).await?))
}
