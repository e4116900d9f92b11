//! Change validation. Automerge has no hook to vet a change before it is applied, so an incoming
//! sync message is applied to a *clone* of the document with a clone of the peer's sync state, the
//! difference between the old and new heads is examined, and the clone is kept only if every rule
//! holds. The caller's document and state are never touched: they are only borrowed.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::panic::{self, AssertUnwindSafe};

use automerge::{
    ActorId, AutoCommit, ChangeHash, ObjId, ObjType, Patch, PatchAction, Prop, ROOT, ReadDoc, ScalarValue,
    Value,
    sync::{self, SyncDoc},
};

use crate::chunks::{self, ChunkError};
use crate::json;
use crate::record::Document;
use crate::schema::{
    self, CheckResult, Disposal, InstructionPart, MAX_CHANGE_BYTES_PER_MESSAGE, MAX_LABEL_BYTES,
    MAX_MESSAGE_BYTES, MAX_NOTE_ENTRIES, MAX_PHOTOS, MAX_SAMPLES, NoteId, OfficerId, PhotoHash, SampleId,
    SchemaViolation, key,
};

/// What a peer may change in the document a session carries.
#[derive(Debug, Clone)]
pub enum Rules {
    /// The server's side of a record: only the officer-owned parts, only by the actors bound to
    /// the officers assigned to this record (actor → officer), and nothing once `sealed`.
    ///
    /// `sender` is the actor of the device that sent the message, as its login proves: every change
    /// new to the server must be that device's own. Devices never relay each other's changes, so a
    /// change under a colleague's actor is a forgery, however well its `by` fields match.
    Record { officers: BTreeMap<ActorId, OfficerId>, sender: ActorId, sealed: bool },
    /// The server's side of an assignment index: officers read it, never write it.
    ReadOnly,
    /// The handheld's side: whatever the server sends is taken as is.
    TrustServer,
}

/// What an accepted message added to the document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AcceptedChanges {
    /// New changes applied (0 for a message that only carries heads or requests).
    pub changes: usize,
    /// Their encoded size.
    pub bytes: usize,
    /// The actors that wrote them.
    pub actors: BTreeSet<ActorId>,
}

/// A message that passed: the document and sync state to keep in place of the old ones.
#[derive(Debug)]
pub struct Accepted<D> {
    pub doc: D,
    pub state: sync::State,
    pub changes: AcceptedChanges,
    /// The reply to the message, already drafted from `doc` and `state` (which count it as sent).
    pub reply: Option<Vec<u8>>,
}

/// Why a message was refused; the server's copy is as it was. [`Refusal::rule`] names the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the message is {size} bytes; the limit is {limit}")]
    MessageTooLarge { size: usize, limit: usize },
    #[error("not a usable sync message: {0}")]
    MalformedMessage(String),
    #[error("{0}")]
    InflatesTooFar(ChunkError),
    #[error("the record is sealed; it accepts no more changes")]
    SealedRecord,
    #[error("this document is read-only for officers")]
    ReadOnlyDocument,
    #[error("actor {actor} is not bound to an officer assigned to this record")]
    UnknownActor { actor: String },
    #[error(
        "a change by actor {actor} arrived from the device of actor {sender}; a device sends only its own changes"
    )]
    ForeignActor { actor: String, sender: String },
    #[error("the message adds {size} bytes of changes; the limit is {limit}")]
    TooManyChangeBytes { size: usize, limit: usize },
    #[error("{path} is server-owned")]
    ServerOwnedPath { path: String },
    #[error("{path} cannot be removed")]
    RemovedEntry { path: String },
    #[error("{path}: this kind of edit is not part of the schema")]
    UnsupportedEdit { path: String },
    #[error("an edit to {path} must also write its by and at")]
    UnstampedEdit { path: String },
    #[error("{path} names officer {claimed} but was written by actor {actor}, bound to {bound}")]
    AuthorMismatch { path: String, claimed: String, actor: String, bound: String },
    #[error(transparent)]
    Schema(#[from] SchemaViolation),
}

impl Refusal {
    /// A stable, machine-readable name of the broken rule, for API error codes.
    pub fn rule(&self) -> &'static str {
        match self {
            Self::MessageTooLarge { .. } => "message_too_large",
            Self::MalformedMessage(_) => "malformed_message",
            Self::InflatesTooFar(ChunkError::TooManyRows { .. }) => "too_many_operations",
            Self::InflatesTooFar(_) => "inflates_too_far",
            Self::SealedRecord => "sealed_record",
            Self::ReadOnlyDocument => "read_only_document",
            Self::UnknownActor { .. } => "unknown_actor",
            Self::ForeignActor { .. } => "foreign_actor",
            Self::TooManyChangeBytes { .. } => "too_many_change_bytes",
            Self::ServerOwnedPath { .. } => "server_owned_path",
            Self::RemovedEntry { .. } => "removed_entry",
            Self::UnsupportedEdit { .. } => "unsupported_edit",
            Self::UnstampedEdit { .. } => "unstamped_edit",
            Self::AuthorMismatch { .. } => "author_mismatch",
            Self::Schema(v) => v.rule(),
        }
    }
}

/// Applies `message` from the peer whose sync state is `state` to a copy of `doc`, and returns the
/// copy and the new state if `rules` allow every change it brings. All or nothing: one bad change
/// refuses the whole message.
pub fn validate_message<D: Document>(
    doc: &D,
    state: &sync::State,
    message: &[u8],
    rules: &Rules,
) -> Result<Accepted<D>, Refusal> {
    validate_within(doc, state, message, rules, MAX_CHANGE_BYTES_PER_MESSAGE)
}

/// [`validate_message`] on a document the caller gives up: no copy is made, and on refusal the
/// document is dropped (it may hold the refused changes), so the caller must read it again from
/// storage. Worth it where refusals are rare and documents are large: the server's sync engine.
///
/// `instruction`, when the caller knows the record's instruction part (see `RecordDoc::read_with`),
/// spares reading it from the document for the units of edited check items.
pub fn validate_owned<D: Document>(
    doc: D,
    state: &sync::State,
    message: &[u8],
    rules: &Rules,
    instruction: Option<&InstructionPart>,
) -> Result<Accepted<D>, Refusal> {
    let known = instruction.map(|i| Some(i.clone()));
    validate_fork(doc.into_automerge(), state, message, rules, MAX_CHANGE_BYTES_PER_MESSAGE, known)
}

/// [`validate_message`] with the change-byte limit as a parameter, so that its test does not have to
/// build 16 MiB of history.
fn validate_within<D: Document>(
    doc: &D,
    state: &sync::State,
    message: &[u8],
    rules: &Rules,
    change_byte_limit: usize,
) -> Result<Accepted<D>, Refusal> {
    if message.len() > MAX_MESSAGE_BYTES {
        return Err(Refusal::MessageTooLarge { size: message.len(), limit: MAX_MESSAGE_BYTES });
    }
    // `clone`, not `fork`: a fork gets a new random actor, and the copy we keep must still write
    // as the server.
    validate_fork(doc.automerge().clone(), state, message, rules, change_byte_limit, None)
}

/// Validates against `fork`, a copy (or a document given up) that becomes the accepted document.
fn validate_fork<D: Document>(
    mut fork: AutoCommit,
    state: &sync::State,
    message: &[u8],
    rules: &Rules,
    change_byte_limit: usize,
    instruction: Option<Option<InstructionPart>>,
) -> Result<Accepted<D>, Refusal> {
    if message.len() > MAX_MESSAGE_BYTES {
        return Err(Refusal::MessageTooLarge { size: message.len(), limit: MAX_MESSAGE_BYTES });
    }
    let mut state = state.clone();
    let before = fork.get_heads();
    let reply = receive(&mut fork, &mut state, message)?;
    let after = fork.get_heads();

    let new = if before == after { Vec::new() } else { fork.get_changes(&before) };
    let accepted = AcceptedChanges {
        changes: new.len(),
        bytes: new.iter().map(|c| c.raw_bytes().len()).sum(),
        actors: new.iter().map(|c| c.actor_id().clone()).collect(),
    };
    if !new.is_empty() {
        match rules {
            Rules::TrustServer => {}
            Rules::ReadOnly => return Err(Refusal::ReadOnlyDocument),
            Rules::Record { officers, sender, sealed } => {
                if *sealed {
                    return Err(Refusal::SealedRecord);
                }
                if accepted.bytes > change_byte_limit {
                    return Err(Refusal::TooManyChangeBytes {
                        size: accepted.bytes,
                        limit: change_byte_limit,
                    });
                }
                if let Some(actor) = accepted.actors.iter().find(|a| !officers.contains_key(a)) {
                    return Err(Refusal::UnknownActor { actor: actor.to_hex_string() });
                }
                if let Some(actor) = accepted.actors.iter().find(|a| *a != sender) {
                    return Err(Refusal::ForeignActor {
                        actor: actor.to_hex_string(),
                        sender: sender.to_hex_string(),
                    });
                }
                // `Automerge::diff`, not `AutoCommit::diff`: the latter keeps its last answer inside the
                // document, and the server keeps accepted documents in its cache.
                let patches = fork.document().diff(&before, &after);
                let check = RecordCheck {
                    doc: &fork,
                    officers,
                    new: new.iter().map(|c| c.hash()).collect(),
                    // A known part is the document's: the check below refuses any new change
                    // under `instruction` before a unit is looked up.
                    instruction: instruction.map_or_else(std::cell::OnceCell::new, std::cell::OnceCell::from),
                };
                check.run(&patches)?;
            }
        }
    }
    Ok(Accepted { doc: D::from_automerge(fork), state, changes: accepted, reply })
}

/// Decodes and applies the message, then drafts the reply on the copy as well (the one reply: kept
/// only if the message is accepted).
///
/// Automerge is not hardened against hostile input: it has panicked on malformed data before, and
/// it trusts the peer's `have` summary when it drafts a reply (a bloom filter with no bits divides
/// by zero, a huge probe count allocates gigabytes). So the summary is checked first, and a panic
/// while applying or drafting is turned into a refusal: it can only have poisoned the copy, which
/// is dropped.
fn receive(fork: &mut AutoCommit, state: &mut sync::State, bytes: &[u8]) -> Result<Option<Vec<u8>>, Refusal> {
    let applied = panic::catch_unwind(AssertUnwindSafe(|| {
        let message = sync::Message::decode(bytes).map_err(|e| Refusal::MalformedMessage(e.to_string()))?;
        check_have(&message)?;
        check_inflation(&message)?;
        fork.sync()
            .receive_sync_message(state, message)
            .map_err(|e| Refusal::MalformedMessage(e.to_string()))?;
        // Automerge 0.12 logs a patch for every applied operation into the document's own patch log,
        // active or not, and never drains it: a document that stays loaded (the server's cache, a
        // watching handheld) would grow with every message it ever received. A fresh log drops them.
        fork.reset_diff_cursor();
        Ok(fork.sync().generate_sync_message(state).map(sync::Message::encode))
    }));
    applied.unwrap_or_else(|_| Err(Refusal::MalformedMessage("automerge failed while processing it".into())))
}

/// Refuses a message whose changes would inflate past the limits, before automerge inflates them.
/// Automerge joins the message's chunk list before parsing it, so chunks may span its entries: the
/// walk is over the joined bytes too.
fn check_inflation(message: &sync::Message) -> Result<(), Refusal> {
    if message.changes.is_empty() {
        return Ok(());
    }
    let joined: Vec<u8> = message.changes.iter().flatten().copied().collect();
    match chunks::measure(&joined, chunks::Limits::default()) {
        Ok(_) => Ok(()),
        Err(ChunkError::Unreadable(why)) => Err(Refusal::MalformedMessage(why.to_owned())),
        Err(too_far) => Err(Refusal::InflatesTooFar(too_far)),
    }
}

/// Real peers send at most one `have` summary, built with automerge's parameters (10 bits per
/// entry, 7 probes); these bounds leave room for other implementations and nothing more.
const MAX_BLOOM_BITS_PER_ENTRY: u64 = 64;
const MAX_BLOOM_PROBES: u64 = 32;

fn check_have(message: &sync::Message) -> Result<(), Refusal> {
    let malformed = |why: &str| Err(Refusal::MalformedMessage(why.to_owned()));
    if message.have.len() > 1 {
        return malformed("more than one have summary");
    }
    for have in &message.have {
        // The encoding is empty for an empty filter, else: entries, bits per entry, probes, bits.
        let bytes = have.bloom.to_bytes();
        let mut input = bytes.as_slice();
        if input.is_empty() {
            continue;
        }
        let header = [(); 3].map(|_| leb128_u64(&mut input));
        let [Some(_entries), Some(bits), Some(probes)] = header else {
            return malformed("unreadable bloom filter");
        };
        if !(1..=MAX_BLOOM_BITS_PER_ENTRY).contains(&bits) || !(1..=MAX_BLOOM_PROBES).contains(&probes) {
            return malformed("implausible bloom filter parameters");
        }
    }
    Ok(())
}

fn leb128_u64(input: &mut &[u8]) -> Option<u64> {
    let mut value = 0_u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = input.split_first()?;
        *input = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// An officer-owned entry that the incoming changes touched; it is re-read whole afterwards.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Touched {
    Check(String),
    Photo(String),
    Sample(String),
    Signature(String),
    Verdict,
    Completion,
    Note(String),
}

fn prop_str(prop: &Prop) -> String {
    match prop {
        Prop::Map(k) => k.clone(),
        Prop::Seq(i) => i.to_string(),
    }
}

/// Maps one patch to the entry it touches, or refuses it if it lies outside the officer-owned parts.
fn touched_by(patch: &Patch) -> Result<Touched, Refusal> {
    let mut full: Vec<String> = patch.path.iter().map(|(_, p)| prop_str(p)).collect();
    let depth = full.len();
    match &patch.action {
        PatchAction::PutMap { key, .. } | PatchAction::DeleteMap { key } => full.push(key.clone()),
        PatchAction::Conflict { prop } | PatchAction::Increment { prop, .. } => full.push(prop_str(prop)),
        PatchAction::PutSeq { index, .. }
        | PatchAction::Insert { index, .. }
        | PatchAction::SpliceText { index, .. }
        | PatchAction::DeleteSeq { index, .. } => full.push(index.to_string()),
        PatchAction::Mark { .. } => {}
    }
    let path = full.join(".");
    // The root's keys, and so every container's existence and type, are the server's.
    let Some(container) = full.first().filter(|_| depth > 0) else {
        return Err(Refusal::ServerOwnedPath { path });
    };
    let entry_key = || full.get(1).cloned().unwrap_or_default();
    let removes_entry = depth == 1 && matches!(patch.action, PatchAction::DeleteMap { .. });
    match container.as_str() {
        // The keys of `checks` are the server's checklist: officers write inside them only.
        key::CHECKS if depth == 1 => Err(Refusal::ServerOwnedPath { path }),
        key::CHECKS => Ok(Touched::Check(entry_key())),
        key::PHOTOS | key::SAMPLES | key::SIGNATURES | key::NOTES if removes_entry => {
            Err(Refusal::RemovedEntry { path })
        }
        key::PHOTOS => Ok(Touched::Photo(entry_key())),
        key::SAMPLES => Ok(Touched::Sample(entry_key())),
        key::SIGNATURES => Ok(Touched::Signature(entry_key())),
        key::VERDICT => Ok(Touched::Verdict),
        key::COMPLETION => Ok(Touched::Completion),
        key::NOTES => Ok(Touched::Note(entry_key())),
        _ => Err(Refusal::ServerOwnedPath { path }),
    }
}

struct RecordCheck<'a> {
    doc: &'a AutoCommit,
    officers: &'a BTreeMap<ActorId, OfficerId>,
    /// The hashes of the changes this message adds: values written by them are the ones to vet.
    new: HashSet<ChangeHash>,
    /// The server-owned instruction part, read once when a check entry needs its item's unit.
    instruction: std::cell::OnceCell<Option<InstructionPart>>,
}

impl RecordCheck<'_> {
    fn run(&self, patches: &[Patch]) -> Result<(), Refusal> {
        let touched: BTreeSet<Touched> = patches.iter().map(touched_by).collect::<Result<_, _>>()?;
        for entry in &touched {
            self.check(entry)?;
        }
        Ok(())
    }

    fn container(&self, name: &str, ty: ObjType) -> Result<ObjId, Refusal> {
        schema::child(self.doc, &ROOT, name, ty)
            .ok_or_else(|| Refusal::ServerOwnedPath { path: name.to_owned() })
    }

    /// The entry map `collection[id]`; gone means removed, anything but a map is a wrong type.
    fn entry(&self, collection: &ObjId, id: &str, path: &str) -> Result<ObjId, Refusal> {
        match self.doc.get(collection, id).ok().flatten() {
            None => Err(Refusal::RemovedEntry { path: path.to_owned() }),
            Some((Value::Object(ObjType::Map | ObjType::Table), obj)) => Ok(obj),
            Some(_) => Err(SchemaViolation::InvalidValue { path: path.to_owned(), expected: "a map" }.into()),
        }
    }

    fn check(&self, touched: &Touched) -> Result<(), Refusal> {
        let doc = self.doc;
        match touched {
            Touched::Check(item) => {
                let path = schema::join(key::CHECKS, item);
                let checks = self.container(key::CHECKS, ObjType::Map)?;
                let obj = self.entry(&checks, item, &path)?;
                let entry = schema::read_check(doc, obj.clone(), path.clone())?;
                self.every_value(
                    &obj,
                    key::RESULT,
                    &path,
                    |v| schema::choice_value(v, CheckResult::parse).is_some(),
                    CheckResult::EXPECTED,
                )?;
                let number = |v: &ScalarValue| match v {
                    ScalarValue::F64(f) => f.is_finite(),
                    ScalarValue::Int(_) | ScalarValue::Uint(_) => true,
                    _ => false,
                };
                self.every_value(&obj, key::VALUE, &path, number, "a finite number")?;
                // Every concurrent unit, not only the winner, must be the item's: a losing reading in
                // the wrong unit would otherwise sit in the conflict a supervisor resolves.
                let item_def =
                    self.instruction().and_then(|i| i.checklist.iter().find(|c| &c.item_id == item));
                for (value, _) in self.all(&obj, key::UNIT, &path)? {
                    let unit = value.as_str().filter(|u| u.len() <= MAX_LABEL_BYTES).ok_or_else(|| {
                        SchemaViolation::InvalidValue {
                            path: schema::join(&path, key::UNIT),
                            expected: "a unit",
                        }
                    })?;
                    let reading = schema::Measurement { value: 0.0, unit: unit.to_owned() };
                    schema::check_unit(Some(&reading), item_def, &path)?;
                }
                schema::check_unit(entry.measurement.as_ref(), item_def, &path)?;
                self.restamped(&obj, &path)
            }
            Touched::Photo(hash) => {
                let path = schema::join(key::PHOTOS, hash);
                PhotoHash::parse(hash.as_str()).map_err(|_| SchemaViolation::InvalidValue {
                    path: path.clone(),
                    expected: "keyed by a SHA-256 (64 lowercase hex digits)",
                })?;
                let photos = self.container(key::PHOTOS, ObjType::Map)?;
                let obj = self.entry(&photos, hash, &path)?;
                let checks = self.container(key::CHECKS, ObjType::Map)?;
                let on_checklist = |item: &str| schema::child(doc, &checks, item, ObjType::Map).is_some();
                schema::read_photo(doc, obj.clone(), path.clone(), &on_checklist)?;
                schema::check_count(doc, &photos, key::PHOTOS, MAX_PHOTOS)?;
                self.restamped(&obj, &path)
            }
            Touched::Sample(id) => {
                let path = schema::join(key::SAMPLES, id);
                SampleId::parse(id.as_str()).map_err(|_| SchemaViolation::InvalidValue {
                    path: path.clone(),
                    expected: "keyed by a sample id",
                })?;
                let samples = self.container(key::SAMPLES, ObjType::Map)?;
                let obj = self.entry(&samples, id, &path)?;
                schema::read_sample(doc, obj.clone(), path.clone())?;
                schema::check_count(doc, &samples, key::SAMPLES, MAX_SAMPLES)?;
                self.restamped(&obj, &path)
            }
            Touched::Signature(officer) => {
                let path = schema::join(key::SIGNATURES, officer);
                OfficerId::parse(officer.as_str()).map_err(|_| SchemaViolation::InvalidValue {
                    path: path.clone(),
                    expected: "keyed by an officer id",
                })?;
                let signatures = self.container(key::SIGNATURES, ObjType::Map)?;
                let obj = self.entry(&signatures, officer, &path)?;
                let signature = schema::read_signature(doc, obj.clone(), path.clone())?;
                // Schema 1 signatures carry no digest and are read as void; a new one must say what
                // it signs.
                if signature.digest.is_none() {
                    return Err(
                        SchemaViolation::MissingField { path: schema::join(&path, key::DIGEST) }.into()
                    );
                }
                // Only the officer named by the key may write under it, the entry itself included.
                let writes = [
                    (&signatures, officer.as_str()),
                    (&obj, key::STATEMENT),
                    (&obj, key::AT),
                    (&obj, key::DIGEST),
                ];
                for (parent, prop) in writes {
                    for (_, id) in self.all(parent, prop, &path)? {
                        if let Some((actor, bound)) = self.new_write(&id)?
                            && bound.as_str() != officer
                        {
                            return Err(mismatch(&path, officer, actor, bound));
                        }
                    }
                }
                Ok(())
            }
            Touched::Verdict => {
                let path = key::VERDICT.to_owned();
                let obj = self.container(key::VERDICT, ObjType::Map)?;
                schema::read_verdict(doc, obj.clone(), path.clone())?;
                let value_ok =
                    |v: &ScalarValue| schema::choice_value(v, schema::parse_verdict_value).is_some();
                self.every_value(&obj, key::VALUE, &path, value_ok, schema::VERDICT_EXPECTED)?;
                self.every_value(
                    &obj,
                    key::DISPOSAL,
                    &path,
                    |v| schema::choice_value(v, Disposal::parse).is_some(),
                    Disposal::EXPECTED,
                )?;
                self.restamped(&obj, &path)
            }
            Touched::Completion => {
                let path = key::COMPLETION.to_owned();
                let obj = self.container(key::COMPLETION, ObjType::Map)?;
                schema::read_completion(doc, obj.clone(), path.clone())?;
                self.restamped(&obj, &path)
            }
            Touched::Note(id) => {
                let path = schema::join(key::NOTES, id);
                let note_id = NoteId::parse(id.as_str()).map_err(|_| SchemaViolation::InvalidValue {
                    path: path.clone(),
                    expected: "keyed by a note id",
                })?;
                let notes = self.container(key::NOTES, ObjType::Map)?;
                let obj = self.entry(&notes, id, &path)?;
                schema::read_note(doc, obj.clone(), note_id, path.clone())?;
                schema::check_count(doc, &notes, key::NOTES, MAX_NOTE_ENTRIES)?;
                self.restamped(&obj, &path)
            }
        }
    }

    /// The record's instruction part (`None` if unreadable, which `read_check` callers never meet:
    /// the server wrote it and officers cannot change it).
    fn instruction(&self) -> Option<&InstructionPart> {
        self.instruction
            .get_or_init(|| {
                let obj = schema::child(self.doc, &ROOT, key::INSTRUCTION, ObjType::Map)?;
                json::get(self.doc, &obj, key::INSTRUCTION).ok()
            })
            .as_ref()
    }

    /// Every concurrent value at `obj[prop]`; an unreadable object fails closed.
    fn all(&self, obj: &ObjId, prop: &str, path: &str) -> Result<Vec<(Value<'_>, ObjId)>, Refusal> {
        self.doc
            .get_all(obj, prop)
            .map_err(|_| SchemaViolation::InvalidValue { path: path.to_owned(), expected: "a map" }.into())
    }

    /// The actor, and its officer, if the op `id` belongs to one of the new changes.
    fn new_write<'b>(&'b self, id: &'b ObjId) -> Result<Option<(&'b ActorId, &'b OfficerId)>, Refusal> {
        let ObjId::Id(_, actor, _) = id else {
            return Ok(None);
        };
        let is_new = self.doc.hash_for_opid(id).is_some_and(|hash| self.new.contains(&hash));
        if !is_new {
            return Ok(None);
        }
        match self.officers.get(actor) {
            Some(officer) => Ok(Some((actor, officer))),
            None => Err(Refusal::UnknownActor { actor: actor.to_hex_string() }),
        }
    }

    /// Every concurrent value at `obj[prop]`, not just the winner, must be valid: the losing
    /// ones are what the conflict report shows a supervisor.
    fn every_value(
        &self,
        obj: &ObjId,
        prop: &str,
        path: &str,
        valid: impl Fn(&ScalarValue) -> bool,
        expected: &'static str,
    ) -> Result<(), Refusal> {
        for (value, _) in self.all(obj, prop, path)? {
            let ok = matches!(&value, Value::Scalar(s) if valid(s));
            if !ok {
                return Err(SchemaViolation::InvalidValue { path: schema::join(path, prop), expected }.into());
            }
        }
        Ok(())
    }

    /// An edited entry must carry a new `by` and `at`, and every new `by` must name the officer
    /// bound to the actor that wrote it: otherwise a field could change under someone else's name.
    fn restamped(&self, obj: &ObjId, path: &str) -> Result<(), Refusal> {
        let mut by_written = false;
        for (value, id) in self.all(obj, key::BY, path)? {
            if let Some((actor, bound)) = self.new_write(&id)? {
                let claimed = value.as_str().unwrap_or_default();
                if claimed != bound.as_str() {
                    return Err(mismatch(&schema::join(path, key::BY), claimed, actor, bound));
                }
                by_written = true;
            }
        }
        let mut at_written = false;
        for (_, id) in self.all(obj, key::AT, path)? {
            at_written |= self.new_write(&id)?.is_some();
        }
        if by_written && at_written { Ok(()) } else { Err(Refusal::UnstampedEdit { path: path.to_owned() }) }
    }
}

fn mismatch(path: &str, claimed: &str, actor: &ActorId, bound: &OfficerId) -> Refusal {
    Refusal::AuthorMismatch {
        path: path.to_owned(),
        claimed: claimed.to_owned(),
        actor: actor.to_hex_string(),
        bound: bound.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::RecordDoc;
    use crate::record::sealed::Sealed;
    use crate::record::tests::{photo, photo_hash, server_record, stamp};
    use crate::schema::{MAX_NOTE_BYTES, MAX_NOTE_ENTRY_BYTES, Measurement, NoteId, Verdict};
    use automerge::sync::{ChunkList, Message, MessageVersion};
    use automerge::transaction::{CommitOptions, Transactable};

    /// The server's record, and copies of it on alice's and bob's handhelds.
    struct Scene {
        server: RecordDoc,
        alice: RecordDoc,
        bob: RecordDoc,
    }

    fn device_copy(server: &RecordDoc, actor: ActorId) -> RecordDoc {
        RecordDoc::from_automerge(server.automerge().clone().with_actor(actor))
    }

    fn scene() -> Scene {
        let server = server_record();
        Scene {
            alice: device_copy(&server, crate::new_actor_id()),
            bob: device_copy(&server, crate::new_actor_id()),
            server,
        }
    }

    impl Scene {
        fn rules(&self) -> Rules {
            self.rules_sealed(false)
        }

        fn rules_sealed(&self, sealed: bool) -> Rules {
            self.rules_for(self.alice.actor(), sealed)
        }

        /// The rules for a message sent by the device whose actor is `sender`.
        fn rules_for(&self, sender: &ActorId, sealed: bool) -> Rules {
            let officers = [(&self.alice, "alice"), (&self.bob, "bob")]
                .into_iter()
                .map(|(d, o)| (d.actor().clone(), OfficerId::parse(o).unwrap()))
                .collect();
            Rules::Record { officers, sender: sender.clone(), sealed }
        }

        /// Validates what `device` has and the server has not, as one incoming message sent by
        /// `device` itself.
        fn send(&mut self, device: &RecordDoc) -> Result<Accepted<RecordDoc>, Refusal> {
            self.send_from(device, &device.actor().clone())
        }

        /// As [`send`](Self::send), but arriving from the device whose actor is `sender`.
        fn send_from(
            &mut self,
            device: &RecordDoc,
            sender: &ActorId,
        ) -> Result<Accepted<RecordDoc>, Refusal> {
            let message = message_since(device, &self.server.heads());
            validate_message(&self.server, &sync::State::new(), &message, &self.rules_for(sender, false))
        }

        fn refusal(&mut self, device: &RecordDoc) -> Refusal {
            let heads = self.server.heads();
            let refusal = self.send(device).expect_err("the message should be refused");
            assert_eq!(self.server.heads(), heads, "the server copy must be untouched");
            refusal
        }
    }

    /// A sync message carrying every change of `device` that is not in `base`.
    fn message_since(device: &RecordDoc, base: &[ChangeHash]) -> Vec<u8> {
        let mut doc = device.automerge().clone();
        let changes: Vec<Vec<u8>> = doc.get_changes(base).iter().map(|c| c.raw_bytes().to_vec()).collect();
        Message {
            heads: doc.get_heads(),
            need: vec![],
            have: vec![],
            changes: ChunkList::from(changes),
            flags: None,
            version: MessageVersion::V1,
        }
        .encode()
    }

    /// The object at a path of map keys from the root.
    fn obj(doc: &AutoCommit, path: &[&str]) -> ObjId {
        path.iter().fold(ROOT, |o, k| match doc.get(&o, *k).unwrap() {
            Some((Value::Object(_), id)) => id,
            other => panic!("{k}: {other:?}"),
        })
    }

    /// A raw edit, as a buggy or hostile client could make it, committed as one change.
    fn raw(device: &mut RecordDoc, f: impl FnOnce(&mut AutoCommit)) {
        let doc = device.automerge_mut();
        f(doc);
        doc.commit_with(CommitOptions::default().with_time(1));
    }

    /// Writes `by` and `at` the way the typed operations do.
    fn stamp_raw(doc: &mut AutoCommit, obj: &ObjId, by: &str) {
        for k in [key::BY, key::AT] {
            if doc.get(obj, k).unwrap().is_some() {
                doc.delete(obj, k).unwrap();
            }
        }
        doc.put(obj, key::BY, by).unwrap();
        doc.put(obj, key::AT, 1_750_000_000_000_i64).unwrap();
    }

    #[test]
    fn an_officers_edits_are_accepted_with_a_summary() {
        let mut s = scene();
        s.alice.set_check_result("c1", CheckResult::Pass, &stamp("alice", 1)).unwrap();
        s.alice.attach_photo(&photo_hash(1), &photo(), &stamp("alice", 2)).unwrap();
        s.alice.put_note(&NoteId::parse("n1").unwrap(), "all dry", &stamp("alice", 3)).unwrap();
        let before = s.server.heads();

        let accepted = s.send(&s.alice.clone()).unwrap();
        assert_eq!(accepted.changes.changes, 3);
        assert!(accepted.changes.bytes > 0);
        assert_eq!(accepted.changes.actors, BTreeSet::from([s.alice.actor().clone()]));
        let mut doc = accepted.doc;
        assert_eq!(doc.heads(), s.alice.heads());
        assert_eq!(doc.actor(), s.server.actor(), "the copy still writes as the server");
        assert_eq!(doc.read().unwrap().notes[0].text, "all dry");
        assert_eq!(s.server.heads(), before);
    }

    #[test]
    fn a_message_without_new_changes_is_accepted_even_when_sealed() {
        let mut s = scene();
        let message = message_since(&s.alice, &s.server.heads());
        let accepted =
            validate_message(&s.server, &sync::State::new(), &message, &s.rules_sealed(true)).unwrap();
        assert_eq!(accepted.changes, AcceptedChanges::default());
    }

    #[test]
    fn a_message_over_the_size_limit_is_refused() {
        let s = scene();
        let huge = vec![0x42; MAX_MESSAGE_BYTES + 1];
        let refusal = validate_message(&s.server, &sync::State::new(), &huge, &s.rules()).unwrap_err();
        assert_eq!(refusal.rule(), "message_too_large");
    }

    #[test]
    fn garbage_bytes_are_refused_cleanly() {
        let s = scene();
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut inputs: Vec<Vec<u8>> = vec![vec![], vec![0x42], vec![0x43, 0xff, 0xff, 0xff]];
        for len in 0..300 {
            inputs.push(
                (0..len)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        seed as u8
                    })
                    .collect(),
            );
        }
        // Plausible headers with random bodies get further into the parser.
        for input in inputs.clone() {
            let mut v1 = vec![0x42];
            v1.extend(&input);
            inputs.push(v1);
        }
        for input in &inputs {
            let refusal = validate_message(&s.server, &sync::State::new(), input, &s.rules())
                .err()
                .unwrap_or_else(|| panic!("accepted garbage {input:?}"));
            assert_eq!(refusal.rule(), "malformed_message");
        }
    }

    #[test]
    fn a_truncated_message_is_refused_or_harmless_and_never_panics() {
        let mut s = scene();
        s.alice.set_check_result("c1", CheckResult::Pass, &stamp("alice", 1)).unwrap();
        let message = message_since(&s.alice, &s.server.heads());
        for cut in 0..message.len() {
            match validate_message(&s.server, &sync::State::new(), &message[..cut], &s.rules()) {
                Err(refusal) => assert_eq!(refusal.rule(), "malformed_message", "cut at {cut}"),
                Ok(accepted) => assert_eq!(accepted.changes.changes, 0, "cut at {cut}"),
            }
        }
    }

    #[test]
    fn a_degenerate_have_summary_is_refused_before_automerge_trips_on_it() {
        let s = scene();
        let degenerate = |bloom: &[u8]| sync::Have {
            last_sync: vec![],
            bloom: sync::BloomFilter::try_from(bloom).unwrap(),
        };
        let message = |have: Vec<sync::Have>| {
            Message {
                heads: vec![],
                need: vec![],
                have,
                changes: ChunkList::empty(),
                flags: None,
                version: MessageVersion::V1,
            }
            .encode()
        };
        // 5 entries, 0 bits each: automerge's reply would divide by zero.
        let zero_bits = message(vec![degenerate(&[5, 0, 7])]);
        // 2^32-1 probes: automerge would try to allocate 16 GiB for them.
        let many_probes = message(vec![degenerate(&[1, 10, 0xff, 0xff, 0xff, 0xff, 0x0f, 0xff, 0xff])]);
        let two = message(vec![sync::Have::default(), sync::Have::default()]);
        for bytes in [zero_bits, many_probes, two] {
            let refusal = validate_message(&s.server, &sync::State::new(), &bytes, &s.rules()).unwrap_err();
            assert_eq!(refusal.rule(), "malformed_message");
        }
    }

    #[test]
    fn mutated_messages_never_panic_and_anything_accepted_is_a_valid_record() {
        let mut s = scene();
        s.alice.set_check_result("c1", CheckResult::Pass, &stamp("alice", 1)).unwrap();
        s.alice.put_note(&NoteId::parse("n1").unwrap(), "dry", &stamp("alice", 2)).unwrap();
        let message = message_since(&s.alice, &s.server.heads());
        let mut seed = 0x853c_49e6_748f_ea9b_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..1000 {
            let mut bytes = message.clone();
            for _ in 0..=next() % 3 {
                let at = next() as usize % bytes.len();
                bytes[at] = next() as u8;
            }
            if let Ok(accepted) = validate_message(&s.server, &sync::State::new(), &bytes, &s.rules()) {
                accepted.doc.read().unwrap();
            }
        }
    }

    #[test]
    fn a_sealed_record_refuses_new_changes() {
        let mut s = scene();
        s.alice.set_check_result("c1", CheckResult::Pass, &stamp("alice", 1)).unwrap();
        let message = message_since(&s.alice, &s.server.heads());
        let refusal =
            validate_message(&s.server, &sync::State::new(), &message, &s.rules_sealed(true)).unwrap_err();
        assert_eq!(refusal, Refusal::SealedRecord);
    }

    #[test]
    fn an_edit_to_the_instruction_part_is_refused() {
        let mut s = scene();
        let mut alice = s.alice.clone();
        raw(&mut alice, |doc| {
            let instruction = obj(doc, &[key::INSTRUCTION]);
            doc.put(&instruction, "site", "somewhere else").unwrap();
        });
        assert_eq!(s.refusal(&alice), Refusal::ServerOwnedPath { path: "instruction.site".into() });
    }

    #[test]
    fn a_new_root_key_or_replaced_container_is_refused() {
        let mut s = scene();
        let mut alice = s.alice.clone();
        raw(&mut alice, |doc| {
            doc.put(ROOT, "extra", 1).unwrap();
        });
        assert_eq!(s.refusal(&alice).rule(), "server_owned_path");

        let mut alice = s.alice.clone();
        raw(&mut alice, |doc| {
            doc.put_object(ROOT, key::PHOTOS, ObjType::Map).unwrap();
        });
        assert_eq!(s.refusal(&alice), Refusal::ServerOwnedPath { path: "photos".into() });
    }

    #[test]
    fn adding_a_check_item_is_refused() {
        let mut s = scene();
        let mut alice = s.alice.clone();
        raw(&mut alice, |doc| {
            let checks = obj(doc, &[key::CHECKS]);
            let item = doc.put_object(&checks, "c9", ObjType::Map).unwrap();
            doc.put(&item, key::RESULT, "pass").unwrap();
            stamp_raw(doc, &item, "alice");
        });
        assert_eq!(s.refusal(&alice), Refusal::ServerOwnedPath { path: "checks.c9".into() });
    }

    #[test]
    fn a_change_from_an_actor_not_bound_to_an_assigned_officer_is_refused() {
        let mut s = scene();
        let mut stranger = device_copy(&s.server, crate::new_actor_id());
        stranger.set_check_result("c1", CheckResult::Pass, &stamp("alice", 1)).unwrap();
        assert_eq!(s.refusal(&stranger), Refusal::UnknownActor { actor: stranger.actor().to_hex_string() });
    }

    #[test]
    fn a_change_under_a_co_assigned_colleagues_actor_is_refused() {
        let mut s = scene();
        // Alice's handheld commits as bob's device, signs as bob and fails an item in his name:
        // every `by` matches the actor, so only the sender binding can catch it.
        let mut forged = device_copy(&s.server, s.bob.actor().clone());
        forged.set_check_result("c1", CheckResult::Fail, &stamp("bob", 1)).unwrap();
        let heads = s.server.heads();
        let alice = s.alice.actor().clone();
        let refusal = s.send_from(&forged, &alice).expect_err("a relayed change must be refused");
        assert_eq!(
            refusal,
            Refusal::ForeignActor { actor: s.bob.actor().to_hex_string(), sender: alice.to_hex_string() }
        );
        assert_eq!(refusal.rule(), "foreign_actor");
        assert_eq!(s.server.heads(), heads);
        // The same change sent from bob's own device is his, and accepted.
        assert_eq!(s.send(&forged).unwrap().changes.changes, 1);
    }

    #[test]
    fn a_change_forged_under_the_servers_actor_is_refused() {
        let mut s = scene();
        let mut forger = device_copy(&s.server, s.server.actor().clone());
        forger.set_check_result("c1", CheckResult::Pass, &stamp("alice", 1)).unwrap();
        assert_eq!(s.refusal(&forger).rule(), "unknown_actor");
    }

    #[test]
    fn a_check_result_outside_the_allowed_values_is_refused() {
        let mut s = scene();
        let mut alice = s.alice.clone();
        raw(&mut alice, |doc| {
            let item = obj(doc, &[key::CHECKS, "c1"]);
            doc.put(&item, key::RESULT, "maybe").unwrap();
            stamp_raw(doc, &item, "alice");
        });
        assert_eq!(
            s.refusal(&alice),
            Refusal::Schema(SchemaViolation::InvalidValue {
                path: "checks.c1.result".into(),
                expected: CheckResult::EXPECTED
            })
        );
    }

    #[test]
    fn a_measurement_that_is_not_a_number_is_refused() {
        let mut s = scene();
        let mut alice = s.alice.clone();
        raw(&mut alice, |doc| {
            let item = obj(doc, &[key::CHECKS, "c2"]);
            doc.put(&item, key::VALUE, "eleven").unwrap();
            doc.put(&item, key::UNIT, "%").unwrap();
            stamp_raw(doc, &item, "alice");
        });
        assert_eq!(s.refusal(&alice).rule(), "invalid_value");
    }

    #[test]
    fn a_measurement_in_another_unit_than_the_checklist_items_is_refused() {
        let mut s = scene();
        let mut alice = s.alice.clone();
        raw(&mut alice, |doc| {
            let item = obj(doc, &[key::CHECKS, "c2"]);
            doc.put(&item, key::VALUE, 11.5).unwrap();
            doc.put(&item, key::UNIT, "g/kg").unwrap();
            stamp_raw(doc, &item, "alice");
        });
        assert_eq!(
            s.refusal(&alice),
            Refusal::Schema(SchemaViolation::WrongUnit {
                path: "checks.c2.unit".into(),
                found: "g/kg".into(),
                expected: "%".into()
            })
        );
    }

    #[test]
    fn a_concurrent_reading_in_the_wrong_unit_is_refused_even_when_it_loses() {
        // Bob's actor sorts lowest, so his reading loses to Alice's and only shows in get_all.
        let server = server_record();
        let mut s = Scene {
            alice: device_copy(&server, ActorId::from([0xff; 16])),
            bob: device_copy(&server, ActorId::from([0x00; 16])),
            server,
        };
        let reading = Measurement { value: 11.0, unit: "%".into() };
        s.alice.set_measurement("c2", Some(&reading), &stamp("alice", 1)).unwrap();
        s.server = s.send(&s.alice.clone()).unwrap().doc;
        let mut bob = s.bob.clone();
        raw(&mut bob, |doc| {
            let item = obj(doc, &[key::CHECKS, "c2"]);
            doc.put(&item, key::VALUE, 52.0).unwrap();
            doc.put(&item, key::UNIT, "°F").unwrap();
            stamp_raw(doc, &item, "bob");
        });
        assert_eq!(s.refusal(&bob).rule(), "wrong_unit");
    }

    #[test]
    fn a_signature_without_the_digest_it_covers_is_refused() {
        let mut s = scene();
        let mut alice = s.alice.clone();
        raw(&mut alice, |doc| {
            let signatures = obj(doc, &[key::SIGNATURES]);
            let sig = doc.put_object(&signatures, "alice", ObjType::Map).unwrap();
            doc.put(&sig, key::STATEMENT, "I inspected the goods").unwrap();
            doc.put(&sig, key::AT, 1_750_000_000_000_i64).unwrap();
        });
        assert_eq!(
            s.refusal(&alice),
            Refusal::Schema(SchemaViolation::MissingField { path: "signatures.alice.digest".into() })
        );
        let mut signed = s.alice.clone();
        signed.sign("I inspected the goods", &stamp("alice", 1)).unwrap();
        s.send(&signed).unwrap();
    }

    #[test]
    fn an_invalid_value_that_loses_a_conflict_is_refused_too() {
        // Bob's actor sorts lowest, so his concurrent write loses and only shows in get_all.
        let server = server_record();
        let mut s = Scene {
            alice: device_copy(&server, ActorId::from([0xff; 16])),
            bob: device_copy(&server, ActorId::from([0x00; 16])),
            server,
        };
        s.alice.set_check_result("c1", CheckResult::Pass, &stamp("alice", 1)).unwrap();
        let accepted = s.send(&s.alice.clone()).unwrap();
        s.server = accepted.doc;

        let mut bob = s.bob.clone();
        raw(&mut bob, |doc| {
            let item = obj(doc, &[key::CHECKS, "c1"]);
            doc.put(&item, key::RESULT, 42).unwrap();
            stamp_raw(doc, &item, "bob");
        });
        assert_eq!(
            s.refusal(&bob),
            Refusal::Schema(SchemaViolation::InvalidValue {
                path: "checks.c1.result".into(),
                expected: CheckResult::EXPECTED
            })
        );
    }

    #[test]
    fn an_unknown_field_is_refused() {
        let mut s = scene();
        let mut alice = s.alice.clone();
        raw(&mut alice, |doc| {
            let item = obj(doc, &[key::CHECKS, "c1"]);
            doc.put(&item, "colour", "red").unwrap();
            stamp_raw(doc, &item, "alice");
        });
        assert_eq!(
            s.refusal(&alice),
            Refusal::Schema(SchemaViolation::UnknownField { path: "checks.c1.colour".into() })
        );
    }

    #[test]
    fn a_non_conforming_verdict_without_a_disposal_is_refused() {
        let mut s = scene();
        let mut alice = s.alice.clone();
        raw(&mut alice, |doc| {
            let verdict = obj(doc, &[key::VERDICT]);
            doc.put(&verdict, key::VALUE, "non_conforming").unwrap();
            stamp_raw(doc, &verdict, "alice");
        });
        assert_eq!(
            s.refusal(&alice),
            Refusal::Schema(SchemaViolation::MissingField { path: "verdict.disposal".into() })
        );
    }

    #[test]
    fn an_oversized_check_note_is_refused() {
        let mut s = scene();
        let mut alice = s.alice.clone();
        raw(&mut alice, |doc| {
            let item = obj(doc, &[key::CHECKS, "c1"]);
            doc.put(&item, key::NOTE, "x".repeat(MAX_NOTE_BYTES + 1)).unwrap();
            stamp_raw(doc, &item, "alice");
        });
        assert_eq!(s.refusal(&alice).rule(), "too_large");
    }

    #[test]
    fn a_note_past_its_limit_is_refused() {
        let mut s = scene();
        let mut alice = s.alice.clone();
        raw(&mut alice, |doc| {
            let notes = obj(doc, &[key::NOTES]);
            let note = doc.put_object(&notes, "n1", ObjType::Map).unwrap();
            doc.put(&note, key::TEXT, "n".repeat(MAX_NOTE_ENTRY_BYTES + 1)).unwrap();
            stamp_raw(doc, &note, "alice");
        });
        assert_eq!(
            s.refusal(&alice),
            Refusal::Schema(SchemaViolation::TooLarge {
                path: "notes.n1.text".into(),
                size: MAX_NOTE_ENTRY_BYTES + 1,
                limit: MAX_NOTE_ENTRY_BYTES
            })
        );
    }

    #[test]
    fn a_note_in_a_colleagues_name_or_removed_is_refused() {
        let mut s = scene();
        let mut alice = s.alice.clone();
        alice.put_note(&NoteId::parse("n1").unwrap(), "seal intact", &stamp("bob", 1)).unwrap();
        assert_eq!(s.refusal(&alice).rule(), "author_mismatch");

        s.alice.put_note(&NoteId::parse("n1").unwrap(), "seal intact", &stamp("alice", 1)).unwrap();
        s.server = s.send(&s.alice.clone()).unwrap().doc;
        let mut alice = s.alice.clone();
        raw(&mut alice, |doc| {
            let notes = obj(doc, &[key::NOTES]);
            doc.delete(&notes, "n1").unwrap();
        });
        assert_eq!(s.refusal(&alice), Refusal::RemovedEntry { path: "notes.n1".into() });
    }

    #[test]
    fn photos_beyond_the_limit_are_refused() {
        let mut s = scene();
        let mut alice = s.alice.clone();
        for n in 0..MAX_PHOTOS as u16 {
            alice.attach_photo(&photo_hash(n), &photo(), &stamp("alice", 1)).unwrap();
        }
        raw(&mut alice, |doc| {
            let photos = obj(doc, &[key::PHOTOS]);
            let extra = doc.put_object(&photos, photo_hash(9999).as_str(), ObjType::Map).unwrap();
            doc.put(&extra, key::CAPTION, "one too many").unwrap();
            doc.put(&extra, key::TAKEN_AT, 1_i64).unwrap();
            stamp_raw(doc, &extra, "alice");
        });
        assert_eq!(
            s.refusal(&alice),
            Refusal::Schema(SchemaViolation::TooMany {
                path: "photos".into(),
                count: MAX_PHOTOS + 1,
                limit: MAX_PHOTOS
            })
        );
    }

    #[test]
    fn a_photo_not_keyed_by_a_sha256_is_refused() {
        let mut s = scene();
        let mut alice = s.alice.clone();
        raw(&mut alice, |doc| {
            let photos = obj(doc, &[key::PHOTOS]);
            let p = doc.put_object(&photos, "IMG_0001.jpg", ObjType::Map).unwrap();
            doc.put(&p, key::CAPTION, "").unwrap();
            doc.put(&p, key::TAKEN_AT, 1_i64).unwrap();
            stamp_raw(doc, &p, "alice");
        });
        assert_eq!(s.refusal(&alice).rule(), "invalid_value");
    }

    #[test]
    fn removing_a_photo_is_refused() {
        let mut s = scene();
        s.alice.attach_photo(&photo_hash(1), &photo(), &stamp("alice", 1)).unwrap();
        s.server = s.send(&s.alice.clone()).unwrap().doc;
        let mut alice = s.alice.clone();
        raw(&mut alice, |doc| {
            let photos = obj(doc, &[key::PHOTOS]);
            doc.delete(&photos, photo_hash(1).as_str()).unwrap();
        });
        assert_eq!(s.refusal(&alice), Refusal::RemovedEntry { path: format!("photos.{}", photo_hash(1)) });
    }

    #[test]
    fn replacing_the_officers_list_is_refused() {
        let mut s = scene();
        let mut alice = s.alice.clone();
        raw(&mut alice, |doc| {
            let list = doc.put_object(ROOT, key::OFFICERS, ObjType::List).unwrap();
            doc.insert(&list, 0, "alice").unwrap();
        });
        assert_eq!(s.refusal(&alice), Refusal::ServerOwnedPath { path: "officers".into() });
    }

    #[test]
    fn an_edit_that_does_not_restamp_its_entry_is_refused() {
        let mut s = scene();
        s.alice.set_check_result("c1", CheckResult::Pass, &stamp("alice", 1)).unwrap();
        s.server = s.send(&s.alice.clone()).unwrap().doc;
        let mut alice = s.alice.clone();
        raw(&mut alice, |doc| {
            let item = obj(doc, &[key::CHECKS, "c1"]);
            doc.put(&item, key::RESULT, "fail").unwrap();
        });
        assert_eq!(s.refusal(&alice), Refusal::UnstampedEdit { path: "checks.c1".into() });
    }

    #[test]
    fn an_edit_stamped_with_another_officers_name_is_refused() {
        let mut s = scene();
        let mut alice = s.alice.clone();
        alice.set_check_result("c1", CheckResult::Fail, &stamp("bob", 1)).unwrap();
        assert_eq!(
            s.refusal(&alice),
            Refusal::AuthorMismatch {
                path: "checks.c1.by".into(),
                claimed: "bob".into(),
                actor: alice.actor().to_hex_string(),
                bound: "alice".into(),
            }
        );
    }

    #[test]
    fn signing_for_another_officer_is_refused() {
        let mut s = scene();
        let mut alice = s.alice.clone();
        alice.sign("I inspected these goods.", &stamp("bob", 1)).unwrap();
        assert_eq!(s.refusal(&alice).rule(), "author_mismatch");

        let mut alice = s.alice.clone();
        alice.sign("I inspected these goods.", &stamp("alice", 1)).unwrap();
        assert!(s.send(&alice).is_ok());
    }

    #[test]
    fn a_message_adding_too_many_change_bytes_is_refused() {
        let s = scene();
        let mut alice = s.alice.clone();
        for n in 0..5 {
            alice.set_check_note("c1", &"n".repeat(1000 + n), &stamp("alice", 1)).unwrap();
        }
        let mut server = s.server.clone();
        let message = message_since(&alice, &server.heads());
        let refusal = validate_within(&server, &sync::State::new(), &message, &s.rules(), 4096).unwrap_err();
        assert!(matches!(refusal, Refusal::TooManyChangeBytes { limit: 4096, .. }), "{refusal:?}");
        assert!(validate_message(&server, &sync::State::new(), &message, &s.rules()).is_ok());
    }

    #[test]
    fn a_compressed_change_that_inflates_past_the_limit_is_refused_before_automerge_inflates_it() {
        use std::io::Write;
        let s = scene();
        let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(&vec![0; schema::MAX_INFLATED_CHUNK_BYTES + 1]).unwrap();
        let deflated = encoder.finish().unwrap();
        // Automerge's chunk header: magic, checksum, type 2 (compressed change), LEB128 length.
        let mut chunk = vec![0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 2];
        let mut len = deflated.len();
        while len >= 0x80 {
            chunk.push((len as u8 & 0x7f) | 0x80);
            len >>= 7;
        }
        chunk.push(len as u8);
        chunk.extend(deflated);
        let message = Message {
            heads: vec![],
            need: vec![],
            have: vec![],
            changes: ChunkList::from(vec![chunk]),
            flags: None,
            version: MessageVersion::V1,
        }
        .encode();
        let refusal = validate_message(&s.server, &sync::State::new(), &message, &s.rules()).unwrap_err();
        assert_eq!(refusal.rule(), "inflates_too_far", "{refusal}");
    }

    #[test]
    fn a_change_touching_a_good_and_a_bad_path_is_refused_whole() {
        let mut s = scene();
        let mut alice = s.alice.clone();
        raw(&mut alice, |doc| {
            let item = obj(doc, &[key::CHECKS, "c1"]);
            doc.put(&item, key::RESULT, "pass").unwrap();
            stamp_raw(doc, &item, "alice");
            let instruction = obj(doc, &[key::INSTRUCTION]);
            doc.put(&instruction, "deadline", 0).unwrap();
        });
        assert_eq!(s.refusal(&alice).rule(), "server_owned_path");
    }

    #[test]
    fn a_message_with_a_good_and_a_bad_change_is_refused_whole() {
        let mut s = scene();
        let mut alice = s.alice.clone();
        alice.set_verdict(Verdict::Conforming, &stamp("alice", 1)).unwrap();
        let good = alice.clone();
        raw(&mut alice, |doc| {
            doc.put(ROOT, key::SCHEMA, 3).unwrap();
        });
        assert_eq!(s.refusal(&alice).rule(), "server_owned_path");
        assert_eq!(s.server.read().unwrap().verdict, None);
        assert!(s.send(&good).is_ok());
    }
}
