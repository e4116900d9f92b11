//! `record_seals`: the approved state of a record, and the photo hashes a sealed record references.

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::error::StoreError;

/// The stored seal of an approved record, as the disposal needs it.
pub struct SealRow {
    pub digest: String,
    pub disposal: Option<String>,
}

/// A sealed record as the evidence of a certificate: the approved heads, the content digest and the verdict.
#[derive(Debug, Clone)]
pub struct SealedEvidence {
    pub heads: Vec<String>,
    pub digest: String,
    /// `conforming` or `non_conforming`; none when a forced release sealed a record without a verdict.
    pub verdict: Option<String>,
}

/// Stores a seal; `heads` is the JSON array of the approved heads.
#[allow(clippy::too_many_arguments)]
pub fn insert(
    tx: &Transaction<'_>,
    instruction_id: i64,
    heads: &str,
    digest: &str,
    verdict: Option<&str>,
    disposal: Option<&str>,
    by: i64,
    now: i64,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO record_seals (instruction_id, heads, digest, verdict, disposal, sealed_by, sealed_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![instruction_id, heads, digest, verdict, disposal, by, now])?;
    Ok(())
}

pub fn sealed(c: &Connection, instruction_id: i64) -> Result<Option<SealRow>, StoreError> {
    c.prepare_cached("SELECT digest, disposal FROM record_seals WHERE instruction_id = ?1")?
        .query_row([instruction_id], |r| Ok(SealRow { digest: r.get(0)?, disposal: r.get(1)? }))
        .optional()
        .map_err(StoreError::from)
}

pub fn sealed_evidence(c: &Connection, instruction_id: i64) -> Result<Option<SealedEvidence>, StoreError> {
    c.prepare_cached("SELECT heads, digest, verdict FROM record_seals WHERE instruction_id = ?1")?
        .query_row([instruction_id], |r| {
            Ok(SealedEvidence {
                heads: crate::db::stored_json(r, 0, "record_seals.heads", instruction_id)?,
                digest: r.get(1)?,
                verdict: r.get(2)?,
            })
        })
        .optional()
        .map_err(StoreError::from)
}

/// The photo hashes a record references, sorted. After sealing the projection is the sealed state: a
/// sealed record takes no more changes.
pub fn photo_hashes(c: &Connection, instruction_id: i64) -> Result<Vec<String>, StoreError> {
    let mut stmt = c.prepare("SELECT sha256 FROM record_photos WHERE instruction_id = ?1 ORDER BY sha256")?;
    Ok(stmt.query_map([instruction_id], |r| r.get(0))?.collect::<Result<_, _>>()?)
}
