//! The handheld's local store: one SQLite file holding the device's identity, every document as a full
//! automerge save with its persisted sync state, the edits not yet acknowledged by the server, and the
//! photo upload queue. Each edit and each sync round is one SQLite transaction, so a crash or a killed
//! process leaves the last committed state, never a half-written document.

use std::path::Path;

use anyhow::{Context, Result};
use rusqlite::{Connection, OptionalExtension, params};

use crate::plan::Saved;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS docs (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL CHECK (kind IN ('record', 'index')),
    instruction_id  TEXT,
    assigned        INTEGER NOT NULL DEFAULT 1,
    data            BLOB,               -- NULL until the first sync brings the document
    sync_state      BLOB,
    updated_at      INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS pending (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id  TEXT NOT NULL,
    what    TEXT NOT NULL,
    at      INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS photo_queue (
    sha256       TEXT PRIMARY KEY,
    path         TEXT NOT NULL,
    doc_id       TEXT NOT NULL,
    queued_at    INTEGER NOT NULL,
    uploaded_at  INTEGER,
    refused      TEXT                -- the server's reason when it will never accept these bytes
);
";

pub const DB_FILE: &str = "handheld.sqlite3";

pub struct Store {
    conn: Connection,
}

/// A record's work kept here unsent: `(doc, instruction id, pending edits, photos not uploaded)`.
pub type StrandedWork = (String, Option<String>, i64, i64);

/// A document as stored locally.
pub struct LocalDoc {
    pub id: String,
    pub kind: String,
    pub instruction_id: Option<String>,
    pub data: Option<Vec<u8>>,
    pub sync_state: Option<Vec<u8>>,
}

impl Store {
    pub fn open(dir: &Path) -> Result<Store> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(DB_FILE);
        let conn = Connection::open(&path).with_context(|| format!("opening {}", path.display()))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // FULL: an edit the officer saw confirmed survives a power cut, not only a crash.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.execute_batch(SCHEMA)?;
        Ok(Store { conn })
    }

    pub fn setting(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    pub fn require(&self, key: &str) -> Result<String> {
        self.setting(key)?.with_context(|| format!("no {key} stored: run `handheld register` first"))
    }

    pub fn set(&self, key: &str, value: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }

    pub fn doc(&self, id: &str) -> Result<Option<LocalDoc>> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, kind, instruction_id, data, sync_state FROM docs WHERE id = ?1",
                [id],
                local_doc,
            )
            .optional()?)
    }

    /// The record of an instruction (by instruction id).
    pub fn record_of(&self, instruction_id: &str) -> Result<Option<LocalDoc>> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, kind, instruction_id, data, sync_state FROM docs
                 WHERE kind = 'record' AND instruction_id = ?1",
                [instruction_id],
                local_doc,
            )
            .optional()?)
    }

    /// Records still assigned, by instruction id.
    pub fn records(&self) -> Result<Vec<LocalDoc>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, kind, instruction_id, data, sync_state FROM docs
             WHERE kind = 'record' AND assigned = 1 ORDER BY CAST(instruction_id AS INTEGER), instruction_id",
        )?;
        Ok(stmt.query_map([], local_doc)?.collect::<Result<_, _>>()?)
    }

    /// Every record known here, assigned or not (`list --all`): `(doc, assigned)`.
    pub fn all_records(&self) -> Result<Vec<(LocalDoc, bool)>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, kind, instruction_id, data, sync_state, assigned FROM docs
             WHERE kind = 'record' ORDER BY CAST(instruction_id AS INTEGER), instruction_id",
        )?;
        Ok(stmt.query_map([], |r| Ok((local_doc(r)?, r.get(5)?)))?.collect::<Result<_, _>>()?)
    }

    /// Records no longer assigned (cancelled, or reassigned to someone else) that still hold work that
    /// never reached the server. The work stays here; a sync cannot send it any more (the server refuses
    /// edits to a record not assigned or sealed), so it is reported instead.
    pub fn stranded(&self) -> Result<Vec<StrandedWork>> {
        let mut stmt = self.conn.prepare(
            "SELECT d.id, d.instruction_id,
                    (SELECT count(*) FROM pending p WHERE p.doc_id = d.id),
                    (SELECT count(*) FROM photo_queue q WHERE q.doc_id = d.id AND q.uploaded_at IS NULL)
             FROM docs d WHERE d.kind = 'record' AND d.assigned = 0
             ORDER BY CAST(d.instruction_id AS INTEGER), d.instruction_id",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
        Ok(rows.filter(|r| !matches!(r, Ok((_, _, 0, 0)))).collect::<Result<_, _>>()?)
    }

    /// Makes sure a document the index names is known locally; marks it (un)assigned.
    pub fn track(
        &self,
        id: &str,
        kind: &str,
        instruction_id: Option<&str>,
        assigned: bool,
        now: i64,
    ) -> Result<()> {
        self.conn.execute(
            "INSERT INTO docs (id, kind, instruction_id, assigned, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (id) DO UPDATE SET assigned = excluded.assigned",
            params![id, kind, instruction_id, assigned, now],
        )?;
        Ok(())
    }

    /// Forgets everything of the officer the store belonged to (documents, pending edits, queued photos,
    /// tokens, device), keeping where the server is and which CA to trust: a store serves one officer.
    pub fn clear_officer(&self) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute("DELETE FROM pending", [])?;
        tx.execute("DELETE FROM photo_queue", [])?;
        tx.execute("DELETE FROM docs", [])?;
        tx.execute("DELETE FROM settings WHERE key NOT IN ('server', 'private_ca')", [])?;
        tx.commit()?;
        Ok(())
    }

    /// Marks every record not in `assigned` as no longer assigned (kept: its data is evidence).
    pub fn unassign_others(&self, assigned: &[String]) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute("UPDATE docs SET assigned = 0 WHERE kind = 'record'", [])?;
        for id in assigned {
            tx.execute("UPDATE docs SET assigned = 1 WHERE id = ?1", [id])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Stores an edited document and notes the edit as pending, in one transaction.
    pub fn save_edit(&self, id: &str, data: &[u8], what: &str, now: i64) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute("UPDATE docs SET data = ?2, updated_at = ?3 WHERE id = ?1", params![id, data, now])?;
        tx.execute("INSERT INTO pending (doc_id, what, at) VALUES (?1, ?2, ?3)", params![id, what, now])?;
        tx.commit()?;
        Ok(())
    }

    /// Stores documents and sync states after a round, in one transaction: a crash between rounds
    /// resumes from here.
    pub fn save_round(&self, docs: &[Saved], now: i64) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        for Saved { doc, data, sync_state } in docs {
            tx.execute(
                "UPDATE docs SET data = ?2, sync_state = ?3, updated_at = ?4 WHERE id = ?1",
                params![doc, data, sync_state, now],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The server acknowledged every edit of `doc_id` up to pending id `upto`.
    pub fn acknowledge(&self, doc_id: &str, upto: i64) -> Result<()> {
        self.conn.execute("DELETE FROM pending WHERE doc_id = ?1 AND id <= ?2", params![doc_id, upto])?;
        Ok(())
    }

    pub fn last_pending_id(&self) -> Result<i64> {
        Ok(self.conn.query_row("SELECT coalesce(max(id), 0) FROM pending", [], |r| r.get(0))?)
    }

    /// Edits not yet acknowledged, per document.
    pub fn pending(&self) -> Result<Vec<(String, i64)>> {
        let mut stmt =
            self.conn.prepare("SELECT doc_id, count(*) FROM pending GROUP BY doc_id ORDER BY doc_id")?;
        Ok(stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?)
    }

    pub fn pending_of(&self, doc_id: &str) -> Result<i64> {
        Ok(self.conn.query_row("SELECT count(*) FROM pending WHERE doc_id = ?1", [doc_id], |r| r.get(0))?)
    }

    pub fn queue_photo(&self, sha256: &str, path: &str, doc_id: &str, now: i64) -> Result<()> {
        self.conn.execute(
            "INSERT INTO photo_queue (sha256, path, doc_id, queued_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (sha256) DO NOTHING",
            params![sha256, path, doc_id, now],
        )?;
        Ok(())
    }

    /// Photos whose bytes have not reached the photo store: `(sha256, path)`.
    pub fn pending_photos(&self) -> Result<Vec<(String, String)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT sha256, path FROM photo_queue WHERE uploaded_at IS NULL ORDER BY queued_at")?;
        Ok(stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?)
    }

    /// The photos of one document whose bytes have not reached the photo store.
    pub fn pending_photos_of(&self, doc_id: &str) -> Result<Vec<String>> {
        let mut stmt =
            self.conn.prepare("SELECT sha256 FROM photo_queue WHERE uploaded_at IS NULL AND doc_id = ?1")?;
        Ok(stmt.query_map([doc_id], |r| r.get(0))?.collect::<Result<_, _>>()?)
    }

    /// Photos to upload now, `(sha256, path, instruction_id)`: not uploaded, not refused for good, and
    /// attached to a record still assigned whose instruction we know (the others are [`Store::stranded`]).
    pub fn uploadable_photos(&self) -> Result<Vec<(String, String, String)>> {
        let mut stmt = self.conn.prepare(
            "SELECT q.sha256, q.path, d.instruction_id FROM photo_queue q JOIN docs d ON d.id = q.doc_id
             WHERE q.uploaded_at IS NULL AND q.refused IS NULL AND d.instruction_id IS NOT NULL AND d.assigned = 1
             ORDER BY q.queued_at",
        )?;
        Ok(stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<Result<_, _>>()?)
    }

    pub fn photo_uploaded(&self, sha256: &str, now: i64) -> Result<()> {
        self.conn
            .execute("UPDATE photo_queue SET uploaded_at = ?1 WHERE sha256 = ?2", params![now, sha256])?;
        Ok(())
    }

    /// The server refused the bytes for a reason retrying cannot fix (damaged file, wrong hash): kept
    /// visible in `status` instead of being re-sent on every sync.
    pub fn photo_refused(&self, sha256: &str, reason: &str) -> Result<()> {
        self.conn
            .execute("UPDATE photo_queue SET refused = ?1 WHERE sha256 = ?2", params![reason, sha256])?;
        Ok(())
    }
}

fn local_doc(r: &rusqlite::Row<'_>) -> rusqlite::Result<LocalDoc> {
    Ok(LocalDoc {
        id: r.get(0)?,
        kind: r.get(1)?,
        instruction_id: r.get(2)?,
        data: r.get(3)?,
        sync_state: r.get(4)?,
    })
}
