//! The SQLite database: one writer connection, a few readers, embedded migrations.
//!
//! # Layout
//! - this file: `Db` (the writer and the reader pool), reading stored JSON columns strictly.
//! - `migrations`: the embedded schema migrations, only ever appended.
//! - [`scope`]: the visibility predicates (unit subtree, officer assignment), written once.
//!
//! rusqlite is blocking, so every call runs on tokio's blocking pool, never on the async executor. SQLite
//! allows one writer at a time anyway; serialising writers on our own mutex (and `BEGIN IMMEDIATE`) means
//! transactions never fail with `SQLITE_BUSY` halfway and invariants such as slot capacity hold under any
//! concurrency. Readers run in parallel thanks to WAL mode.
//!
//! Changed sync documents are announced after commit ([`Db::doc_changes`], [`doc_changed`]): whatever
//! wrote them (a sync, a review, an assignment), live WebSocket peers hear of it, and never of a change
//! that was rolled back.

mod migrations;
pub mod scope;

use std::{
    cell::RefCell,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::Context;
use rusqlite::{Connection, OpenFlags, Row, Transaction, TransactionBehavior, types::Type};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

pub use migrations::MIGRATIONS;

pub const DB_FILE: &str = "fieldcheck.sqlite3";

#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    /// `std::sync::Mutex` rather than tokio's: it is only ever held on a blocking thread, never across
    /// an `.await`.
    writer: Mutex<Connection>,
    /// Idle read connections; a reader is opened on demand when all are busy and kept up to `max_readers`.
    readers: Mutex<Vec<Connection>>,
    max_readers: usize,
    path: PathBuf,
    /// Ids of sync documents changed by committed transactions. A broadcast, so a slow listener only
    /// lags (and then re-reads everything it holds) instead of holding up writers.
    doc_changes: tokio::sync::broadcast::Sender<Arc<str>>,
}

/// Room for announcements a listener has not read yet; past it the listener is told it lagged.
const DOC_CHANGES_BACKLOG: usize = 4096;

thread_local! {
    /// The documents the transaction running on this (blocking) thread changed; announced after its
    /// commit. Thread-local because the writer's transaction runs start to end on one thread.
    static CHANGED_DOCS: RefCell<Vec<Arc<str>>> = const { RefCell::new(Vec::new()) };
}

/// Notes, inside a write transaction, that a sync document changed: announced once the transaction
/// commits, forgotten if it rolls back.
pub fn doc_changed(id: &str) {
    CHANGED_DOCS.with(|c| c.borrow_mut().push(Arc::from(id)));
}

fn take_changed_docs() -> Vec<Arc<str>> {
    CHANGED_DOCS.with(|c| std::mem::take(&mut *c.borrow_mut()))
}

impl Db {
    /// Opens (creating if needed) the database in `data_dir` and brings its schema up to date.
    pub fn open(data_dir: &Path, max_readers: usize) -> anyhow::Result<Db> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating data dir {}", data_dir.display()))?;
        let path = data_dir.join(DB_FILE);
        let mut writer =
            Connection::open(&path).with_context(|| format!("opening database {}", path.display()))?;
        configure(&writer)?;
        // One write path (a bulk of signed messages) runs some forty distinct statements per message;
        // rusqlite's default cache of 16 would prepare most of them again every time.
        writer.set_prepared_statement_cache_capacity(256);
        writer.pragma_update(None, "journal_mode", "WAL")?;
        migrations::apply(&mut writer)?;
        Ok(Db {
            inner: Arc::new(Inner {
                writer: Mutex::new(writer),
                readers: Mutex::new(Vec::new()),
                max_readers: max_readers.max(1),
                path,
                doc_changes: tokio::sync::broadcast::channel(DOC_CHANGES_BACKLOG).0,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Listens for the ids of sync documents changed by transactions committed from now on.
    pub fn doc_changes(&self) -> tokio::sync::broadcast::Receiver<Arc<str>> {
        self.inner.doc_changes.subscribe()
    }

    /// Runs `f` in a transaction on the writer and announces the documents it changed once committed.
    fn in_transaction<T>(
        inner: &Inner,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let mut conn = inner.writer.lock().unwrap_or_else(|p| p.into_inner());
        take_changed_docs();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx);
        let committed = out.and_then(|out| Ok(tx.commit().map(|()| out)?));
        let changed = take_changed_docs();
        if committed.is_ok() {
            for id in changed {
                // No listener is not an error: nobody is connected.
                let _ = inner.doc_changes.send(id);
            }
        }
        committed
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction, committed only when `f` returns `Ok`.
    pub async fn write<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, ApiError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || Self::in_transaction(&inner, f)).await?
    }

    /// Runs `f` on a read-only connection.
    pub async fn read<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, ApiError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let idle = inner.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let conn = match idle {
                Some(c) => c,
                None => open_reader(&inner.path)?,
            };
            let out = f(&conn);
            let mut pool = inner.readers.lock().unwrap_or_else(|p| p.into_inner());
            if pool.len() < inner.max_readers {
                pool.push(conn);
            }
            out
        })
        .await?
    }

    /// Blocking access to the writer for CLI commands that run without a tokio runtime.
    pub fn write_blocking<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        Self::in_transaction(&self.inner, f)
    }

    /// Is the database answering? Used by `/readyz`.
    pub async fn ping(&self) -> Result<(), ApiError> {
        self.read(|c| Ok(c.query_row("SELECT 1", [], |_| Ok(()))?)).await
    }
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // NORMAL is durable in WAL mode except for the last transactions on power loss; a killed process
    // loses nothing. FULL makes every commit survive power loss too, which an evidence system wants.
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(())
}

fn open_reader(path: &Path) -> Result<Connection, ApiError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
    )?;
    configure(&conn)?;
    Ok(conn)
}

/// Column `idx` of `row`, stored as JSON text. Stored JSON that does not parse is damage, never a default:
/// a damaged checklist read as an empty one would turn a regulatory record into a blank one. The error
/// names the column; the request answers a logged 500 and changes nothing.
pub fn json_column<T: DeserializeOwned>(row: &Row<'_>, idx: usize) -> rusqlite::Result<T> {
    parse_json(idx, &row.get::<_, String>(idx)?)
}

/// [`json_column`] for text already read from column `idx`.
pub fn parse_json<T: DeserializeOwned>(idx: usize, text: &str) -> rusqlite::Result<T> {
    serde_json::from_str(text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, Box::new(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_json_that_does_not_parse_is_an_error_naming_its_column_not_an_empty_value() {
        let c = Connection::open_in_memory().unwrap();
        let read = |text: &str| c.query_row("SELECT 1, ?1", [text], |r| json_column::<Vec<i64>>(r, 1));
        assert_eq!(read("[1, 2]").unwrap(), [1, 2]);
        for damaged in ["", "[1, 2", "{\"a\": 1}", "null"] {
            match read(damaged) {
                Err(rusqlite::Error::FromSqlConversionFailure(1, Type::Text, _)) => {}
                other => panic!("{damaged:?} read as {other:?}"),
            }
        }
    }
}
