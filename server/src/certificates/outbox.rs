//! The SPS outbox (`sps_outbox`): what is to be delivered and how it stands, the sender a deployment
//! plugs in, and the bell that wakes the delivery task (`sps::deliver`) after a commit. Apart from the
//! message itself so that `AppState` holds the outbox without importing the delivery task, which takes
//! the state.

use std::{path::PathBuf, sync::Arc};

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;

use crate::domain::time::rfc3339;

/// Where an SPS message stands: `pending`, `delivered` or `failed`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Delivery {
    pub id: i64,
    /// The certificate status the message carries: `issued`, `revoked` or `replaced`.
    pub status: String,
    pub state: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: i64,
}

pub fn enqueue(tx: &Transaction<'_>, now: i64, certificate_id: i64, status: &str) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO sps_outbox (certificate_id, status, state, created_at, updated_at) VALUES (?1, ?2, 'pending', ?3, ?3)",
        params![certificate_id, status, now],
    )?;
    Ok(())
}

pub fn latest(c: &Connection, certificate_id: i64) -> rusqlite::Result<Option<Delivery>> {
    c.query_row(
        "SELECT id, status, state, attempts, last_error, updated_at FROM sps_outbox WHERE certificate_id = ?1
         ORDER BY id DESC LIMIT 1",
        [certificate_id],
        |r| {
            Ok(Delivery {
                id: r.get(0)?,
                status: r.get(1)?,
                state: r.get(2)?,
                attempts: r.get(3)?,
                last_error: r.get(4)?,
                updated_at: r.get(5)?,
            })
        },
    )
    .optional()
}

/// One message handed to a sender: the hub envelope's facts and the XML.
pub struct Envelope<'a> {
    pub outbox_id: i64,
    pub number: &'a str,
    pub to_country: &'a str,
    pub certificate_type: &'a str,
    pub status: &'a str,
    pub xml: &'a [u8],
}

/// Delivers SPS messages somewhere: a hub, a queue, a directory. Blocking; called off the executor.
pub trait SpsSender: Send + Sync {
    fn send(&self, envelope: &Envelope<'_>) -> Result<(), String>;
}

/// Writes each message as `<dir>/<number>-<outbox id>-<status>.xml` (temporary file, then rename, so a
/// reader of the directory never sees half a message).
pub struct DirectorySender {
    pub dir: PathBuf,
}

impl SpsSender for DirectorySender {
    fn send(&self, e: &Envelope<'_>) -> Result<(), String> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|err| format!("creating {}: {err}", self.dir.display()))?;
        let name = format!("{}-{}-{}.xml", e.number, e.outbox_id, e.status);
        let tmp = self.dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, e.xml).map_err(|err| format!("writing {}: {err}", tmp.display()))?;
        std::fs::rename(&tmp, self.dir.join(&name)).map_err(|err| format!("renaming {name}: {err}"))
    }
}

/// The outbox's sender and the bell that wakes the delivery task after a commit.
pub struct Outbox {
    pub sender: Box<dyn SpsSender>,
    pub bell: tokio::sync::Notify,
}

impl Outbox {
    pub fn new(sender: Box<dyn SpsSender>) -> Arc<Outbox> {
        Arc::new(Outbox { sender, bell: tokio::sync::Notify::new() })
    }

    /// Call after a commit that enqueued messages.
    pub fn ring(&self) {
        self.bell.notify_one();
    }
}

/// Entries to deliver now, oldest first, at most `limit`: pending ones, and failed ones with fewer than
/// `max_attempts` attempts. `(outbox id, certificate id, status)`.
pub fn due(c: &Connection, max_attempts: i64, limit: i64) -> rusqlite::Result<Vec<(i64, i64, String)>> {
    let mut stmt = c.prepare(
        "SELECT id, certificate_id, status FROM sps_outbox
         WHERE state = 'pending' OR (state = 'failed' AND attempts < ?1) ORDER BY id LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![max_attempts, limit], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    rows.collect()
}

/// One delivery attempt of entry `id`: `delivered`, or `failed` with the sender's `error`.
pub fn attempted(tx: &Transaction<'_>, now: i64, id: i64, error: Option<&str>) -> rusqlite::Result<()> {
    let state = if error.is_none() { "delivered" } else { "failed" };
    tx.execute(
        "UPDATE sps_outbox SET state = ?2, attempts = attempts + 1, last_error = ?3, updated_at = ?4 WHERE id = ?1",
        params![id, state, error, now],
    )?;
    Ok(())
}
