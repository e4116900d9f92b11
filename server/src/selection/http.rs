//! The stored selection decision, for customs staff.

use axum::{Json, extract::State};

use super::StoredSelection;
use crate::{
    applications,
    auth::Caller,
    error::{ApiError, ApiPath, ErrorBody},
    state::AppState,
};

#[utoipa::path(get, path = "/api/v1/applications/{id}/selection", tag = "review", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = StoredSelection), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<StoredSelection>, ApiError> {
    let now = state.now_ms();
    let s = state
        .db
        .read(move |c| {
            applications::filing::load_visible(c, &caller, id, now)?;
            super::stored(c, id)?.ok_or_else(|| ApiError::not_found("a selection for this application"))
        })
        .await?;
    Ok(Json(s))
}
