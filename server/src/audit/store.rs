//! The audit log's table (`audit_log`): every SQL statement of the module, answering [`StoreError`].
//! The chain (what a hash covers, how it is checked) is in `mod.rs`.

use std::ops::ControlFlow;

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;

use crate::{db::StoreError, domain::time::rfc3339};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub seq: i64,
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub details: serde_json::Value,
    /// Hex SHA-256 chaining this entry to the previous one.
    pub hash: String,
}

/// One stored entry as the chain covers it: `details` as the stored text, the hashes as bytes.
pub struct Link {
    pub seq: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub details: String,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

/// The last entry's sequence number and hash, if there is one.
pub fn last_link(tx: &Transaction<'_>) -> Result<Option<(i64, Vec<u8>)>, StoreError> {
    // Cached statements: a bulk of messages appends thousands of entries in one transaction.
    Ok(tx
        .prepare_cached("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

pub fn insert(tx: &Transaction<'_>, l: &Link) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO audit_log (seq, at, actor, action, subject, details, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![l.seq, l.at, l.actor, l.action, l.subject, l.details, l.prev_hash, l.hash])?;
    Ok(())
}

/// Up to `limit` entries after sequence number `after`, oldest first.
pub fn entries(c: &Connection, after: i64, limit: i64) -> Result<Vec<AuditEntry>, StoreError> {
    let mut stmt = c.prepare(
        "SELECT seq, at, actor, action, subject, details, hash FROM audit_log WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    )?;
    Ok(stmt
        .query_map([after, limit], |r| {
            Ok(AuditEntry {
                seq: r.get(0)?,
                at: r.get(1)?,
                actor: r.get(2)?,
                action: r.get(3)?,
                subject: r.get(4)?,
                details: crate::db::json_column(r, 5)?,
                hash: hex::encode(r.get::<_, Vec<u8>>(6)?),
            })
        })?
        .collect::<Result<_, _>>()?)
}

/// Hands every entry to `visit` in order, streaming rows so a long log does not sit in memory, until
/// `visit` breaks; answers what it broke with.
pub fn walk<B>(
    c: &Connection,
    mut visit: impl FnMut(Link) -> ControlFlow<B>,
) -> Result<Option<B>, StoreError> {
    let mut stmt = c.prepare(
        "SELECT seq, at, actor, action, subject, details, prev_hash, hash FROM audit_log ORDER BY seq",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let link = Link {
            seq: r.get(0)?,
            at: r.get(1)?,
            actor: r.get(2)?,
            action: r.get(3)?,
            subject: r.get(4)?,
            details: r.get(5)?,
            prev_hash: r.get(6)?,
            hash: r.get(7)?,
        };
        if let ControlFlow::Break(b) = visit(link) {
            return Ok(Some(b));
        }
    }
    Ok(None)
}
