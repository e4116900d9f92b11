//! The sync engine's write path (issue 15): the automerge work of a sync round — load, validate, merge,
//! draft the reply, save the new chunk, read the projection — runs on the request's own blocking
//! thread against a cached document, both cores at once; the one database writer only appends the
//! chunk, the projection rows and the session state. Both ways in (the batch endpoint and the
//! WebSocket endpoint) go through [`Engine::sync`].
//!
//! # Layout
//! - [`Engine`]: a lock per document id (two rounds about one document run one after the other,
//!   rounds about different documents in parallel) and an LRU cache of loaded documents bounded in
//!   bytes ([`cost`]: charged by the document's operations and changes).
//! - [`Engine::sync`]: lock the round's documents, read phase ([`prepare`], on a read connection),
//!   write phase ([`commit`], one `Db::write`), then the merged documents back into the cache.
//! - [`Engine::outgoing`]: the WebSocket fan-out's next message for a peer, from the cached copy.
//! - [`commit`]'s fallback: when anything the read phase relied on moved before the writer got to
//!   it — the document's generation (`db::doc_generation`: any other write of it, a review, a
//!   resolution, an assignment), the authorization facts (assignment, seal, bound actors, the
//!   device's actor) — the message is run again inside the transaction by `records::sync_doc`, the
//!   reference path, against what is stored. Correct whatever raced; only slower.
//!
//! Persisted before acknowledged: the reply leaves only after the writer's commit; a cached document
//! is put back only after that commit, and only if its generation shows nothing else wrote it since
//! (otherwise it is dropped and read again next time). A refused message, or a failed commit, drops
//! the document: the next round reads it from SQLite.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use fieldcheck_sync::{
    ActorId, AssignmentIndex, RecordDoc, Rules, SyncSession,
    batch::DocError,
    schema::{InstructionPart, OfficerId},
};
use tokio::sync::OwnedMutexGuard;

use super::{
    Handled, doc_error,
    error::RecordsError,
    projection,
    projection::{Progress, Projected},
    store::{self, DocKind, DocMeta},
};
use crate::{
    db,
    db::{Conn, Db, Tx},
    domain::Principal,
    instructions,
    instructions::machine,
    workflow::error::WorkflowError,
};

/// How often a device's `last_seen_at` is rewritten at most, when a round has nothing else to write:
/// a settled handheld's sync then needs no write at all.
const SEEN_EVERY_MS: i64 = 60_000;

/// One document's message in a round.
pub struct Input {
    /// The server's (hex) document id.
    pub doc: String,
    pub data: Vec<u8>,
    /// The connection's session (WebSocket); `None` resumes the one stored for the device (batch).
    pub session: Option<SyncSession>,
}

/// One document's answer.
pub struct Output {
    pub doc: String,
    /// The reply and how many changes were accepted and stored, or the refusal.
    pub result: Result<(Option<Vec<u8>>, usize), DocError>,
    /// The session after the message (unchanged when refused); what a WebSocket connection keeps.
    pub session: SyncSession,
}

pub struct Outcome {
    /// The caller's assignment-index document (created on first need) when asked for.
    pub index_doc: Option<String>,
    pub results: Vec<Output>,
}

/// A loaded document of either kind.
enum Loaded {
    /// With its instruction part, read once when the document was loaded: server-owned, so it stays
    /// what it was until a server write, which moves the generation and so drops this copy
    /// (`RecordDoc::read_with`). Validation and the projection then never walk it again.
    Record(RecordDoc, Arc<InstructionPart>),
    Index(AssignmentIndex),
}

struct Cached {
    doc: Loaded,
    /// `db::doc_generation` of the document when this copy was known current.
    generation: u64,
    /// Its place in the eviction order.
    tick: u64,
    /// What it is charged against the cache's budget ([`cost`]).
    cost: usize,
}

/// What a loaded document is charged, in bytes: its automerge operations and changes, plus the
/// entry and its instruction part. Fitted to the live heap a loaded and read record holds, counted by
/// `bench-fleet`'s allocator (exact, unlike the RSS growth read before): a new record (100 ops, 1
/// change) holds 23 KiB, a finished one (230 ops, 40 changes) 34 KiB; most of it is per document,
/// whatever its size (automerge's columns and indexes), which the earlier charge of 4 KiB per entry
/// missed — charged 14 KiB, a new record cost 23, and 200 handhelds downloading their 10,000 records
/// filled a 64 MiB budget with ~105 MiB of documents.
fn cost(doc: &Loaded) -> usize {
    const PER_OP: u64 = 48;
    const PER_CHANGE: u64 = 128;
    const PER_ENTRY: u64 = 20 * 1024;
    let size = match doc {
        Loaded::Record(record, _) => fieldcheck_sync::doc_size(record),
        Loaded::Index(index) => fieldcheck_sync::doc_size(index),
    };
    (size.ops * PER_OP + size.changes * PER_CHANGE + PER_ENTRY) as usize
}

/// The least recently used documents, charged at most `budget` bytes in all. A document is taken
/// out while a round works on it (under the document's lock) and put back after the commit.
struct DocCache {
    budget: usize,
    used: usize,
    /// Boxed: a loaded automerge document is kilobytes inline, and the table keeps ~1/8 of its slots
    /// empty and doubles as it grows (unboxed, the table itself held 35 MiB at 4,000 records).
    entries: HashMap<String, Box<Cached>>,
    order: BTreeMap<u64, String>,
    tick: u64,
    hits: u64,
    misses: u64,
    /// Misses that found a copy whose generation had moved (a write of the document, or of another
    /// one sharing its generation slot).
    stale: u64,
}

impl DocCache {
    fn new(budget: usize) -> Self {
        DocCache {
            budget,
            used: 0,
            entries: HashMap::new(),
            order: BTreeMap::new(),
            tick: 0,
            hits: 0,
            misses: 0,
            stale: 0,
        }
    }

    fn take(&mut self, id: &str, generation: u64) -> Option<Loaded> {
        let cached = self.entries.remove(id);
        if let Some(c) = &cached {
            self.order.remove(&c.tick);
            self.used -= c.cost;
        }
        match cached {
            Some(c) if c.generation == generation => {
                self.hits += 1;
                Some(c.doc)
            }
            Some(_) => {
                self.misses += 1;
                self.stale += 1;
                None
            }
            None => {
                self.misses += 1;
                None
            }
        }
    }

    fn put(&mut self, id: String, doc: Loaded, generation: u64) {
        let cost = cost(&doc);
        if cost > self.budget {
            return;
        }
        self.tick += 1;
        self.used += cost;
        if let Some(old) =
            self.entries.insert(id.clone(), Box::new(Cached { doc, generation, tick: self.tick, cost }))
        {
            self.order.remove(&old.tick);
            self.used -= old.cost;
        }
        self.order.insert(self.tick, id);
        while self.used > self.budget {
            let Some((_, oldest)) = self.order.pop_first() else { break };
            if let Some(gone) = self.entries.remove(&oldest) {
                self.used -= gone.cost;
            }
        }
    }
}

pub struct Engine {
    /// One lock per document some round is working on; entries go when their last user does.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    cache: Mutex<DocCache>,
    /// Messages run again by the reference path inside the writer.
    redone: AtomicU64,
    /// Rounds that needed no write at all.
    unwritten: AtomicU64,
}

/// The engine's counters.
pub struct EngineCounts {
    pub hits: u64,
    pub misses: u64,
    /// Of the misses, those that found a stale copy.
    pub stale: u64,
    /// Bytes the cached documents are charged now.
    pub cached_bytes: u64,
    pub redone: u64,
    pub unwritten: u64,
}

/// The locks of one round's documents, released (and their entries forgotten when unused) on drop,
/// cancellation included.
struct DocLocks<'a> {
    engine: &'a Engine,
    ids: Vec<String>,
    guards: Vec<OwnedMutexGuard<()>>,
}

impl Drop for DocLocks<'_> {
    fn drop(&mut self) {
        self.guards.clear();
        let mut locks = self.engine.locks.lock().unwrap_or_else(|p| p.into_inner());
        for id in &self.ids {
            if locks.get(id).is_some_and(|l| Arc::strong_count(l) == 1) {
                locks.remove(id);
            }
        }
    }
}

/// What a round needs from the server beside the engine: the database, the time of the round, and the
/// bell rung after a commit that wrote receipts (long-polling readers wait on it). Handed in by the
/// endpoints (`AppState::sync_env`), so the engine does not depend on the server's whole state.
pub struct Env<'a> {
    pub db: &'a Db,
    pub now: i64,
    pub receipts: &'a tokio::sync::watch::Sender<u64>,
}

impl Engine {
    /// An engine caching loaded documents charged at most `cache_bytes` (`storage.document_cache_mib`).
    pub fn new(cache_bytes: usize) -> Self {
        Engine {
            locks: Mutex::new(HashMap::new()),
            cache: Mutex::new(DocCache::new(cache_bytes)),
            redone: AtomicU64::new(0),
            unwritten: AtomicU64::new(0),
        }
    }

    /// What the engine did so far (`/metrics`).
    pub fn counts(&self) -> EngineCounts {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        EngineCounts {
            hits: cache.hits,
            misses: cache.misses,
            stale: cache.stale,
            cached_bytes: cache.used as u64,
            redone: self.redone.load(Ordering::Relaxed),
            unwritten: self.unwritten.load(Ordering::Relaxed),
        }
    }

    /// Locks every document of a round, in id order (so two rounds never wait on each other in a
    /// circle).
    async fn lock(&self, ids: BTreeSet<String>) -> DocLocks<'_> {
        let mutexes: Vec<_> = {
            let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
            ids.iter().map(|id| locks.entry(id.clone()).or_default().clone()).collect()
        };
        let mut held = DocLocks { engine: self, ids: ids.into_iter().collect(), guards: Vec::new() };
        for m in mutexes {
            held.guards.push(m.lock_owned().await);
        }
        held
    }

    fn take(&self, id: &str, generation: u64) -> Option<Loaded> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).take(id, generation)
    }

    fn put(&self, id: String, doc: Loaded, generation: u64) {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).put(id, doc, generation);
    }

    /// One round from `principal`'s device `device_id`: every message validated and merged (or refused
    /// on its own), then stored in one write transaction, answered after its commit. `with_index` also
    /// answers (and creates on first need) the principal's assignment-index document. Answers
    /// `WorkflowError`: the round's commit also advances the instructions the records progressed.
    pub async fn sync(
        self: &Arc<Self>,
        env: Env<'_>,
        principal: &Principal,
        device_id: &str,
        inputs: Vec<Input>,
        with_index: bool,
    ) -> Result<Outcome, WorkflowError> {
        let engine = self.clone();
        let ids: BTreeSet<String> = inputs.iter().map(|i| i.doc.clone()).collect();
        // The same document twice in one round: each message must see the one before it merged, so
        // the whole round takes the reference path inside the writer.
        let duplicates = ids.len() != inputs.len();
        let _locks = engine.lock(ids).await;
        let now = env.now;
        let (principal_r, device_r, engine_r) = (principal.clone(), device_id.to_owned(), engine.clone());
        let round = env
            .db
            .read(move |c| {
                prepare(c, &engine_r, now, &principal_r, &device_r, inputs, duplicates, with_index)
            })
            .await?;
        let round = if round.needs_write() {
            let (principal_w, device_w) = (principal.clone(), device_id.to_owned());
            let (round, receipts) = env
                .db
                .write(move |tx| -> Result<_, WorkflowError> {
                    let (round, progress) = commit(tx, now, &principal_w, &device_w, round)?;
                    Ok((round, progressed(tx, now, &principal_w, &progress)?))
                })
                .await?;
            if receipts {
                env.receipts.send_modify(|v| *v = v.wrapping_add(1));
            }
            let redone = round.docs.iter().filter(|p| p.fallback).count();
            engine.redone.fetch_add(redone as u64, Ordering::Relaxed);
            round
        } else {
            engine.unwritten.fetch_add(1, Ordering::Relaxed);
            round
        };
        let mut results = Vec::with_capacity(round.docs.len());
        for p in round.docs {
            // Back into the cache only if nothing wrote the document since this copy was current.
            if let Some((doc, generation)) = p.keep
                && db::doc_generation(&p.doc) == generation
            {
                engine.put(p.doc.clone(), doc, generation);
            }
            results.push(Output { doc: p.doc, result: p.result, session: p.session });
        }
        Ok(Outcome { index_doc: round.index_doc, results })
    }

    /// The next message for a connected peer holding `meta`'s document, if it lacks anything the
    /// server has (the WebSocket fan-out after a change that came in another way). From the cached
    /// copy when it is current, else read from SQLite and then cached: loading the document for every
    /// peer after every change made the fan-out cost more than the changes.
    pub async fn outgoing(
        self: &Arc<Self>,
        db: &Db,
        meta: DocMeta,
        session: SyncSession,
    ) -> Result<(SyncSession, Option<Vec<u8>>), RecordsError> {
        let _lock = self.lock(BTreeSet::from([meta.id.clone()])).await;
        let engine_r = self.clone();
        db.read(move |c| {
            let mut session = session;
            let generation = db::doc_generation(&meta.id);
            let mut doc = match engine_r.take(&meta.id, generation) {
                Some(doc) => doc,
                None => {
                    // A single statement (`store::load_bytes`): one snapshot without a transaction.
                    load(c, &meta, stored_server_actor(c)?)?
                }
            };
            let message = match &mut doc {
                Loaded::Record(record, _) => session.generate(record),
                Loaded::Index(index) => session.generate(index),
            };
            if db::doc_generation(&meta.id) == generation {
                engine_r.put(meta.id.clone(), doc, generation);
            }
            Ok((session, message))
        })
        .await
    }
}

/// The server's actor as stored, or a fresh one before the first server write (a reader must not
/// create it): the documents it loads are only read.
fn stored_server_actor(c: &Conn) -> Result<ActorId, RecordsError> {
    Ok(match store::stored_server_actor(c)? {
        Some(hex) => hex.parse().map_err(|e| super::internal("stored server actor", e))?,
        None => fieldcheck_sync::new_actor_id(),
    })
}

/// A document read from SQLite, a record with its instruction part.
fn load(c: &Conn, meta: &DocMeta, actor: ActorId) -> Result<Loaded, RecordsError> {
    Ok(match meta.kind {
        DocKind::Index => Loaded::Index(super::load_index(c, &meta.id, actor)?),
        DocKind::Record => {
            let record = super::load_record(c, &meta.id, actor)?;
            let instruction = record.instruction().map_err(|e| super::internal("stored record", e))?;
            Loaded::Record(record, Arc::new(instruction))
        }
    })
}

/// The authorization facts a record message was validated under; re-read by the writer, and any
/// difference sends the message down the reference path.
#[derive(Debug, Clone, PartialEq)]
struct Facts {
    sealed: bool,
    officers: BTreeMap<ActorId, OfficerId>,
    sender: ActorId,
}

/// What the writer stores for one accepted message.
struct Write {
    /// The new chunk and its projection, when the message brought changes (records only).
    changes: Option<Changes>,
    /// The session's persisted form, when it differs from the stored one.
    state: Option<Vec<u8>>,
}

struct Changes {
    instruction_id: i64,
    chunk: Vec<u8>,
    projected: Projected,
    facts: Facts,
}

/// One document of a round as it moves through the phases.
struct Prepared {
    doc: String,
    meta: Option<DocMeta>,
    data: Vec<u8>,
    /// The session the message started from (for the reference path of a connection's session).
    given: Option<SyncSession>,
    /// `db::doc_generation` before the document was read.
    generation: u64,
    /// What the writer must store; `None` when nothing (a refusal, or a message bringing nothing).
    write: Option<Write>,
    /// Run the message again in the writer by the reference path.
    fallback: bool,
    /// The merged document, to cache after the commit with the generation it must still have.
    keep: Option<(Loaded, u64)>,
    merged: Option<Loaded>,
    result: Result<(Option<Vec<u8>>, usize), DocError>,
    session: SyncSession,
}

struct Round {
    docs: Vec<Prepared>,
    index_doc: Option<String>,
    /// The index must be created in the writer.
    create_index: bool,
    /// The device's `last_seen_at` is due for a rewrite.
    seen_due: bool,
}

impl Round {
    fn needs_write(&self) -> bool {
        self.create_index
            || self.docs.iter().any(|p| p.fallback || p.write.is_some())
            // Only worth a write of its own now and then; otherwise it rides along.
            || self.seen_due
    }
}

/// The read phase, on a read connection: everything but the writes.
#[allow(clippy::too_many_arguments)]
fn prepare(
    c: &Conn,
    engine: &Engine,
    now: i64,
    principal: &Principal,
    device_id: &str,
    inputs: Vec<Input>,
    duplicates: bool,
    with_index: bool,
) -> Result<Round, RecordsError> {
    // Generations first, then one read transaction: a write committed after a generation was read
    // moves it, so the writer notices whatever this snapshot missed.
    let generations: Vec<u64> = inputs.iter().map(|i| db::doc_generation(&i.doc)).collect();
    let read = c.unchecked_transaction()?;
    let device = crate::devices::get(&read, device_id)?
        .ok_or_else(|| super::internal("sync", "the caller's device is gone"))?;
    let sender: ActorId = device.actor_id.parse().map_err(|e| super::internal("stored device actor", e))?;
    let actor = stored_server_actor(&read)?;
    let index_doc = if with_index { store::index_of(&read, principal.user_id)? } else { None };
    let mut docs = Vec::with_capacity(inputs.len());
    for (input, generation) in inputs.into_iter().zip(generations) {
        let meta = store::meta(&read, &input.doc)?;
        let mut p = Prepared {
            doc: input.doc,
            meta,
            data: input.data,
            session: input.session.clone().unwrap_or_default(),
            given: input.session,
            generation,
            write: None,
            fallback: duplicates,
            keep: None,
            merged: None,
            result: Ok((None, 0)),
        };
        if !p.fallback {
            prepare_one(&read, engine, principal, device_id, &sender, &actor, &mut p)?;
        }
        docs.push(p);
    }
    read.finish()?;
    let seen_due = device.last_seen_at.is_none_or(|at| now - at >= SEEN_EVERY_MS);
    Ok(Round { docs, create_index: with_index && index_doc.is_none(), index_doc, seen_due })
}

/// One document's read phase: authorize, load (cache or SQLite), validate and merge, draft the reply;
/// for accepted changes also the chunk and the projection.
fn prepare_one(
    c: &Conn,
    engine: &Engine,
    principal: &Principal,
    device_id: &str,
    sender: &ActorId,
    actor: &ActorId,
    p: &mut Prepared,
) -> Result<(), RecordsError> {
    let Some(meta) = p.meta.clone() else {
        p.result = Err(doc_error("unknown_document", format!("there is no document {:?}", p.doc)));
        return Ok(());
    };
    if p.given.is_none() {
        p.session = super::stored_session(c, device_id, &meta.id)?;
    }
    let stored_state = store::sync_state(c, device_id, &meta.id)?;
    // Taken from the cache only once the caller may sync it: a refused caller leaves it cached.
    let cached = || engine.take(&meta.id, p.generation);
    let mut session = p.session.clone();
    let (received, merged) = match meta.kind {
        DocKind::Index => {
            if meta.officer_id != Some(principal.user_id) {
                p.result = Err(doc_error("not_assigned", "this is another officer's assignment index"));
                return Ok(());
            }
            let index = match cached().map_or_else(|| load(c, &meta, actor.clone()), Ok)? {
                Loaded::Index(index) => index,
                Loaded::Record(..) => return Err(super::internal("sync", "an index id names a record")),
            };
            match session.receive_owned(index, &p.data, &Rules::ReadOnly, None) {
                Ok((index, received)) => (received, Loaded::Index(index)),
                Err(refusal) => {
                    p.result = Err(super::refused_for(c, device_id, &refusal)?);
                    return Ok(());
                }
            }
        }
        DocKind::Record => {
            let instruction_id =
                meta.instruction_id.ok_or_else(|| super::internal("record", "no instruction"))?;
            if !super::is_assigned(c, instruction_id, principal.user_id)? {
                p.result =
                    Err(doc_error("not_assigned", "you are not assigned to this record's instruction"));
                return Ok(());
            }
            let facts = facts(c, instruction_id, sender.clone())?;
            let rules = Rules::Record {
                officers: facts.officers.clone(),
                sender: facts.sender.clone(),
                sealed: facts.sealed,
            };
            let (mut record, instruction) =
                match cached().map_or_else(|| load(c, &meta, actor.clone()), Ok)? {
                    Loaded::Record(record, instruction) => (record, instruction),
                    Loaded::Index(_) => return Err(super::internal("sync", "a record id names an index")),
                };
            let heads = record.heads();
            match session.receive_owned(record, &p.data, &rules, Some(&instruction)) {
                Ok((mut record, received)) => {
                    if received.accepted.changes > 0 {
                        let chunk = record.save_after(&heads);
                        let projected = projection::compute_with(&record, &instruction)?;
                        p.write = Some(Write {
                            changes: Some(Changes { instruction_id, chunk, projected, facts }),
                            state: None,
                        });
                    }
                    (received, Loaded::Record(record, instruction))
                }
                Err(refusal) => {
                    p.result = Err(super::refused_for(c, device_id, &refusal)?);
                    return Ok(());
                }
            }
        }
    };
    let state = session.persist();
    if stored_state.as_deref() != Some(state.as_slice()) {
        p.write.get_or_insert(Write { changes: None, state: None }).state = Some(state);
    }
    p.result = Ok((received.reply, received.accepted.changes));
    p.session = session;
    if p.write.is_some() {
        p.merged = Some(merged);
    } else {
        p.keep = Some((merged, p.generation));
    }
    Ok(())
}

fn facts(c: &Conn, instruction_id: i64, sender: ActorId) -> Result<Facts, RecordsError> {
    let instruction =
        instructions::get(c, instruction_id)?.ok_or_else(|| super::internal("record", "no instruction"))?;
    Ok(Facts {
        sealed: machine::is_sealed(instruction.state),
        officers: super::bound_officers(c, instruction_id)?,
        sender,
    })
}

/// The write phase, in the writer's transaction: appends what the read phase prepared if nothing it
/// relied on moved, else runs the message by the reference path. Answers the round and what each
/// changed record now means for its instruction ([`progressed`] moves them on, in the same transaction).
fn commit(
    tx: &Tx<'_>,
    now: i64,
    principal: &Principal,
    device_id: &str,
    mut round: Round,
) -> Result<(Round, BTreeMap<i64, Progress>), RecordsError> {
    if round.create_index {
        round.index_doc = Some(super::index_for(tx, principal.user_id, now)?);
    }
    let sender = super::sender_actor(tx, device_id)?;
    let mut progress: BTreeMap<i64, Progress> = BTreeMap::new();
    for p in &mut round.docs {
        if !p.fallback
            && let Some(write) = &p.write
        {
            let moved = db::doc_generation(&p.doc) != p.generation
                || match &write.changes {
                    Some(ch) => {
                        !super::is_assigned(tx, ch.instruction_id, principal.user_id)?
                            || facts(tx, ch.instruction_id, sender.clone())? != ch.facts
                    }
                    None => false,
                };
            p.fallback = moved;
        }
        if p.fallback {
            reference_path(tx, now, principal, device_id, &sender, p, &mut progress)?;
            continue;
        }
        let Some(write) = p.write.take() else { continue };
        if let Some(ch) = write.changes {
            let Some(Loaded::Record(record, _)) = p.merged.as_mut() else {
                return Err(super::internal("sync", "a record's changes without the record"));
            };
            if store::append(tx, &p.doc, &ch.chunk, now)? {
                store::compact(tx, &p.doc, &record.save(), now)?;
            }
            progress.insert(ch.instruction_id, projection::write(tx, now, ch.instruction_id, &ch.projected)?);
        }
        if let Some(state) = write.state {
            store::put_sync_state(tx, device_id, &p.doc, &state, now)?;
        }
        // An appended chunk moved the generation once in this transaction, and the commit moves it
        // once more; a session state alone leaves it where the read phase found it.
        if let Some(doc) = p.merged.take() {
            let generation = if p.result.as_ref().is_ok_and(|(_, accepted)| *accepted > 0) {
                db::doc_generation(&p.doc) + 1
            } else {
                p.generation
            };
            p.keep = Some((doc, generation));
        }
    }
    crate::devices::seen(tx, device_id, now)?;
    Ok((round, progress))
}

/// The workflow after a round's writes, in the same transaction: each changed record's progress moves
/// its instruction on. Answers whether receipts were written.
fn progressed(
    tx: &Tx<'_>,
    now: i64,
    principal: &Principal,
    progress: &BTreeMap<i64, Progress>,
) -> Result<bool, WorkflowError> {
    let actor = crate::audit::Actor::User(principal.user_id);
    let mut receipts = false;
    for (instruction_id, progress) in progress {
        receipts |= crate::workflow::record_progressed(
            tx,
            now,
            &actor,
            &principal.username,
            *instruction_id,
            progress,
        )?;
    }
    Ok(receipts)
}

/// The message again, inside the transaction, by `records::sync_doc` against what is stored.
fn reference_path(
    tx: &Tx<'_>,
    now: i64,
    principal: &Principal,
    device_id: &str,
    sender: &ActorId,
    p: &mut Prepared,
    progress: &mut BTreeMap<i64, Progress>,
) -> Result<(), RecordsError> {
    p.merged = None;
    p.keep = None;
    p.write = None;
    let Some(meta) = store::meta(tx, &p.doc)? else {
        p.result = Err(doc_error("unknown_document", format!("there is no document {:?}", p.doc)));
        return Ok(());
    };
    let mut session = match &p.given {
        Some(s) => s.clone(),
        None => super::stored_session(tx, device_id, &meta.id)?,
    };
    let server = store::server_actor(tx)?;
    let actors = super::Actors { server: &server, sender };
    match super::sync_doc(tx, now, principal, device_id, &actors, &meta, &mut session, &p.data)? {
        Handled::Synced(synced) => {
            progress.extend(synced.progress);
            p.result = Ok((synced.reply, synced.accepted));
            p.session = session;
        }
        Handled::Refused(error) => p.result = Err(error),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> Loaded {
        Loaded::Index(AssignmentIndex::replica(fieldcheck_sync::new_actor_id()))
    }

    /// A cache with room for `n` empty indexes.
    fn cache(n: usize) -> DocCache {
        DocCache::new(n * cost(&index()))
    }

    #[test]
    fn the_cache_keeps_the_most_recently_used_documents_within_its_budget() {
        let mut c = cache(2);
        c.put("a".into(), index(), 1);
        c.put("b".into(), index(), 1);
        c.put("a".into(), index(), 1);
        c.put("c".into(), index(), 1);
        assert_eq!(c.entries.len(), 2);
        assert!(c.take("b", 1).is_none(), "b was the least recently used");
        assert!(c.take("a", 1).is_some() && c.take("c", 1).is_some());
        assert!(c.take("a", 1).is_none(), "a document is taken out while a round works on it");
        assert_eq!((c.hits, c.misses), (2, 2));
        assert!(c.order.is_empty());
        assert_eq!(c.used, 0, "what is taken out is no longer charged");
    }

    #[test]
    fn a_cached_copy_is_not_used_once_a_write_moved_the_documents_generation() {
        let mut c = cache(4);
        let id = "0123456789abcdef0123456789abcdef-engine-test";
        let generation = db::doc_generation(id);
        c.put(id.into(), index(), generation);
        // What every write of the document does inside its transaction (`store::append`, `insert`).
        db::doc_changed(id);
        assert!(c.take(id, db::doc_generation(id)).is_none(), "a stale copy is dropped");
        assert_eq!(c.stale, 1);
        c.put(id.into(), index(), db::doc_generation(id));
        assert!(c.take(id, db::doc_generation(id)).is_some());
    }

    #[test]
    fn a_cache_of_budget_zero_keeps_nothing() {
        let mut c = cache(0);
        c.put("a".into(), index(), 0);
        assert!(c.take("a", 0).is_none());
    }
}
