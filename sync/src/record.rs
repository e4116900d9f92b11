//! `RecordDoc`: one instruction's inspection record as an automerge document, with typed officer
//! operations and a typed read-back.

use std::collections::{BTreeMap, BTreeSet};

use automerge::{
    ActorId, AutoCommit, AutomergeError, ChangeHash, ObjId, ObjType, ROOT, ReadDoc,
    transaction::{CommitOptions, Transactable},
};

use crate::json;
use crate::schema::{
    self, CheckResult, InstructionPart, MAX_NOTE_ENTRIES, MAX_OFFICERS, MAX_PHOTOS, MAX_SAMPLES, Measurement,
    NoteId, OFFICER_CONTAINERS, OfficerId, PhotoHash, PhotoRef, Record, Review, SCHEMA_VERSION, Sample,
    SampleId, SchemaViolation, SitePosition, Slot, Stamp, UnixMillis, Verdict, key,
};

/// A fresh automerge actor id (16 random bytes; `to_string()` gives its hex form).
///
/// The server hands one to each registered handheld and binds it to the officer, because automerge
/// actor ids are not authenticated: the binding is what lets the validator tell who wrote a change.
pub fn new_actor_id() -> ActorId {
    ActorId::random()
}

/// A document the sync engine can carry: a [`RecordDoc`] or an
/// [`AssignmentIndex`](crate::index::AssignmentIndex). Sealed, so the engine only ever meets
/// documents whose layout it knows.
pub trait Document: sealed::Sealed {}

/// How big a loaded document is: its operations and changes (automerge's own count, no walk). What
/// a loaded copy costs in memory grows with these; the server's document cache charges by them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocSize {
    pub ops: u64,
    pub changes: u64,
}

pub fn doc_size<D: Document>(doc: &D) -> DocSize {
    let stats = doc.automerge().stats();
    DocSize { ops: stats.num_ops, changes: stats.num_changes }
}

pub(crate) mod sealed {
    use automerge::AutoCommit;

    pub trait Sealed: Clone {
        fn automerge(&self) -> &AutoCommit;
        fn automerge_mut(&mut self) -> &mut AutoCommit;
        fn from_automerge(doc: AutoCommit) -> Self;
        fn into_automerge(self) -> AutoCommit;
    }
}

/// Why a record could not be created, edited or read.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The document has no (or another) `schema`: e.g. a replica that has not synced yet.
    #[error("not a schema {SCHEMA_VERSION} record (found schema {found:?})")]
    NotARecord { found: Option<i64> },
    /// The edit, or data found in the document, breaks the schema.
    #[error(transparent)]
    Schema(#[from] SchemaViolation),
    #[error("{0:?} is not on this record's checklist")]
    UnknownCheckItem(String),
    #[error("photo {0} is not in this record")]
    UnknownPhoto(String),
    #[error("invalid instruction: {0}")]
    InvalidInstruction(String),
    /// A server-owned value that has no document representation (never expected in practice).
    #[error("cannot write the value to the document: {0}")]
    Unrepresentable(String),
    #[error("automerge: {0}")]
    Automerge(#[from] AutomergeError),
}

/// One instruction's record document.
///
/// The same type serves the server (actor: the server's) and the handheld (actor: the device's).
/// Every edit is one automerge change committed with its time, and is re-read by the same strict
/// readers the server validates with, so a handheld cannot commit what the server would refuse.
#[derive(Debug, Clone)]
pub struct RecordDoc {
    doc: AutoCommit,
}

impl Document for RecordDoc {}

impl sealed::Sealed for RecordDoc {
    fn automerge(&self) -> &AutoCommit {
        &self.doc
    }
    fn automerge_mut(&mut self) -> &mut AutoCommit {
        &mut self.doc
    }
    fn from_automerge(doc: AutoCommit) -> Self {
        Self { doc }
    }
    fn into_automerge(self) -> AutoCommit {
        self.doc
    }
}

impl From<json::PutError> for RecordError {
    fn from(e: json::PutError) -> Self {
        match e {
            json::PutError::Automerge(e) => Self::Automerge(e),
            json::PutError::Serialize(e) => Self::Unrepresentable(e.to_string()),
        }
    }
}

/// Commit options carrying the edit's time: automerge's Rust API writes 0 unless told.
fn commit_options(at: UnixMillis, message: impl Into<String>) -> CommitOptions {
    CommitOptions::default().with_message(message).with_time(at.div_euclid(1000))
}

/// Runs `f` as one change: committed if it succeeds, rolled back (nothing left behind) if not.
pub(crate) fn edit(
    doc: &mut AutoCommit,
    at: UnixMillis,
    message: impl Into<String>,
    f: impl FnOnce(&mut AutoCommit) -> Result<(), RecordError>,
) -> Result<(), RecordError> {
    match f(doc) {
        Ok(()) => {
            doc.commit_with(commit_options(at, message));
            Ok(())
        }
        Err(e) => {
            doc.rollback();
            Err(e)
        }
    }
}

/// Reads the root `schema` and refuses anything but ours.
pub(crate) fn check_schema(doc: &impl ReadDoc) -> Result<(), RecordError> {
    check_version(doc, SCHEMA_VERSION)
}

/// The root `schema` of a document, if it holds an integer.
pub(crate) fn version_of(doc: &impl ReadDoc) -> Option<i64> {
    doc.get(ROOT, key::SCHEMA).ok().flatten().and_then(|(v, _)| v.as_i64())
}

pub(crate) fn check_version(doc: &impl ReadDoc, expected: i64) -> Result<(), RecordError> {
    let found = version_of(doc);
    if found == Some(expected) { Ok(()) } else { Err(RecordError::NotARecord { found }) }
}

/// A root container that the server created; missing means the document is not a record.
fn container(doc: &impl ReadDoc, name: &str, ty: ObjType) -> Result<ObjId, RecordError> {
    check_schema(doc)?;
    schema::child(doc, &ROOT, name, ty)
        .ok_or_else(|| RecordError::Schema(SchemaViolation::MissingField { path: name.to_owned() }))
}

fn check_entry(doc: &AutoCommit, item_id: &str) -> Result<ObjId, RecordError> {
    let checks = container(doc, key::CHECKS, ObjType::Map)?;
    schema::child(doc, &checks, item_id, ObjType::Map)
        .ok_or_else(|| RecordError::UnknownCheckItem(item_id.to_owned()))
}

/// The entry map `parent[id]`, created if absent. Existing entries are written into, never
/// replaced: replacing a map would hide a concurrent edit to the old one.
fn entry_map(doc: &mut AutoCommit, parent: &ObjId, id: &str) -> Result<ObjId, RecordError> {
    match schema::child(doc, parent, id, ObjType::Map) {
        Some(obj) => Ok(obj),
        None => Ok(doc.put_object(parent, id, ObjType::Map)?),
    }
}

/// Writes `value` as a new op even if it equals the current one. Automerge skips a put of the
/// value already there (or, over a conflict, only deletes the losers), so an officer re-affirming
/// a verdict would leave no trace for the conflict check, and a repeated `by` no proof for the
/// validator. Deleting first makes the put a fresh op; both land in the same change.
fn put_fresh<V: Into<automerge::ScalarValue>>(
    doc: &mut AutoCommit,
    obj: &ObjId,
    k: &str,
    value: V,
) -> Result<(), RecordError> {
    if doc.get(obj, k)?.is_some() {
        doc.delete(obj, k)?;
    }
    doc.put(obj, k, value)?;
    Ok(())
}

fn put_stamp(doc: &mut AutoCommit, obj: &ObjId, stamp: &Stamp) -> Result<(), RecordError> {
    put_fresh(doc, obj, key::BY, stamp.by.as_str())?;
    put_fresh(doc, obj, key::AT, stamp.at)
}

fn put_or_delete<V: Into<automerge::ScalarValue>>(
    doc: &mut AutoCommit,
    obj: &ObjId,
    k: &str,
    value: Option<V>,
) -> Result<(), RecordError> {
    match value {
        Some(v) => doc.put(obj, k, v)?,
        None if doc.get(obj, k)?.is_some() => doc.delete(obj, k)?,
        None => {}
    }
    Ok(())
}

/// Replaces the root `officers` list (a new list: the server is its only writer, so nothing is lost).
fn put_officers(doc: &mut AutoCommit, officers: &[OfficerId]) -> Result<(), RecordError> {
    if officers.len() > MAX_OFFICERS {
        return Err(RecordError::InvalidInstruction(format!(
            "{} officers; at most {MAX_OFFICERS}",
            officers.len()
        )));
    }
    let list = doc.put_object(ROOT, key::OFFICERS, ObjType::List)?;
    for (i, officer) in officers.iter().enumerate() {
        doc.insert(&list, i, officer.as_str())?;
    }
    Ok(())
}

fn checklist(doc: &impl ReadDoc) -> Result<BTreeSet<String>, RecordError> {
    let checks = container(doc, key::CHECKS, ObjType::Map)?;
    Ok(doc.keys(&checks).collect())
}

impl RecordDoc {
    /// The server creates the record for an instruction: the instruction part, the assigned officers,
    /// and every officer-owned container, including one empty entry per checklist item.
    pub fn create(
        instruction: &InstructionPart,
        officers: &[OfficerId],
        server_actor: ActorId,
        at: UnixMillis,
    ) -> Result<Self, RecordError> {
        if instruction.instruction_id.is_empty() {
            return Err(RecordError::InvalidInstruction("instruction_id is empty".into()));
        }
        if instruction.checklist.is_empty() {
            return Err(RecordError::InvalidInstruction("the checklist is empty".into()));
        }
        let mut ids = BTreeSet::new();
        for item in &instruction.checklist {
            if !schema::check_item_id(&item.item_id) {
                return Err(RecordError::InvalidInstruction(format!(
                    "check item id {:?} must be 1-64 characters of A-Z a-z 0-9 - _ . :",
                    item.item_id
                )));
            }
            if !ids.insert(item.item_id.as_str()) {
                return Err(RecordError::InvalidInstruction(format!(
                    "check item id {:?} appears twice",
                    item.item_id
                )));
            }
        }

        let mut doc = AutoCommit::new().with_actor(server_actor);
        let message = format!("create record for instruction {}", instruction.instruction_id);
        edit(&mut doc, at, message, |doc| {
            doc.put(ROOT, key::SCHEMA, SCHEMA_VERSION)?;
            json::put(doc, &ROOT, key::INSTRUCTION, instruction)?;
            // Read it back: a value serde cannot round-trip (a NaN quantity becomes null) would
            // otherwise make the record unreadable later.
            let obj = container(doc, key::INSTRUCTION, ObjType::Map)?;
            json::get::<InstructionPart>(doc, &obj, key::INSTRUCTION)
                .map_err(|e| RecordError::InvalidInstruction(e.to_string()))?;
            put_officers(doc, officers)?;
            for (name, ty) in OFFICER_CONTAINERS {
                let obj = doc.put_object(ROOT, name, ty)?;
                if name == key::CHECKS {
                    for item in &instruction.checklist {
                        doc.put_object(&obj, item.item_id.as_str(), ObjType::Map)?;
                    }
                }
            }
            Ok(())
        })?;
        Ok(Self { doc })
    }

    /// The server records a new assignment: these officers must now sign before the result is
    /// submitted (a signature of an officer no longer assigned stays in the record but is not needed).
    pub fn set_officers(&mut self, officers: &[OfficerId], at: UnixMillis) -> Result<(), RecordError> {
        check_schema(&self.doc)?;
        edit(&mut self.doc, at, "officers", |doc| put_officers(doc, officers))
    }

    /// The server writes the booked slot (confirmed, moved or withdrawn: `None`) and the deadline (extended)
    /// into the instruction part, so a handheld shows them offline. Only keys that differ are written.
    pub fn set_schedule(
        &mut self,
        slot: Option<Slot>,
        deadline: UnixMillis,
        at: UnixMillis,
    ) -> Result<(), RecordError> {
        check_schema(&self.doc)?;
        let current = self.instruction()?;
        if current.slot == slot && current.deadline == deadline {
            return Ok(());
        }
        edit(&mut self.doc, at, "schedule", |doc| {
            let obj = container(doc, key::INSTRUCTION, ObjType::Map)?;
            if current.slot != slot {
                json::put(doc, &obj, "slot", &slot)?;
            }
            if current.deadline != deadline {
                json::put(doc, &obj, "deadline", &deadline)?;
            }
            Ok(())
        })
    }

    /// The server writes the site's position (reference data changed, or a record from before positions
    /// were written); nothing is written when it is already what the record holds.
    pub fn set_site_position(
        &mut self,
        position: Option<SitePosition>,
        at: UnixMillis,
    ) -> Result<(), RecordError> {
        check_schema(&self.doc)?;
        if self.instruction()?.site_position == position {
            return Ok(());
        }
        edit(&mut self.doc, at, "site position", |doc| {
            let obj = container(doc, key::INSTRUCTION, ObjType::Map)?;
            match &position {
                Some(p) => json::put(doc, &obj, "site_position", p)?,
                None => doc.delete(&obj, "site_position")?,
            }
            Ok(())
        })
    }

    /// An empty copy that fills itself on its first sync (how a handheld receives a record).
    pub fn replica(actor: ActorId) -> Self {
        Self { doc: AutoCommit::new().with_actor(actor) }
    }

    /// Loads a saved record, to be edited as `actor`. `bytes` may be a [`save`](Self::save)
    /// followed by any number of [`save_incremental`](Self::save_incremental) chunks.
    pub fn load(bytes: &[u8], actor: ActorId) -> Result<Self, RecordError> {
        Ok(Self { doc: AutoCommit::load(bytes)?.with_actor(actor) })
    }

    /// The whole document, compacted.
    pub fn save(&mut self) -> Vec<u8> {
        self.doc.save()
    }

    /// The changes since the last `save` or `save_incremental`; append them to the stored bytes.
    pub fn save_incremental(&mut self) -> Vec<u8> {
        self.doc.save_incremental()
    }

    /// The changes not reachable from `heads`, in the incremental format: what a server that loaded
    /// the document from storage appends after a sync added changes (a loaded document's
    /// `save_incremental` would repeat the whole history).
    pub fn save_after(&mut self, heads: &[ChangeHash]) -> Vec<u8> {
        self.doc.save_after(heads)
    }

    /// The current heads: what the server stores when it seals the record.
    pub fn heads(&mut self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }

    pub fn actor(&self) -> &ActorId {
        self.doc.get_actor()
    }

    pub fn set_check_result(
        &mut self,
        item_id: &str,
        result: CheckResult,
        stamp: &Stamp,
    ) -> Result<(), RecordError> {
        self.edit_check(item_id, stamp, "result", |doc, obj| {
            put_fresh(doc, obj, key::RESULT, result.as_str())
        })
    }

    /// Sets (or with `None` clears) a check item's measurement, which must be in the item's unit.
    /// Written fresh, so re-entering a reading resolves a conflict over it.
    pub fn set_measurement(
        &mut self,
        item_id: &str,
        measurement: Option<&Measurement>,
        stamp: &Stamp,
    ) -> Result<(), RecordError> {
        let instruction = self.instruction()?;
        let item = instruction.checklist.iter().find(|i| i.item_id == item_id);
        schema::check_unit(measurement, item, &schema::join(key::CHECKS, item_id))?;
        self.edit_check(item_id, stamp, "measurement", |doc, obj| {
            match measurement {
                Some(m) => {
                    put_fresh(doc, obj, key::VALUE, m.value)?;
                    put_fresh(doc, obj, key::UNIT, m.unit.as_str())?;
                }
                None => {
                    put_or_delete::<&str>(doc, obj, key::VALUE, None)?;
                    put_or_delete::<&str>(doc, obj, key::UNIT, None)?;
                }
            }
            Ok(())
        })
    }

    /// The server-owned instruction part.
    pub fn instruction(&self) -> Result<InstructionPart, RecordError> {
        let obj = container(&self.doc, key::INSTRUCTION, ObjType::Map)?;
        Ok(json::get(&self.doc, &obj, key::INSTRUCTION)?)
    }

    pub fn set_check_note(&mut self, item_id: &str, note: &str, stamp: &Stamp) -> Result<(), RecordError> {
        self.edit_check(item_id, stamp, "note", |doc, obj| {
            doc.put(obj, key::NOTE, note)?;
            Ok(())
        })
    }

    fn edit_check(
        &mut self,
        item_id: &str,
        stamp: &Stamp,
        what: &str,
        f: impl FnOnce(&mut AutoCommit, &ObjId) -> Result<(), RecordError>,
    ) -> Result<(), RecordError> {
        edit(&mut self.doc, stamp.at, format!("check {item_id}: {what}"), |doc| {
            let obj = check_entry(doc, item_id)?;
            f(doc, &obj)?;
            put_stamp(doc, &obj, stamp)?;
            schema::read_check(doc, obj, schema::join(key::CHECKS, item_id))?;
            Ok(())
        })
    }

    /// Adds a note (or, with an existing id, corrects that note in place). Each note is an entry of
    /// its own, so concurrent notes of two officers stay two notes.
    pub fn put_note(&mut self, id: &NoteId, text: &str, stamp: &Stamp) -> Result<(), RecordError> {
        edit(&mut self.doc, stamp.at, format!("note {id}"), |doc| {
            let notes = container(doc, key::NOTES, ObjType::Map)?;
            let obj = entry_map(doc, &notes, id.as_str())?;
            doc.put(&obj, key::TEXT, text)?;
            put_stamp(doc, &obj, stamp)?;
            schema::read_note(doc, obj, id.clone(), schema::join(key::NOTES, id.as_str()))?;
            schema::check_count(doc, &notes, key::NOTES, MAX_NOTE_ENTRIES)?;
            Ok(())
        })
    }

    /// A fresh note id for this copy: the time, this copy's actor and how many notes it holds, so ids
    /// are unique without coordination and one device's notes of the same millisecond keep their order.
    pub fn new_note_id(&self, at: UnixMillis) -> NoteId {
        let actor = self.doc.get_actor().to_hex_string();
        let held =
            schema::child(&self.doc, &ROOT, key::NOTES, ObjType::Map).map_or(0, |n| self.doc.length(&n));
        NoteId::parse(format!("n{at}-{}-{held:04}", &actor[..32.min(actor.len())]))
            .expect("digits, hex and dashes make an id")
    }
    /// Records a photo's metadata (its bytes go to the photo store). Attaching the same hash again
    /// updates the entry in place.
    pub fn attach_photo(
        &mut self,
        hash: &PhotoHash,
        photo: &PhotoRef,
        stamp: &Stamp,
    ) -> Result<(), RecordError> {
        edit(&mut self.doc, stamp.at, format!("photo {hash}"), |doc| {
            let items = checklist(doc)?;
            let photos = container(doc, key::PHOTOS, ObjType::Map)?;
            let obj = entry_map(doc, &photos, hash.as_str())?;
            put_or_delete(doc, &obj, key::CHECK_ITEM, photo.check_item.as_deref())?;
            doc.put(&obj, key::CAPTION, photo.caption.as_str())?;
            doc.put(&obj, key::TAKEN_AT, photo.taken_at)?;
            put_or_delete(doc, &obj, key::LAT, photo.location.map(|l| l.lat))?;
            put_or_delete(doc, &obj, key::LON, photo.location.map(|l| l.lon))?;
            put_or_delete(doc, &obj, key::WITHDRAWN, photo.withdrawn.then_some(true))?;
            put_stamp(doc, &obj, stamp)?;
            let path = schema::join(key::PHOTOS, hash.as_str());
            schema::read_photo(doc, obj, path, &|item| items.contains(item))?;
            schema::check_count(doc, &photos, key::PHOTOS, MAX_PHOTOS)?;
            Ok(())
        })
    }

    /// Withdraws a photo reference (a wrong or unusable photo): it stays in the record's history but is
    /// no longer awaited in the photo store. Attaching the same photo again brings it back.
    pub fn withdraw_photo(&mut self, hash: &PhotoHash, stamp: &Stamp) -> Result<(), RecordError> {
        let photos = container(&self.doc, key::PHOTOS, ObjType::Map)?;
        if schema::child(&self.doc, &photos, hash.as_str(), ObjType::Map).is_none() {
            return Err(RecordError::UnknownPhoto(hash.to_string()));
        }
        edit(&mut self.doc, stamp.at, format!("withdraw photo {hash}"), |doc| {
            let obj = entry_map(doc, &photos, hash.as_str())?;
            doc.put(&obj, key::WITHDRAWN, true)?;
            put_stamp(doc, &obj, stamp)?;
            Ok(())
        })
    }

    /// Records a sample; adding an existing id corrects that sample in place.
    pub fn add_sample(&mut self, id: &SampleId, sample: &Sample, stamp: &Stamp) -> Result<(), RecordError> {
        edit(&mut self.doc, stamp.at, format!("sample {id}"), |doc| {
            let samples = container(doc, key::SAMPLES, ObjType::Map)?;
            let obj = entry_map(doc, &samples, id.as_str())?;
            doc.put(&obj, key::DESCRIPTION, sample.description.as_str())?;
            doc.put(&obj, key::QUANTITY, sample.quantity)?;
            doc.put(&obj, key::UNIT, sample.unit.as_str())?;
            doc.put(&obj, key::SEAL_NO, sample.seal_no.as_str())?;
            put_stamp(doc, &obj, stamp)?;
            schema::read_sample(doc, obj, schema::join(key::SAMPLES, id.as_str()))?;
            schema::check_count(doc, &samples, key::SAMPLES, MAX_SAMPLES)?;
            Ok(())
        })
    }

    /// Sets the verdict. A conforming verdict removes any disposal this copy has seen.
    pub fn set_verdict(&mut self, verdict: Verdict, stamp: &Stamp) -> Result<(), RecordError> {
        edit(&mut self.doc, stamp.at, "verdict", |doc| {
            let obj = container(doc, key::VERDICT, ObjType::Map)?;
            put_fresh(doc, &obj, key::VALUE, verdict.value_str())?;
            match verdict {
                Verdict::Conforming => put_or_delete::<&str>(doc, &obj, key::DISPOSAL, None)?,
                Verdict::NonConforming { disposal } => {
                    put_fresh(doc, &obj, key::DISPOSAL, disposal.as_str())?
                }
            }
            put_stamp(doc, &obj, stamp)?;
            schema::read_verdict(doc, obj, key::VERDICT.to_owned())?;
            Ok(())
        })
    }

    /// Signs the record's current content as `stamp.by`, under that officer's own key in
    /// `signatures`: the signature carries the [`Record::content_digest`] of this copy, and any later
    /// change to the content (by anyone) voids it.
    pub fn sign(&mut self, statement: &str, stamp: &Stamp) -> Result<(), RecordError> {
        let digest = self.read()?.content_digest();
        edit(&mut self.doc, stamp.at, format!("signature {}", stamp.by), |doc| {
            let signatures = container(doc, key::SIGNATURES, ObjType::Map)?;
            let obj = entry_map(doc, &signatures, stamp.by.as_str())?;
            doc.put(&obj, key::STATEMENT, statement)?;
            doc.put(&obj, key::AT, stamp.at)?;
            doc.put(&obj, key::DIGEST, digest.as_str())?;
            schema::read_signature(doc, obj, schema::join(key::SIGNATURES, stamp.by.as_str()))?;
            Ok(())
        })
    }

    /// Marks the inspection complete (or withdraws that, until the record is approved).
    pub fn set_complete(&mut self, complete: bool, stamp: &Stamp) -> Result<(), RecordError> {
        edit(&mut self.doc, stamp.at, "completion", |doc| {
            let obj = container(doc, key::COMPLETION, ObjType::Map)?;
            doc.put(&obj, key::COMPLETE, complete)?;
            put_stamp(doc, &obj, stamp)?;
            schema::read_completion(doc, obj, key::COMPLETION.to_owned())?;
            Ok(())
        })
    }

    /// The server writes a supervisor's review (replacing any earlier one); officers only read it.
    pub fn set_review(&mut self, review: &Review, at: UnixMillis) -> Result<(), RecordError> {
        check_schema(&self.doc)?;
        edit(&mut self.doc, at, "review", |doc| Ok(json::put(doc, &ROOT, key::REVIEW, review)?))
    }

    /// The whole record as plain values, with the winning value wherever officers conflicted
    /// (see [`open_conflicts`](crate::conflicts::open_conflicts) for the others).
    pub fn read(&self) -> Result<Record, RecordError> {
        self.read_with(self.instruction()?)
    }

    /// [`read`](Self::read) with the instruction part already known: what the server's sync engine
    /// keeps beside a cached document. The part is server-owned (validation refuses any officer's
    /// change to it) and every server write of it moves the document's generation, which drops the
    /// cached copy; so a known part is the one in the document, and reading it again (a walk of
    /// the whole goods list and checklist) was a sixth of the engine's CPU.
    pub fn read_with(&self, instruction: InstructionPart) -> Result<Record, RecordError> {
        let doc = &self.doc;

        let checks_obj = container(doc, key::CHECKS, ObjType::Map)?;
        let mut checks = BTreeMap::new();
        for item in doc.keys(&checks_obj) {
            let path = schema::join(key::CHECKS, &item);
            let obj = schema::child(doc, &checks_obj, &item, ObjType::Map)
                .ok_or_else(|| SchemaViolation::InvalidValue { path: path.clone(), expected: "a map" })?;
            checks.insert(item, schema::read_check(doc, obj, path)?);
        }

        let photos_obj = container(doc, key::PHOTOS, ObjType::Map)?;
        let mut photos = BTreeMap::new();
        for (hash, obj, path) in entries(doc, &photos_obj, key::PHOTOS)? {
            let hash = PhotoHash::parse(hash).map_err(|_| SchemaViolation::InvalidValue {
                path: path.clone(),
                expected: "keyed by a SHA-256",
            })?;
            let photo = schema::read_photo(doc, obj, path, &|item| checks.contains_key(item))?;
            photos.insert(hash, photo);
        }

        let samples_obj = container(doc, key::SAMPLES, ObjType::Map)?;
        let mut samples = BTreeMap::new();
        for (id, obj, path) in entries(doc, &samples_obj, key::SAMPLES)? {
            let id = SampleId::parse(id).map_err(|_| SchemaViolation::InvalidValue {
                path: path.clone(),
                expected: "keyed by a sample id",
            })?;
            samples.insert(id, schema::read_sample(doc, obj, path)?);
        }

        let signatures_obj = container(doc, key::SIGNATURES, ObjType::Map)?;
        let mut signatures = BTreeMap::new();
        for (officer, obj, path) in entries(doc, &signatures_obj, key::SIGNATURES)? {
            let officer = schema::OfficerId::parse(officer).map_err(|_| SchemaViolation::InvalidValue {
                path: path.clone(),
                expected: "keyed by an officer id",
            })?;
            signatures.insert(officer, schema::read_signature(doc, obj, path)?);
        }

        let notes_obj = container(doc, key::NOTES, ObjType::Map)?;
        let mut notes = Vec::new();
        for (id, obj, path) in entries(doc, &notes_obj, key::NOTES)? {
            let id = NoteId::parse(id).map_err(|_| SchemaViolation::InvalidValue {
                path: path.clone(),
                expected: "keyed by a note id",
            })?;
            notes.push(schema::read_note(doc, obj, id, path)?);
        }
        notes.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));

        let verdict_obj = container(doc, key::VERDICT, ObjType::Map)?;
        let completion_obj = container(doc, key::COMPLETION, ObjType::Map)?;
        Ok(Record {
            schema: SCHEMA_VERSION,
            instruction,
            officers: schema::read_officers(doc)?,
            checks,
            photos,
            samples,
            notes,
            verdict: schema::read_verdict(doc, verdict_obj, key::VERDICT.to_owned())?,
            signatures,
            completion: schema::read_completion(doc, completion_obj, key::COMPLETION.to_owned())?,
            review: match schema::child(doc, &ROOT, key::REVIEW, ObjType::Map) {
                Some(obj) => Some(json::get(doc, &obj, key::REVIEW)?),
                None => None,
            },
        })
    }
}

/// The (key, map, path) of every entry of a keyed collection, refusing non-map entries.
fn entries(
    doc: &impl ReadDoc,
    collection: &ObjId,
    name: &str,
) -> Result<Vec<(String, ObjId, String)>, SchemaViolation> {
    doc.keys(collection)
        .map(|k| {
            let path = schema::join(name, &k);
            match schema::child(doc, collection, &k, ObjType::Map) {
                Some(obj) => Ok((k, obj, path)),
                None => Err(SchemaViolation::InvalidValue { path, expected: "a map" }),
            }
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::schema::{
        ChecklistItem, Completion, Disposal, GoodsLine, Location, MAX_NOTE_BYTES, Slot, Stamped,
    };

    pub(crate) const T0: UnixMillis = 1_750_000_000_000;

    pub(crate) fn instruction() -> InstructionPart {
        InstructionPart {
            instruction_id: "ins-1".into(),
            inspection_no: "212345678901234".into(),
            enterprise_name: "Ningbo Bamboo Crafts Co.".into(),
            goods: vec![GoodsLine {
                line_no: 1,
                hs_code: "4602191000".into(),
                name: "bamboo baskets".into(),
                quantity: 1200.0,
                unit: "pcs".into(),
                weight_kg: 850.5,
                origin: "CN".into(),
            }],
            checklist: vec![
                ChecklistItem {
                    item_id: "c1".into(),
                    title: "Packaging intact".into(),
                    kind: "visual".into(),
                    unit: None,
                },
                ChecklistItem {
                    item_id: "c2".into(),
                    title: "Moisture content".into(),
                    kind: "measurement".into(),
                    unit: Some("%".into()),
                },
            ],
            site: "Beilun yard 3".into(),
            slot: Some(Slot { starts_at: T0, ends_at: T0 + 3_600_000 }),
            deadline: T0 + 86_400_000,
            site_position: None,
        }
    }

    pub(crate) fn server_record() -> RecordDoc {
        RecordDoc::create(&instruction(), &officers(), new_actor_id(), T0).unwrap()
    }

    /// The officers `server_record` is assigned to.
    pub(crate) fn officers() -> Vec<OfficerId> {
        vec![OfficerId::parse("alice").unwrap(), OfficerId::parse("bob").unwrap()]
    }

    /// `by` at `T0 + seconds`.
    pub(crate) fn stamp(by: &str, seconds: i64) -> Stamp {
        Stamp { by: OfficerId::parse(by).unwrap(), at: T0 + seconds * 1000 }
    }

    pub(crate) fn photo_hash(n: u16) -> PhotoHash {
        PhotoHash::parse(format!("{n:064x}")).unwrap()
    }

    pub(crate) fn photo() -> PhotoRef {
        PhotoRef {
            check_item: Some("c1".into()),
            caption: "torn carton, pallet 4".into(),
            taken_at: T0 + 500,
            location: Some(Location { lat: 29.87, lon: 121.85 }),
            withdrawn: false,
        }
    }

    pub(crate) fn sample() -> Sample {
        Sample {
            description: "3 baskets from pallet 4".into(),
            quantity: 3.0,
            unit: "pcs".into(),
            seal_no: "S-0042".into(),
        }
    }

    #[test]
    fn the_content_digest_follows_the_content_not_who_wrote_it_or_when() {
        let fill = |by: &str, seconds: i64| {
            let mut doc = server_record();
            doc.set_check_result("c1", CheckResult::Pass, &stamp(by, seconds)).unwrap();
            doc.set_measurement(
                "c2",
                Some(&Measurement { value: 12.5, unit: "%".into() }),
                &stamp(by, seconds),
            )
            .unwrap();
            doc.attach_photo(&photo_hash(1), &photo(), &stamp(by, seconds)).unwrap();
            doc.set_verdict(Verdict::Conforming, &stamp(by, seconds)).unwrap();
            doc
        };
        let mut one = fill("alice", 1);
        let digest = one.read().unwrap().content_digest();
        assert_eq!(digest.len(), 64);
        assert_eq!(fill("bob", 99).read().unwrap().content_digest(), digest, "same content, other stamps");
        // Notes and completion are not what the verdict rests on.
        one.set_complete(true, &stamp("alice", 2)).unwrap();
        one.put_note(&NoteId::parse("n1").unwrap(), "cold chain intact", &stamp("alice", 2)).unwrap();
        assert_eq!(one.read().unwrap().content_digest(), digest);
        // Any change to a result, a measurement, a photo, a sample or the verdict changes it.
        let changed: [&dyn Fn(&mut RecordDoc); 5] = [
            &|d| d.withdraw_photo(&photo_hash(1), &stamp("alice", 3)).unwrap(),
            &|d| d.set_check_result("c1", CheckResult::Fail, &stamp("alice", 3)).unwrap(),
            &|d| {
                d.set_measurement(
                    "c2",
                    Some(&Measurement { value: 12.6, unit: "%".into() }),
                    &stamp("alice", 3),
                )
                .unwrap()
            },
            &|d| d.add_sample(&SampleId::parse("S-1").unwrap(), &sample(), &stamp("alice", 3)).unwrap(),
            &|d| {
                d.set_verdict(Verdict::NonConforming { disposal: Disposal::Return }, &stamp("alice", 3))
                    .unwrap()
            },
        ];
        for (n, change) in changed.iter().enumerate() {
            let mut doc = fill("alice", 1);
            change(&mut doc);
            assert_ne!(doc.read().unwrap().content_digest(), digest, "change {n}");
        }
    }

    #[test]
    fn the_server_writes_a_new_slot_and_deadline_into_the_instruction_part_and_nothing_when_unchanged() {
        let mut doc = server_record();
        let slot = Some(Slot { starts_at: T0 + 7_200_000, ends_at: T0 + 10_800_000 });
        doc.set_schedule(slot, T0 + 2 * 86_400_000, T0).unwrap();
        let part = doc.read().unwrap().instruction;
        assert_eq!((part.slot, part.deadline), (slot, T0 + 2 * 86_400_000));
        let heads = doc.heads();
        doc.set_schedule(slot, T0 + 2 * 86_400_000, T0).unwrap();
        assert_eq!(doc.heads(), heads, "no change, no commit");
        doc.set_schedule(None, T0 + 2 * 86_400_000, T0).unwrap();
        assert_eq!(doc.read().unwrap().instruction.slot, None, "a withdrawn booking clears the slot");
    }

    #[test]
    fn the_server_writes_the_site_position_once_and_a_record_without_one_still_reads() {
        let mut doc = server_record();
        assert_eq!(doc.read().unwrap().instruction.site_position, None, "a record from before positions");
        let at = Some(SitePosition { latitude: 30.627, longitude: 122.065, radius_m: Some(800.0) });
        doc.set_site_position(at, T0).unwrap();
        assert_eq!(doc.read().unwrap().instruction.site_position, at);
        let heads = doc.heads();
        doc.set_site_position(at, T0).unwrap();
        assert_eq!(doc.heads(), heads, "no change, no commit");
        doc.set_site_position(None, T0).unwrap();
        assert_eq!(doc.read().unwrap().instruction.site_position, None);
    }

    #[test]
    fn the_distance_from_a_site_is_the_great_circle_distance_in_metres() {
        let site = SitePosition { latitude: 30.627, longitude: 122.065, radius_m: None };
        assert!(site.distance_m(30.627, 122.065) < 0.001);
        // One hundredth of a degree of latitude is about 1,112 m anywhere.
        let d = site.distance_m(30.637, 122.065);
        assert!((d - 1_112.0).abs() < 2.0, "{d}");
        // Shanghai's Yangshan port to Shenzhen's Shekou: about 1,220 km.
        let far = site.distance_m(22.48, 113.91);
        assert!((1_150_000.0..1_300_000.0).contains(&far), "{far}");
        assert_eq!(site.radius(), crate::schema::DEFAULT_SITE_RADIUS_M);
    }

    #[test]
    fn a_new_record_holds_the_instruction_and_an_empty_entry_per_check_item() {
        let record = server_record().read().unwrap();
        assert_eq!(record.schema, SCHEMA_VERSION);
        assert_eq!(record.instruction, instruction());
        assert_eq!(record.checks.keys().collect::<Vec<_>>(), vec!["c1", "c2"]);
        assert!(record.checks.values().all(|c| *c == Default::default()));
        assert!(record.photos.is_empty() && record.samples.is_empty());
        assert_eq!(record.notes, vec![]);
        assert_eq!(record.officers, officers());
        assert_eq!(record.verdict, None);
        assert_eq!(record.completion, None);
    }

    #[test]
    fn an_instruction_with_a_duplicate_or_malformed_check_item_is_refused() {
        let mut dup = instruction();
        dup.checklist.push(dup.checklist[0].clone());
        assert!(matches!(
            RecordDoc::create(&dup, &[], new_actor_id(), T0),
            Err(RecordError::InvalidInstruction(_))
        ));
        let mut odd = instruction();
        odd.checklist[0].item_id = "c 1".into();
        assert!(matches!(
            RecordDoc::create(&odd, &[], new_actor_id(), T0),
            Err(RecordError::InvalidInstruction(_))
        ));
    }

    #[test]
    fn an_instruction_that_cannot_round_trip_is_refused() {
        let mut nan = instruction();
        nan.goods[0].quantity = f64::NAN;
        assert!(matches!(
            RecordDoc::create(&nan, &[], new_actor_id(), T0),
            Err(RecordError::InvalidInstruction(_))
        ));
    }

    #[test]
    fn officer_edits_read_back_as_plain_values() {
        let mut doc = server_record();
        let alice = stamp("alice", 1);
        doc.set_check_result("c1", CheckResult::Fail, &alice).unwrap();
        doc.set_check_note("c1", "carton torn", &alice).unwrap();
        let m = Measurement { value: 11.5, unit: "%".into() };
        doc.set_measurement("c2", Some(&m), &alice).unwrap();
        doc.attach_photo(&photo_hash(1), &photo(), &alice).unwrap();
        let bag = SampleId::parse("bag-1").unwrap();
        doc.add_sample(&bag, &sample(), &alice).unwrap();
        let note = NoteId::parse("n-1").unwrap();
        doc.put_note(&note, "Rain overnight.", &alice).unwrap();
        let verdict = Verdict::NonConforming { disposal: Disposal::TechnicalTreatment };
        doc.set_verdict(verdict, &alice).unwrap();
        doc.sign("I inspected these goods.", &alice).unwrap();
        doc.set_complete(true, &alice).unwrap();

        let record = doc.read().unwrap();
        let c1 = &record.checks["c1"];
        assert_eq!(c1.result, Some(CheckResult::Fail));
        assert_eq!(c1.note.as_deref(), Some("carton torn"));
        assert_eq!(c1.last_edit, Some(alice.clone()));
        assert_eq!(record.checks["c2"].measurement, Some(m));
        assert_eq!(record.photos[&photo_hash(1)], Stamped { value: photo(), stamp: alice.clone() });
        assert_eq!(record.samples[&bag].value, sample());
        assert_eq!(
            record.notes,
            vec![schema::NoteEntry {
                id: note,
                text: "Rain overnight.".into(),
                by: alice.by.clone(),
                at: alice.at
            }]
        );
        assert_eq!(record.verdict.map(|v| v.value), Some(verdict));
        assert_eq!(record.signatures[&alice.by].statement, "I inspected these goods.");
        assert_eq!(record.completion.map(|c| c.value), Some(Completion { complete: true }));
    }

    #[test]
    fn a_record_serializes_to_the_json_the_server_projects() {
        let mut doc = server_record();
        doc.attach_photo(&photo_hash(1), &photo(), &stamp("alice", 1)).unwrap();
        let verdict = Verdict::NonConforming { disposal: Disposal::Return };
        doc.set_verdict(verdict, &stamp("alice", 2)).unwrap();
        let json = serde_json::to_value(doc.read().unwrap()).unwrap();
        assert_eq!(json["photos"][photo_hash(1).as_str()]["by"], "alice");
        assert_eq!(json["photos"][photo_hash(1).as_str()]["caption"], "torn carton, pallet 4");
        assert_eq!(
            json["verdict"],
            serde_json::json!({"value": "non_conforming", "disposal": "return", "by": "alice", "at": T0 + 2000})
        );
        assert_eq!(json["checks"]["c1"]["result"], serde_json::Value::Null);
    }

    #[test]
    fn every_edit_is_committed_with_its_time_in_seconds() {
        let mut doc = server_record();
        doc.set_check_result("c1", CheckResult::Pass, &stamp("alice", 42)).unwrap();
        let times: Vec<i64> = doc.doc.get_changes_meta(&[]).iter().map(|c| c.timestamp).collect();
        assert_eq!(times, vec![T0 / 1000, T0 / 1000 + 42]);
    }

    #[test]
    fn a_record_loads_from_a_save_followed_by_incremental_saves() {
        let mut doc = server_record();
        let mut stored = doc.save();
        doc.set_check_result("c1", CheckResult::Pass, &stamp("alice", 1)).unwrap();
        stored.extend(doc.save_incremental());
        doc.put_note(&NoteId::parse("n-1").unwrap(), "ok", &stamp("alice", 2)).unwrap();
        stored.extend(doc.save_incremental());

        let actor = doc.actor().clone();
        let mut loaded = RecordDoc::load(&stored, actor.clone()).unwrap();
        assert_eq!(loaded.heads(), doc.heads());
        assert_eq!(loaded.actor(), &actor);
        assert_eq!(loaded.read().unwrap(), doc.read().unwrap());
    }

    #[test]
    fn an_edit_to_an_unknown_check_item_is_refused_and_leaves_nothing_behind() {
        let mut doc = server_record();
        let heads = doc.heads();
        assert!(matches!(
            doc.set_check_result("c9", CheckResult::Pass, &stamp("alice", 1)),
            Err(RecordError::UnknownCheckItem(_))
        ));
        assert_eq!(doc.heads(), heads);
    }

    #[test]
    fn a_note_over_the_limit_is_refused_and_rolled_back() {
        let mut doc = server_record();
        let heads = doc.heads();
        let long = "x".repeat(MAX_NOTE_BYTES + 1);
        let err = doc.set_check_note("c1", &long, &stamp("alice", 1)).unwrap_err();
        assert!(matches!(
            err,
            RecordError::Schema(SchemaViolation::TooLarge { ref path, .. }) if path == "checks.c1.note"
        ));
        assert_eq!(doc.heads(), heads);
        assert_eq!(doc.read().unwrap().checks["c1"], Default::default());
    }

    #[test]
    fn a_photo_of_an_item_not_on_the_checklist_is_refused() {
        let mut doc = server_record();
        let mut p = photo();
        p.check_item = Some("c9".into());
        assert!(matches!(
            doc.attach_photo(&photo_hash(1), &p, &stamp("alice", 1)),
            Err(RecordError::Schema(SchemaViolation::InvalidValue { .. }))
        ));
        assert!(doc.read().unwrap().photos.is_empty());
    }

    #[test]
    fn photos_beyond_the_limit_are_refused() {
        let mut doc = server_record();
        for n in 0..MAX_PHOTOS as u16 {
            doc.attach_photo(&photo_hash(n), &photo(), &stamp("alice", 1)).unwrap();
        }
        assert!(matches!(
            doc.attach_photo(&photo_hash(9999), &photo(), &stamp("alice", 2)),
            Err(RecordError::Schema(SchemaViolation::TooMany { .. }))
        ));
        assert_eq!(doc.read().unwrap().photos.len(), MAX_PHOTOS);
    }

    #[test]
    fn reattaching_a_photo_updates_it_in_place() {
        let mut doc = server_record();
        doc.attach_photo(&photo_hash(1), &photo(), &stamp("alice", 1)).unwrap();
        let mut p = photo();
        p.location = None;
        p.caption = "carton torn".into();
        doc.attach_photo(&photo_hash(1), &p, &stamp("alice", 2)).unwrap();
        assert_eq!(doc.read().unwrap().photos[&photo_hash(1)].value, p);
    }

    #[test]
    fn a_conforming_verdict_drops_an_earlier_disposal() {
        let mut doc = server_record();
        let nc = Verdict::NonConforming { disposal: Disposal::Return };
        doc.set_verdict(nc, &stamp("alice", 1)).unwrap();
        doc.set_verdict(Verdict::Conforming, &stamp("alice", 2)).unwrap();
        let verdict_obj = container(&doc.doc, key::VERDICT, ObjType::Map).unwrap();
        assert!(doc.doc.get(&verdict_obj, key::DISPOSAL).unwrap().is_none());
        assert_eq!(doc.read().unwrap().verdict.map(|v| v.value), Some(Verdict::Conforming));
    }

    #[test]
    fn a_replica_cannot_be_read_or_edited_before_its_first_sync() {
        let mut replica = RecordDoc::replica(new_actor_id());
        assert!(matches!(replica.read(), Err(RecordError::NotARecord { found: None })));
        assert!(matches!(
            replica.set_check_result("c1", CheckResult::Pass, &stamp("alice", 1)),
            Err(RecordError::NotARecord { .. })
        ));
    }

    #[test]
    fn concurrent_notes_of_two_officers_stay_two_notes_in_time_order() {
        let mut server = server_record();
        let mut a = RecordDoc { doc: server.doc.fork().with_actor(new_actor_id()) };
        let mut b = RecordDoc { doc: server.doc.fork().with_actor(new_actor_id()) };
        let (ida, idb) = (a.new_note_id(T0 + 5), b.new_note_id(T0 + 5));
        assert_ne!(ida, idb, "note ids are unique per device even in the same millisecond");
        a.put_note(&ida, "core temp -19 C, matches", &stamp("alice", 7)).unwrap();
        b.put_note(&idb, "one carton thawed", &stamp("bob", 6)).unwrap();
        server.doc.merge(&mut a.doc).unwrap();
        server.doc.merge(&mut b.doc).unwrap();
        let texts: Vec<_> =
            server.read().unwrap().notes.into_iter().map(|n| (n.by.to_string(), n.text)).collect();
        assert_eq!(
            texts,
            [("bob".into(), "one carton thawed".into()), ("alice".into(), "core temp -19 C, matches".into())]
        );
    }

    #[test]
    fn a_measurement_in_another_unit_than_its_items_is_refused() {
        let mut doc = server_record();
        let heads = doc.heads();
        let err = doc
            .set_measurement(
                "c2",
                Some(&Measurement { value: 11.0, unit: "g/kg".into() }),
                &stamp("alice", 1),
            )
            .unwrap_err();
        assert!(matches!(err, RecordError::Schema(SchemaViolation::WrongUnit { .. })), "{err:?}");
        assert_eq!(err.to_string(), "checks.c2.unit is in g/kg; this check item is measured in %");
        assert_eq!(doc.heads(), heads);
    }

    #[test]
    fn a_signature_covers_the_content_and_any_later_change_voids_it() {
        let mut doc = server_record();
        doc.set_check_result("c1", CheckResult::Pass, &stamp("alice", 1)).unwrap();
        doc.set_check_result("c2", CheckResult::Pass, &stamp("alice", 1)).unwrap();
        doc.set_verdict(Verdict::Conforming, &stamp("alice", 1)).unwrap();
        assert_eq!(
            doc.read().unwrap().missing_for_submission(0),
            ["alice has not signed", "bob has not signed"]
        );
        doc.sign("I inspected these goods.", &stamp("alice", 2)).unwrap();
        doc.sign("I inspected these goods.", &stamp("bob", 2)).unwrap();
        assert_eq!(doc.read().unwrap().missing_for_submission(0), Vec::<String>::new());
        // A note is not content: the signatures stand.
        doc.put_note(&NoteId::parse("n1").unwrap(), "all good", &stamp("bob", 3)).unwrap();
        assert_eq!(doc.read().unwrap().missing_for_submission(0), Vec::<String>::new());
        // A result is: both signatures are void until both sign again.
        doc.set_check_result("c1", CheckResult::Fail, &stamp("bob", 4)).unwrap();
        assert_eq!(
            doc.read().unwrap().missing_for_submission(1),
            [
                "1 open conflict",
                "alice must sign again: the content changed after signing",
                "bob must sign again: the content changed after signing"
            ]
        );
    }

    #[test]
    fn a_withdrawn_photo_is_no_longer_awaited_and_reattaching_brings_it_back() {
        let mut doc = server_record();
        doc.attach_photo(&photo_hash(1), &photo(), &stamp("alice", 1)).unwrap();
        doc.attach_photo(&photo_hash(2), &photo(), &stamp("alice", 1)).unwrap();
        doc.withdraw_photo(&photo_hash(1), &stamp("bob", 2)).unwrap();
        let read = doc.read().unwrap();
        assert!(read.photos[&photo_hash(1)].value.withdrawn);
        assert_eq!(read.awaited_photos().collect::<Vec<_>>(), [&photo_hash(2)]);
        assert!(matches!(
            doc.withdraw_photo(&photo_hash(3), &stamp("bob", 2)),
            Err(RecordError::UnknownPhoto(_))
        ));
        doc.attach_photo(&photo_hash(1), &photo(), &stamp("alice", 3)).unwrap();
        assert_eq!(doc.read().unwrap().awaited_photos().count(), 2);
    }
}
