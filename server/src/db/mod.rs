//! The SQLite database: one writer connection, a few readers, embedded migrations.
//!
//! # Layout
//! - this file: `Db` (the writer and the reader pool), reading stored JSON columns strictly.
//! - `migrations`: the embedded schema migrations, only ever appended.
//! - [`error`]: [`StoreError`](error::StoreError), what a store answers when it cannot.
//! - [`scope`]: the visibility predicates (unit subtree, officer assignment), written once.
//! - `types`: how the domain's types (vocabularies, bounded text) are stored.
//!
//! rusqlite is blocking, so every call runs off the async executor: reads on tokio's blocking pool, writes
//! on the one writer thread. SQLite allows one writer at a time anyway; serialising writers on our own
//! thread (and `BEGIN IMMEDIATE`) means transactions never fail with `SQLITE_BUSY` halfway and invariants
//! such as slot capacity hold under any concurrency. Readers run in parallel thanks to WAL mode.
//!
//! **Group commit.** The writer thread takes every write queued while it was busy (up to
//! [`MAX_GROUP`]) and runs them one after another inside one transaction, each in its own savepoint: a
//! write that fails is rolled back to its savepoint alone, the others go on. The group then commits with
//! one fsync (`synchronous=FULL` stays), and only then is any caller of the group answered; if the
//! commit fails, every caller of the group gets the error and nothing of the group is stored. Each write
//! still sees everything written before it (its group's earlier members included), so checks such as a
//! slot's capacity, made inside the write, stay exact.
//!
//! Changed sync documents are announced after commit ([`Db::doc_changes`], [`doc_changed`]): whatever
//! wrote them (a sync, a review, an assignment), live WebSocket peers hear of it, and never of a change
//! that was rolled back.
//!
//! **Document generations** ([`doc_generation`]): a counter per sync document (hashed into a fixed
//! table, so bounded), bumped when a transaction writes the document and again after it commits. Work
//! done outside the writer against a copy of a document (the sync engine's read phase, its cache) is
//! stale exactly when the generation moved since the copy was read: a collision or a rolled-back write
//! only makes it look stale, never the other way round.

pub mod error;
mod migrations;
pub mod scope;
mod types;

use std::{
    cell::RefCell,
    panic::AssertUnwindSafe,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
        mpsc,
    },
    thread::JoinHandle,
    time::Duration,
};

use anyhow::Context;
use rusqlite::{Connection, OpenFlags, Row, Transaction, TransactionBehavior, types::Type};
use serde::de::DeserializeOwned;

pub use migrations::MIGRATIONS;

pub const DB_FILE: &str = "fieldcheck.sqlite3";

/// The handle a module's rules pass down to its store: a connection for reads. Workflow code names
/// these two aliases and calls store functions; only `db/` and the `store` files name rusqlite and write
/// SQL, so the storage engine stays behind them.
pub type Conn = Connection;
/// A write transaction (it dereferences to a [`Conn`], so a store's readers take either).
pub type Tx<'c> = Transaction<'c>;
/// A value bound to a `?` of SQL built in pieces (a caller's scope, a monitoring rule, an imported row):
/// the storage engine's own type under a name the rules above the stores may use.
pub type SqlValue = rusqlite::types::Value;

#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    /// The one write connection. The writer thread holds it for a group at a time; [`Db::write_blocking`]
    /// (start-up and CLI commands only) takes it in between. `std::sync::Mutex` rather than tokio's: it
    /// is only ever held on a blocking thread, never across an `.await`.
    writer: Arc<Mutex<Connection>>,
    /// Writes waiting for the writer thread. `None` only while the database is being dropped.
    jobs: Option<mpsc::Sender<Job>>,
    /// Joined on drop, so the write connection is closed before `Db` is gone (a restore or a second open
    /// of the same file right after must not race it).
    writer_thread: Option<JoinHandle<()>>,
    /// Writes queued and not yet taken into a group: how far behind the writer is.
    queued: Arc<AtomicUsize>,
    /// Writes run and groups committed by the writer thread (`/metrics`): their ratio is how many
    /// writes share an fsync.
    counts: Arc<WriterCounts>,
    /// Idle read connections; a reader is opened on demand when all are busy and kept up to `max_readers`.
    readers: Mutex<Vec<Connection>>,
    max_readers: usize,
    /// At most `max_readers` reads run at once; the others wait here, on the executor, for a permit.
    /// Measured on the 500-way booking burst: unbounded, every concurrent read took a blocking thread of
    /// its own and opened a connection of its own (parsing the whole schema, then dropped past
    /// `max_readers`) — a fifth of the server's CPU. Two cores gain nothing from more parallel reads.
    read_permits: Arc<tokio::sync::Semaphore>,
    path: PathBuf,
    /// Ids of sync documents changed by committed transactions. A broadcast, so a slow listener only
    /// lags (and then re-reads everything it holds) instead of holding up writers.
    doc_changes: tokio::sync::broadcast::Sender<Arc<str>>,
}

/// Room for announcements a listener has not read yet; past it the listener is told it lagged.
const DOC_CHANGES_BACKLOG: usize = 4096;

/// Most writes one commit carries. Bounded so that the first caller of a long queue is not kept
/// waiting for everything queued behind it; one fsync per 64 writes is already a small share.
pub const MAX_GROUP: usize = 64;

/// The writer's page cache, as SQLite's `cache_size` takes it: negative = KiB (here 16 MiB, an upper
/// bound, filled only as pages are used). A bulk of 1,000 messages dirties several MiB in one
/// transaction, which fits. 64 MiB filled up at fleet size (a 220 MB database after 200 handhelds × 50
/// records) and was an eighth of the server's memory; a page not cached is read from the OS's cache.
const WRITER_CACHE_KIB: i64 = -16_384;

/// What the writer thread has done so far.
#[derive(Default)]
pub struct WriterCounts {
    pub writes: AtomicU64,
    pub commits: AtomicU64,
}

/// One queued write: runs inside the group's transaction (in its own savepoint) and answers whether
/// it succeeded, with the function that answers its caller once the group's commit is known.
type Job = Box<dyn FnOnce(&Transaction<'_>) -> (bool, Answer) + Send>;

/// Answers a write's caller after the commit: given the commit's error, if it failed.
type Answer = Box<dyn FnOnce(Option<&rusqlite::Error>) + Send>;

thread_local! {
    /// The documents the transaction running on this (blocking) thread changed; announced after its
    /// commit. Thread-local because the writer's transaction runs start to end on one thread.
    static CHANGED_DOCS: RefCell<Vec<Arc<str>>> = const { RefCell::new(Vec::new()) };
}

/// Notes, inside a write transaction, that a sync document changed: announced once the transaction
/// commits, forgotten if it rolls back. Bumps its generation at once (see the module's doc).
pub fn doc_changed(id: &str) {
    bump_generation(id);
    CHANGED_DOCS.with(|c| c.borrow_mut().push(Arc::from(id)));
}

/// Slots of the generation table: a power of two, large enough that unrelated documents rarely share
/// one (sharing only costs a redone merge or a cache miss). 4,096 was too few at fleet scale: with
/// 10,000 records most documents shared a slot, every write of one made the others' cached copies look
/// stale, and the cache missed ten times as often as it hit. 2^18 slots (2 MiB of address space, pages
/// touched only where documents hash) leave ~4 % of 10,000 documents sharing.
const GENERATION_SLOTS: usize = 1 << 18;

static GENERATIONS: [AtomicU64; GENERATION_SLOTS] = [const { AtomicU64::new(0) }; GENERATION_SLOTS];

fn generation_slot(id: &str) -> &'static AtomicU64 {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(id);
    &GENERATIONS[(hash as usize) & (GENERATION_SLOTS - 1)]
}

fn bump_generation(id: &str) {
    generation_slot(id).fetch_add(1, Ordering::AcqRel);
}

/// The document's current generation: read it *before* reading the document, and a later equal
/// value proves that nothing wrote the document in between (committed or still in flight).
pub fn doc_generation(id: &str) -> u64 {
    generation_slot(id).load(Ordering::Acquire)
}

/// After a commit: one more bump per changed document, so that a copy read while the write was in
/// flight (before its commit was visible) is seen as stale.
fn bump_committed(changed: &[Arc<str>]) {
    let mut seen = std::collections::HashSet::with_capacity(changed.len());
    for id in changed {
        if seen.insert(id.as_ref()) {
            bump_generation(id);
        }
    }
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
        // Measured on a bulk of 1,000 messages (one transaction, a savepoint per message): with the defaults
        // a sixth of the writer's CPU was `pwrite`. Each savepoint copies the pages it first touches into a
        // statement journal, a temp file once past 64 KiB; in memory it is a copy. And the 2 MiB page cache
        // spilled dirty pages into the WAL mid-transaction, to be written again at commit. Durability is
        // unchanged: the commit still writes every page to the WAL and syncs (`synchronous=FULL`).
        writer.pragma_update(None, "temp_store", "MEMORY")?;
        writer.pragma_update(None, "cache_size", WRITER_CACHE_KIB)?;
        writer.pragma_update(None, "journal_mode", "WAL")?;
        migrations::apply(&mut writer)?;
        let doc_changes = tokio::sync::broadcast::channel(DOC_CHANGES_BACKLOG).0;
        let queued = Arc::new(AtomicUsize::new(0));
        let counts = Arc::new(WriterCounts::default());
        let (jobs, queue) = mpsc::channel();
        let writer = Arc::new(Mutex::new(writer));
        let writer_thread = std::thread::Builder::new()
            .name("db-writer".into())
            .spawn({
                let (writer, doc_changes) = (writer.clone(), doc_changes.clone());
                let (queued, counts) = (queued.clone(), counts.clone());
                move || run_writer(&writer, queue, &queued, &counts, &doc_changes)
            })
            .context("starting the database writer thread")?;
        Ok(Db {
            inner: Arc::new(Inner {
                writer,
                jobs: Some(jobs),
                writer_thread: Some(writer_thread),
                queued,
                counts,
                readers: Mutex::new(Vec::new()),
                max_readers: max_readers.max(1),
                read_permits: Arc::new(tokio::sync::Semaphore::new(max_readers.max(1))),
                path,
                doc_changes,
            }),
        })
    }

    /// Writes queued for the writer and not started yet: the measure of saturation that back-pressure
    /// (an early `503`) is based on.
    pub fn write_queue(&self) -> usize {
        self.inner.queued.load(Ordering::Relaxed)
    }

    /// Writes run and groups committed so far by the writer thread.
    pub fn writer_counts(&self) -> &WriterCounts {
        &self.inner.counts
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Listens for the ids of sync documents changed by transactions committed from now on.
    pub fn doc_changes(&self) -> tokio::sync::broadcast::Receiver<Arc<str>> {
        self.inner.doc_changes.subscribe()
    }

    /// Queues `f` for the writer thread; `answer` receives its result once the group it ran in has
    /// committed (or failed to).
    fn submit<T, E, F>(inner: &Inner, f: F, answer: impl FnOnce(Result<T, E>) + Send + 'static)
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, E> + Send + 'static,
    {
        let job: Job = Box::new(move |tx| {
            let out = f(tx);
            let ok = out.is_ok();
            let answer: Answer = Box::new(move |commit_error| {
                answer(match (out, commit_error) {
                    (Ok(_), Some(e)) => {
                        Err(StoreError::Failed(format!("committing a group of writes: {e}")).into())
                    }
                    (out, _) => out,
                })
            });
            (ok, answer)
        });
        inner.queued.fetch_add(1, Ordering::Relaxed);
        let sent = inner.jobs.as_ref().map(|jobs| jobs.send(job));
        if !matches!(sent, Some(Ok(()))) {
            // Only while dropping, or after the writer thread died: the job (and so its answer) is
            // dropped, and the caller sees its channel closed.
            inner.queued.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction (shared with other writes queued at the same
    /// time, see the module's doc), answered once committed; `f`'s writes are kept only when it returns
    /// `Ok`. It answers `f`'s own error type; the database's own failures arrive as a [`StoreError`] in it.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, E> + Send + 'static,
    {
        let (send, receive) = tokio::sync::oneshot::channel();
        Self::submit(&self.inner, f, move |out| {
            // The caller may have gone (its request was cancelled): the write stands all the same.
            let _ = send.send(out);
        });
        receive.await.map_err(|_| writer_gone())?
    }

    /// Runs `f` on a read-only connection; answers `f`'s own error type, as [`Db::write`] does.
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        let inner = self.inner.clone();
        // Held by the blocking task, so a read whose caller went away still counts until it ends. The
        // semaphore is never closed; if that changed, reads would run unbounded rather than fail.
        let permit = self.inner.read_permits.clone().acquire_owned().await.ok();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let idle = inner.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let conn = match idle {
                Some(c) => c,
                None => open_reader(&inner.path).map_err(StoreError::from)?,
            };
            let out = f(&conn);
            let mut pool = inner.readers.lock().unwrap_or_else(|p| p.into_inner());
            if pool.len() < inner.max_readers {
                pool.push(conn);
            }
            out
        })
        .await
        .map_err(|e| StoreError::Failed(format!("a read did not finish: {e}")))?
    }

    /// A write of its own (no group) on the calling thread, for CLI commands and start-up steps that run
    /// without a tokio runtime; it waits for the writer thread's current group to finish.
    pub fn write_blocking<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut conn = self.inner.writer.lock().unwrap_or_else(|p| p.into_inner());
        take_changed_docs();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(StoreError::from)?;
        let out = f(&tx);
        let committed = out.and_then(|out| Ok(tx.commit().map(|()| out).map_err(StoreError::from)?));
        let changed = take_changed_docs();
        if committed.is_ok() {
            bump_committed(&changed);
            for id in changed {
                let _ = self.inner.doc_changes.send(id);
            }
        }
        committed
    }

    /// Is the database answering? Used by `/readyz`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.read(|c| Ok(c.query_row("SELECT 1", [], |_| Ok(()))?)).await
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the queue ends the writer thread once it has finished what was queued.
        self.jobs = None;
        if let Some(thread) = self.writer_thread.take() {
            // The last `Db` can be dropped by a write running on the writer thread itself: that thread
            // ends by itself once it returns, and cannot wait for itself.
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

/// A write's answer channel closed without an answer: its job panicked (rolled back) or the writer
/// thread is gone.
fn writer_gone() -> StoreError {
    StoreError::Failed("the write failed inside the database writer (see the log)".into())
}

/// The writer thread: takes what is queued as one group, runs each write in its own savepoint of one
/// transaction, commits once, then answers every caller of the group and announces changed documents.
fn run_writer(
    writer: &Mutex<Connection>,
    queue: mpsc::Receiver<Job>,
    queued: &AtomicUsize,
    counts: &WriterCounts,
    doc_changes: &tokio::sync::broadcast::Sender<Arc<str>>,
) {
    while let Ok(first) = queue.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        queued.fetch_sub(group.len(), Ordering::Relaxed);
        let mut conn = writer.lock().unwrap_or_else(|p| p.into_inner());
        let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
            Ok(tx) => tx,
            Err(e) => {
                tracing::error!(error = %e, "could not begin a write transaction");
                // Dropping the jobs closes their answer channels: each caller gets an error.
                continue;
            }
        };
        let mut answers = Vec::with_capacity(group.len());
        let mut changed = Vec::new();
        for job in group {
            take_changed_docs();
            // Cached statements: parsing these three anew for every write was a tenth of the writer's
            // CPU in the booking burst.
            if let Err(e) = run_cached(&tx, "SAVEPOINT group_member") {
                tracing::error!(error = %e, "could not open a savepoint");
                continue;
            }
            // A panicking write is rolled back like a failed one; its dropped answer tells its caller.
            let ran = std::panic::catch_unwind(AssertUnwindSafe(|| job(&tx)));
            let kept = matches!(ran, Ok((true, _)));
            let closed = if kept {
                run_cached(&tx, "RELEASE group_member")
            } else {
                run_cached(&tx, "ROLLBACK TO group_member")
                    .and_then(|()| run_cached(&tx, "RELEASE group_member"))
            };
            let docs = take_changed_docs();
            if let Err(e) = closed {
                // The savepoint could not be closed: the transaction's state is unknown, so the whole
                // group is given up rather than committed.
                tracing::error!(error = %e, "could not close a savepoint; the group is rolled back");
                answers.clear();
                changed.clear();
                break;
            }
            if kept {
                changed.extend(docs);
            }
            if let Ok((_, answer)) = ran {
                answers.push(answer);
            }
        }
        if answers.is_empty() {
            // Nothing to commit (or a group given up): rolled back on drop.
            drop(tx);
            continue;
        }
        let committed = tx.commit();
        if committed.is_ok() {
            bump_committed(&changed);
            counts.writes.fetch_add(answers.len() as u64, Ordering::Relaxed);
            counts.commits.fetch_add(1, Ordering::Relaxed);
            for id in changed {
                // No listener is not an error: nobody is connected.
                let _ = doc_changes.send(id);
            }
        }
        for answer in answers {
            answer(committed.as_ref().err());
        }
    }
}

/// Runs one cached statement that answers no rows.
fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // NORMAL is durable in WAL mode except for the last transactions on power loss; a killed process
    // loses nothing. FULL makes every commit survive power loss too, which an evidence system wants.
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(())
}

fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
    )?;
    configure(&conn)?;
    // A sync round's read phase alone runs a dozen distinct statements (device, session, assignment,
    // seal, bound officers, ...); with the default cache of 16 the other endpoints' statements pushed
    // them out and parsing SQL was a tenth of the engine's CPU.
    conn.set_prepared_statement_cache_capacity(128);
    Ok(conn)
}

/// Copies the database at `db_path` to `to` (which must not exist) as one consistent snapshot, while a
/// server may be writing to it: `VACUUM INTO` on a read-only connection of its own.
pub fn snapshot(db_path: &Path, to: &Path) -> anyhow::Result<()> {
    let db = Connection::open_with_flags(
        db_path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("opening {}", db_path.display()))?;
    db.busy_timeout(Duration::from_secs(30))?;
    db.execute("VACUUM INTO ?1", [to.to_str().context("a UTF-8 staging path")?])
        .context("snapshotting the database")?;
    Ok(())
}

/// SQLite's integrity check of the database file at `path`: `ok`, or what is wrong.
pub fn integrity_check(path: &Path) -> anyhow::Result<String> {
    Ok(Connection::open(path)?.query_row("PRAGMA integrity_check", [], |r| r.get(0))?)
}

/// Runs `f` inside a savepoint of `tx`: what it wrote is kept when it answers `Ok`, and undone alone (the
/// rest of the transaction stays) when it answers `Err`. The statements are cached: a bulk of messages
/// opens one per message.
pub fn in_savepoint<T, E: From<rusqlite::Error>>(
    tx: &Tx<'_>,
    f: impl FnOnce() -> Result<T, E>,
) -> Result<T, E> {
    tx.prepare_cached("SAVEPOINT step")?.execute([])?;
    match f() {
        Ok(v) => {
            tx.prepare_cached("RELEASE step")?.execute([])?;
            Ok(v)
        }
        Err(e) => {
            tx.execute_batch("ROLLBACK TO step; RELEASE step")?;
            Err(e)
        }
    }
}

/// Runs `f`'s reads on `c` in one read transaction: everything it reads is the same committed state,
/// however many statements it takes (between statements, the writer may commit).
pub fn in_snapshot<T, E: From<rusqlite::Error>>(c: &Conn, f: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
    run_cached(c, "BEGIN DEFERRED")?;
    let out = f();
    // Nothing was written: ending the transaction only lets the reader see later commits again.
    run_cached(c, "ROLLBACK")?;
    out
}

/// Stores answer [`StoreError`] (a leaf, so `error.rs` maps it without importing this module).
pub use error::StoreError;

/// Column `idx` of `row`, stored as JSON text. Stored JSON that does not parse is damage, never a default:
/// a damaged checklist read as an empty one would turn a regulatory record into a blank one. The error
/// names the column; the request answers a logged 500 and changes nothing.
pub fn json_column<T: DeserializeOwned>(row: &Row<'_>, idx: usize) -> rusqlite::Result<T> {
    parse_json(idx, &row.get::<_, String>(idx)?)
}

/// Stored data that does not parse, naming where it lies (`table.column` and the row's key) so that the
/// logged 500 says which record to look at.
#[derive(Debug, thiserror::Error)]
#[error("stored {what} of row {key} is damaged: {source}")]
pub struct Damaged {
    /// `table.column`, e.g. `instructions.checklist`.
    pub what: &'static str,
    pub key: String,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl Damaged {
    /// As the row mapper's error for column `idx`.
    pub fn at(self, idx: usize) -> rusqlite::Error {
        rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, Box::new(self))
    }
}

/// [`json_column`] naming the row: `what` is `table.column`, `key` the row's key.
pub fn stored_json<T: DeserializeOwned>(
    row: &Row<'_>,
    idx: usize,
    what: &'static str,
    key: impl std::fmt::Display,
) -> rusqlite::Result<T> {
    parse_stored(&row.get::<_, String>(idx)?, what, key).map_err(|e| e.at(idx))
}

/// Stored JSON text of `what` (`table.column`) in the row `key`.
pub fn parse_stored<T: DeserializeOwned>(
    text: &str,
    what: &'static str,
    key: impl std::fmt::Display,
) -> Result<T, Damaged> {
    serde_json::from_str(text).map_err(|e| Damaged { what, key: key.to_string(), source: Box::new(e) })
}

/// [`json_column`] for text already read from column `idx`.
pub fn parse_json<T: DeserializeOwned>(idx: usize, text: &str) -> rusqlite::Result<T> {
    serde_json::from_str(text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, Box::new(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_share_commits_and_a_failed_one_is_rolled_back_alone() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), 2).unwrap();
        db.write(|tx| Ok::<_, StoreError>(tx.execute_batch("CREATE TABLE t (n INTEGER PRIMARY KEY)")?))
            .await
            .unwrap();
        let writes: Vec<_> = (0..200i64)
            .map(|n| {
                let db = db.clone();
                tokio::spawn(async move {
                    db.write(move |tx| {
                        tx.execute("INSERT INTO t (n) VALUES (?1)", [n])?;
                        if n % 7 == 0 {
                            return Err(StoreError::Conflict("every seventh write"));
                        }
                        Ok(n)
                    })
                    .await
                })
            })
            .collect();
        let mut acknowledged = Vec::new();
        for w in writes {
            if let Ok(n) = w.await.unwrap() {
                acknowledged.push(n);
            }
        }
        let stored: Vec<i64> = db
            .read(|c| -> Result<_, StoreError> {
                let mut stmt = c.prepare("SELECT n FROM t ORDER BY n")?;
                Ok(stmt.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?)
            })
            .await
            .unwrap();
        assert_eq!(stored, acknowledged, "exactly the acknowledged writes are stored");
        assert_eq!(stored.len(), 200 - 29);
        assert_eq!(db.write_queue(), 0);
    }

    #[tokio::test]
    async fn a_write_that_panics_is_answered_with_an_error_and_the_writer_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), 1).unwrap();
        db.write(|tx| Ok::<_, StoreError>(tx.execute_batch("CREATE TABLE t (n INTEGER)")?)).await.unwrap();
        let panicked = db
            .write(|tx| -> Result<(), StoreError> {
                tx.execute("INSERT INTO t (n) VALUES (1)", [])?;
                panic!("a bug in a write")
            })
            .await;
        assert!(panicked.is_err());
        db.write(|tx| Ok::<_, StoreError>(tx.execute("INSERT INTO t (n) VALUES (2)", [])?)).await.unwrap();
        let stored: Vec<i64> = db
            .read(|c| {
                Ok::<_, StoreError>(
                    c.prepare("SELECT n FROM t")?.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?,
                )
            })
            .await
            .unwrap();
        assert_eq!(stored, [2], "the panicking write left nothing behind");
    }

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
