//! SQL for accepted messages (the evidence) and platform signers.

use crate::db::StoreError;
use rusqlite::{Connection, OptionalExtension, params};

use super::Accepted;

/// An accepted message as a resend finds it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub payload_sha256: [u8; 32],
    pub received_at: i64,
    pub answer: Accepted,
}

pub struct NewMessage<'a> {
    /// From [`next_id`]: the answer names it, so it is known before the row is written.
    pub id: i64,
    pub signer_id: i64,
    pub message_id: &'a str,
    pub payload_sha256: &'a [u8; 32],
    pub kind: &'a str,
    pub enterprise_id: i64,
    pub subject: &'a str,
    pub subject_id: i64,
    pub application_id: i64,
    pub envelope: &'a str,
    pub received_at: i64,
    pub status: u16,
    pub answer: &'a Accepted,
}

pub fn find(c: &Connection, signer_id: i64, message_id: &str) -> Result<Option<Seen>, StoreError> {
    Ok(c.prepare_cached(
        "SELECT payload_sha256, received_at, answer FROM messages WHERE signer_id = ?1 AND message_id = ?2",
    )?
    .query_row(params![signer_id, message_id], |r| {
        let sha: Vec<u8> = r.get(0)?;
        let answer: String = r.get(2)?;
        Ok((sha, r.get::<_, i64>(1)?, answer))
    })
    .optional()?
    .map(|(sha, received_at, answer)| {
        let bad =
            |e: String| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Blob, e.into());
        Ok::<_, rusqlite::Error>(Seen {
            payload_sha256: sha.try_into().map_err(|_| bad("payload_sha256 is not 32 bytes".into()))?,
            received_at,
            answer: serde_json::from_str(&answer).map_err(|e| bad(e.to_string()))?,
        })
    })
    .transpose()?)
}

/// The evidence id the next accepted message gets. Only the one writer inserts messages, and it takes the
/// id and inserts in the same transaction, so the id is still free when [`insert`] writes it; the answer
/// that names it is then stored with the row in one INSERT, not patched in by an UPDATE after.
pub fn next_id(c: &Connection) -> Result<i64, StoreError> {
    Ok(c.prepare_cached("SELECT coalesce(max(id), 0) + 1 FROM messages")?.query_row([], |r| r.get(0))?)
}

/// Stores an accepted message with its answer.
pub fn insert(c: &Connection, m: &NewMessage<'_>) -> Result<(), StoreError> {
    let answer = serde_json::to_string(m.answer).expect("an answer serialises");
    c.prepare_cached(
        "INSERT INTO messages (id, signer_id, message_id, payload_sha256, kind, enterprise_id, subject, subject_id,
                               application_id, envelope, status, answer, received_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?
    .execute(params![
            m.id,
            m.signer_id,
            m.message_id,
            &m.payload_sha256[..],
            m.kind,
            m.enterprise_id,
            m.subject,
            m.subject_id,
            m.application_id,
            m.envelope,
            m.status,
            answer,
            m.received_at
    ])?;
    Ok(())
}

/// A stored message: the envelope and what it is about.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Evidence {
    pub evidence_id: i64,
    pub enterprise_id: i64,
    pub signer: String,
    pub message_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub subject: String,
    pub subject_id: i64,
    /// The signed message exactly as verified, in compact form.
    pub envelope: String,
    #[serde(with = "crate::domain::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub received_at: i64,
}

pub fn evidence(c: &Connection, id: i64) -> Result<Option<Evidence>, StoreError> {
    Ok(c.query_row(
        "SELECT m.id, m.enterprise_id, u.username, m.message_id, m.kind, m.subject, m.subject_id, m.envelope,
                m.received_at
         FROM messages m JOIN users u ON u.id = m.signer_id WHERE m.id = ?1",
        [id],
        |r| {
            Ok(Evidence {
                evidence_id: r.get(0)?,
                enterprise_id: r.get(1)?,
                signer: r.get(2)?,
                message_id: r.get(3)?,
                kind: r.get(4)?,
                subject: r.get(5)?,
                subject_id: r.get(6)?,
                envelope: r.get(7)?,
                received_at: r.get(8)?,
            })
        },
    )
    .optional()?)
}

/// An accepted message as its application's evidence list shows it (the envelope itself:
/// [`evidence`]).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct EvidenceEntry {
    pub evidence_id: i64,
    pub signer: String,
    pub message_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// `application`, `booking` or `certificate_application`.
    pub subject: String,
    pub subject_id: i64,
    #[serde(with = "crate::domain::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub received_at: i64,
}

/// The messages about an application (itself, its bookings, its certificates), oldest first, after the
/// cursor `after` (an evidence id).
pub fn for_application(
    c: &Connection,
    application_id: i64,
    after: i64,
    limit: i64,
) -> Result<Vec<EvidenceEntry>, StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT m.id, u.username, m.message_id, m.kind, m.subject, m.subject_id, m.received_at
         FROM messages m JOIN users u ON u.id = m.signer_id
         WHERE m.application_id = ?1 AND m.id > ?2 ORDER BY m.id LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![application_id, after, limit], |r| {
        Ok(EvidenceEntry {
            evidence_id: r.get(0)?,
            signer: r.get(1)?,
            message_id: r.get(2)?,
            kind: r.get(3)?,
            subject: r.get(4)?,
            subject_id: r.get(5)?,
            received_at: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn is_platform_signer(c: &Connection, user_id: i64) -> Result<bool, StoreError> {
    Ok(c.query_row("SELECT EXISTS (SELECT 1 FROM platform_signers WHERE user_id = ?1)", [user_id], |r| {
        r.get(0)
    })?)
}

pub fn insert_platform_signer(
    c: &Connection,
    user_id: i64,
    enterprise_id: i64,
    registered_by: Option<i64>,
    now: i64,
) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO platform_signers (user_id, enterprise_id, registered_by, registered_at) VALUES (?1, ?2, ?3, ?4)",
        params![user_id, enterprise_id, registered_by, now],
    )?;
    Ok(())
}
