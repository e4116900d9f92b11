//! Supporting-document endpoints: upload (streamed to a file, checked, then recorded), list, download and
//! "ask again". The upload protocol is described in `docs/api.md`.

use std::path::PathBuf;

use axum::{
    Json,
    body::Body,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::json;

use super::{Attachment, DocFormat, DocRequest, DocumentKind, Inspected, Subject, Upload, store};
use crate::{
    auth::Caller,
    domain::{Line, Paragraph},
    error::{ApiError, ApiJson, ApiPath, ApiQuery, ErrorBody, invalid},
    photos::{
        Sha256Hex,
        http::{content_length, receive_whole},
    },
    state::AppState,
};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    /// `contract`, `invoice`, `packing_list`, `producer_qualification`, `treatment_record` or `other`.
    pub kind: DocumentKind,
    /// The file's name as the enterprise knows it; its extension must fit the bytes (`.pdf`, `.jpg`, `.png`).
    pub file_name: Option<Line<200>>,
    /// The attachment this file replaces, when a reviewer asked for it again.
    pub replaces: Option<i64>,
}

/// Attach a supporting document to an application.
#[utoipa::path(put, path = "/api/v1/applications/{id}/documents/{sha256}", tag = "documents",
    security(("bearer" = [])),
    params(("id" = i64, Path), ("sha256" = String, Path, description = "SHA-256 of the body, 64 hex digits"), UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/pdf",
        description = "the file: `application/pdf`, `image/jpeg`, `image/png` (or `application/octet-stream`)"),
    responses((status = 201, body = Attachment, description = "attached"),
        (status = 200, body = Attachment, description = "the same file was attached as this kind before"),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_for_application(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, sha)): ApiPath<(i64, String)>,
    ApiQuery(q): ApiQuery<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    upload(state, caller, Subject::Application, id, sha, q, headers, body).await
}

/// Attach a supporting document to a certificate application.
#[utoipa::path(put, path = "/api/v1/certificate-applications/{id}/documents/{sha256}", tag = "documents",
    security(("bearer" = [])),
    params(("id" = i64, Path), ("sha256" = String, Path, description = "SHA-256 of the body, 64 hex digits"), UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/pdf",
        description = "the file: `application/pdf`, `image/jpeg`, `image/png` (or `application/octet-stream`)"),
    responses((status = 201, body = Attachment, description = "attached"),
        (status = 200, body = Attachment, description = "the same file was attached as this kind before"),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_for_certificate(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, sha)): ApiPath<(i64, String)>,
    ApiQuery(q): ApiQuery<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    upload(state, caller, Subject::Certificate, id, sha, q, headers, body).await
}

/// Everything that can be refused is refused before the body is read (who, where, declared type and
/// size), then the body is streamed to a temporary file under the limit, checked off the executor, moved
/// into place, and recorded with its receipt in one transaction.
#[allow(clippy::too_many_arguments)]
async fn upload(
    state: AppState,
    caller: Caller,
    subject: Subject,
    subject_id: i64,
    sha: String,
    q: UploadQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let sha = Sha256Hex::parse(&sha)?;
    let declared = declared_formats(&headers, q.file_name.as_deref())?;
    let max = state.settings.documents.max_bytes;
    if content_length(&headers).is_some_and(|n| n > max) {
        return Err(too_large(max));
    }
    let file_name = q.file_name.map(|n| n.to_string());
    let (kind, replaces) = (q.kind, q.replaces);
    let now = state.now_ms();
    let (c2, s2, f2) = (caller.clone(), sha.clone(), file_name.clone());
    let known = state
        .db
        .read(move |c| -> Result<_, ApiError> {
            let u = Upload { subject, subject_id, kind, sha: &s2, file_name: f2.as_deref(), replaces };
            super::check_upload(c, &c2, &u, now)?;
            Ok(store::is_present(c, s2.as_str())?)
        })
        .await?;
    let tmp = receive_whole(&state.photos, body, max, too_large).await?;
    let (files, limits, s3) = (state.photos.clone(), state.settings.photos.clone(), sha.clone());
    let checked = tokio::task::spawn_blocking(move || {
        let outcome = check_and_place(&files, &limits, &tmp, &s3, &declared, known);
        let _ = std::fs::remove_file(&tmp);
        outcome
    })
    .await??;
    let now = state.now_ms();
    let (attachment, created) = state
        .db
        .write(move |tx| -> Result<_, ApiError> {
            let u =
                Upload { subject, subject_id, kind, sha: &sha, file_name: file_name.as_deref(), replaces };
            Ok(super::attach(tx, now, &caller, &u, checked)?)
        })
        .await?;
    state.receipts_changed();
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(attachment)).into_response())
}

/// The blocking part: hash, inspect, and move the file into its place. Answers the file's facts when the
/// bytes are new (`None` when they were stored before: they passed every check then, so only the hash and
/// the declared type are checked again).
fn check_and_place(
    files: &crate::photos::store::PhotoFiles,
    limits: &crate::config::PhotoSettings,
    from: &std::path::Path,
    sha: &Sha256Hex,
    declared: &[DocFormat],
    known: bool,
) -> Result<Option<(Inspected, u64)>, ApiError> {
    let bytes = std::fs::read(from).map_err(io_error)?;
    let actual = Sha256Hex::of(&bytes);
    if &actual != sha {
        return Err(ApiError::unprocessable(
            "hash_mismatch",
            format!("the body hashes to {actual}, not to the name {sha}; nothing was stored"),
        )
        .with_details(json!({"expected": sha.as_str(), "actual": actual.as_str()})));
    }
    let inspected = super::inspect(&bytes, declared, limits)?;
    if known {
        return Ok(None);
    }
    files.publish_document(from, sha).map_err(io_error)?;
    Ok(Some((inspected, bytes.len() as u64)))
}

/// The formats the client declared, by `Content-Type` and by the file name's extension; both must fit the
/// bytes. A type that is none of ours is refused before the body is read.
fn declared_formats(headers: &HeaderMap, file_name: Option<&str>) -> Result<Vec<DocFormat>, ApiError> {
    let mut declared = Vec::new();
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if ct != "application/octet-stream" {
            declared.push(DocFormat::from_content_type(&ct).ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_document_format",
                    format!("`{ct}` is not a document type; send application/pdf, image/jpeg or image/png"),
                )
            })?);
        }
    }
    if let Some(name) = file_name {
        declared.push(DocFormat::from_file_name(name).ok_or_else(|| {
            invalid(
                "file_name",
                "unsupported_document_format",
                "a file name ends in .pdf, .jpg, .jpeg or .png",
            )
        })?);
    }
    Ok(declared)
}

fn too_large(max: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "document_too_large",
        format!("a supporting document may have at most {max} bytes; nothing was stored"),
    )
    .with_details(json!({"max_bytes": max}))
}

fn io_error(e: std::io::Error) -> ApiError {
    ApiError::Internal(anyhow::Error::new(e).context("document files"))
}

#[utoipa::path(get, path = "/api/v1/applications/{id}/documents", tag = "documents", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = Vec<Attachment>, description = "every attachment, replaced ones included, oldest first"),
        (status = 404, body = ErrorBody)))]
pub async fn list_for_application(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Vec<Attachment>>, ApiError> {
    list(state, caller, Subject::Application, id).await
}

#[utoipa::path(get, path = "/api/v1/certificate-applications/{id}/documents", tag = "documents",
    security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = Vec<Attachment>, description = "every attachment, replaced ones included, oldest first"),
        (status = 404, body = ErrorBody)))]
pub async fn list_for_certificate(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Vec<Attachment>>, ApiError> {
    list(state, caller, Subject::Certificate, id).await
}

async fn list(
    state: AppState,
    caller: Caller,
    subject: Subject,
    id: i64,
) -> Result<Json<Vec<Attachment>>, ApiError> {
    let now = state.now_ms();
    let all = state
        .db
        .read(move |c| -> Result<_, ApiError> {
            super::subject(c, &caller, subject, id, now)?;
            Ok(store::list(c, subject, id)?)
        })
        .await?;
    Ok(Json(all))
}

/// The attached file, byte for byte.
#[utoipa::path(get, path = "/api/v1/documents/{id}", tag = "documents", security(("bearer" = [])),
    params(("id" = i64, Path, description = "the attachment")),
    responses((status = 200, content_type = "application/pdf", body = Vec<u8>, description = "the file (its own type)"),
        (status = 404, body = ErrorBody)))]
pub async fn download(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Response, ApiError> {
    let now = state.now_ms();
    let a = state.db.read(move |c| super::readable(c, &caller, id, now)).await?;
    let sha = Sha256Hex::parse(&a.sha256)?;
    let path: PathBuf = state.photos.document(&sha);
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context(format!("reading document {sha}"))))?;
    let mut resp = bytes.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(a.content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=31536000, immutable"));
    if let Ok(v) = HeaderValue::from_str(&format!("\"{sha}\"")) {
        h.insert(header::ETAG, v);
    }
    Ok(resp)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestAgain {
    /// What is wrong with the file and what to send instead; the enterprise reads it in its receipt.
    pub opinion: Paragraph<500>,
}

/// Ask the enterprise to send a document again (customs staff who may review the subject).
#[utoipa::path(post, path = "/api/v1/documents/{id}/request-again", tag = "documents", security(("bearer" = [])),
    params(("id" = i64, Path, description = "the attachment")), request_body = RequestAgain,
    responses((status = 201, body = DocRequest), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "replaced already, or asked for already"),
        (status = 422, body = ErrorBody)))]
pub async fn request_again(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<RequestAgain>,
) -> Result<(StatusCode, Json<DocRequest>), ApiError> {
    let opinion = req.opinion.trim().to_owned();
    if opinion.is_empty() {
        return Err(invalid("opinion", "missing_opinion", "say which document is wanted again and why"));
    }
    let now = state.now_ms();
    let request = state.db.write(move |tx| super::request_again(tx, now, &caller, id, &opinion)).await?;
    state.receipts_changed();
    Ok((StatusCode::CREATED, Json(request)))
}
