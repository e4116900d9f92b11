//! Offline inspection records (flow steps 6–8): the record document created at dispatch, each
//! officer's assignment index, the batch sync engine that validates and merges what handhelds send,
//! and the SQL projection that moves the instruction along.
//!
//! The sync protocol itself (schema, validation rules, sessions) is the `fieldcheck-sync` crate; this
//! module gives it storage, authorization and the workflow around it. Both endpoints (the batch `http`
//! and the WebSocket `ws`) go through the [`engine`]: validation and merge before the writer, then one
//! write transaction per round in which chunks, projection, instruction state and session states commit
//! together before the response leaves, so an acknowledged change is never lost and a failed round
//! leaves nothing behind. [`sync_doc`] is the reference path: the whole message inside the writer, which
//! the engine falls back to when anything moved between its two phases.
//!
//! Every function here answers [`RecordsError`] (`error.rs`, a leaf mapped to HTTP in the crate's
//! `error.rs`) and takes the acting [`Principal`], never the HTTP caller; the device a message came from
//! is an argument of its own (the engine's `sync` answers `WorkflowError`: a round also advances the
//! workflow). Only the endpoints (`http.rs`, `ws.rs`) answer `ApiError`; the admission line's refusal is
//! its own [`admission::Saturated`].

pub mod admission;
pub mod engine;
pub mod error;
pub mod http;
pub mod peers;
pub mod projection;
pub mod store;
pub mod view;
pub mod ws;

pub use store::seals::{SealRow, SealedEvidence, photo_hashes, sealed, sealed_evidence};

use std::collections::BTreeMap;

use fieldcheck_sync::{
    ActorId, Assignment, AssignmentIndex, ConflictField, RecordDoc, RecordError, Refusal, Rules, SyncSession,
    batch::DocError,
    migrate, open_conflicts,
    schema::{
        CheckResult, ChecklistItem, GoodsLine, InstructionPart, Measurement, OfficerId, Review, Stamp,
        Verdict,
    },
};

pub use self::error::RecordsError;
use self::{
    projection::Progress,
    store::{DocKind, DocMeta},
};
use crate::{
    applications::store as applications_store,
    db::{Conn, Tx},
    domain::Principal,
    instructions::{self, Instruction, machine},
    orgs::store as orgs_store,
};

fn internal(context: &str, e: impl std::fmt::Display) -> RecordsError {
    RecordsError::internal(context, e)
}

/// A new document id: 16 random bytes, hex.
fn new_doc_id() -> Result<String, RecordsError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| internal("no randomness", e))?;
    Ok(hex::encode(bytes))
}

/// The officer id written in `by` fields and as `signatures` keys: the username, which the officer
/// knows from logging in and a supervisor reads at a glance.
pub fn officer_id(username: &str) -> Option<OfficerId> {
    OfficerId::parse(username).ok()
}

/// The server-owned part of the record, from the instruction and its application.
fn instruction_part(tx: &Tx<'_>, i: &Instruction) -> Result<InstructionPart, RecordsError> {
    let app = applications_store::get(tx, i.application_id)?
        .ok_or_else(|| internal("instruction part", "application missing"))?;
    // Foreign keys guarantee both rows; a missing one is damage, never a blank name in a regulatory record.
    let enterprise_name = orgs_store::enterprise(tx, i.enterprise_id)?
        .ok_or_else(|| internal("instruction part", "enterprise missing"))?
        .name;
    let site = orgs_store::unit(tx, i.site_id)?
        .map(|u| format!("{} ({})", u.name, u.code))
        .ok_or_else(|| internal("instruction part", "site missing"))?;
    Ok(InstructionPart {
        instruction_id: i.id.to_string(),
        inspection_no: i.inspection_no.clone(),
        enterprise_name,
        goods: app
            .content
            .goods
            .iter()
            .enumerate()
            .map(|(n, g)| GoodsLine {
                line_no: n as u32 + 1,
                hs_code: String::from(g.hs_code.clone()),
                name: g.name.to_string(),
                quantity: g.quantity,
                unit: g.unit.to_string(),
                weight_kg: g.net_weight_kg,
                origin: String::from(g.origin_country.clone()),
            })
            .collect(),
        checklist: i
            .checklist
            .iter()
            .map(|c| ChecklistItem {
                item_id: c.item_id.clone(),
                title: c.title_en.clone(),
                kind: c.kind.clone(),
                unit: c.unit.clone(),
            })
            .collect(),
        site,
        // Kept current by `workflow::booking_changed` (RecordDoc::set_schedule) from here on.
        slot: crate::bookings::confirmed_slot(tx, i.id)?,
        deadline: i.deadline,
        site_position: orgs_store::site_position(tx, i.site_id)?,
    })
}

fn load_record(c: &Conn, id: &str, actor: ActorId) -> Result<RecordDoc, RecordsError> {
    RecordDoc::load(&store::load_bytes(c, id)?, actor).map_err(|e| internal("stored record", e))
}

fn load_index(c: &Conn, id: &str, actor: ActorId) -> Result<AssignmentIndex, RecordsError> {
    AssignmentIndex::load(&store::load_bytes(c, id)?, actor).map_err(|e| internal("stored index", e))
}

/// The officer's assignment index, created (empty) on first need.
pub fn index_for(tx: &Tx<'_>, officer: i64, now: i64) -> Result<String, RecordsError> {
    if let Some(id) = store::index_of(tx, officer)? {
        return Ok(id);
    }
    let mut index =
        AssignmentIndex::create(store::server_actor(tx)?, now).map_err(|e| internal("index", e))?;
    let id = new_doc_id()?;
    store::insert(tx, &id, DocKind::Index, officer, &index.save(), now)?;
    Ok(id)
}

/// Appends what a server-side edit added since `before` (the index after assign/unassign).
fn append_index(
    tx: &Tx<'_>,
    id: &str,
    index: &mut AssignmentIndex,
    before: &[fieldcheck_sync::ChangeHash],
    now: i64,
) -> Result<(), RecordsError> {
    let chunk = index.save_after(before);
    if store::append(tx, id, &chunk, now)? {
        store::compact(tx, id, &index.save(), now)?;
    }
    Ok(())
}

/// The hand-off from dispatch (called by `workflow::assign` inside its transaction): creates the
/// record document on first assignment and puts it in the index of every newly assigned officer;
/// officers dropped by a re-assignment lose it from theirs.
pub fn on_assign(
    tx: &Tx<'_>,
    now: i64,
    i: &Instruction,
    before: &[i64],
    after: &[i64],
) -> Result<(), RecordsError> {
    let actor = store::server_actor(tx)?;
    let officers = officer_ids(tx, after)?;
    let record_id = match store::record_of(tx, i.id)? {
        Some(id) => {
            // The officers who must sign change with the assignment; the record tells their handhelds.
            // The site's position follows the reference data (also for records written before it).
            if before != after {
                let position = orgs_store::site_position(tx, i.site_id)?;
                server_edit(tx, now, i.id, |record| {
                    record.set_officers(&officers, now)?;
                    record.set_site_position(position, now)
                })?;
            }
            id
        }
        None => {
            let part = instruction_part(tx, i)?;
            let mut record = RecordDoc::create(&part, &officers, actor.clone(), now)
                .map_err(|e| internal("record create", e))?;
            let id = new_doc_id()?;
            store::insert(tx, &id, DocKind::Record, i.id, &record.save(), now)?;
            projection::create(tx, i.id, part.checklist.len(), now)?;
            id
        }
    };
    let key = i.id.to_string();
    for officer in after.iter().filter(|o| !before.contains(o)) {
        let index_id = index_for(tx, *officer, now)?;
        let mut index = load_index(tx, &index_id, actor.clone())?;
        let heads = index.heads();
        let assignment = Assignment {
            record_doc_id: record_id.clone(),
            inspection_no: i.inspection_no.clone(),
            site: orgs_store::unit(tx, i.site_id)?
                .ok_or_else(|| internal("assignment", "site missing"))?
                .code,
            deadline: i.deadline,
            assigned_at: now,
        };
        index.assign(&key, &assignment, now).map_err(|e| internal("index assign", e))?;
        append_index(tx, &index_id, &mut index, &heads, now)?;
    }
    let dropped: Vec<i64> = before.iter().filter(|o| !after.contains(o)).copied().collect();
    remove_from_indexes(tx, now, i.id, &dropped)
}

/// Takes the instruction out of these officers' assignment indexes: their handhelds stop listing it on
/// the next sync (a re-assignment, or a cancelled instruction). The record itself stays.
pub fn remove_from_indexes(
    tx: &Tx<'_>,
    now: i64,
    instruction_id: i64,
    officers: &[i64],
) -> Result<(), RecordsError> {
    let actor = store::server_actor(tx)?;
    let key = instruction_id.to_string();
    for officer in officers {
        let Some(index_id) = store::index_of(tx, *officer)? else { continue };
        let mut index = load_index(tx, &index_id, actor.clone())?;
        let heads = index.heads();
        if index.unassign(&key, now).map_err(|e| internal("index unassign", e))? {
            append_index(tx, &index_id, &mut index, &heads, now)?;
        }
    }
    Ok(())
}

/// Puts a reminder about the instruction into the assignment index of each officer assigned to it
/// (their handhelds read it on the next sync; officers work from the index, not from a live stream).
/// Answers how many indexes changed.
pub fn remind_officers(
    tx: &Tx<'_>,
    now: i64,
    instruction_id: i64,
    reminder: &fieldcheck_sync::IndexReminder,
) -> Result<usize, RecordsError> {
    let actor = store::server_actor(tx)?;
    let key = instruction_id.to_string();
    let officers = store::officers_by_id(tx, instruction_id)?;
    for officer in &officers {
        let index_id = index_for(tx, *officer, now)?;
        let mut index = load_index(tx, &index_id, actor.clone())?;
        let heads = index.heads();
        index.remind(&key, reminder, now).map_err(|e| internal("index remind", e))?;
        append_index(tx, &index_id, &mut index, &heads, now)?;
    }
    Ok(officers.len())
}

/// The officer ids (usernames) of these users, in the given order.
fn officer_ids(c: &Conn, users: &[i64]) -> Result<Vec<OfficerId>, RecordsError> {
    store::usernames(c, users)?
        .into_iter()
        .map(|username| {
            officer_id(&username).ok_or_else(|| internal("officer id", format!("username {username:?}")))
        })
        .collect()
}

/// The users assigned to an instruction, in assignment order.
fn assigned_users(c: &Conn, instruction_id: i64) -> Result<Vec<i64>, RecordsError> {
    Ok(store::officers_in_order(c, instruction_id)?)
}

/// Brings every record document written by an older release to the current record schema (one server
/// change each, projected again), at server start. Answers how many were upgraded.
pub fn upgrade_documents(tx: &Tx<'_>, now: i64) -> Result<usize, RecordsError> {
    let stale = store::stale_records(tx)?;
    let actor = if stale.is_empty() { return Ok(0) } else { store::server_actor(tx)? };
    for (id, instruction_id) in &stale {
        let mut record = load_record(tx, id, actor.clone())?;
        let heads = record.heads();
        let officers = officer_ids(tx, &assigned_users(tx, *instruction_id)?)?;
        if migrate::upgrade(&mut record, &officers, now).map_err(|e| internal("record upgrade", e))?
            == migrate::Upgrade::FromV1
        {
            persist(tx, id, &mut record, &heads, now)?;
            projection::project(tx, now, *instruction_id, &record)?;
        }
        store::set_schema(tx, id)?;
    }
    Ok(stale.len())
}

/// Appends what the record gained since `heads` (compacting when the chunks grow long).
fn persist(
    tx: &Tx<'_>,
    id: &str,
    record: &mut RecordDoc,
    heads: &[fieldcheck_sync::ChangeHash],
    now: i64,
) -> Result<(), RecordsError> {
    let chunk = record.save_after(heads);
    if store::append(tx, id, &chunk, now)? {
        store::compact(tx, id, &record.save(), now)?;
    }
    Ok(())
}

/// A server-side edit of an instruction's record (a review, a resolution, a new assignment): loaded
/// with the server's actor, edited by `f`, appended and projected in `tx`. Handhelds receive it on
/// their next sync like any other change. Answers the record's progress after the edit.
pub fn server_edit(
    tx: &Tx<'_>,
    now: i64,
    instruction_id: i64,
    f: impl FnOnce(&mut RecordDoc) -> Result<(), RecordError>,
) -> Result<Progress, RecordsError> {
    let id =
        store::record_of(tx, instruction_id)?.ok_or_else(|| internal("server edit", "no record document"))?;
    let mut record = load_record(tx, &id, store::server_actor(tx)?)?;
    let heads = record.heads();
    f(&mut record).map_err(|e| match e {
        RecordError::Schema(v) => RecordsError::Schema(v),
        e => internal("server edit", e),
    })?;
    persist(tx, &id, &mut record, &heads, now)?;
    projection::project(tx, now, instruction_id, &record)
}

/// Writes a supervisor's choice for the open conflict at `path` (see `workflow::resolve`). The value
/// must fit the field: a check result, a measurement in the item's unit, or a verdict (a disposal
/// conflict needs a non-conforming verdict, which carries one).
pub fn resolve_conflict(
    tx: &Tx<'_>,
    now: i64,
    instruction_id: i64,
    path: &str,
    value: &serde_json::Value,
    stamp: &Stamp,
) -> Result<Progress, RecordsError> {
    let id = store::record_of(tx, instruction_id)?.ok_or(RecordsError::NoRecordYet)?;
    let record = load_record(tx, &id, store::server_actor(tx)?)?;
    let open = open_conflicts(&record).map_err(|e| internal("conflicts", e))?;
    let Some(field) = open.iter().map(|c| &c.field).find(|f| f.path() == path).cloned() else {
        let open = open.iter().map(|c| c.field.path()).collect();
        return Err(RecordsError::NoSuchConflict { path: path.to_owned(), open });
    };
    let unfit = |expected: &'static str| RecordsError::UnfitValue { path: path.to_owned(), expected };
    let resolution = match &field {
        ConflictField::CheckResult { item_id } => {
            let result: CheckResult = serde_json::from_value(value.clone())
                .map_err(|_| unfit("a check result: pass, fail or not_applicable"))?;
            Resolution::Check(item_id.clone(), result)
        }
        ConflictField::Measurement { item_id } => {
            let m: Measurement = serde_json::from_value(value.clone())
                .ok()
                .filter(|m: &Measurement| m.value.is_finite())
                .ok_or_else(|| unfit(r#"a measurement: {"value": number, "unit": "..."}"#))?;
            Resolution::Measure(item_id.clone(), m)
        }
        ConflictField::VerdictValue => {
            Resolution::Verdict(serde_json::from_value(value.clone()).map_err(|_| {
                unfit(
                    r#"a verdict: {"value": "conforming"} or {"value": "non_conforming", "disposal": "..."}"#,
                )
            })?)
        }
        ConflictField::VerdictDisposal => match serde_json::from_value::<Verdict>(value.clone()) {
            Ok(v @ Verdict::NonConforming { .. }) => Resolution::Verdict(v),
            _ => {
                return Err(unfit(
                    r#"a non-conforming verdict: {"value": "non_conforming", "disposal": "..."}"#,
                ));
            }
        },
    };
    server_edit(tx, now, instruction_id, |record| match &resolution {
        Resolution::Check(item, result) => record.set_check_result(item, *result, stamp),
        Resolution::Measure(item, m) => record.set_measurement(item, Some(m), stamp),
        Resolution::Verdict(v) => record.set_verdict(*v, stamp),
    })
}

/// A supervisor's choice for one conflicted field.
enum Resolution {
    Check(String, CheckResult),
    Measure(String, Measurement),
    Verdict(Verdict),
}

/// The devices whose changes a record may hold: actor → officer, for every device of every officer
/// assigned to the instruction. Which of them may add changes in a given message is narrower: only
/// the device that sends it ([`Rules::Record`]'s `sender`), so a frozen or lost device's changes,
/// which it can no longer send itself, cannot be relayed by a colleague either.
pub fn bound_officers(c: &Conn, instruction_id: i64) -> Result<BTreeMap<ActorId, OfficerId>, RecordsError> {
    // Every actor a device ever held: changes by a retired one are still in the record's history.
    Ok(store::bound_actors(c, instruction_id)?
        .into_iter()
        .filter_map(|(actor, username)| Some((actor.parse::<ActorId>().ok()?, officer_id(&username)?)))
        .collect())
}

/// The two actors a round deals with.
struct Actors<'a> {
    /// The server's own: it loads the documents and writes their server-owned parts.
    server: &'a ActorId,
    /// The sending device's: the only one whose new changes the round may accept.
    sender: &'a ActorId,
}

/// The automerge actor the sending device was registered with: the only actor whose new changes
/// its messages may carry.
fn sender_actor(c: &Conn, device_id: &str) -> Result<ActorId, RecordsError> {
    let device =
        crate::devices::get(c, device_id)?.ok_or_else(|| internal("sync", "the caller's device is gone"))?;
    device.actor_id.parse().map_err(|e| internal("stored device actor", e))
}

fn doc_error(code: &str, message: impl Into<String>) -> DocError {
    DocError { code: code.to_owned(), message: message.into() }
}

fn refused(refusal: &Refusal) -> DocError {
    doc_error(refusal.rule(), refusal.to_string())
}

/// What an accepted message did to its document.
struct Synced {
    /// The reply for the device, if it lacks anything.
    reply: Option<Vec<u8>>,
    /// How many of its changes were accepted and stored.
    accepted: usize,
    /// The record's instruction and what the record now means for it, when a record changed.
    progress: Option<(i64, Progress)>,
}

/// How one message about one document ended; an infrastructure failure, which aborts the whole round,
/// is the `Err` around it.
enum Handled {
    Synced(Synced),
    /// Refused on its own: the device reads why, the round's other messages go on.
    Refused(DocError),
}

/// How a record message ended short of an infrastructure failure.
enum RecordStep {
    Merged(Synced),
    /// Refused by a validation rule (`refused_for` tells the device why).
    Refused(Refusal),
    /// The caller is not (or no longer) assigned to the record's instruction.
    NotAssigned,
}

/// A refusal as the device reads it. One case is told apart from the rule that caught it: changes by
/// an actor this very device held before it was registered again (`POST /devices/{id}/claim`) come
/// from a second, retired copy of the device's store, whose edits can never be accepted.
fn refused_for(c: &Conn, device_id: &str, refusal: &Refusal) -> Result<DocError, RecordsError> {
    if let Refusal::ForeignActor { actor, .. } = refusal
        && let Some(retired_at) = crate::devices::retired_at(c, device_id, actor)?
    {
        return Ok(doc_error(
            "retired_actor",
            format!(
                "this copy of device {device_id} writes as actor {actor}, retired when the device was \
                 registered again (at {} ms); only the newest registration may sync: its edits were not \
                 stored, redo them on the current copy",
                retired_at
            ),
        ));
    }
    Ok(refused(refusal))
}

/// May the principal sync this document at all? Its own index, or the record of an instruction it is
/// assigned to. The engine checks again per message; this answers a WebSocket `request` up front.
pub fn may_sync(c: &Conn, principal: &Principal, meta: &DocMeta) -> Result<bool, RecordsError> {
    Ok(match meta.kind {
        DocKind::Index => meta.officer_id == Some(principal.user_id),
        DocKind::Record => match meta.instruction_id {
            Some(instruction_id) => is_assigned(c, instruction_id, principal.user_id)?,
            None => false,
        },
    })
}

fn is_assigned(c: &Conn, instruction_id: i64, officer: i64) -> Result<bool, RecordsError> {
    Ok(crate::db::scope::is_assigned(c, instruction_id, officer)?)
}

/// The session a device last left with a document: only the heads both sides share. A corrupt stored
/// state only costs a full re-sync, never a refusal; it is logged, naming the device and the document.
fn stored_session(c: &Conn, device_id: &str, doc_id: &str) -> Result<SyncSession, RecordsError> {
    let Some(state) = store::sync_state(c, device_id, doc_id)? else { return Ok(SyncSession::default()) };
    Ok(SyncSession::resume(&state).unwrap_or_else(|e| {
        tracing::warn!(device_id, doc_id, error = ?e, "stored sync state is damaged; this sync starts afresh");
        SyncSession::default()
    }))
}

/// One sync message about one document from `principal`'s device `device_id`, inside the writer: authorize,
/// validate and merge, persist, store the session's shared heads. The reference path the engine falls
/// back to when anything moved between its two phases.
#[allow(clippy::too_many_arguments)]
fn sync_doc(
    tx: &Tx<'_>,
    now: i64,
    principal: &Principal,
    device_id: &str,
    actors: &Actors<'_>,
    meta: &DocMeta,
    session: &mut SyncSession,
    data: &[u8],
) -> Result<Handled, RecordsError> {
    let actor = actors.server;
    let received: Result<Synced, Refusal> = match meta.kind {
        DocKind::Index => {
            if meta.officer_id != Some(principal.user_id) {
                return Ok(Handled::Refused(doc_error(
                    "not_assigned",
                    "this is another officer's assignment index",
                )));
            }
            let mut index = load_index(tx, &meta.id, actor.clone())?;
            // Read-only: an accepted message never adds changes, so there is nothing to store.
            session.receive(&mut index, data, &Rules::ReadOnly).map(|r| Synced {
                reply: r.reply,
                accepted: 0,
                progress: None,
            })
        }
        DocKind::Record => match sync_record(tx, now, principal, actors, meta, session, data)? {
            RecordStep::Merged(synced) => Ok(synced),
            RecordStep::Refused(refusal) => Err(refusal),
            RecordStep::NotAssigned => {
                return Ok(Handled::Refused(doc_error(
                    "not_assigned",
                    "you are not assigned to this record's instruction",
                )));
            }
        },
    };
    match received {
        Err(refusal) => Ok(Handled::Refused(refused_for(tx, device_id, &refusal)?)),
        Ok(synced) => {
            // A message that brings nothing new (the usual "I have these heads" of a settled
            // conversation) leaves the stored shared heads as they are: no row is rewritten for it.
            let state = session.persist();
            if store::sync_state(tx, device_id, &meta.id)?.as_deref() != Some(state.as_slice()) {
                store::put_sync_state(tx, device_id, &meta.id, &state, now)?;
            }
            Ok(Handled::Synced(synced))
        }
    }
}

/// One message for a record: authorize, validate and merge, persist the new chunk, project.
fn sync_record(
    tx: &Tx<'_>,
    now: i64,
    principal: &Principal,
    actors: &Actors<'_>,
    meta: &DocMeta,
    session: &mut SyncSession,
    data: &[u8],
) -> Result<RecordStep, RecordsError> {
    let instruction_id = meta.instruction_id.ok_or_else(|| internal("record", "no instruction"))?;
    if !is_assigned(tx, instruction_id, principal.user_id)? {
        return Ok(RecordStep::NotAssigned);
    }
    let instruction =
        instructions::get(tx, instruction_id)?.ok_or_else(|| internal("record", "no instruction"))?;
    let rules = Rules::Record {
        officers: bound_officers(tx, instruction_id)?,
        sender: actors.sender.clone(),
        sealed: machine::is_sealed(instruction.state),
    };
    let mut record = load_record(tx, &meta.id, actors.server.clone())?;
    let heads = record.heads();
    let received = match session.receive(&mut record, data, &rules) {
        Ok(r) => r,
        Err(refusal) => return Ok(RecordStep::Refused(refusal)),
    };
    let accepted = received.accepted.changes;
    let mut progress = None;
    if accepted > 0 {
        // Persist before replying: the reply acknowledges these changes.
        persist(tx, &meta.id, &mut record, &heads, now)?;
        progress = Some((instruction.id, projection::project(tx, now, instruction.id, &record)?));
    }
    Ok(RecordStep::Merged(Synced { reply: received.reply, accepted, progress }))
}

/// What approval stores of a record: its heads, the digest of its content, and the verdict.
#[derive(Debug, Clone)]
pub struct Seal {
    /// Hex change hashes: the exact document state that was approved.
    pub heads: Vec<String>,
    /// SHA-256 (hex) of the canonical content: checks, measurements, samples, photos and verdict.
    pub digest: String,
    pub verdict: Option<Verdict>,
}

/// Stores the record's current heads and content digest as the approved evidence.
pub fn seal(tx: &Tx<'_>, now: i64, by: i64, instruction_id: i64) -> Result<Seal, RecordsError> {
    let id = store::record_of(tx, instruction_id)?.ok_or_else(|| internal("seal", "no record document"))?;
    let mut record = load_record(tx, &id, store::server_actor(tx)?)?;
    let read = record.read().map_err(|e| internal("seal", e))?;
    let seal = Seal {
        heads: record.heads().iter().map(|h| h.to_string()).collect(),
        digest: read.content_digest(),
        verdict: read.verdict.map(|v| v.value),
    };
    let disposal = match seal.verdict {
        Some(Verdict::NonConforming { disposal }) => Some(disposal.as_str()),
        _ => None,
    };
    let heads = serde_json::to_string(&seal.heads).map_err(anyhow::Error::from)?;
    let verdict = seal.verdict.map(|v| v.value_str());
    store::seals::insert(tx, instruction_id, &heads, &seal.digest, verdict, disposal, by, now)?;
    Ok(seal)
}

/// Writes a supervisor's review into the record as a server change, which officers' handhelds
/// receive on their next sync like any other change.
pub fn write_review(tx: &Tx<'_>, now: i64, instruction_id: i64, review: &Review) -> Result<(), RecordsError> {
    server_edit(tx, now, instruction_id, |record| record.set_review(review, now)).map(|_| ())
}
