//! The `handheld` reference client: what an officer's device does, as a command line. Documents live
//! in a local SQLite store ([`store`]); edits are the typed `RecordDoc` operations of the protocol crate
//! (`fieldcheck-sync`), committed offline; [`sync`] carries them to the server over the batch endpoint
//! ([`client`]) or automerge-repo's WebSocket protocol ([`transport::ws`]) — the assignment index first,
//! then every assigned record — and brings back colleagues' work. The server never links this crate: its HTTP client, CLI and local store stay on the device.
//!
//! # Layout
//!
//! - this file: register a device, load local documents, and the sync loop that drives the plan.
//! - [`plan`]: what a sync round sends and what it does with the answers, without I/O (unit-tested).
//! - [`client`]: HTTP to the server with retries, token refresh and resumable photo uploads; the batch
//!   transport.
//! - [`transport`]: the choice of transport, and [`transport::ws`], the WebSocket one.
//! - [`store`]: the local SQLite file: settings, documents with their sync states, pending edits,
//!   the photo queue.
//! - [`watch`]: `handheld watch`, the WebSocket sync kept open for live changes.
//! - [`cli`]: the `handheld` command line.
//!
//! Round trips: a sync sends one request per round per [`DOCS_PER_REQUEST`] documents. The opening
//! message of every document carries its changes since the heads last shared with the server
//! (`SyncSession::generate_eager`), and the server answers with its own in the same response, so a
//! sync of `n` records already known locally is one round — the index and the records together, in
//! `ceil((n + 1) / 250)` requests. Records the index newly lists take a second exchange (2–3 rounds
//! from empty), and a server that lost the shared state answers with a reset, after which automerge's
//! multi-round protocol carries on; the loop stops at [`MAX_ROUNDS`] rounds whatever happens.

pub mod cli;
pub mod client;
pub mod plan;
pub mod store;
pub mod transport;
pub mod watch;

use std::collections::BTreeSet;

use anyhow::{Context, Result, bail};
use automerge::ActorId;

use fieldcheck_sync::{AssignmentIndex, RecordDoc, Refusal, Rules, SyncSession, session::Received};

use self::{
    client::Client,
    store::Store,
    transport::{Kind, Transport},
};

/// Documents per HTTP request (the server takes up to 500).
pub const DOCS_PER_REQUEST: usize = 250;
/// A sync that has not settled after this many rounds stops and reports it.
pub const MAX_ROUNDS: usize = 12;

/// A local document of either kind.
pub enum Doc {
    Record(RecordDoc),
    Index(AssignmentIndex),
}

impl Doc {
    fn receive(&mut self, session: &mut SyncSession, message: &[u8]) -> Result<Received, Refusal> {
        match self {
            Doc::Record(d) => session.receive(d, message, &Rules::TrustServer),
            Doc::Index(d) => session.receive(d, message, &Rules::TrustServer),
        }
    }

    /// The opening message: our changes since the shared heads, so that one round usually settles.
    fn generate_eager(&mut self, session: &mut SyncSession) -> Option<Vec<u8>> {
        match self {
            Doc::Record(d) => session.generate_eager(d),
            Doc::Index(d) => session.generate_eager(d),
        }
    }

    /// The server's last message showed it at our heads: nothing left to say.
    fn settled(&mut self, session: &SyncSession) -> bool {
        match self {
            Doc::Record(d) => session.settled(d),
            Doc::Index(d) => session.settled(d),
        }
    }

    fn save(&mut self) -> Vec<u8> {
        match self {
            Doc::Record(d) => d.save(),
            Doc::Index(d) => d.save(),
        }
    }
}

pub fn actor(store: &Store) -> Result<ActorId> {
    store.require("actor_id")?.parse::<ActorId>().map_err(|e| anyhow::anyhow!("stored actor id: {e}"))
}

/// Loads a local document (an empty replica if it never synced).
pub fn load(store: &Store, id: &str, actor: &ActorId) -> Result<Option<(Doc, SyncSession)>> {
    let Some(local) = store.doc(id)? else { return Ok(None) };
    let doc = match (local.kind.as_str(), &local.data) {
        ("index", Some(data)) => Doc::Index(AssignmentIndex::load(data, actor.clone())?),
        ("index", None) => Doc::Index(AssignmentIndex::replica(actor.clone())),
        (_, Some(data)) => Doc::Record(RecordDoc::load(data, actor.clone())?),
        (_, None) => Doc::Record(RecordDoc::replica(actor.clone())),
    };
    // A state that cannot be read only costs a full exchange.
    let session = local.sync_state.as_deref().and_then(|s| SyncSession::resume(s).ok()).unwrap_or_default();
    Ok(Some((doc, session)))
}

/// Binds this store to a device of `username`: a new one named `name`, or the registered `device_id`
/// claimed for this store (a new actor; any other copy of the device is retired); then logs in with it. Answers `(device id, actor id)`.
pub fn register(
    store: &Store,
    client: &mut Client,
    username: &str,
    password: &str,
    name: &str,
    device_id: Option<&str>,
    discard: bool,
) -> Result<(String, String)> {
    client.login(username, password, None)?;
    // A store belongs to one officer: a new officer starts from an empty store, and the previous one's
    // unsynced work is never dropped silently.
    if let Some(previous) = store.setting("username")?.filter(|p| p != username) {
        let edits: i64 = store.pending()?.iter().map(|(_, n)| n).sum();
        let photos = store.pending_photos()?.len();
        if (edits > 0 || photos > 0) && !discard {
            bail!(
                "this store belongs to {previous} and holds {edits} unsynced edit(s) and {photos} photo(s) not \
                 uploaded: run `handheld sync` as {previous} first, or register again with --discard to drop them"
            );
        }
        store.clear_officer()?;
    }
    let device: serde_json::Value = match device_id {
        // Claiming gives this store a new actor and retires the one any other copy of the device holds:
        // two stores writing as one actor would number different changes alike, which no sync can merge.
        Some(id) => client
            .post_json(&format!("/api/v1/devices/{id}/claim"), &serde_json::json!({}))
            .with_context(|| format!("device {id} is not an active device of {username}"))?,
        None => client.post_json("/api/v1/devices", &serde_json::json!({"name": name}))?,
    };
    let device_id = device["id"].as_str().context("device id")?.to_owned();
    let actor_id = device["actor_id"].as_str().context("actor id")?.to_owned();
    actor_id.parse::<ActorId>().map_err(|e| anyhow::anyhow!("actor id: {e}"))?;
    client.login(username, password, Some(&device_id))?;
    store.set("server", &client.base)?;
    store.set("username", username)?;
    store.set("device_id", &device_id)?;
    store.set("actor_id", &actor_id)?;
    cli::keep_tokens(store, client)?;
    Ok((device_id, actor_id))
}

/// What a sync did.
#[derive(Debug, Default, serde::Serialize)]
pub struct SyncReport {
    /// Which way the documents travelled (photos always go over HTTP).
    pub transport: Kind,
    pub rounds: usize,
    pub requests: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Changes of ours the server accepted and stored.
    pub accepted: usize,
    pub records: usize,
    /// Documents the server refused, with the rule: `(doc, code, message)`.
    pub errors: Vec<(String, String, String)>,
    /// Photos whose bytes reached the photo store in this sync.
    pub photos_uploaded: usize,
    /// Photos the server refused for good: `(sha256, code, message)`.
    pub photos_refused: Vec<(String, String, String)>,
    /// The server's reminders in the assignment index, by instruction id (a deadline near).
    pub reminders: std::collections::BTreeMap<String, fieldcheck_sync::IndexReminder>,
    /// Work kept on this device that this sync could not send: its instruction was cancelled or
    /// reassigned meanwhile. Never dropped; `list --all` still shows it.
    pub stranded: Vec<Stranded>,
    /// What the WebSocket transport did (connections, frames), when it was used.
    pub ws: Option<transport::ws::Stats>,
}

/// Edits and photos of a record no longer assigned to this officer, kept here unsent.
#[derive(Debug, serde::Serialize)]
pub struct Stranded {
    pub instruction_id: Option<String>,
    pub inspection_no: Option<String>,
    pub doc: String,
    pub edits: i64,
    pub photos: i64,
    /// `cancelled` when the server says the instruction was cancelled; otherwise `unassigned` (reassigned
    /// to another officer, or the server could not be asked).
    pub reason: &'static str,
}

/// The stranded records' work, with why: the server is asked for each instruction's state (an officer
/// may still read an instruction cancelled while assigned to them; a reassigned one answers 404).
fn stranded(store: &Store, client: &mut Client, actor: &ActorId) -> Result<Vec<Stranded>> {
    let mut out = Vec::new();
    for (doc, instruction_id, edits, photos) in store.stranded()? {
        let state = instruction_id
            .as_deref()
            .and_then(|id| client.get_json::<serde_json::Value>(&format!("/api/v1/instructions/{id}")).ok());
        let cancelled = state.as_ref().is_some_and(|s| s["state"] == "cancelled");
        let inspection_no = match load(store, &doc, actor)? {
            Some((Doc::Record(d), _)) => d.read().ok().map(|r| r.instruction.inspection_no),
            _ => None,
        };
        out.push(Stranded {
            instruction_id,
            inspection_no,
            doc,
            edits,
            photos,
            reason: if cancelled { "cancelled" } else { "unassigned" },
        });
    }
    Ok(out)
}

/// Exchanges messages for `ids` until neither side has anything to say ([`plan::settle`]). Every
/// request's results are stored (documents and sync states) before the next request goes out.
/// Answers the documents refused.
fn exchange(
    store: &Store,
    client: &mut Client,
    transport: &mut Transport,
    index_doc: &str,
    ids: &[String],
    report: &mut SyncReport,
    now: i64,
) -> Result<Vec<plan::Refused>> {
    let actor = actor(store)?;
    let mut live = plan::Live::new();
    for id in ids {
        if let Some(open) = load(store, id, &actor)? {
            live.insert(id.clone(), open);
        }
    }
    let settled = plan::settle(
        &mut live,
        ids,
        |request| transport.send(client, request, index_doc),
        |response, saves| {
            store.set("index_doc", &response.index_doc)?;
            store.save_round(saves, now)
        },
    )?;
    report.rounds += settled.rounds;
    report.accepted += settled.accepted;
    Ok(settled.refused)
}

/// Uploads the queued photos after the documents that reference them. A network failure stops the sync with
/// an error and leaves the rest queued: the next sync resumes each upload at the server's offset.
fn upload_photos(store: &Store, client: &mut Client, report: &mut SyncReport, now: i64) -> Result<()> {
    for (sha, path, instruction) in store.uploadable_photos()? {
        let instruction_id: i64 =
            instruction.parse().with_context(|| format!("instruction id {instruction}"))?;
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                // The file was moved or deleted on the device: nothing to send, and retrying cannot help.
                store.photo_refused(&sha, &format!("cannot read {path}: {e}"))?;
                report.photos_refused.push((sha, "unreadable_file".into(), e.to_string()));
                continue;
            }
        };
        let mut shown = Progress::new(&sha, bytes.len());
        let outcome = client.upload_photo(&sha, instruction_id, &bytes, &mut |offset| shown.at(offset))?;
        shown.done();
        match outcome {
            client::Upload::Stored => {
                store.photo_uploaded(&sha, now)?;
                report.photos_uploaded += 1;
            }
            client::Upload::Refused(e) => {
                store.photo_refused(&sha, &format!("{}: {}", e.code, e.message))?;
                report.photos_refused.push((sha, e.code, e.message));
            }
        }
    }
    Ok(())
}

/// What an officer sees while a photo goes up a slow link: on a terminal, one line rewritten per chunk
/// (bytes and rate); elsewhere (scripts, logs) one line per photo once it is sent.
struct Progress {
    label: String,
    total: usize,
    started: std::time::Instant,
    first: Option<usize>,
    last: usize,
    terminal: bool,
}

impl Progress {
    fn new(sha: &str, total: usize) -> Self {
        use std::io::IsTerminal;
        Progress {
            label: sha.chars().take(12).collect(),
            total,
            started: std::time::Instant::now(),
            first: None,
            last: 0,
            terminal: std::io::stderr().is_terminal(),
        }
    }

    fn at(&mut self, offset: usize) {
        // A resumed upload starts at the server's offset: the rate counts only what this run sent.
        self.first.get_or_insert(offset);
        self.last = offset;
        if self.terminal && offset > self.first.unwrap_or(0) {
            eprint!(
                "\rphoto {}: {} of {} ({}/s)   ",
                self.label,
                size(offset),
                size(self.total),
                self.rate()
            );
        }
    }

    fn rate(&self) -> String {
        let sent = self.last - self.first.unwrap_or(0);
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        size((sent as f64 / secs) as usize)
    }

    fn done(&self) {
        if self.last > self.first.unwrap_or(self.last) {
            let end = if self.terminal { "\r" } else { "" };
            eprintln!(
                "{end}photo {}: sent {} of {} in {:.1} s ({}/s)   ",
                self.label,
                size(self.last - self.first.unwrap_or(0)),
                size(self.total),
                self.started.elapsed().as_secs_f64(),
                self.rate()
            );
        }
    }
}

/// Bytes in the unit a person reads at a glance.
fn size(bytes: usize) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / f64::from(1 << 20)),
        b if b >= 1 << 10 => format!("{:.0} KiB", b as f64 / f64::from(1 << 10)),
        b => format!("{b} B"),
    }
}

/// Tells the server what this device still holds unsent after the sync (edits not acknowledged, photos not
/// uploaded), so supervisors see it (issue 13): an empty batch carrying only `pending`, sent when the
/// counts differ from the last ones the server acknowledged. A server too old for the field refuses the
/// batch; that costs the report, never the sync.
fn report_pending(store: &Store, client: &mut Client, transport: &mut Transport) -> Result<()> {
    let changes: i64 = store.pending()?.iter().map(|(_, n)| n).sum();
    let photos = store.pending_photos()?.len();
    let pending = fieldcheck_sync::batch::Pending {
        changes: u32::try_from(changes).unwrap_or(u32::MAX),
        photos: u32::try_from(photos).unwrap_or(u32::MAX),
    };
    let said = format!("{} {}", pending.changes, pending.photos);
    if store.setting("reported_pending")?.as_deref() == Some(said.as_str()) {
        return Ok(());
    }
    let request = fieldcheck_sync::batch::SyncRequest {
        v: fieldcheck_sync::batch::VERSION,
        messages: Vec::new(),
        pending: Some(pending),
    };
    // Each transport says it its own way: an empty batch, or a `join` carrying the counts.
    let said_it = match transport {
        Transport::Batch => client.sync(&request).map(|_| ()),
        Transport::Ws(ws) => ws.report_pending(client, pending),
    };
    match said_it {
        Ok(_) => store.set("reported_pending", &said),
        Err(e) => {
            eprintln!("warning: could not tell the server what is still pending here: {e:#}");
            Ok(())
        }
    }
}

/// A full sync over `kind`: the assignment index, then every record it lists, then the queued photos
/// (over HTTP whatever the transport). Nothing stored depends on the transport: the next sync may use
/// the other one.
pub fn sync(store: &Store, client: &mut Client, kind: Kind, now: i64) -> Result<SyncReport> {
    let device_id = store.require("device_id")?;
    let mut transport = Transport::open(kind, client, &device_id, store.setting("private_ca")?.as_deref())?;
    let result = sync_over(store, client, &mut transport, now);
    if let Transport::Ws(ws) = &mut transport {
        ws.finish();
    }
    let mut report = result?;
    if let Transport::Ws(ws) = &transport {
        report.ws = Some(ws.stats);
        report.bytes_sent += ws.stats.bytes_sent;
        report.bytes_received += ws.stats.bytes_received;
    }
    Ok(report)
}

fn sync_over(store: &Store, client: &mut Client, transport: &mut Transport, now: i64) -> Result<SyncReport> {
    let mut report = SyncReport { transport: transport.kind(), ..SyncReport::default() };
    let acknowledged_upto = store.last_pending_id()?;
    let index_id = match store.setting("index_doc")? {
        Some(id) => id,
        None => {
            let answer: serde_json::Value = client.get_json("/api/v1/sync/index")?;
            answer["index_doc"].as_str().context("the server named no index document")?.to_owned()
        }
    };
    store.track(&index_id, "index", None, true, now)?;
    // The index and every record already known go out together: one round when nothing is new.
    let known: Vec<String> = store.records()?.into_iter().map(|d| d.id).collect();
    let first: Vec<String> = std::iter::once(index_id.clone()).chain(known.iter().cloned()).collect();
    let mut refused = exchange(store, client, transport, &index_id, &first, &mut report, now)?;

    let actor = actor(store)?;
    let assignments = match load(store, &index_id, &actor)? {
        Some((Doc::Index(index), _)) => {
            report.reminders = index.reminders().context("the index's reminders")?;
            index.read().context("the assignment index did not arrive")?
        }
        _ => bail!("the assignment index is missing locally"),
    };
    let mut ids = Vec::new();
    for (instruction_id, assignment) in &assignments {
        store.track(&assignment.record_doc_id, "record", Some(instruction_id), true, now)?;
        ids.push(assignment.record_doc_id.clone());
    }
    store.unassign_others(&ids)?;
    // A record taken off this officer since the last sync (reassigned, or its instruction cancelled) went
    // out with the first request and was refused (`not_assigned`, or the sealed record's rule): expected,
    // not a refusal to report. Its edits stay pending here and `stranded` below reports them, with why.
    refused.retain(|r| ids.contains(&r.doc) || r.doc == index_id);
    let new: Vec<String> = ids.iter().filter(|id| !known.contains(id)).cloned().collect();
    if !new.is_empty() {
        refused.extend(exchange(store, client, transport, &index_id, &new, &mut report, now)?);
    }
    let failed: BTreeSet<String> = refused.iter().map(|r| r.doc.clone()).collect();
    report.errors.extend(refused.into_iter().map(|r| (r.doc, r.code, r.message)));

    for id in plan::acknowledged(&ids, &failed) {
        store.acknowledge(id, acknowledged_upto)?;
    }
    upload_photos(store, client, &mut report, now)?;
    report.stranded = stranded(store, client, &actor)?;
    report_pending(store, client, transport)?;
    store.set("last_sync_at", &now.to_string())?;
    report.records = ids.len();
    report.requests = client.requests;
    report.bytes_sent = client.bytes_sent;
    report.bytes_received = client.bytes_received;
    Ok(report)
}
