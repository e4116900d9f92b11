//! The batch sync endpoint (CBOR), the officer's index discovery, and the supervisor's record view (built by
//! `view.rs`).

use axum::{
    Json,
    body::Bytes,
    extract::{FromRequest, Request, State},
    http::{
        HeaderMap, StatusCode,
        header::{CONTENT_LENGTH, CONTENT_TYPE},
    },
    response::{IntoResponse, Response},
};
use fieldcheck_sync::{
    batch,
    batch::{DocResult, MAX_DOCS_PER_BATCH, SyncRequest, SyncResponse, VERSION},
};
use serde::Serialize;
use serde_json::json;

use super::{engine::Input, view::RecordView};
use crate::{
    auth::Caller,
    error::{ApiError, ApiPath, ErrorBody},
    state::AppState,
};

fn device_of(caller: &Caller) -> Result<String, ApiError> {
    caller.device_id.clone().ok_or_else(|| {
        ApiError::forbidden(
            "sync needs a device-bound login: log in with the `device_id` of your registered handheld",
        )
        .with_details(json!({"required": "device_id"}))
    })
}

/// A sync batch may carry many documents' changes; larger than the JSON endpoints' limit.
pub const BODY_LIMIT: usize = 16 * 1024 * 1024;

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "the batch is too large; send fewer documents per request",
    )
    .with_details(json!({"limit_bytes": BODY_LIMIT}))
}

/// Body for the OpenAPI document: the CBOR framing is in docs/sync-protocol.md.
#[utoipa::path(post, path = "/api/v1/sync", tag = "sync", security(("bearer" = [])),
    request_body(content = Vec<u8>, content_type = "application/cbor",
        description = "CBOR `{v: 1, messages: [{doc, data}]}`; see docs/sync-protocol.md"),
    responses(
        (status = 200, content_type = "application/cbor", body = Vec<u8>,
            description = "CBOR `{v, index_doc, results: [{doc, data?, error?, accepted}]}`"),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody, description = "saturated: nothing was done; retry after `Retry-After` seconds")))]
pub async fn sync(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    request: Request,
) -> Result<Response, ApiError> {
    let device_id = device_of(&caller)?;
    // A batch declared larger than the limit is refused on its length, before it waits in line or a byte
    // of it is read.
    let declared = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > BODY_LIMIT as u64) {
        return Err(too_large());
    }
    // Back-pressure: a fair, bounded line before any work; a handheld told to come back later, or one
    // that hung up while it waited, never has its batch committed.
    let _slot = state.sync_admission.admit().await?;
    // The body is read only now, holding a place: a waiting request costs its socket's buffer, not
    // up to the body limit in memory (at 200 handhelds coming back at once, the line held ~200 bodies).
    // Reading through `Bytes` keeps the route's `DefaultBodyLimit`.
    let body = Bytes::from_request(request, &state).await;
    if headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) != Some(batch::CONTENT_TYPE) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the batch as CBOR with `Content-Type: application/cbor`",
        ));
    }
    let body = body.map_err(|_| too_large())?;
    let request: SyncRequest = batch::decode(&body)
        .map_err(|e| ApiError::bad_request("invalid_batch", format!("{e}; see docs/sync-protocol.md")))?;
    if request.v != VERSION {
        return Err(ApiError::bad_request(
            "unsupported_version",
            format!("this server speaks batch version {VERSION}"),
        )
        .with_details(json!({"supported": [VERSION]})));
    }
    if request.messages.len() > MAX_DOCS_PER_BATCH {
        return Err(ApiError::unprocessable(
            "too_many_documents",
            format!("a batch carries at most {MAX_DOCS_PER_BATCH} documents; split it"),
        )
        .with_details(json!({"limit": MAX_DOCS_PER_BATCH})));
    }
    // The device's own count of what it still holds unsent: monitoring only (issue 13). Apart from the
    // engine: it is not a document change, and a batch with no documents carries only this.
    if let Some(pending) = request.pending {
        let (device_id, now) = (device_id.clone(), state.now_ms());
        state.db.write(move |tx| crate::devices::pending_reported(tx, &device_id, pending, now)).await?;
    }
    let inputs =
        request.messages.into_iter().map(|m| Input { doc: m.doc, data: m.data.0, session: None }).collect();
    let outcome = state.sync_engine.sync(state.sync_env(), &caller, &device_id, inputs, true).await?;
    let results = outcome
        .results
        .into_iter()
        .map(|o| match o.result {
            Ok((data, accepted)) => {
                DocResult { doc: o.doc, data: data.map(batch::Bytes), error: None, accepted }
            }
            Err(error) => DocResult { doc: o.doc, data: None, error: Some(error), accepted: 0 },
        })
        .collect();
    let index_doc =
        outcome.index_doc.ok_or_else(|| ApiError::Internal(anyhow::anyhow!("no index document")))?;
    let response = SyncResponse { v: VERSION, index_doc, results };
    Ok(([(CONTENT_TYPE, batch::CONTENT_TYPE)], batch::encode(&response)).into_response())
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IndexDoc {
    /// The caller's assignment-index document id: sync it first to learn which records to fetch.
    pub index_doc: String,
    /// The same document as an automerge-repo URL (`automerge:` + bs58check of the id's 16 bytes), for
    /// `repo.find` over the WebSocket endpoint. Record ids in the index convert the same way.
    pub index_url: String,
}

#[utoipa::path(get, path = "/api/v1/sync/index", tag = "sync", security(("bearer" = [])),
    responses((status = 200, body = IndexDoc), (status = 403, body = ErrorBody)))]
pub async fn index(State(state): State<AppState>, caller: Caller) -> Result<Json<IndexDoc>, ApiError> {
    let now = state.now_ms();
    let index_doc = state.db.write(move |tx| super::index_for(tx, caller.user_id, now)).await?;
    let index_url = fieldcheck_sync::repo::RepoDocId::from_hex(&index_doc)
        .map(|id| format!("automerge:{id}"))
        .ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!("stored index id {index_doc:?} is not 16 bytes"))
        })?;
    Ok(Json(IndexDoc { index_doc, index_url }))
}

#[utoipa::path(get, path = "/api/v1/instructions/{id}/record", tag = "instructions", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = RecordView), (status = 404, body = ErrorBody)))]
pub async fn record(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<RecordView>, ApiError> {
    let now = state.now_ms();
    let view = state.db.read(move |c| super::view::record_view(c, &caller, id, now)).await?;
    Ok(Json(view))
}
