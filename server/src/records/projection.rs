//! The record as SQL rows (check results, photo references, verdict, completion, open conflicts),
//! rewritten after every accepted change, and the [`Progress`] that follows from it: whether the record
//! is ready to submit (see [`Progress::ready`]). Moving the instruction is the
//! workflow's.

use std::collections::BTreeMap;

use fieldcheck_sync::{
    Conflict, RecordDoc, RecordError, open_conflicts,
    schema::{InstructionPart, Record, Verdict},
};
use rusqlite::{Connection, OptionalExtension, Transaction, params, params_from_iter, types::Value};
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
    tx.prepare_cached(
        "INSERT INTO record_projection (instruction_id, checks_total, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (instruction_id) DO NOTHING",
    )?
    .execute(params![instruction_id, checks_total as i64, now])?;
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
    let read = record.read();
    finish(record, read)
}

/// [`compute`] with the record's instruction part known (the sync engine caches it beside the
/// document; `RecordDoc::read_with`).
pub fn compute_with(record: &RecordDoc, instruction: &InstructionPart) -> Result<Projected, ApiError> {
    finish(record, record.read_with(instruction.clone()))
}

fn finish(record: &RecordDoc, read: Result<Record, RecordError>) -> Result<Projected, ApiError> {
    let read = read.map_err(|e| ApiError::Internal(anyhow::anyhow!("merged record unreadable: {e}")))?;
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
    write_rows(tx, &CHECK_ROWS, id, checks)?;
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
    write_rows(tx, &PHOTO_ROWS, id, photos)?;
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
    tx.prepare_cached(
        "UPDATE record_projection SET verdict = ?2, disposal = ?3, complete = ?4, checks_done = ?5,
             checks_total = ?6, open_conflicts = ?7, conflicts = ?8,
             first_change_at = coalesce(first_change_at, ?9), updated_at = ?9, signed = ?10, missing = ?11
         WHERE instruction_id = ?1",
    )?
    .execute(params![
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
    ])?;

    let ready = missing.is_empty();
    let details = json!({"open_conflicts": views.len(), "complete": complete, "signed": signed,
                         "photos_present": photos_present, "digest": digest, "missing": missing});
    Ok(Progress { ready, details })
}

/// One projection table as [`write_rows`] keeps it: a record's rows keyed by one text column.
struct RowsTable {
    /// The key and the other columns of a record's rows, in the order of the row values.
    select: &'static str,
    /// Insert or replace one row: `?1` the instruction, `?2` the key, then the columns.
    upsert: &'static str,
    /// Delete one row: `?1` the instruction, `?2` the key.
    delete: &'static str,
}

const CHECK_ROWS: RowsTable = RowsTable {
    select: "SELECT item_id, result, measurement, unit, note, by_officer, at FROM record_checks
             WHERE instruction_id = ?1",
    upsert:
        "INSERT INTO record_checks (instruction_id, item_id, result, measurement, unit, note, by_officer, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (instruction_id, item_id) DO UPDATE SET result = excluded.result,
                 measurement = excluded.measurement, unit = excluded.unit, note = excluded.note,
                 by_officer = excluded.by_officer, at = excluded.at",
    delete: "DELETE FROM record_checks WHERE instruction_id = ?1 AND item_id = ?2",
};

const PHOTO_ROWS: RowsTable = RowsTable {
    select: "SELECT sha256, check_item, caption, taken_at, by_officer, withdrawn FROM record_photos
             WHERE instruction_id = ?1",
    upsert: "INSERT INTO record_photos (instruction_id, sha256, check_item, caption, taken_at, by_officer, withdrawn)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (instruction_id, sha256) DO UPDATE SET check_item = excluded.check_item,
                 caption = excluded.caption, taken_at = excluded.taken_at, by_officer = excluded.by_officer,
                 withdrawn = excluded.withdrawn",
    delete: "DELETE FROM record_photos WHERE instruction_id = ?1 AND sha256 = ?2",
};

/// Brings a record's rows of one table to `rows` (key → the other columns), writing only the rows
/// that differ: a sync message changes one or two checks, and rewriting all of them (and their
/// primary-key index) every time was most of the projection's SQL. The result is the table a full
/// rewrite would leave.
fn write_rows(
    tx: &Connection,
    table: &RowsTable,
    instruction_id: i64,
    rows: BTreeMap<String, Vec<Value>>,
) -> rusqlite::Result<()> {
    let mut stored: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    {
        let mut stmt = tx.prepare_cached(table.select)?;
        let width = stmt.column_count();
        let mut found = stmt.query([instruction_id])?;
        while let Some(r) = found.next()? {
            let values = (1..width).map(|i| r.get::<_, Value>(i)).collect::<rusqlite::Result<_>>()?;
            stored.insert(r.get(0)?, values);
        }
    }
    let mut upsert = tx.prepare_cached(table.upsert)?;
    for (key, values) in rows {
        if stored.remove(&key).as_ref() == Some(&values) {
            continue;
        }
        let head = [Value::from(instruction_id), Value::from(key)];
        upsert.execute(params_from_iter(head.into_iter().chain(values)))?;
    }
    let mut delete = tx.prepare_cached(table.delete)?;
    for key in stored.into_keys() {
        delete.execute(params![instruction_id, key])?;
    }
    Ok(())
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
        .prepare_cached(
            "SELECT p.signed AND p.open_conflicts = 0 AND p.checks_done = p.checks_total
                 AND p.verdict IS NOT NULL AND NOT EXISTS (
                 SELECT 1 FROM record_photos rp WHERE rp.instruction_id = p.instruction_id
                   AND NOT rp.withdrawn AND NOT EXISTS (SELECT 1 FROM photos ph WHERE ph.sha256 = rp.sha256))
             FROM record_projection p WHERE p.instruction_id = ?1",
        )?
        .query_row([instruction_id], |r| r.get(0))
        .optional()?;
    Ok(ready == Some(true))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The migrated schema without its foreign keys: the rows need no instruction behind them here.
    fn schema() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        drop(crate::db::Db::open(dir.path(), 1).unwrap());
        let c = Connection::open(dir.path().join(crate::db::DB_FILE)).unwrap();
        c.pragma_update(None, "foreign_keys", "OFF").unwrap();
        (dir, c)
    }

    fn check(result: Option<&str>, note: &str, at: i64) -> Vec<Value> {
        vec![
            Value::from(result.map(str::to_owned)),
            Value::from(Some(4.5)),
            Value::from(Some("°C".to_owned())),
            Value::from(note.to_owned()),
            Value::from(Some("officer1".to_owned())),
            Value::from(Some(at)),
        ]
    }

    fn stored(c: &Connection, instruction_id: i64) -> BTreeMap<String, Vec<Value>> {
        let mut stmt = c.prepare(CHECK_ROWS.select).unwrap();
        stmt.query_map([instruction_id], |r| Ok((r.get(0)?, (1..7).map(|i| r.get(i).unwrap()).collect())))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    #[test]
    fn writing_only_the_changed_rows_leaves_what_a_full_rewrite_would_and_touches_nothing_else() {
        let (_dir, mut c) = schema();
        let other = BTreeMap::from([("c1".to_owned(), check(Some("pass"), "another record", 1))]);
        let steps = [
            // (rows, how many of them differ from the step before)
            (vec![("c1", check(None, "", 0)), ("c2", check(None, "", 0)), ("c3", check(None, "", 0))], 3),
            (
                vec![
                    ("c1", check(Some("pass"), "", 5)),
                    ("c2", check(None, "", 0)),
                    ("c3", check(None, "", 0)),
                ],
                1,
            ),
            (
                vec![
                    ("c1", check(Some("pass"), "", 5)),
                    ("c2", check(None, "", 0)),
                    ("c3", check(None, "", 0)),
                ],
                0,
            ),
            (
                vec![
                    ("c1", check(Some("pass"), "", 5)),
                    ("c3", check(Some("fail"), "warm", 9)),
                    ("c4", check(None, "", 0)),
                ],
                3,
            ),
        ];
        let tx = c.transaction().unwrap();
        write_rows(&tx, &CHECK_ROWS, 2, other.clone()).unwrap();
        for (rows, differing) in steps {
            let rows: BTreeMap<String, Vec<Value>> =
                rows.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            let before = tx.total_changes();
            write_rows(&tx, &CHECK_ROWS, 1, rows.clone()).unwrap();
            assert_eq!(tx.total_changes() - before, differing, "only the differing rows are written");
            assert_eq!(
                stored(&tx, 1),
                rows,
                "the rows are exactly the projection's, as after a full rewrite"
            );
            assert_eq!(stored(&tx, 2), other, "another record's rows are left alone");
        }
    }
}
