//! Automerge documents and sync sessions in SQLite. A document is a compacted base snapshot plus the
//! incremental chunks appended since; the database is the truth (the sync engine's cache holds copies it
//! checks against `db::doc_generation`).
//! Every write of a document's content goes through [`insert`] or [`append`], which announce it to
//! live peers after the commit (`db::doc_changed`).
//!
//! # Layout
//! - this file: documents (`sync_docs`, `sync_doc_chunks`), sync sessions, the server actor, and the
//!   officer/actor look-ups the sync rules need.
//! - [`projection`]: the projection's rows (`record_projection`, `record_checks`, `record_photos`).
//! - [`seals`]: approved records (`record_seals`) and the photo hashes a sealed record references.
//!
//! Every function answers [`StoreError`]; the SQL of `records/` lives here only.

pub mod projection;
pub mod seals;

use fieldcheck_sync::ActorId;
use fieldcheck_sync::schema::SCHEMA_VERSION;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::db::{Damaged, error::StoreError};

/// After this many appended chunks a document is rewritten as one snapshot: loading stays one
/// contiguous read, and automerge's compressed format is far smaller than the sum of chunks.
pub const COMPACT_AFTER_CHUNKS: i64 = 32;

const SERVER_ACTOR_KEY: &str = "sync.server_actor";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocKind {
    Record,
    Index,
}

impl DocKind {
    fn as_str(self) -> &'static str {
        match self {
            DocKind::Record => "record",
            DocKind::Index => "index",
        }
    }
}

/// What the sync endpoint needs to know about a document before loading it.
#[derive(Debug, Clone)]
pub struct DocMeta {
    pub id: String,
    pub kind: DocKind,
    pub instruction_id: Option<i64>,
    pub officer_id: Option<i64>,
}

/// The server's own automerge actor: every server-written change carries it, so validation can refuse
/// anyone else writing as the server. Created once, on first use.
pub fn server_actor(tx: &Transaction<'_>) -> Result<ActorId, StoreError> {
    let hex: Option<String> = tx
        .prepare_cached("SELECT value FROM settings_kv WHERE key = ?1")?
        .query_row([SERVER_ACTOR_KEY], |r| r.get(0))
        .optional()?;
    let hex = match hex {
        Some(h) => h,
        None => {
            let h = fieldcheck_sync::new_actor_id().to_hex_string();
            tx.prepare_cached("INSERT INTO settings_kv (key, value) VALUES (?1, ?2)")?
                .execute(params![SERVER_ACTOR_KEY, h])?;
            h
        }
    };
    hex.parse::<ActorId>().map_err(|e| {
        let damaged =
            Damaged { what: "settings_kv.value", key: SERVER_ACTOR_KEY.into(), source: Box::new(e) };
        StoreError::Other(damaged.at(0))
    })
}

/// The server's actor as stored, without creating it: a read that never waits for the writer.
pub fn stored_server_actor(c: &Connection) -> Result<Option<String>, StoreError> {
    c.prepare_cached("SELECT value FROM settings_kv WHERE key = ?1")?
        .query_row([SERVER_ACTOR_KEY], |r| r.get(0))
        .optional()
        .map_err(StoreError::from)
}

pub fn meta(c: &Connection, id: &str) -> Result<Option<DocMeta>, StoreError> {
    c.prepare_cached("SELECT id, kind, instruction_id, officer_id FROM sync_docs WHERE id = ?1")?
        .query_row([id], |r| {
            let kind: String = r.get(1)?;
            Ok(DocMeta {
                id: r.get(0)?,
                kind: if kind == "record" { DocKind::Record } else { DocKind::Index },
                instruction_id: r.get(2)?,
                officer_id: r.get(3)?,
            })
        })
        .optional()
        .map_err(StoreError::from)
}

pub fn record_of(c: &Connection, instruction_id: i64) -> Result<Option<String>, StoreError> {
    c.prepare_cached("SELECT id FROM sync_docs WHERE instruction_id = ?1")?
        .query_row([instruction_id], |r| r.get(0))
        .optional()
        .map_err(StoreError::from)
}

pub fn index_of(c: &Connection, officer_id: i64) -> Result<Option<String>, StoreError> {
    c.prepare_cached("SELECT id FROM sync_docs WHERE officer_id = ?1")?
        .query_row([officer_id], |r| r.get(0))
        .optional()
        .map_err(StoreError::from)
}

pub fn insert(
    tx: &Transaction<'_>,
    id: &str,
    kind: DocKind,
    owner: i64,
    base: &[u8],
    now: i64,
) -> Result<(), StoreError> {
    let (instruction, officer) = match kind {
        DocKind::Record => (Some(owner), None),
        DocKind::Index => (None, Some(owner)),
    };
    let schema = (kind == DocKind::Record).then_some(SCHEMA_VERSION);
    tx.prepare_cached("INSERT INTO sync_docs (id, kind, instruction_id, officer_id, base, bytes, schema, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)")?.execute(params![id, kind.as_str(), instruction, officer, base, base.len() as i64, schema, now],
    )?;
    crate::db::doc_changed(id);
    Ok(())
}

/// Notes that a record document is now written in the current record schema.
pub fn set_schema(tx: &Transaction<'_>, id: &str) -> Result<(), StoreError> {
    tx.prepare_cached("UPDATE sync_docs SET schema = ?2 WHERE id = ?1")?
        .execute(params![id, SCHEMA_VERSION])?;
    Ok(())
}

/// The stored bytes: the base followed by every chunk, which automerge loads as one.
///
/// One statement, so one snapshot even outside a transaction: read as two, a compaction committed
/// between them (new base, chunks deleted) handed the reader the old base without the chunks it
/// relied on, i.e. a document missing changes (the record view reads this way).
pub fn load_bytes(c: &Connection, id: &str) -> Result<Vec<u8>, StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT 0, 0, base FROM sync_docs WHERE id = ?1
         UNION ALL SELECT 1, seq, data FROM sync_doc_chunks WHERE doc_id = ?1
         ORDER BY 1, 2",
    )?;
    let mut rows = stmt.query([id])?;
    let mut bytes = match rows.next()? {
        Some(row) if row.get::<_, i64>(0)? == 0 => row.get::<_, Vec<u8>>(2)?,
        _ => return Err(rusqlite::Error::QueryReturnedNoRows.into()),
    };
    while let Some(row) = rows.next()? {
        bytes.extend_from_slice(row.get_ref(2)?.as_blob().map_err(rusqlite::Error::from)?);
    }
    Ok(bytes)
}

/// Appends a chunk; answers whether the document is due for [`compact`].
pub fn append(tx: &Transaction<'_>, id: &str, chunk: &[u8], now: i64) -> Result<bool, StoreError> {
    let chunks: i64 = tx
        .prepare_cached(
            "UPDATE sync_docs SET chunks = chunks + 1, bytes = bytes + ?2, updated_at = ?3 WHERE id = ?1
         RETURNING chunks",
        )?
        .query_row(params![id, chunk.len() as i64, now], |r| r.get(0))?;
    tx.prepare_cached("INSERT INTO sync_doc_chunks (doc_id, seq, data) VALUES (?1, ?2, ?3)")?
        .execute(params![id, chunks, chunk])?;
    crate::db::doc_changed(id);
    Ok(chunks >= COMPACT_AFTER_CHUNKS)
}

/// Replaces base and chunks by one snapshot (`save()` of the loaded document).
pub fn compact(tx: &Transaction<'_>, id: &str, snapshot: &[u8], now: i64) -> Result<(), StoreError> {
    tx.prepare_cached("DELETE FROM sync_doc_chunks WHERE doc_id = ?1")?.execute([id])?;
    tx.prepare_cached(
        "UPDATE sync_docs SET base = ?2, chunks = 0, bytes = ?3, updated_at = ?4 WHERE id = ?1",
    )?
    .execute(params![id, snapshot, snapshot.len() as i64, now])?;
    Ok(())
}

pub fn sync_state(c: &Connection, device_id: &str, doc_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
    c.prepare_cached("SELECT state FROM sync_states WHERE device_id = ?1 AND doc_id = ?2")?
        .query_row(params![device_id, doc_id], |r| r.get(0))
        .optional()
        .map_err(StoreError::from)
}

pub fn put_sync_state(
    tx: &Transaction<'_>,
    device_id: &str,
    doc_id: &str,
    state: &[u8],
    now: i64,
) -> Result<(), StoreError> {
    tx.prepare_cached("INSERT INTO sync_states (device_id, doc_id, state, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (device_id, doc_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at")?.execute(params![device_id, doc_id, state, now],
    )?;
    Ok(())
}

/// The officers assigned to an instruction, by id.
pub fn officers_by_id(c: &Connection, instruction_id: i64) -> Result<Vec<i64>, StoreError> {
    Ok(c.prepare_cached(
        "SELECT officer_id FROM instruction_officers WHERE instruction_id = ?1 ORDER BY officer_id",
    )?
    .query_map([instruction_id], |r| r.get(0))?
    .collect::<Result<_, _>>()?)
}

/// The officers assigned to an instruction, in assignment order.
pub fn officers_in_order(c: &Connection, instruction_id: i64) -> Result<Vec<i64>, StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT officer_id FROM instruction_officers WHERE instruction_id = ?1 ORDER BY rowid",
    )?;
    Ok(stmt.query_map([instruction_id], |r| r.get(0))?.collect::<Result<_, _>>()?)
}

/// The usernames of these users, in the given order; a missing user is an error.
pub fn usernames(c: &Connection, users: &[i64]) -> Result<Vec<String>, StoreError> {
    let mut stmt = c.prepare_cached("SELECT username FROM users WHERE id = ?1")?;
    Ok(users.iter().map(|id| stmt.query_row([id], |r| r.get(0))).collect::<Result<_, _>>()?)
}

/// (actor hex, username) for every actor any device of an officer assigned to the instruction ever
/// held: changes by a retired one are still in the record's history.
pub fn bound_actors(c: &Connection, instruction_id: i64) -> Result<Vec<(String, String)>, StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT da.actor_id, u.username FROM devices d
         JOIN device_actors da ON da.device_id = d.id
         JOIN instruction_officers io ON io.officer_id = d.officer_id
         JOIN users u ON u.id = d.officer_id
         WHERE io.instruction_id = ?1",
    )?;
    Ok(stmt
        .query_map([instruction_id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
        .collect::<Result<Vec<_>, _>>()?)
}

/// The username of the officer whose device holds (or held) this actor, if any.
pub fn officer_of_actor(c: &Connection, actor_hex: &str) -> Result<Option<String>, StoreError> {
    c.prepare_cached(
        "SELECT u.username FROM device_actors da JOIN devices d ON d.id = da.device_id
         JOIN users u ON u.id = d.officer_id WHERE da.actor_id = ?1",
    )?
    .query_row([actor_hex], |r| r.get(0))
    .optional()
    .map_err(StoreError::from)
}

/// (document id, instruction id) of every record document written in an older record schema.
pub fn stale_records(c: &Connection) -> Result<Vec<(String, i64)>, StoreError> {
    let mut stmt = c.prepare(
        "SELECT id, instruction_id FROM sync_docs WHERE kind = 'record' AND (schema IS NULL OR schema < ?1)",
    )?;
    Ok(stmt.query_map([SCHEMA_VERSION], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use fieldcheck_sync::{Assignment, AssignmentIndex};

    use super::*;
    use crate::db::Db;

    fn assignment(n: i64) -> Assignment {
        Assignment {
            record_doc_id: format!("{n:032x}"),
            inspection_no: "212345678901234".into(),
            site: "2201".into(),
            deadline: 2_000,
            assigned_at: 1_000 + n,
        }
    }

    #[test]
    fn a_document_appended_past_the_threshold_is_compacted_and_loads_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), 1).unwrap();
        let (heads, stored) = db
            .write_blocking(|tx| -> Result<_, StoreError> {
                tx.execute(
                    "INSERT INTO customs_units (id, code, name, kind, created_at) VALUES (1, '9999', 'hq', 'headquarters', 0)",
                    [],
                )?;
                tx.execute(
                    "INSERT INTO users (id, username, display_name, password_hash, role, unit_id, created_at)
                     VALUES (7, 'o', 'o', 'x', 'officer', 1, 0)",
                    [],
                )?;
                let actor = server_actor(tx)?;
                assert_eq!(server_actor(tx)?, actor, "the server actor is created once");
                let mut index = AssignmentIndex::create(actor.clone(), 1_000).unwrap();
                insert(tx, "doc", DocKind::Index, 7, &index.save(), 1_000)?;
                let mut compacted = false;
                for n in 0..COMPACT_AFTER_CHUNKS + 3 {
                    let heads = index.heads();
                    index.assign(&n.to_string(), &assignment(n), 1_000 + n).unwrap();
                    if append(tx, "doc", &index.save_after(&heads), 1_000 + n)? {
                        compact(tx, "doc", &index.save(), 1_000 + n)?;
                        compacted = true;
                    }
                }
                assert!(compacted);
                let chunks: i64 = tx.query_row("SELECT chunks FROM sync_docs WHERE id = 'doc'", [], |r| r.get(0))?;
                assert_eq!(chunks, 3, "the chunks after the compaction remain");
                let stored = AssignmentIndex::load(&load_bytes(tx, "doc")?, actor).unwrap();
                Ok((index.heads(), stored))
            })
            .unwrap();
        let mut stored = stored;
        assert_eq!(stored.heads(), heads);
        assert_eq!(stored.read().unwrap().len(), COMPACT_AFTER_CHUNKS as usize + 3);
    }
}
