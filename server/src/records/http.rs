//! The batch sync endpoint (CBOR), the officer's index discovery, and the supervisor's record view.

use axum::{
    Json,
    body::Bytes,
    extract::{FromRequest, Request, State},
    http::{HeaderMap, StatusCode, header::CONTENT_TYPE},
    response::{IntoResponse, Response},
};
use fieldcheck_sync::{
    RecordDoc, batch,
    batch::{DocResult, MAX_DOCS_PER_BATCH, SyncRequest, SyncResponse, VERSION},
    open_conflicts,
};
use serde::Serialize;
use serde_json::json;

use super::{engine::Input, projection, store};
use crate::{
    auth::Caller,
    domain::InstructionState,
    error::{ApiError, ApiPath, ErrorBody},
    instructions,
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
    let body = body.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the batch is too large; send fewer documents per request",
        )
    })?;
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
        state.db.write(move |tx| Ok(crate::devices::pending_reported(tx, &device_id, pending, now)?)).await?;
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
    let index_doc = state.db.write(move |tx| Ok(super::index_for(tx, caller.user_id, now)?)).await?;
    let index_url = fieldcheck_sync::repo::RepoDocId::from_hex(&index_doc)
        .map(|id| format!("automerge:{id}"))
        .ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!("stored index id {index_doc:?} is not 16 bytes"))
        })?;
    Ok(Json(IndexDoc { index_doc, index_url }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecordView {
    pub instruction_id: i64,
    pub state: InstructionState,
    pub record_doc: String,
    /// The record's current heads (hex change hashes).
    pub heads: Vec<String>,
    /// The merged record in the document's own schema (times in Unix ms, as in the document); where
    /// officers conflict, automerge's pick — `conflicts` lists every value.
    #[schema(value_type = Object)]
    pub record: serde_json::Value,
    /// Open conflicts: while any is open the result cannot be submitted.
    pub conflicts: Vec<projection::ConflictView>,
    /// Referenced photos (not withdrawn) whose bytes the photo store does not hold yet.
    pub pending_photos: Vec<String>,
    /// The content digest the officers' signatures must cover (`Record::content_digest`).
    pub digest: String,
    /// What keeps the result from being submitted, in the officers' words; empty when ready.
    pub missing: Vec<String>,
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
    let view = state
        .db
        .read(move |c| {
            let instruction = instructions::visible(c, &caller, id, now)?;
            let doc_id = store::record_of(c, id)?.ok_or_else(|| {
                ApiError::not_found("the record (it is created when officers are assigned)")
            })?;
            let bytes = store::load_bytes(c, &doc_id)?;
            let mut doc = RecordDoc::load(&bytes, fieldcheck_sync::new_actor_id())
                .map_err(|e| ApiError::Internal(anyhow::anyhow!("stored record: {e}")))?;
            let read = doc.read().map_err(|e| ApiError::Internal(anyhow::anyhow!("stored record: {e}")))?;
            let conflicts =
                open_conflicts(&doc).map_err(|e| ApiError::Internal(anyhow::anyhow!("conflicts: {e}")))?;
            let mut pending_photos = Vec::new();
            for sha in read.awaited_photos() {
                if !crate::photos::store::is_present(c, sha.as_str())? {
                    pending_photos.push(sha.to_string());
                }
            }
            let mut missing = read.missing_for_submission(conflicts.len());
            projection::note_missing_photos(&mut missing, pending_photos.len());
            Ok(RecordView {
                instruction_id: id,
                state: instruction.state,
                record_doc: doc_id,
                heads: doc.heads().iter().map(|h| h.to_string()).collect(),
                record: serde_json::to_value(&read).map_err(anyhow::Error::from)?,
                conflicts: projection::conflict_views(c, &conflicts)?,
                pending_photos,
                digest: read.content_digest(),
                missing,
            })
        })
        .await?;
    Ok(Json(view))
}
