//! Photo uploads (whole and resumable) and reads. The protocol is described in `docs/api.md`.
//!
//! Bodies are streamed to a file rather than buffered, so a 25 MiB photo never sits in a request buffer,
//! and a resumable chunk cut off half-way keeps the bytes that arrived.

use std::{io::Write, path::PathBuf, sync::Arc, time::Duration};

use axum::{
    Json,
    body::Body,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::OwnedMutexGuard;

use super::{
    Checked, Photo, Sha256Hex,
    inspect::PhotoFormat,
    store,
    upload::{self, Opened},
};
use crate::{
    auth::Caller,
    domain::{Line, time::rfc3339},
    error::{ApiError, ApiJson, ApiPath, ApiQuery, ErrorBody, invalid},
    state::AppState,
};

/// Received bytes are written out in pieces of this size: small enough that a cut-off chunk loses little,
/// large enough that the blocking pool is not asked for every network frame.
const WRITE_BYTES: usize = 256 * 1024;
/// How long a request waits for another request on the same resumable upload before answering 409.
const LOCK_WAIT: Duration = Duration::from_secs(10);
/// The offset header of resumable uploads (as in the tus protocol, whose clients can be adapted easily).
const UPLOAD_OFFSET: &str = "upload-offset";
const UPLOAD_LENGTH: &str = "upload-length";

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    /// The instruction the photo is evidence for; it must be assigned to you.
    pub instruction: i64,
}

/// Upload a whole photo named by its SHA-256. Idempotent: the same bytes again answer 200, one copy kept.
#[utoipa::path(put, path = "/api/v1/photos/{sha256}", tag = "photos", security(("bearer" = [])),
    params(("sha256" = String, Path, description = "SHA-256 of the body, 64 hex digits"), UploadQuery),
    request_body(content = Vec<u8>, content_type = "image/jpeg",
        description = "the photo's bytes; `image/jpeg`, `image/png`, `image/webp` or `application/octet-stream`"),
    responses((status = 201, body = Photo, description = "stored"), (status = 200, body = Photo, description = "stored before; now also linked to this instruction"),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(sha): ApiPath<String>,
    ApiQuery(q): ApiQuery<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let sha = Sha256Hex::parse(&sha)?;
    let declared = declared_format(&headers, &["application/octet-stream"])?;
    let max = state.settings.photos.max_bytes;
    if content_length(&headers).is_some_and(|n| n > max) {
        return Err(too_large(max));
    }
    // Who may upload is known before a single byte is read.
    let (c2, s2) = (caller.clone(), sha.clone());
    let known = state
        .db
        .read(move |c| -> Result<_, ApiError> {
            super::check_upload(c, &c2, q.instruction)?;
            Ok::<_, ApiError>(store::is_present(c, s2.as_str())?)
        })
        .await?;
    let tmp = receive_whole(&state.photos, body, max, too_large).await?;
    let (photo, created) = ingest(&state, caller, q.instruction, sha, tmp, declared, known, None).await?;
    Ok(photo_response(photo, created))
}

/// Start (or resume) a resumable upload.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUpload {
    /// The instruction the photo is evidence for; it must be assigned to you.
    pub instruction_id: i64,
    /// The photo's full size in bytes.
    pub size: u64,
    /// `image/jpeg`, `image/png` or `image/webp`, if you know it; checked against the bytes at the finish.
    pub content_type: Option<Line<100>>,
}

/// Where a resumable upload stands.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UploadStatus {
    /// `null` when nothing needs uploading (`complete`).
    pub upload_id: Option<String>,
    pub sha256: String,
    pub instruction_id: i64,
    pub size: u64,
    /// Bytes received so far: send the next chunk from here.
    pub offset: u64,
    /// The photo is stored and linked to the instruction; nothing more to send.
    pub complete: bool,
    /// The upload and its bytes are forgotten after this time.
    #[serde(with = "rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<i64>,
}

#[utoipa::path(post, path = "/api/v1/photos/{sha256}/uploads", tag = "photos", security(("bearer" = [])),
    params(("sha256" = String, Path, description = "SHA-256 of the whole photo")), request_body = NewUpload,
    responses((status = 201, body = UploadStatus, description = "a new upload"),
        (status = 200, body = UploadStatus, description = "your unfinished upload of this photo (resume from `offset`), or `complete`"),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_upload(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(sha): ApiPath<String>,
    ApiJson(req): ApiJson<NewUpload>,
) -> Result<Response, ApiError> {
    let sha = Sha256Hex::parse(&sha)?;
    let max = state.settings.photos.max_bytes;
    if req.size == 0 {
        return Err(invalid("size", "empty_photo", "a photo has at least one byte"));
    }
    if req.size > max {
        return Err(too_large(max));
    }
    let content_type = match req.content_type.as_deref() {
        None => None,
        Some(t) => Some(
            PhotoFormat::from_content_type(t).ok_or_else(|| unsupported_type(t))?.content_type().to_string(),
        ),
    };
    let now = state.now_ms();
    let ttl = state.settings.photos.upload_ttl_hours * 3600 * 1000;
    let instruction_id = req.instruction_id;
    let new = upload::Requested { sha, instruction_id, size: req.size, content_type, ttl };
    let (outcome, expired) = state.db.write(move |tx| upload::open(tx, now, &caller, new)).await?;
    for id in expired {
        state.photos.discard_upload(&id);
    }
    Ok(match outcome {
        Opened::Complete(sha) => {
            let status = UploadStatus {
                upload_id: None,
                sha256: sha.to_string(),
                instruction_id,
                size: req.size,
                offset: req.size,
                complete: true,
                expires_at: None,
            };
            (StatusCode::OK, Json(status)).into_response()
        }
        Opened::Resumed(row) => {
            let _lock = lock_upload(&state, &row.id).await?;
            let offset = received_so_far(&state, &row.id).await?;
            upload_response(StatusCode::OK, &row, offset)
        }
        Opened::New(row) => upload_response(StatusCode::CREATED, &row, 0),
    })
}

/// How much of the upload arrived. `HEAD` gives the same headers without the body.
#[utoipa::path(get, path = "/api/v1/photo-uploads/{id}", tag = "photos", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = UploadStatus, headers(("upload-offset" = u64), ("upload-length" = u64))),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn upload_status(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let row = own_upload(&state, &caller, &id).await?;
    let _lock = lock_upload(&state, &id).await?;
    let offset = received_so_far(&state, &id).await?;
    Ok(upload_response(StatusCode::OK, &row, offset))
}

/// Append a chunk at `Upload-Offset`, which must equal the bytes received so far.
#[utoipa::path(patch, path = "/api/v1/photo-uploads/{id}", tag = "photos", security(("bearer" = [])),
    params(("id" = String, Path), ("upload-offset" = u64, Header, description = "where this chunk starts")),
    request_body(content = Vec<u8>, content_type = "application/offset+octet-stream"),
    responses((status = 204, description = "appended; `Upload-Offset` is the new offset", headers(("upload-offset" = u64))),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody)))]
pub async fn append(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !matches!(ct, "application/offset+octet-stream" | "application/octet-stream") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send chunks with `Content-Type: application/offset+octet-stream`",
        ));
    }
    let claimed = headers
        .get(UPLOAD_OFFSET)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or_else(|| {
            ApiError::bad_request(
                "missing_upload_offset",
                "send `Upload-Offset: <bytes received so far>` (ask with HEAD first)",
            )
        })?;
    let row = own_upload(&state, &caller, &id).await?;
    let lock = Arc::new(lock_upload(&state, &id).await?);
    let offset = received_so_far(&state, &id).await?;
    if claimed != offset {
        return Err(ApiError::conflict(
            "offset_mismatch",
            format!("the upload has {offset} bytes; send the chunk that starts there"),
        )
        .with_details(json!({"offset": offset})));
    }
    let remaining = row.size - offset;
    if content_length(&headers).is_some_and(|n| n > remaining) {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "chunk_too_large",
            format!("only {remaining} bytes are missing from the declared size {}", row.size),
        )
        .with_details(json!({"offset": offset, "size": row.size})));
    }
    let received = receive(body, state.photos.upload(&id), remaining, Some(lock)).await?;
    let now_at = received_so_far(&state, &id).await?;
    match received {
        Received::Complete => {
            let mut resp = StatusCode::NO_CONTENT.into_response();
            resp.headers_mut().insert(UPLOAD_OFFSET, HeaderValue::from(now_at));
            Ok(resp)
        }
        Received::TooLarge => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "chunk_too_large",
            format!("the chunk goes past the declared size {}; the bytes up to it were kept", row.size),
        )
        .with_details(json!({"offset": now_at, "size": row.size}))),
        Received::Interrupted => Err(interrupted().with_details(json!({"offset": now_at}))),
    }
}

/// Check the complete upload and store the photo. Whatever the outcome but a 409, the upload is over.
#[utoipa::path(post, path = "/api/v1/photo-uploads/{id}/finish", tag = "photos", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 201, body = Photo, description = "stored"), (status = 200, body = Photo, description = "stored before"),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn finish(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let row = own_upload(&state, &caller, &id).await?;
    let lock = lock_upload(&state, &id).await?;
    let offset = received_so_far(&state, &id).await?;
    if offset != row.size {
        return Err(ApiError::conflict(
            "upload_incomplete",
            format!("{offset} of {} bytes have arrived; send the rest first", row.size),
        )
        .with_details(json!({"offset": offset, "size": row.size})));
    }
    let sha = Sha256Hex::parse(&row.sha256)?;
    let s2 = sha.clone();
    let known = state.db.read(move |c| Ok::<_, ApiError>(store::is_present(c, s2.as_str())?)).await?;
    let declared = row.content_type.as_deref().and_then(PhotoFormat::from_content_type);
    let from = state.photos.upload(&id);
    let outcome =
        ingest(&state, caller, row.instruction_id, sha, from, declared, known, Some(id.clone())).await;
    if outcome.is_err() {
        // The bytes were refused and are gone; so is the upload (a retry starts a new one).
        let id2 = id.clone();
        state.db.write(move |tx| store::delete_upload(tx, &id2)).await?;
    }
    drop(lock);
    state.photos.discard_upload(&id);
    let (photo, created) = outcome?;
    Ok(photo_response(photo, created))
}

/// Abandon an upload and its bytes.
#[utoipa::path(delete, path = "/api/v1/photo-uploads/{id}", tag = "photos", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn cancel_upload(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    own_upload(&state, &caller, &id).await?;
    let lock = lock_upload(&state, &id).await?;
    let id2 = id.clone();
    state.db.write(move |tx| store::delete_upload(tx, &id2)).await?;
    drop(lock);
    state.photos.discard_upload(&id);
    Ok(StatusCode::NO_CONTENT)
}

/// The original photo, byte for byte.
#[utoipa::path(get, path = "/api/v1/photos/{sha256}", tag = "photos", security(("bearer" = [])),
    params(("sha256" = String, Path)),
    responses((status = 200, content_type = "image/jpeg", body = Vec<u8>, description = "the original (its own image type)"),
        (status = 404, body = ErrorBody)))]
pub async fn original(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(sha): ApiPath<String>,
) -> Result<Response, ApiError> {
    let sha = Sha256Hex::parse(&sha)?;
    let photo = readable(&state, caller, &sha).await?;
    let bytes = tokio::fs::read(state.photos.original(&sha))
        .await
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context(format!("reading photo {sha}"))))?;
    Ok(image_response(photo.content_type, &sha, bytes))
}

/// An upright JPEG thumbnail, 320 px on the long edge (smaller photos keep their size).
#[utoipa::path(get, path = "/api/v1/photos/{sha256}/thumbnail", tag = "photos", security(("bearer" = [])),
    params(("sha256" = String, Path)),
    responses((status = 200, content_type = "image/jpeg", body = Vec<u8>), (status = 404, body = ErrorBody)))]
pub async fn thumbnail(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(sha): ApiPath<String>,
) -> Result<Response, ApiError> {
    let sha = Sha256Hex::parse(&sha)?;
    readable(&state, caller, &sha).await?;
    let bytes = match tokio::fs::read(state.photos.thumbnail(&sha)).await {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let (files, settings, s2) = (state.photos.clone(), state.settings.photos.clone(), sha.clone());
            tokio::task::spawn_blocking(move || super::remake_thumbnail(&files, &settings, &s2)).await??
        }
        Err(e) => return Err(ApiError::Internal(anyhow::Error::new(e).context("reading a thumbnail"))),
    };
    Ok(image_response("image/jpeg", &sha, bytes))
}

/// What the photo is and what its EXIF said.
#[utoipa::path(get, path = "/api/v1/photos/{sha256}/metadata", tag = "photos", security(("bearer" = [])),
    params(("sha256" = String, Path)), responses((status = 200, body = Photo), (status = 404, body = ErrorBody)))]
pub async fn metadata(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(sha): ApiPath<String>,
) -> Result<Json<Photo>, ApiError> {
    let sha = Sha256Hex::parse(&sha)?;
    Ok(Json(readable(&state, caller, &sha).await?))
}

async fn readable(state: &AppState, caller: Caller, sha: &Sha256Hex) -> Result<Photo, ApiError> {
    let sha = sha.clone();
    state.db.read(move |c| Ok(super::readable(c, &caller, &sha)?)).await
}

/// A refused upload may leave its body unread on the connection; `Connection: close` keeps the client
/// from sending its next request after those bytes.
pub async fn close_after_refusal(mut resp: Response) -> Response {
    if resp.status().is_client_error() {
        resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

/// Hash, inspect and place the received file off the executor, then record it in one transaction (which
/// also ends the resumable upload `upload_id`, if any).
#[allow(clippy::too_many_arguments)]
async fn ingest(
    state: &AppState,
    caller: Caller,
    instruction_id: i64,
    sha: Sha256Hex,
    from: PathBuf,
    declared: Option<PhotoFormat>,
    known: bool,
    upload_id: Option<String>,
) -> Result<(Photo, bool), ApiError> {
    let (files, settings, s2) = (state.photos.clone(), state.settings.photos.clone(), sha.clone());
    let checked = tokio::task::spawn_blocking(move || {
        super::check_and_place(&files, &settings, &from, &s2, declared, known)
    })
    .await??;
    let new = match checked {
        Checked::Stored(p) => Some(p),
        Checked::AlreadyStored => None,
    };
    let now = state.now_ms();
    let recorded = state
        .db
        .write(move |tx| -> Result<_, ApiError> {
            if let Some(id) = &upload_id {
                store::delete_upload(tx, id)?;
            }
            let user = caller.user_id;
            let recorded = super::record(tx, now, &caller, instruction_id, &sha, new.as_ref())?;
            // The last missing photo of a complete record submits it, in the transaction that stored it.
            crate::workflow::photo_arrived(tx, now, &crate::audit::Actor::User(user), instruction_id)?;
            Ok(recorded)
        })
        .await?;
    // The photo may have completed a record, whose submission the enterprise hears of.
    state.receipts_changed();
    Ok(recorded)
}

pub(crate) enum Received {
    Complete,
    /// The body went past the limit; the bytes before the piece that crossed it were kept.
    TooLarge,
    /// The client went away (or its body broke off); what arrived is kept.
    Interrupted,
}

/// Receives a whole file (not a resumable upload) into a new temporary file of `files`, at most `max`
/// bytes, and answers its path. Anything short of the complete body removes the file and answers
/// `too_large(max)` (each kind of file names its own limit) or `upload_interrupted`.
pub(crate) async fn receive_whole(
    files: &store::PhotoFiles,
    body: Body,
    max: u64,
    too_large: fn(u64) -> ApiError,
) -> Result<PathBuf, ApiError> {
    let tmp = files.temp();
    match receive(body, tmp.clone(), max, None).await {
        Ok(Received::Complete) => Ok(tmp),
        other => {
            let _ = tokio::fs::remove_file(&tmp).await;
            Err(match other {
                Ok(Received::TooLarge) => too_large(max),
                Ok(_) => interrupted(),
                Err(e) => e,
            })
        }
    }
}

/// Streams `body` onto the end of the file at `path`, at most `limit` bytes, and makes it durable. `lock`
/// travels into every blocking write, so the upload stays locked until the last byte has landed even if
/// this request is dropped half-way.
pub(crate) async fn receive(
    body: Body,
    path: PathBuf,
    limit: u64,
    lock: Option<Arc<OwnedMutexGuard<()>>>,
) -> Result<Received, ApiError> {
    let file =
        tokio::task::spawn_blocking(move || std::fs::OpenOptions::new().create(true).append(true).open(path))
            .await?
            .map_err(io_error)?;
    let mut writer = Writer { file: Some(file), pending: Vec::with_capacity(WRITE_BYTES), lock };
    let mut stream = body.into_data_stream();
    let mut received = 0u64;
    let mut outcome = None;
    while let Some(frame) = stream.next().await {
        match frame {
            Ok(bytes) => {
                if received + bytes.len() as u64 > limit {
                    outcome = Some(Received::TooLarge);
                    break;
                }
                received += bytes.len() as u64;
                writer.pending.extend_from_slice(&bytes);
                if writer.pending.len() >= WRITE_BYTES {
                    writer.flush(false).await?;
                }
            }
            Err(_) => {
                outcome = Some(Received::Interrupted);
                break;
            }
        }
    }
    writer.flush(true).await?;
    Ok(outcome.unwrap_or(Received::Complete))
}

struct Writer {
    file: Option<std::fs::File>,
    pending: Vec<u8>,
    lock: Option<Arc<OwnedMutexGuard<()>>>,
}

impl Writer {
    async fn flush(&mut self, sync: bool) -> Result<(), ApiError> {
        let (mut file, buf, lock) = (
            self.file.take().expect("file is back after every write"),
            std::mem::take(&mut self.pending),
            self.lock.clone(),
        );
        let (file, mut buf) = tokio::task::spawn_blocking(move || {
            let _lock = lock;
            file.write_all(&buf)?;
            if sync {
                file.sync_data()?;
            }
            Ok::<_, std::io::Error>((file, buf))
        })
        .await?
        .map_err(io_error)?;
        buf.clear();
        self.file = Some(file);
        self.pending = buf;
        Ok(())
    }
}

async fn own_upload(state: &AppState, caller: &Caller, id: &str) -> Result<store::UploadRow, ApiError> {
    let (id, user, now) = (id.to_string(), caller.user_id, state.now_ms());
    state.db.read(move |c| Ok(upload::own(c, user, &id, now)?)).await
}

async fn lock_upload(state: &AppState, id: &str) -> Result<OwnedMutexGuard<()>, ApiError> {
    let lock = state.photos.upload_lock(id);
    tokio::time::timeout(LOCK_WAIT, lock.lock_owned()).await.map_err(|_| {
        ApiError::conflict(
            "upload_busy",
            "another request is writing this upload; ask for the offset again later",
        )
    })
}

async fn received_so_far(state: &AppState, id: &str) -> Result<u64, ApiError> {
    match tokio::fs::metadata(state.photos.upload(id)).await {
        Ok(m) => Ok(m.len()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(io_error(e)),
    }
}

/// The image type named by `Content-Type`, `None` for the generic types in `generic` or no header; any
/// other type is refused before the body is read.
fn declared_format(headers: &HeaderMap, generic: &[&str]) -> Result<Option<PhotoFormat>, ApiError> {
    let Some(ct) = headers.get(header::CONTENT_TYPE) else { return Ok(None) };
    let ct = ct.to_str().unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if generic.contains(&ct.as_str()) {
        return Ok(None);
    }
    PhotoFormat::from_content_type(&ct).map(Some).ok_or_else(|| unsupported_type(&ct))
}

fn unsupported_type(t: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_photo_format",
        format!("`{t}` is not a photo type; send image/jpeg, image/png or image/webp"),
    )
}

pub(crate) fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok())
}

fn too_large(max: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "photo_too_large",
        format!("a photo may have at most {max} bytes; nothing was stored"),
    )
    .with_details(json!({"max_bytes": max}))
}

pub(crate) fn interrupted() -> ApiError {
    ApiError::bad_request("upload_interrupted", "the body broke off before its end")
}

fn io_error(e: std::io::Error) -> ApiError {
    ApiError::Internal(anyhow::Error::new(e).context("photo files"))
}

fn photo_response(photo: Photo, created: bool) -> Response {
    if created {
        let location = format!("/api/v1/photos/{}", photo.sha256);
        let mut resp = (StatusCode::CREATED, Json(photo)).into_response();
        if let Ok(v) = HeaderValue::from_str(&location) {
            resp.headers_mut().insert(header::LOCATION, v);
        }
        resp
    } else {
        (StatusCode::OK, Json(photo)).into_response()
    }
}

fn upload_response(status: StatusCode, row: &store::UploadRow, offset: u64) -> Response {
    let body = UploadStatus {
        upload_id: Some(row.id.clone()),
        sha256: row.sha256.clone(),
        instruction_id: row.instruction_id,
        size: row.size,
        offset,
        complete: false,
        expires_at: Some(row.expires_at),
    };
    let mut resp = (status, Json(body)).into_response();
    let h = resp.headers_mut();
    h.insert(UPLOAD_OFFSET, HeaderValue::from(offset));
    h.insert(UPLOAD_LENGTH, HeaderValue::from(row.size));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/photo-uploads/{}", row.id)) {
        h.insert(header::LOCATION, v);
    }
    resp
}

/// Photos never change under their name, so clients may cache them for good (privately: they are evidence).
fn image_response(content_type: &'static str, sha: &Sha256Hex, bytes: Vec<u8>) -> Response {
    let mut resp = bytes.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=31536000, immutable"));
    if let Ok(v) = HeaderValue::from_str(&format!("\"{sha}\"")) {
        h.insert(header::ETAG, v);
    }
    resp
}
