//! The record as SQL rows (check results, photo references, verdict, completion, open conflicts),
//! rewritten after every accepted change, and the [`Progress`] that follows from it: whether the record
//! is ready to submit (see [`Progress::ready`]). Moving the instruction is the
//! workflow's.

use std::collections::BTreeMap;

use fieldcheck_sync::{
    Conflict, RecordDoc, open_conflicts,
    schema::{Record, Verdict},
};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;
use serde_json::json;

use crate::error::ApiError;

/// The empty projection of a record just created at dispatch.
pub fn create(
    tx: &Transaction<'_>,
    instruction_id: i64,
    checks_total: usize,
    now: i64,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO record_projection (instruction_id, checks_total, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (instruction_id) DO NOTHING",
        params![instruction_id, checks_total as i64, now],
    )?;
    Ok(())
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

pub fn conflict_views(c: &Connection, conflicts: &[Conflict]) -> rusqlite::Result<Vec<ConflictView>> {
    let mut officers: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut stmt = c.prepare_cached(
        "SELECT u.username FROM device_actors da JOIN devices d ON d.id = da.device_id
         JOIN users u ON u.id = d.officer_id WHERE da.actor_id = ?1",
    )?;
    let mut views = Vec::with_capacity(conflicts.len());
    for conflict in conflicts {
        let mut values = Vec::with_capacity(conflict.values.len());
        for v in &conflict.values {
            let actor = v.actor.to_hex_string();
            if !officers.contains_key(&actor) {
                let officer = stmt.query_row([&actor], |r| r.get(0)).ok();
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
    tx: &Transaction<'_>,
    now: i64,
    instruction_id: i64,
    record: &RecordDoc,
) -> Result<Progress, ApiError> {
    write(tx, now, instruction_id, &compute(record)?)
}

/// What the projection is made of, read from the merged record: the automerge part of [`project`],
/// done by the sync engine before it queues for the writer so that the writer only writes rows.
pub struct Projected {
    read: Record,
    conflicts: Vec<Conflict>,
}

pub fn compute(record: &RecordDoc) -> Result<Projected, ApiError> {
    let read =
        record.read().map_err(|e| ApiError::Internal(anyhow::anyhow!("merged record unreadable: {e}")))?;
    let conflicts =
        open_conflicts(record).map_err(|e| ApiError::Internal(anyhow::anyhow!("conflict check: {e}")))?;
    Ok(Projected { read, conflicts })
}

/// The SQL part of [`project`]: the rows, from what [`compute`] read.
pub fn write(
    tx: &Transaction<'_>,
    now: i64,
    instruction_id: i64,
    projected: &Projected,
) -> Result<Progress, ApiError> {
    let Projected { read, conflicts } = projected;
    let views = conflict_views(tx, conflicts)?;
    let id = instruction_id;

    tx.execute("DELETE FROM record_checks WHERE instruction_id = ?1", [id])?;
    let mut done = 0;
    for (item, entry) in &read.checks {
        done += i64::from(entry.result.is_some());
        tx.execute(
            "INSERT INTO record_checks (instruction_id, item_id, result, measurement, unit, note, by_officer, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                id,
                item,
                entry.result.map(|r| r.as_str()),
                entry.measurement.as_ref().map(|m| m.value),
                entry.measurement.as_ref().map(|m| m.unit.as_str()),
                entry.note,
                entry.last_edit.as_ref().map(|s| s.by.as_str()),
                entry.last_edit.as_ref().map(|s| s.at),
            ],
        )?;
    }
    tx.execute("DELETE FROM record_photos WHERE instruction_id = ?1", [id])?;
    let mut photos_missing = 0;
    for (sha, photo) in &read.photos {
        tx.execute(
            "INSERT INTO record_photos (instruction_id, sha256, check_item, caption, taken_at, by_officer, withdrawn)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                id,
                sha.as_str(),
                photo.value.check_item,
                photo.value.caption,
                photo.value.taken_at,
                photo.stamp.by.as_str(),
                photo.value.withdrawn
            ],
        )?;
        if !photo.value.withdrawn && !crate::photos::store::is_present(tx, sha.as_str())? {
            photos_missing += 1;
        }
    }
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
    tx.execute(
        "UPDATE record_projection SET verdict = ?2, disposal = ?3, complete = ?4, checks_done = ?5,
             checks_total = ?6, open_conflicts = ?7, conflicts = ?8,
             first_change_at = coalesce(first_change_at, ?9), updated_at = ?9, signed = ?10, missing = ?11
         WHERE instruction_id = ?1",
        params![
            id,
            verdict,
            disposal,
            complete,
            done,
            read.checks.len() as i64,
            views.len() as i64,
            serde_json::to_string(&views).map_err(anyhow::Error::from)?,
            now,
            signed,
            serde_json::to_string(&missing).map_err(anyhow::Error::from)?,
        ],
    )?;

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
pub fn ready(c: &Connection, instruction_id: i64) -> Result<bool, ApiError> {
    let ready: Option<bool> = c
        .query_row(
            "SELECT p.signed AND p.open_conflicts = 0 AND p.checks_done = p.checks_total
                 AND p.verdict IS NOT NULL AND NOT EXISTS (
                 SELECT 1 FROM record_photos rp WHERE rp.instruction_id = p.instruction_id
                   AND NOT rp.withdrawn AND NOT EXISTS (SELECT 1 FROM photos ph WHERE ph.sha256 = rp.sha256))
             FROM record_projection p WHERE p.instruction_id = ?1",
            [instruction_id],
            |r| r.get(0),
        )
        .optional()?;
    Ok(ready == Some(true))
}
