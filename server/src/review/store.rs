//! The review switch's table (`auto_review`): its SQL, answering [`StoreError`].

use rusqlite::{Connection, Transaction, params};

use crate::db::StoreError;

/// Does `unit` review its own queue automatically?
pub fn auto_review_enabled(c: &Connection, unit: i64) -> Result<bool, StoreError> {
    // Cached: every submission asks (a bulk of signed messages, thousands of times in one transaction).
    Ok(c.prepare_cached("SELECT EXISTS (SELECT 1 FROM auto_review WHERE unit_id = ?1 AND enabled = 1)")?
        .query_row([unit], |r| r.get(0))?)
}

pub fn set_auto_review(
    tx: &Transaction<'_>,
    now: i64,
    unit: i64,
    enabled: bool,
    changed_by: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO auto_review (unit_id, enabled, changed_by, changed_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (unit_id) DO UPDATE SET enabled = excluded.enabled, changed_by = excluded.changed_by,
             changed_at = excluded.changed_at",
        params![unit, enabled, changed_by, now],
    )?;
    Ok(())
}
