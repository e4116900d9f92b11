//! Review endpoints: one application, a batch, and the auto-review switch.

use axum::{Json, extract::State};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::Action;
use crate::{
    applications::Application,
    auth::Caller,
    domain::Paragraph,
    error::{ApiError, ApiJson, ApiPath, ErrorBody, invalid},
    state::AppState,
};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    pub action: Action,
    /// Required to return, suspend or fail a document check.
    pub opinion: Option<Paragraph<2000>>,
}

#[utoipa::path(post, path = "/api/v1/applications/{id}/review", tag = "review", request_body = ReviewRequest,
    security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = Application), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn review(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<ReviewRequest>,
) -> Result<Json<Application>, ApiError> {
    let now = state.now_ms();
    let deadline = state.settings.workflow.inspection_deadline_ms();
    let app = state
        .db
        .write(move |tx| {
            super::review_one(tx, now, &caller, id, req.action, req.opinion.as_deref(), deadline)
        })
        .await?;
    state.receipts_changed();
    Ok(Json(app))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchReviewRequest {
    /// At most 200 applications; each succeeds or fails on its own.
    pub application_ids: Vec<i64>,
    pub action: Action,
    pub opinion: Option<Paragraph<2000>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BatchItem {
    pub application_id: i64,
    /// The new state, when it worked.
    pub state: Option<String>,
    /// The error, when it did not.
    pub error: Option<ErrorBody>,
}

#[utoipa::path(post, path = "/api/v1/reviews", tag = "review", request_body = BatchReviewRequest,
    security(("bearer" = [])), responses((status = 200, body = Vec<BatchItem>), (status = 422, body = ErrorBody)))]
pub async fn batch(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<BatchReviewRequest>,
) -> Result<Json<Vec<BatchItem>>, ApiError> {
    if req.application_ids.is_empty() || req.application_ids.len() > 200 {
        return Err(invalid("application_ids", "batch_size", "send 1 to 200 application ids"));
    }
    let deadline = state.settings.workflow.inspection_deadline_ms();
    let mut out = Vec::with_capacity(req.application_ids.len());
    // One transaction per application: one refusal must not undo the others.
    for id in req.application_ids {
        let now = state.now_ms();
        let caller = caller.clone();
        let opinion = req.opinion.clone();
        let result = state
            .db
            .write(move |tx| {
                Ok(super::review_one(tx, now, &caller, id, req.action, opinion.as_deref(), deadline)?)
            })
            .await;
        out.push(match result {
            Ok(app) => BatchItem { application_id: id, state: Some(app.state.to_string()), error: None },
            Err(ApiError::Client { code, message, details, .. }) => BatchItem {
                application_id: id,
                state: None,
                error: Some(ErrorBody { code: code.into(), message, details }),
            },
            Err(e) => return Err(e),
        });
    }
    state.receipts_changed();
    Ok(Json(out))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AutoReview {
    pub enabled: bool,
}

#[utoipa::path(put, path = "/api/v1/units/{id}/auto-review", tag = "review", request_body = AutoReview,
    security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, description = "the unit's auto-review setting"), (status = 403, body = ErrorBody)))]
pub async fn set_auto_review(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<AutoReview>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let now = state.now_ms();
    state.db.write(move |tx| super::set_auto_review(tx, now, &caller, id, req.enabled)).await?;
    Ok(Json(json!({"unit_id": id, "auto_review": req.enabled})))
}
