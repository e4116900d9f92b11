//! `handheld watch`: the WebSocket sync kept open. Another officer's edit or a supervisor's decision
//! reaches this device as soon as the server stored it, new assignments arrive with their records, and
//! edits made here while watching go out within a second.
//!
//! # Layout
//! - [`watch`]: connect, settle every assigned document (as `sync` does), then wait for the server's
//!   live messages and for local edits; after the server ends a connection (a restart, another sync of
//!   this device replacing it, a refusal) connect again.
//! - [`Event`]: what the officer is told, one line each (`--json`: one JSON object per line).
//!
//! The store lock: edit commands (`check`, `note`, …) must run while a watch goes on, so the watch takes
//! the store's lock only while it takes a message in or sends edits, never while it waits. A document is
//! read again from the store before a message goes into it (an edit saved meanwhile is in it, and a
//! document with unsent edits is always read again), and stored before the lock is let go: storing the
//! watch's copy never drops an edit.
//!
//! Photos are not uploaded by a watch (a large upload would hold the lock, and the edits queue, for its
//! whole length): `handheld sync` sends them.

use std::{
    collections::BTreeSet,
    fs::File,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use automerge::ActorId;
use fieldcheck_sync::batch::{Bytes, DocResult};
use serde::Serialize;

use crate::{
    Doc, actor,
    client::{Client, ServerError},
    load,
    plan::{self, Live},
    store::Store,
    transport::ws::WsTransport,
};

/// How often a quiet watch looks for local edits and pings the server.
const TICK: Duration = Duration::from_secs(1);

/// When a watch ends by itself (without either, at Ctrl-C).
#[derive(Debug, Default, Clone, Copy)]
pub struct Limits {
    pub until: Option<Instant>,
    /// After this many events that brought or sent a change.
    pub changes: Option<usize>,
}

/// What the officer is told while watching.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// Connected, every assigned document settled: changes arrive from now on.
    Watching { records: usize, connection: u64 },
    /// A record changed on the server: another officer's edit, a supervisor's decision, the workflow.
    Changed { doc: String, instruction_id: Option<String>, record: Option<Summary> },
    /// Instructions newly assigned to this officer; their records are here now.
    Assigned { instruction_ids: Vec<String> },
    /// Instructions taken off this officer (reassigned or cancelled).
    Unassigned { instruction_ids: Vec<String> },
    /// Edits made here while watching reached the server and were stored.
    Sent { records: usize, changes: usize },
    /// The server refused this document's edits; they stay here, `handheld sync` reports them.
    Refused { doc: String, code: String, message: String },
    /// The connection ended; the watch connects again.
    Disconnected { reason: String },
}

impl Event {
    /// Whether the event counts towards `--changes`.
    fn is_change(&self) -> bool {
        matches!(self, Event::Changed { .. } | Event::Assigned { .. } | Event::Sent { .. })
    }
}

/// A record as the officer reads it at a glance.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub inspection_no: String,
    pub checks_done: usize,
    pub checks_total: usize,
    pub verdict: Option<String>,
    pub complete: bool,
}

/// How a watch went.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub changes: usize,
    pub connections: u64,
    /// `time` or `changes`.
    pub ended: &'static str,
}

/// Watches until a limit is reached; `emit` prints each event as it happens. A connection that fails
/// is made again (with a growing pause); `client.attempts` failures in a row end the watch with the
/// last error.
pub fn watch(
    store: &Store,
    lock: &File,
    client: &mut Client,
    limits: Limits,
    emit: &mut dyn FnMut(&Event),
) -> Result<Report> {
    let device_id = store.require("device_id")?;
    let index_id = store.require("index_doc").context("sync once before watching")?;
    let ws = WsTransport::new(&client.base, &device_id, store.setting("private_ca")?.as_deref())?;
    let mut w = Watcher {
        store,
        lock,
        actor: actor(store)?,
        index_id,
        ws,
        live: Live::new(),
        assigned: None,
        out_of_step: BTreeSet::new(),
        seen_upto: 0,
        report: Report::default(),
        limits,
    };
    let mut failures = 0u32;
    loop {
        let error = match w.connect(client, emit) {
            Ok(()) => {
                failures = 0;
                match w.listen(client, emit) {
                    Ok(ended) => {
                        w.report.ended = ended;
                        w.report.connections = w.ws.stats.connections;
                        w.ws.finish();
                        return Ok(w.report);
                    }
                    Err(e) => e,
                }
            }
            Err(e) => {
                failures += 1;
                // Refused at the door (a frozen or lost device, a login that cannot be refreshed):
                // connecting again cannot help.
                let refused = e.downcast_ref::<ServerError>().is_some_and(|s| (400..500).contains(&s.status));
                if refused || failures >= client.attempts.max(1) {
                    return Err(e.context("the watch could not connect"));
                }
                e
            }
        };
        // Whatever failed (a read, a write, a ping), the next try starts on a new connection.
        w.ws.abandon();
        emit(&Event::Disconnected { reason: format!("{error:#}") });
        std::thread::sleep(Duration::from_millis((250u64 << failures.min(6)).min(10_000)));
        if w.limits.until.is_some_and(|t| Instant::now() >= t) {
            w.report.ended = "time";
            w.report.connections = w.ws.stats.connections;
            return Ok(w.report);
        }
    }
}

struct Watcher<'a> {
    store: &'a Store,
    lock: &'a File,
    actor: ActorId,
    index_id: String,
    ws: WsTransport,
    live: Live,
    /// Instruction ids assigned, as the index last said (`None` before the first look).
    assigned: Option<BTreeSet<String>>,
    /// Documents whose edits the server refused: their messages are not taken in until a `handheld
    /// sync` reports the refusal, or the refused edit would go out again with every reply.
    out_of_step: BTreeSet<String>,
    /// Local edits up to this pending id have been sent.
    seen_upto: i64,
    report: Report,
    limits: Limits,
}

impl Watcher<'_> {
    /// Connects and settles the index and every assigned record, so that the server holds a
    /// conversation about each on this connection and sends their changes as they come.
    fn connect(&mut self, client: &mut Client, emit: &mut dyn FnMut(&Event)) -> Result<()> {
        let (store, lock) = (self.store, self.lock);
        locked(lock, || {
            self.live.clear();
            let mut ids = vec![self.index_id.clone()];
            ids.extend(store.records()?.into_iter().map(|d| d.id));
            for id in &ids {
                if let Some(open) = load(store, id, &self.actor)? {
                    self.live.insert(id.clone(), open);
                }
            }
            self.exchange(client, &ids, emit)?;
            self.take_assignments(client, emit)
        })?;
        let records = self.live.len() - 1;
        emit(&Event::Watching { records, connection: self.ws.stats.connections });
        Ok(())
    }

    /// Waits for live messages and local edits until a limit is reached; an error ends the connection.
    fn listen(&mut self, client: &mut Client, emit: &mut dyn FnMut(&Event)) -> Result<&'static str> {
        let mut emit = |event: &Event, report: &mut Report| {
            report.changes += usize::from(event.is_change());
            emit(event);
        };
        loop {
            if self.limits.changes.is_some_and(|n| self.report.changes >= n) {
                return Ok("changes");
            }
            let now = Instant::now();
            let wait = match self.limits.until {
                Some(t) if now >= t => return Ok("time"),
                Some(t) => (t - now).min(TICK),
                None => TICK,
            };
            let mut events = Vec::new();
            match self.ws.next_live(wait)? {
                Some((doc, data)) => self.take_in(client, doc, data, &mut |e| events.push(e.clone()))?,
                None => {
                    self.ws.ping()?;
                    self.send_edits(client, &mut |e| events.push(e.clone()))?;
                }
            }
            for event in &events {
                emit(event, &mut self.report);
            }
        }
    }

    /// A live message: into the store's copy of the document, stored, answered.
    fn take_in(
        &mut self,
        client: &mut Client,
        doc: String,
        data: Vec<u8>,
        emit: &mut dyn FnMut(&Event),
    ) -> Result<()> {
        if self.out_of_step.contains(&doc) || !self.live.contains_key(&doc) {
            return Ok(());
        }
        let (store, lock) = (self.store, self.lock);
        locked(lock, || {
            self.refresh(std::iter::once(doc.clone()))?;
            let result = DocResult { doc: doc.clone(), data: Some(Bytes(data)), error: None, accepted: 0 };
            let answered = plan::absorb(&mut self.live, vec![result]);
            store.save_round(&plan::saves(&mut self.live, &answered.touched), now_ms())?;
            self.refused(answered.refused, emit);
            // A reply may carry edits made here since the last tick: the server stores them as it would
            // in a sync; the next tick acknowledges them.
            self.ws.send_live(&answered.replies)?;
            if answered.changed.is_empty() {
                return Ok(());
            }
            if doc == self.index_id {
                self.take_assignments(client, emit)
            } else {
                emit(&self.changed(&doc)?);
                Ok(())
            }
        })
    }

    /// Sends the edits made here since the last look, and acknowledges what the server stored.
    fn send_edits(&mut self, client: &mut Client, emit: &mut dyn FnMut(&Event)) -> Result<()> {
        let store = self.store;
        if store.last_pending_id()? <= self.seen_upto {
            return Ok(());
        }
        let lock = self.lock;
        locked(lock, || {
            let upto = store.last_pending_id()?;
            let edited: Vec<String> = store
                .pending()?
                .into_iter()
                .map(|(doc, _)| doc)
                .filter(|d| self.live.contains_key(d) && !self.out_of_step.contains(d))
                .collect();
            let changes = self.exchange(client, &edited, emit)?;
            self.seen_upto = upto;
            if changes > 0 {
                emit(&Event::Sent { records: edited.len(), changes });
            }
            Ok(())
        })
    }

    /// Settles `ids` over the connection (under the lock): the store's copies first, every answer
    /// stored, refusals reported, the others' pending edits acknowledged. Answers the changes stored.
    fn exchange(
        &mut self,
        client: &mut Client,
        ids: &[String],
        emit: &mut dyn FnMut(&Event),
    ) -> Result<usize> {
        let store = self.store;
        let upto = store.last_pending_id()?;
        self.refresh(ids.iter().cloned())?;
        let (ws, index_id) = (&mut self.ws, &self.index_id);
        let settled = plan::settle(
            &mut self.live,
            ids,
            |request| ws.send(client, request, index_id),
            |_, saves| store.save_round(saves, now_ms()),
        )?;
        let failed = settled.failed();
        for id in plan::acknowledged(ids, &failed) {
            store.acknowledge(id, upto)?;
        }
        self.refused(settled.refused, emit);
        Ok(settled.accepted)
    }

    /// Reads `ids` and every document with unsent edits again from the store, keeping each one's
    /// conversation state: the store holds at least what the watch holds.
    fn refresh(&mut self, ids: impl Iterator<Item = String>) -> Result<()> {
        let edited = self.store.pending()?.into_iter().map(|(doc, _)| doc);
        for id in ids.chain(edited).collect::<BTreeSet<_>>() {
            let Some((doc, _)) = self.live.get_mut(&id) else { continue };
            if let Some((fresh, _)) = load(self.store, &id, &self.actor)? {
                *doc = fresh;
            }
        }
        Ok(())
    }

    fn refused(&mut self, refused: Vec<plan::Refused>, emit: &mut dyn FnMut(&Event)) {
        for r in refused {
            self.out_of_step.insert(r.doc.clone());
            emit(&Event::Refused { doc: r.doc, code: r.code, message: r.message });
        }
    }

    /// What the index lists now against what it listed: new records tracked and settled, records taken
    /// off marked as such (their unsent work stays, `handheld list --all` shows it).
    fn take_assignments(&mut self, client: &mut Client, emit: &mut dyn FnMut(&Event)) -> Result<()> {
        let store = self.store;
        let Some((Doc::Index(index), _)) = self.live.get(&self.index_id) else {
            bail!("the assignment index is missing locally")
        };
        let assignments = index.read().context("the assignment index")?;
        let now = now_ms();
        let mut records = Vec::new();
        let mut new_ids = Vec::new();
        for (instruction_id, a) in &assignments {
            store.track(&a.record_doc_id, "record", Some(instruction_id), true, now)?;
            records.push(a.record_doc_id.clone());
            if !self.live.contains_key(&a.record_doc_id) {
                if let Some(open) = load(store, &a.record_doc_id, &self.actor)? {
                    self.live.insert(a.record_doc_id.clone(), open);
                }
                new_ids.push(a.record_doc_id.clone());
            }
        }
        store.unassign_others(&records)?;
        let now_assigned: BTreeSet<String> = assignments.keys().cloned().collect();
        if !new_ids.is_empty() {
            self.exchange(client, &new_ids, emit)?;
        }
        // The first look only learns what the sync before the watch already showed.
        if let Some(before) = &self.assigned {
            let added: Vec<String> = now_assigned.difference(before).cloned().collect();
            let removed: Vec<String> = before.difference(&now_assigned).cloned().collect();
            if !added.is_empty() {
                emit(&Event::Assigned { instruction_ids: added });
            }
            if !removed.is_empty() {
                emit(&Event::Unassigned { instruction_ids: removed });
            }
        }
        self.live.retain(|id, _| *id == self.index_id || records.contains(id));
        self.assigned = Some(now_assigned);
        Ok(())
    }

    fn changed(&self, doc: &str) -> Result<Event> {
        let instruction_id = self.store.doc(doc)?.and_then(|d| d.instruction_id);
        let record = match self.live.get(doc) {
            Some((Doc::Record(d), _)) => d.read().ok().map(|r| Summary {
                inspection_no: r.instruction.inspection_no.clone(),
                checks_done: r.checks.values().filter(|c| c.result.is_some()).count(),
                checks_total: r.checks.len(),
                verdict: r.verdict.as_ref().map(|v| v.value.value_str().to_owned()),
                complete: r.completion.as_ref().is_some_and(|c| c.value.complete),
            }),
            _ => None,
        };
        Ok(Event::Changed { doc: doc.to_owned(), instruction_id, record })
    }
}

/// Runs `f` holding the store's lock, so that no edit command writes the store meanwhile.
fn locked<T>(lock: &File, f: impl FnOnce() -> Result<T>) -> Result<T> {
    lock.lock().context("locking the store")?;
    let result = f();
    lock.unlock().context("unlocking the store")?;
    result
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
