//! `POST /api/v1/notices/{kind}/{id}/print`: the notice as a PDF (numbered on its first print).

use axum::{
    extract::State,
    http::{HeaderMap, header},
    response::{IntoResponse, Response},
};

use super::NoticeKind;
use crate::{
    auth::Caller,
    error::{ApiError, ApiPath, ErrorBody, invalid},
    state::AppState,
};

/// A POST, not a GET: the first print numbers the notice (and a print of changed facts makes a new one).
#[utoipa::path(post, path = "/api/v1/notices/{kind}/{id}/print", tag = "notices", security(("bearer" = [])),
    params(("kind" = NoticeKind, Path, description = "`inspection_notice` (id: instruction), `booking_confirmation` (id: booking), `disposal_notice` or `release_slip` (id: application)"),
        ("id" = i64, Path)),
    responses((status = 200, content_type = "application/pdf", description = "the notice; `x-notice-number` names it"),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "the subject is not in a state the notice speaks of"),
        (status = 422, body = ErrorBody)))]
pub async fn print(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiPath((kind, id)): ApiPath<(String, i64)>,
) -> Result<Response, ApiError> {
    let kind = NoticeKind::parse(&kind).ok_or_else(|| {
        invalid(
            "kind",
            "unknown_notice_kind",
            "the notices are inspection_notice, booking_confirmation, disposal_notice and release_slip",
        )
    })?;
    let now = state.now_ms();
    let notice = state
        .db
        .write(move |tx| {
            let composed = super::compose(tx, &caller, kind, id, now)?;
            super::issue(tx, now, &caller, composed)
        })
        .await?;
    let url = format!(
        "{}/verify/{}?digest={}",
        crate::certificates::http::public_base(&state, &headers),
        notice.number,
        notice.digest
    );
    let (number, rendered) = (notice.number.clone(), notice);
    let bytes = tokio::task::spawn_blocking(move || super::pdf(&rendered, &url))
        .await?
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("printing a notice: {e}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/pdf".to_owned()),
            (header::CONTENT_DISPOSITION, format!("inline; filename=\"{number}.pdf\"")),
            (header::HeaderName::from_static("x-notice-number"), number),
        ],
        bytes,
    )
        .into_response())
}
