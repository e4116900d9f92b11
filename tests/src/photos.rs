//! Photo uploads as a client does them (see `docs/api.md`, "Photos"), and the workflow that gives an
//! officer an instruction to upload for.

use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{Api, repo_root};

/// The name of a photo: the lowercase hex SHA-256 of its bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A fixture photo's bytes from `fixtures/photos/`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = repo_root().join("fixtures/photos").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn json_of(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into()))
}

/// `PUT /api/v1/photos/{sha}?instruction=…` with the whole photo in one request.
pub async fn put_photo(api: &Api, instruction: i64, bytes: &[u8], content_type: &str) -> (u16, Value) {
    put_named(api, instruction, &sha256_hex(bytes), bytes, content_type).await
}

/// The same under a name the caller chooses (to send bytes that do not match it).
pub async fn put_named(
    api: &Api,
    instruction: i64,
    sha: &str,
    bytes: &[u8],
    content_type: &str,
) -> (u16, Value) {
    let path = format!("/api/v1/photos/{sha}?instruction={instruction}");
    let headers = [("content-type", content_type.to_string())];
    let (status, _, body) = api.bytes(Method::PUT, &path, &headers, Some(bytes.to_vec().into())).await;
    (status, json_of(&body))
}

/// Starts (or resumes) a resumable upload: `(status, upload status)`.
pub async fn begin_upload(api: &Api, instruction: i64, bytes: &[u8]) -> (u16, Value) {
    let path = format!("/api/v1/photos/{}/uploads", sha256_hex(bytes));
    api.post(&path, json!({"instruction_id": instruction, "size": bytes.len()})).await
}

/// Sends one chunk starting at `offset`: `(status, new offset from the Upload-Offset header, body)`.
pub async fn send_chunk(
    api: &Api,
    upload_id: &str,
    offset: u64,
    body: reqwest::Body,
) -> (u16, Option<u64>, Value) {
    let headers = [
        ("content-type", "application/offset+octet-stream".to_string()),
        ("upload-offset", offset.to_string()),
    ];
    let (status, h, body) =
        api.bytes(Method::PATCH, &format!("/api/v1/photo-uploads/{upload_id}"), &headers, Some(body)).await;
    let new_offset = h.get("upload-offset").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    (status, new_offset, json_of(&body))
}

/// Asks how many bytes of the upload arrived (`HEAD`).
pub async fn upload_offset(api: &Api, upload_id: &str) -> (u16, Option<u64>) {
    let (status, h, _) =
        api.bytes(Method::HEAD, &format!("/api/v1/photo-uploads/{upload_id}"), &[], None).await;
    (status, h.get("upload-offset").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()))
}

pub async fn finish_upload(api: &Api, upload_id: &str) -> (u16, Value) {
    api.post(&format!("/api/v1/photo-uploads/{upload_id}/finish"), json!({})).await
}

/// A complete resumable upload in chunks of `chunk` bytes, resuming from wherever the server stands:
/// `(status, body)` of the finish (or of the start, when the photo needed no bytes).
pub async fn upload_resumable(api: &Api, instruction: i64, bytes: &[u8], chunk: usize) -> (u16, Value) {
    let (status, started) = begin_upload(api, instruction, bytes).await;
    if !(status == 200 || status == 201) || started["complete"] == true {
        return (status, started);
    }
    let id = started["upload_id"].as_str().expect("upload id").to_string();
    let mut offset = started["offset"].as_u64().expect("offset");
    while (offset as usize) < bytes.len() {
        let end = (offset as usize + chunk).min(bytes.len());
        let piece = bytes[offset as usize..end].to_vec();
        let (status, new_offset, body) = send_chunk(api, &id, offset, piece.into()).await;
        match status {
            204 => offset = new_offset.expect("Upload-Offset on 204"),
            409 if body["code"] == "offset_mismatch" => offset = body["details"]["offset"].as_u64().unwrap(),
            _ => return (status, body),
        }
    }
    finish_upload(api, &id).await
}

/// `GET` of raw bytes: `(status, content type, body)`.
pub async fn get_bytes(api: &Api, path: &str) -> (u16, String, Vec<u8>) {
    let (status, h, body) = api.bytes(Method::GET, path, &[], None).await;
    let ct = h.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    (status, ct, body)
}

/// An on-site instruction assigned to `officers` (demo usernames): [`crate::dispatch::dispatched`].
pub use crate::dispatch::dispatched as assigned_instruction;
