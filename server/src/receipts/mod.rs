//! Receipts (回执): every state change of something an enterprise owns, listed by cursor.
//!
//! A receipt row is written in the same transaction as the change it reports. The cursor is the row id;
//! writers are serialised (see `db`), so ids become visible in increasing order and `id > cursor` paging
//! neither skips nor repeats under concurrent writes. Long-polling waits on a watch channel that every
//! receipt-writing commit bumps.

pub mod http;

use rusqlite::{Connection, Transaction, params};
use serde::Serialize;
use serde_json::Value;

use crate::{
    auth::Caller,
    delegations,
    domain::{Scope, time::rfc3339},
    error::ApiError,
};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Receipt {
    /// The cursor: pass the last one you saw as `after`.
    pub id: i64,
    pub enterprise_id: i64,
    /// `application`, `instruction`, `booking` or `certificate` (a certificate application).
    pub subject: String,
    pub subject_id: i64,
    pub inspection_no: Option<String>,
    /// What happened, e.g. `submitted`, `returned`, `inspection_notice`, `booking_confirmed`.
    pub kind: String,
    /// The subject's state after the change.
    pub state: String,
    pub opinion: Option<String>,
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: i64,
    pub details: Value,
}

/// What a receipt says; the writer fills in time and id.
pub struct NewReceipt<'a> {
    pub enterprise_id: i64,
    pub subject: &'a str,
    pub subject_id: i64,
    pub inspection_no: Option<&'a str>,
    pub kind: &'a str,
    pub state: &'a str,
    pub opinion: Option<&'a str>,
    pub details: Value,
}

pub fn emit(tx: &Transaction<'_>, now: i64, r: NewReceipt<'_>) -> Result<i64, ApiError> {
    tx.prepare_cached(
        "INSERT INTO receipts (enterprise_id, subject, subject_id, inspection_no, kind, state, opinion, at, details)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
            r.enterprise_id,
            r.subject,
            r.subject_id,
            r.inspection_no,
            r.kind,
            r.state,
            r.opinion,
            now,
            r.details.to_string()
        ])?;
    Ok(tx.last_insert_rowid())
}

/// Subjects a delegate holding `scope` may follow.
fn subjects_of(scope: Scope) -> &'static [&'static str] {
    match scope {
        Scope::Applications => &["application", "instruction"],
        Scope::Bookings => &["booking"],
        Scope::Certificates => &["certificate"],
    }
}

/// Receipts after `after` that the caller may see: its enterprise's, and those of enterprises that
/// delegate the subject's scope to it (live at `now`). Filtered in SQL, so a page is never short while
/// more visible receipts exist.
pub fn list(
    c: &Connection,
    caller: &Caller,
    after: i64,
    limit: i64,
    now: i64,
) -> Result<Vec<Receipt>, ApiError> {
    let own = caller.enterprise()?;
    let mut clauses = vec!["enterprise_id = ?".to_string()];
    let mut values: Vec<rusqlite::types::Value> = vec![after.into(), own.into()];
    for (principal, scopes) in delegations::principals_of(c, caller, now)? {
        let subjects: Vec<&str> = scopes.iter().flat_map(|s| subjects_of(*s).iter().copied()).collect();
        if subjects.is_empty() {
            continue;
        }
        let marks = subjects.iter().map(|_| "?").collect::<Vec<_>>().join(",");
        clauses.push(format!("(enterprise_id = ? AND subject IN ({marks}))"));
        values.push(principal.into());
        values.extend(subjects.iter().map(|s| rusqlite::types::Value::from(s.to_string())));
    }
    values.push(limit.into());
    let mut stmt = c.prepare(&format!(
        "SELECT id, enterprise_id, subject, subject_id, inspection_no, kind, state, opinion, at, details
         FROM receipts WHERE id > ? AND ({}) ORDER BY id LIMIT ?",
        clauses.join(" OR ")
    ))?;
    let rows = stmt.query_map(rusqlite::params_from_iter(values), |r| {
        Ok(Receipt {
            id: r.get(0)?,
            enterprise_id: r.get(1)?,
            subject: r.get(2)?,
            subject_id: r.get(3)?,
            inspection_no: r.get(4)?,
            kind: r.get(5)?,
            state: r.get(6)?,
            opinion: r.get(7)?,
            at: r.get(8)?,
            details: crate::db::json_column(r, 9)?,
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}
