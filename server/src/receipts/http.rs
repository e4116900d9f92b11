//! `GET /api/v1/receipts`: cursor paging with long-poll.

use std::time::Duration;

use axum::{Json, extract::State};
use serde::{Deserialize, Serialize};

use super::Receipt;
use crate::{
    auth::Caller,
    error::{ApiError, ApiQuery},
    state::AppState,
};

/// The longest long-poll a client may ask for.
const MAX_WAIT_SECS: u64 = 60;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReceiptQuery {
    /// Cursor: receipts after this id (0 or absent = from the start).
    pub after: Option<i64>,
    /// At most this many (default 100, at most 500).
    pub limit: Option<i64>,
    /// Seconds to wait for a new receipt when there is none yet (long-poll; at most 60, and always less
    /// than the server's request timeout).
    pub wait: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReceiptPage {
    pub receipts: Vec<Receipt>,
    /// Pass this as `after` next time; equal to `after` when nothing new arrived.
    pub next_cursor: i64,
}

#[utoipa::path(get, path = "/api/v1/receipts", tag = "receipts", security(("bearer" = [])), params(ReceiptQuery),
    responses((status = 200, body = ReceiptPage)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ReceiptQuery>,
) -> Result<Json<ReceiptPage>, ApiError> {
    let after = q.after.unwrap_or(0).max(0);
    let limit = crate::error::in_range("limit", q.limit, 100, 1, 500)?;
    // Beyond the documented 60 s the client is told; within it the wait still ends before the request
    // timeout would answer 408: a long-poll that found nothing answers an empty page, as asked.
    let wait = crate::error::in_range("wait", q.wait, 0, 0, MAX_WAIT_SECS as i64)? as u64;
    let longest = MAX_WAIT_SECS.min(state.settings.server.request_timeout_secs.saturating_sub(1));
    let wait = Duration::from_secs(wait.min(longest));
    // Subscribe before the first query: a receipt committed between the query and the wait still wakes us.
    let mut changes = state.receipts.subscribe();
    changes.borrow_and_update();
    let fetch = |caller: Caller| {
        let now = state.now_ms();
        state.db.read(move |c| super::list(c, &caller, after, limit, now))
    };
    let mut receipts = fetch(caller.clone()).await?;
    if receipts.is_empty() && !wait.is_zero() && tokio::time::timeout(wait, changes.changed()).await.is_ok() {
        receipts = fetch(caller).await?;
    }
    let next_cursor = receipts.last().map_or(after, |r| r.id);
    Ok(Json(ReceiptPage { receipts, next_cursor }))
}
