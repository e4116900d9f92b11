//! Looking up reference data; administrators edit sampling ratios.

use axum::{Json, extract::State};
use serde_json::json;

use super::{CheckItem, HsEntry, SamplingRatio};
use crate::{
    audit::{self, Actor},
    auth::Caller,
    error::{ApiError, ApiJson, ApiPath, ErrorBody, invalid},
    state::AppState,
};

#[utoipa::path(get, path = "/api/v1/hs-codes/{code}", tag = "reference", security(("bearer" = [])),
    params(("code" = String, Path, description = "10-digit HS code")),
    responses((status = 200, body = HsEntry), (status = 404, body = ErrorBody)))]
pub async fn hs_code(
    State(state): State<AppState>,
    ApiPath(code): ApiPath<String>,
) -> Result<Json<HsEntry>, ApiError> {
    let entry = state
        .db
        .read(move |c| super::hs(c, &code)?.ok_or_else(|| ApiError::not_found(&format!("HS code {code}"))))
        .await?;
    Ok(Json(entry))
}

#[utoipa::path(get, path = "/api/v1/checklist-templates/{category}", tag = "reference", security(("bearer" = [])),
    params(("category" = String, Path)),
    responses((status = 200, body = Vec<CheckItem>), (status = 404, body = ErrorBody)))]
pub async fn checklist_template(
    State(state): State<AppState>,
    ApiPath(category): ApiPath<String>,
) -> Result<Json<Vec<CheckItem>>, ApiError> {
    let items = state
        .db
        .read(move |c| {
            super::checklist_template(c, &category)?
                .ok_or_else(|| ApiError::not_found(&format!("checklist template {category}")))
        })
        .await?;
    Ok(Json(items))
}

#[utoipa::path(get, path = "/api/v1/sampling-ratios", tag = "reference", security(("bearer" = [])),
    responses((status = 200, body = Vec<SamplingRatio>)))]
pub async fn sampling_ratios(State(state): State<AppState>) -> Result<Json<Vec<SamplingRatio>>, ApiError> {
    let ratios = state.db.read(super::sampling_ratios).await?;
    Ok(Json(ratios))
}

#[utoipa::path(put, path = "/api/v1/admin/sampling-ratios", tag = "admin", request_body = SamplingRatio,
    security(("bearer" = [])), responses((status = 200, body = SamplingRatio), (status = 422, body = ErrorBody)))]
pub async fn set_sampling_ratio(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<SamplingRatio>,
) -> Result<Json<SamplingRatio>, ApiError> {
    if req.chapter.len() != 2 || !req.chapter.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(
            "chapter",
            "invalid_chapter",
            "`chapter` is the two-digit HS chapter, e.g. \"08\"",
        ));
    }
    if !(0.0..=1.0).contains(&req.ratio) {
        return Err(invalid("ratio", "invalid_ratio", "`ratio` is a share between 0 and 1"));
    }
    let now = state.now_ms();
    state
        .db
        .write(move |tx| {
            let old = super::sampling_ratio(tx, &req.chapter, req.credit_rating)?;
            super::set_sampling_ratio(tx, &req.chapter, req.credit_rating, req.ratio)?;
            audit::append(
                tx,
                now,
                &Actor::User(caller.user_id),
                audit::Action::ReferenceSamplingRatio,
                &audit::Subject::SamplingRatio { chapter: &req.chapter, rating: req.credit_rating },
                json!({"from": old, "to": req.ratio}),
            )?;
            Ok(Json(req))
        })
        .await
}
