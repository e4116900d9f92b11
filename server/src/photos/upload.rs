//! Resumable upload sessions: opening one (or finding the caller's unfinished one, or that the photo is
//! already linked to the instruction) and who may write to it. The bytes, the offsets and the per-upload
//! locks stay with the handlers in `http.rs`; this is the part that decides, in one transaction.

use crate::db::{Conn, Tx};

use super::{Sha256Hex, check_upload, error::PhotoError, store};
use crate::domain::Principal;

/// What a client asks to upload.
pub struct Requested {
    pub sha: Sha256Hex,
    pub instruction_id: i64,
    pub size: u64,
    /// The declared type, already checked as a supported format.
    pub content_type: Option<String>,
    /// How long an unfinished upload is kept, in milliseconds.
    pub ttl: i64,
}

/// How an upload request was answered.
pub enum Opened {
    /// The photo is already linked to this instruction: nothing to send.
    Complete(Sha256Hex),
    /// The caller's unfinished upload of the same photo for the same instruction.
    Resumed(store::UploadRow),
    New(store::UploadRow),
}

/// Opens an upload session for `caller`; answers it and the ids of expired uploads, whose files the
/// caller deletes after the commit.
pub fn open(
    tx: &Tx<'_>,
    now: i64,
    caller: &Principal,
    req: Requested,
) -> Result<(Opened, Vec<String>), PhotoError> {
    let expired = store::expire_uploads(tx, now)?;
    check_upload(tx, caller, req.instruction_id)?;
    // Only bytes already linked to this very instruction count as done: linking a stored photo to
    // another instruction needs the bytes again, or knowing a hash would be enough to read a photo.
    if store::links(tx, req.sha.as_str())?.contains(&req.instruction_id) {
        return Ok((Opened::Complete(req.sha), expired));
    }
    if let Some(open) = store::open_upload(tx, caller.user_id, req.sha.as_str(), req.instruction_id, now)? {
        return Ok((Opened::Resumed(open), expired));
    }
    let row = store::UploadRow {
        id: uuid::Uuid::new_v4().to_string(),
        sha256: req.sha.to_string(),
        instruction_id: req.instruction_id,
        user_id: caller.user_id,
        size: req.size,
        content_type: req.content_type,
        expires_at: now + req.ttl,
    };
    store::insert_upload(tx, &row, now)?;
    Ok((Opened::New(row), expired))
}

/// The upload `id`, if it is `user_id`'s and has not expired; anyone else's is "not found".
pub fn own(c: &Conn, user_id: i64, id: &str, now: i64) -> Result<store::UploadRow, PhotoError> {
    match store::upload(c, id)? {
        Some(r) if r.user_id == user_id && r.expires_at > now => Ok(r),
        _ => Err(PhotoError::NotFound("the upload")),
    }
}
