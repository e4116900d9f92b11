//! The `notices` table: every SQL statement of the module, answering [`StoreError`], never HTTP.

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use super::{Field, Notice, NoticeKind};
use crate::db::StoreError;

const COLS: &str = "id, number, kind, subject_id, issuer, facts, digest, replaced_by, issued_at";

fn row(r: &Row<'_>) -> rusqlite::Result<Notice> {
    let id: i64 = r.get(0)?;
    let kind: String = r.get(2)?;
    let kind = NoticeKind::parse(&kind).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, "notice kind".into())
    })?;
    let facts: Vec<Field> = crate::db::stored_json(r, 5, "notices.facts", id)?;
    Ok(Notice {
        id,
        number: r.get(1)?,
        kind,
        subject_id: r.get(3)?,
        issuer: r.get(4)?,
        facts,
        digest: r.get(6)?,
        replaced_by: r.get(7)?,
        issued_at: r.get(8)?,
    })
}

pub fn by_number(c: &Connection, number: &str) -> Result<Option<Notice>, StoreError> {
    Ok(c.query_row(&format!("SELECT {COLS} FROM notices WHERE number = ?1"), [number], row).optional()?)
}

pub fn by_id(c: &Connection, id: i64) -> Result<Option<Notice>, StoreError> {
    Ok(c.query_row(&format!("SELECT {COLS} FROM notices WHERE id = ?1"), [id], row).optional()?)
}

/// The latest notice of this kind about `subject_id`.
pub fn latest_of(c: &Connection, kind: NoticeKind, subject_id: i64) -> Result<Option<Notice>, StoreError> {
    Ok(c.query_row(
        &format!("SELECT {COLS} FROM notices WHERE kind = ?1 AND subject_id = ?2 ORDER BY id DESC LIMIT 1"),
        params![kind.as_str(), subject_id],
        row,
    )
    .optional()?)
}

/// How many notices are numbered `<prefix>…`.
pub fn count_numbered(c: &Connection, prefix: &str) -> Result<i64, StoreError> {
    Ok(c.query_row(
        "SELECT count(*) FROM notices WHERE substr(number, 1, ?2) = ?1",
        params![prefix, prefix.len() as i64],
        |r| r.get(0),
    )?)
}

/// A notice as it is written.
pub struct NewNotice<'a> {
    pub number: &'a str,
    pub kind: NoticeKind,
    pub subject_id: i64,
    pub enterprise_id: i64,
    pub issuer: &'a str,
    pub facts_json: &'a str,
    pub digest: &'a str,
    pub issued_by: i64,
    pub issued_at: i64,
}

/// Writes the notice; answers its id.
pub fn insert(tx: &Transaction<'_>, n: &NewNotice<'_>) -> Result<i64, StoreError> {
    tx.execute(
        "INSERT INTO notices (number, kind, subject_id, enterprise_id, issuer, facts, digest, issued_by, issued_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            n.number,
            n.kind.as_str(),
            n.subject_id,
            n.enterprise_id,
            n.issuer,
            n.facts_json,
            n.digest,
            n.issued_by,
            n.issued_at
        ],
    )?;
    Ok(tx.last_insert_rowid())
}

pub fn set_replaced_by(tx: &Transaction<'_>, old: i64, new: i64) -> Result<(), StoreError> {
    tx.execute("UPDATE notices SET replaced_by = ?1 WHERE id = ?2", params![new, old])?;
    Ok(())
}
