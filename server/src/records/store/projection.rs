//! The projection's rows: `record_projection` (one per record), `record_checks` and `record_photos`
//! (kept row by row, [`write_rows`]).

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, Transaction, params, params_from_iter, types::Value};

use crate::error::StoreError;

/// The empty projection of a record just created at dispatch.
pub fn create(
    tx: &Transaction<'_>,
    instruction_id: i64,
    checks_total: usize,
    now: i64,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO record_projection (instruction_id, checks_total, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (instruction_id) DO NOTHING",
    )?
    .execute(params![instruction_id, checks_total as i64, now])?;
    Ok(())
}

/// The record-level columns of a projection, as [`update`] writes them.
pub struct Summary<'a> {
    pub verdict: Option<&'a str>,
    pub disposal: Option<&'a str>,
    pub complete: bool,
    pub checks_done: i64,
    pub checks_total: i64,
    pub open_conflicts: i64,
    /// JSON of the conflict views.
    pub conflicts: &'a str,
    pub signed: bool,
    /// JSON of what the record is missing for submission.
    pub missing: &'a str,
}

/// Rewrites a record's `record_projection` row.
pub fn update(
    tx: &Transaction<'_>,
    instruction_id: i64,
    s: &Summary<'_>,
    now: i64,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "UPDATE record_projection SET verdict = ?2, disposal = ?3, complete = ?4, checks_done = ?5,
             checks_total = ?6, open_conflicts = ?7, conflicts = ?8,
             first_change_at = coalesce(first_change_at, ?9), updated_at = ?9, signed = ?10, missing = ?11
         WHERE instruction_id = ?1",
    )?
    .execute(params![
        instruction_id,
        s.verdict,
        s.disposal,
        s.complete,
        s.checks_done,
        s.checks_total,
        s.open_conflicts,
        s.conflicts,
        now,
        s.signed,
        s.missing,
    ])?;
    Ok(())
}

/// Brings a record's check rows to `rows` (item id → result, measurement, unit, note, by, at).
pub fn write_checks(
    tx: &Transaction<'_>,
    instruction_id: i64,
    rows: BTreeMap<String, Vec<Value>>,
) -> Result<(), StoreError> {
    Ok(write_rows(tx, &CHECK_ROWS, instruction_id, rows)?)
}

/// Brings a record's photo rows to `rows` (sha256 → check item, caption, taken at, by, withdrawn).
pub fn write_photos(
    tx: &Transaction<'_>,
    instruction_id: i64,
    rows: BTreeMap<String, Vec<Value>>,
) -> Result<(), StoreError> {
    Ok(write_rows(tx, &PHOTO_ROWS, instruction_id, rows)?)
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

/// Whether the record is ready, from the projection rows; `None` when it has no projection.
pub fn ready(c: &Connection, instruction_id: i64) -> Result<Option<bool>, StoreError> {
    c.prepare_cached(
        "SELECT p.signed AND p.open_conflicts = 0 AND p.checks_done = p.checks_total
             AND p.verdict IS NOT NULL AND NOT EXISTS (
             SELECT 1 FROM record_photos rp WHERE rp.instruction_id = p.instruction_id
               AND NOT rp.withdrawn AND NOT EXISTS (SELECT 1 FROM photos ph WHERE ph.sha256 = rp.sha256))
         FROM record_projection p WHERE p.instruction_id = ?1",
    )?
    .query_row([instruction_id], |r| r.get(0))
    .optional()
    .map_err(StoreError::from)
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
