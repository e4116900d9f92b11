//! The record as SQL rows (check results, photo references, verdict, completion, open conflicts),
//! rewritten after every accepted change, and the instruction's progress that follows from it:
//! `in_progress` at the first officer change, `submitted` once complete with no open conflict and
//! every referenced photo present (and back to `in_progress` if that stops being true before approval).

use std::collections::BTreeMap;

use fieldcheck_sync::{Conflict, RecordDoc, open_conflicts, schema::Verdict};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;
use serde_json::json;

use crate::{
    audit::Actor,
    auth::Caller,
    domain::InstructionState,
    error::ApiError,
    instructions::{self, Change, Instruction},
};

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
        "SELECT u.username FROM devices d JOIN users u ON u.id = d.officer_id WHERE d.actor_id = ?1",
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

/// Rewrites the projection from the merged record and advances the instruction. Answers whether a
/// receipt was written.
pub fn project(
    tx: &Transaction<'_>,
    now: i64,
    caller: &Caller,
    instruction: &Instruction,
    record: &RecordDoc,
) -> Result<bool, ApiError> {
    let read =
        record.read().map_err(|e| ApiError::Internal(anyhow::anyhow!("merged record unreadable: {e}")))?;
    let conflicts =
        open_conflicts(record).map_err(|e| ApiError::Internal(anyhow::anyhow!("conflict check: {e}")))?;
    let views = conflict_views(tx, &conflicts)?;
    let id = instruction.id;

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
    let mut photos_present = true;
    for (sha, photo) in &read.photos {
        tx.execute(
            "INSERT INTO record_photos (instruction_id, sha256, check_item, caption, taken_at, by_officer)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                id,
                sha.as_str(),
                photo.value.check_item,
                photo.value.caption,
                photo.value.taken_at,
                photo.stamp.by.as_str()
            ],
        )?;
        photos_present &= crate::photos::store::is_present(tx, sha.as_str())?;
    }
    let (verdict, disposal) = match read.verdict.as_ref().map(|v| v.value) {
        None => (None, None),
        Some(Verdict::Conforming) => (Some("conforming"), None),
        Some(Verdict::NonConforming { disposal }) => (Some("non_conforming"), Some(disposal.as_str())),
    };
    let complete = read.completion.as_ref().is_some_and(|c| c.value.complete);
    tx.execute(
        "UPDATE record_projection SET verdict = ?2, disposal = ?3, complete = ?4, checks_done = ?5,
             checks_total = ?6, open_conflicts = ?7, conflicts = ?8,
             first_change_at = coalesce(first_change_at, ?9), updated_at = ?9
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
            now
        ],
    )?;

    let submittable = complete && conflicts.is_empty() && photos_present;
    let actor = Actor::User(caller.user_id);
    let mut current = instruction.clone();
    let mut receipts = false;
    if current.state == InstructionState::Assigned {
        let change = Change {
            state: InstructionState::InProgress,
            kind: "inspection_started",
            opinion: None,
            details: json!({"officer": caller.username}),
        };
        instructions::transition(tx, now, &actor, &current, change)?;
        current.state = InstructionState::InProgress;
        receipts = true;
    }
    let details =
        json!({"open_conflicts": views.len(), "complete": complete, "photos_present": photos_present});
    let next = match current.state {
        InstructionState::InProgress | InstructionState::Returned if submittable => {
            Some((InstructionState::Submitted, "result_submitted"))
        }
        InstructionState::Submitted if !submittable => {
            Some((InstructionState::InProgress, "result_reopened"))
        }
        _ => None,
    };
    if let Some((state, kind)) = next {
        instructions::transition(tx, now, &actor, &current, Change { state, kind, opinion: None, details })?;
        receipts = true;
    }
    Ok(receipts)
}

/// A photo arrived in the store: an instruction waiting only for it may now be submitted. Decided from the
/// projection rows, so the record document need not be loaded. Answers whether a receipt was written.
pub fn photo_arrived(
    tx: &Transaction<'_>,
    now: i64,
    actor: &Actor,
    instruction_id: i64,
) -> Result<bool, ApiError> {
    let Some(instruction) = instructions::get(tx, instruction_id)? else { return Ok(false) };
    if !matches!(instruction.state, InstructionState::InProgress | InstructionState::Returned) {
        return Ok(false);
    }
    let ready: Option<bool> = tx
        .query_row(
            "SELECT p.complete AND p.open_conflicts = 0 AND NOT EXISTS (
                 SELECT 1 FROM record_photos rp WHERE rp.instruction_id = p.instruction_id
                   AND NOT EXISTS (SELECT 1 FROM photos ph WHERE ph.sha256 = rp.sha256))
             FROM record_projection p WHERE p.instruction_id = ?1",
            [instruction_id],
            |r| r.get(0),
        )
        .optional()?;
    if ready != Some(true) {
        return Ok(false);
    }
    let change = Change {
        state: InstructionState::Submitted,
        kind: "result_submitted",
        opinion: None,
        details: json!({"open_conflicts": 0, "complete": true, "photos_present": true}),
    };
    instructions::transition(tx, now, actor, &instruction, change)?;
    Ok(true)
}
