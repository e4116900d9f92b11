//! The `receipts` table: every SQL statement of the module, answering [`StoreError`], never HTTP.

use rusqlite::{Connection, Transaction, params};

use super::{Change, Receipt};
use crate::{db::StoreError, domain::events::Subject};

/// Writes the receipt of change `c` at `now`; answers its id (the cursor).
pub fn insert(tx: &Transaction<'_>, now: i64, c: &Change<'_>) -> Result<i64, StoreError> {
    // Cached: a bulk of messages writes thousands of receipts in one transaction.
    tx.prepare_cached(
        "INSERT INTO receipts (enterprise_id, subject, subject_id, inspection_no, kind, state, opinion, at, details)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        c.enterprise_id,
        c.event.subject(),
        c.subject_id,
        c.inspection_no,
        c.event.kind(),
        c.state,
        c.opinion,
        now,
        c.details.to_string()
    ])?;
    Ok(tx.last_insert_rowid())
}

/// Receipts after `after`, at most `limit`, of enterprise `own` and, for each `(enterprise, subjects)` of
/// `others`, that enterprise's receipts about those subjects. Filtered in SQL, so a page is never short
/// while more visible receipts exist.
pub fn after(
    c: &Connection,
    after: i64,
    own: i64,
    others: &[(i64, Vec<Subject>)],
    limit: i64,
) -> Result<Vec<Receipt>, StoreError> {
    let mut clauses = vec!["enterprise_id = ?".to_string()];
    let mut values: Vec<rusqlite::types::Value> = vec![after.into(), own.into()];
    for (principal, subjects) in others {
        let marks = subjects.iter().map(|_| "?").collect::<Vec<_>>().join(",");
        clauses.push(format!("(enterprise_id = ? AND subject IN ({marks}))"));
        values.push((*principal).into());
        values.extend(subjects.iter().map(|s| rusqlite::types::Value::from(s.as_str().to_string())));
    }
    values.push(limit.into());
    let mut stmt = c.prepare(&format!(
        "SELECT id, enterprise_id, subject, subject_id, inspection_no, kind, state, opinion, at, details
         FROM receipts WHERE id > ? AND ({}) ORDER BY id LIMIT ?",
        clauses.join(" OR ")
    ))?;
    let rows = stmt.query_map(rusqlite::params_from_iter(values), |r| {
        let id: i64 = r.get(0)?;
        Ok(Receipt {
            id,
            enterprise_id: r.get(1)?,
            subject: r.get(2)?,
            subject_id: r.get(3)?,
            inspection_no: r.get(4)?,
            kind: r.get(5)?,
            state: r.get(6)?,
            opinion: r.get(7)?,
            at: r.get(8)?,
            details: crate::db::stored_json(r, 9, "receipts.details", id)?,
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}
