//! The supervisor's view of an instruction's record (`GET /api/v1/instructions/{id}/record`): the merged
//! record as stored, its open conflicts with who wrote each value, and what keeps it from being submitted.

use fieldcheck_sync::{RecordDoc, open_conflicts};
use serde::Serialize;

use super::{error::RecordsError, projection, store};
use crate::{
    db::Conn,
    domain::{InstructionState, Principal},
    instructions,
};

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

/// The record of instruction `id`, if `principal` may see the instruction (not there and not theirs look
/// the same).
pub fn record_view(c: &Conn, principal: &Principal, id: i64, now: i64) -> Result<RecordView, RecordsError> {
    let instruction = instructions::visible(c, principal, id, now)?;
    let doc_id = store::record_of(c, id)?.ok_or(RecordsError::NoRecord)?;
    let bytes = store::load_bytes(c, &doc_id)?;
    let mut doc = RecordDoc::load(&bytes, fieldcheck_sync::new_actor_id())
        .map_err(|e| RecordsError::internal("stored record", e))?;
    let read = doc.read().map_err(|e| RecordsError::internal("stored record", e))?;
    let conflicts = open_conflicts(&doc).map_err(|e| RecordsError::internal("conflicts", e))?;
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
}
