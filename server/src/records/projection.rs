//! The record as SQL rows (check results, photo references, verdict, completion, open conflicts),
//! rewritten after every accepted change, and the [`Progress`] that follows from it: whether the record
//! is ready to submit (see [`Progress::ready`]). Moving the instruction is the
//! workflow's.

use std::collections::BTreeMap;

use fieldcheck_sync::{
    Conflict, RecordDoc, RecordError, open_conflicts,
    schema::{InstructionPart, Record, Verdict},
};
use serde::Serialize;
use serde_json::json;

use super::{error::RecordsError, store};
use crate::db::{Conn, SqlValue as Value, Tx};

/// The empty projection of a record just created at dispatch.
pub fn create(tx: &Tx<'_>, instruction_id: i64, checks_total: usize, now: i64) -> Result<(), RecordsError> {
    Ok(store::projection::create(tx, instruction_id, checks_total, now)?)
}

/// One conflicted field as a supervisor sees it: every value, with the device and officer that wrote it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ConflictView {
    /// The document path, e.g. `checks.c1.result` or `verdict.value`.
    pub path: String,
    pub values: Vec<ConflictValue>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ConflictValue {
    pub value: String,
    /// The automerge actor (hex) that wrote it.
    pub actor: String,
    /// The officer bound to that actor, if any.
    pub officer: Option<String>,
}

pub fn conflict_views(c: &Conn, conflicts: &[Conflict]) -> Result<Vec<ConflictView>, RecordsError> {
    let mut officers: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut views = Vec::with_capacity(conflicts.len());
    for conflict in conflicts {
        let mut values = Vec::with_capacity(conflict.values.len());
        for v in &conflict.values {
            let actor = v.actor.to_hex_string();
            if !officers.contains_key(&actor) {
                let officer = store::officer_of_actor(c, &actor)?;
                officers.insert(actor.clone(), officer);
            }
            values.push(ConflictValue { value: v.value.clone(), officer: officers[&actor].clone(), actor });
        }
        views.push(ConflictView { path: conflict.field.path(), values });
    }
    Ok(views)
}

/// Rewrites the projection from the merged record; answers what it means for the instruction.
pub fn project(
    tx: &Tx<'_>,
    now: i64,
    instruction_id: i64,
    record: &RecordDoc,
) -> Result<Progress, RecordsError> {
    write(tx, now, instruction_id, &compute(record)?)
}

/// What the projection is made of, read from the merged record: the automerge part of [`project`],
/// done by the sync engine before it queues for the writer so that the writer only writes rows.
pub struct Projected {
    read: Record,
    conflicts: Vec<Conflict>,
}

pub fn compute(record: &RecordDoc) -> Result<Projected, RecordsError> {
    let read = record.read();
    finish(record, read)
}

/// [`compute`] with the record's instruction part known (the sync engine caches it beside the
/// document; `RecordDoc::read_with`).
pub fn compute_with(record: &RecordDoc, instruction: &InstructionPart) -> Result<Projected, RecordsError> {
    finish(record, record.read_with(instruction.clone()))
}

fn finish(record: &RecordDoc, read: Result<Record, RecordError>) -> Result<Projected, RecordsError> {
    let read = read.map_err(|e| RecordsError::internal("merged record unreadable", e))?;
    let conflicts = open_conflicts(record).map_err(|e| RecordsError::internal("conflict check", e))?;
    Ok(Projected { read, conflicts })
}

/// The SQL part of [`project`]: the rows, from what [`compute`] read.
pub fn write(
    tx: &Tx<'_>,
    now: i64,
    instruction_id: i64,
    projected: &Projected,
) -> Result<Progress, RecordsError> {
    let Projected { read, conflicts } = projected;
    let views = conflict_views(tx, conflicts)?;
    let id = instruction_id;

    let mut done = 0;
    let mut checks = BTreeMap::new();
    for (item, entry) in &read.checks {
        done += i64::from(entry.result.is_some());
        let row = vec![
            Value::from(entry.result.map(|r| r.as_str().to_owned())),
            Value::from(entry.measurement.as_ref().map(|m| m.value)),
            Value::from(entry.measurement.as_ref().map(|m| m.unit.clone())),
            Value::from(entry.note.clone()),
            Value::from(entry.last_edit.as_ref().map(|s| s.by.as_str().to_owned())),
            Value::from(entry.last_edit.as_ref().map(|s| s.at)),
        ];
        checks.insert(item.clone(), row);
    }
    store::projection::write_checks(tx, id, checks)?;
    let mut photos = BTreeMap::new();
    let mut photos_missing = 0;
    for (sha, photo) in &read.photos {
        let row = vec![
            Value::from(photo.value.check_item.clone()),
            Value::from(photo.value.caption.clone()),
            Value::from(photo.value.taken_at),
            Value::from(photo.stamp.by.as_str().to_owned()),
            Value::from(photo.value.withdrawn),
        ];
        photos.insert(sha.as_str().to_owned(), row);
        if !photo.value.withdrawn && !crate::photos::store::is_present(tx, sha.as_str())? {
            photos_missing += 1;
        }
    }
    store::projection::write_photos(tx, id, photos)?;
    let photos_present = photos_missing == 0;
    // The same words the handheld shows the officer, so both sides agree on what "ready" means.
    let mut missing = read.missing_for_submission(conflicts.len());
    let digest = read.content_digest();
    let signed = !read.officers.is_empty()
        && read
            .officers
            .iter()
            .all(|o| read.signatures.get(o).is_some_and(|s| s.digest.as_deref() == Some(digest.as_str())));
    note_missing_photos(&mut missing, photos_missing);
    let (verdict, disposal) = match read.verdict.as_ref().map(|v| v.value) {
        None => (None, None),
        Some(Verdict::Conforming) => (Some("conforming"), None),
        Some(Verdict::NonConforming { disposal }) => (Some("non_conforming"), Some(disposal.as_str())),
    };
    let complete = read.completion.as_ref().is_some_and(|c| c.value.complete);
    let conflicts_json = serde_json::to_string(&views).map_err(anyhow::Error::from)?;
    let missing_json = serde_json::to_string(&missing).map_err(anyhow::Error::from)?;
    let summary = store::projection::Summary {
        verdict,
        disposal,
        complete,
        checks_done: done,
        checks_total: read.checks.len() as i64,
        open_conflicts: views.len() as i64,
        conflicts: &conflicts_json,
        signed,
        missing: &missing_json,
    };
    store::projection::update(tx, id, &summary, now)?;

    let ready = missing.is_empty();
    let details = json!({"open_conflicts": views.len(), "complete": complete, "signed": signed,
                         "photos_present": photos_present, "digest": digest, "missing": missing});
    Ok(Progress { ready, details })
}

/// Adds "N photos not yet in the photo store" to what a record is missing, when N > 0.
pub fn note_missing_photos(missing: &mut Vec<String>, n: usize) {
    match n {
        0 => {}
        1 => missing.push("1 photo not yet in the photo store".to_owned()),
        n => missing.push(format!("{n} photos not yet in the photo store")),
    }
}

/// What a merged record means for its instruction; the workflow moves the instruction accordingly.
#[derive(Debug, Clone)]
pub struct Progress {
    /// Ready to submit: every checklist item has a result, a verdict (with its disposal when
    /// non-conforming), no open conflict, every photo not withdrawn present in the store, and every
    /// assigned officer has signed the current content.
    pub ready: bool,
    /// What the receipt of a resulting state change says.
    pub details: serde_json::Value,
}

/// Whether the record is ready, from the projection rows (so the record document need not be loaded):
/// what a newly arrived photo may change.
pub fn ready(c: &Conn, instruction_id: i64) -> Result<bool, RecordsError> {
    Ok(store::projection::ready(c, instruction_id)? == Some(true))
}
