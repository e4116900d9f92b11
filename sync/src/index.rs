//! `AssignmentIndex`: one document per officer listing the instructions assigned to them, so a
//! handheld learns which record documents to fetch by syncing a single document. Written only by the
//! server's actor; sessions carry it to officers with [`Rules::ReadOnly`](crate::validate::Rules).
//!
//! Layout: `{ schema: 1, assignments: { <instruction_id>: { record_doc_id, inspection_no, site,
//! deadline, assigned_at } }, reminders: { <instruction_id>: { kind, due_at, sent_at } } }`. `reminders`
//! appears with the first reminder (an index written before it has none): the server's reminders to the
//! officer, such as a deadline near, one per instruction, the latest replacing the one before.

use std::collections::BTreeMap;

use automerge::{ActorId, AutoCommit, ChangeHash, ObjId, ObjType, ROOT, ReadDoc, transaction::Transactable};
use serde::{Deserialize, Serialize};

use crate::json;
use crate::record::{self, Document, RecordError, sealed::Sealed};
use crate::schema::{self, INDEX_SCHEMA_VERSION, SchemaViolation, UnixMillis};

const ASSIGNMENTS: &str = "assignments";
const REMINDERS: &str = "reminders";

/// A reminder the server put in an officer's index (issue 18), about one assigned instruction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexReminder {
    /// What it is about: `deadline_near`.
    pub kind: String,
    /// The instant it is about (the deadline).
    pub due_at: UnixMillis,
    pub sent_at: UnixMillis,
}

/// One assigned instruction, as the handheld lists it before opening the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    /// The record's document id (what an automerge-repo client asks for).
    pub record_doc_id: String,
    pub inspection_no: String,
    pub site: String,
    pub deadline: UnixMillis,
    pub assigned_at: UnixMillis,
}

/// An officer's assignment index document.
#[derive(Debug, Clone)]
pub struct AssignmentIndex {
    doc: AutoCommit,
}

impl Document for AssignmentIndex {}

impl Sealed for AssignmentIndex {
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

impl AssignmentIndex {
    /// The server creates an officer's (empty) index once, with its own actor.
    pub fn create(server_actor: ActorId, at: UnixMillis) -> Result<Self, RecordError> {
        let mut doc = AutoCommit::new().with_actor(server_actor);
        record::edit(&mut doc, at, "create assignment index", |doc| {
            doc.put(ROOT, schema::key::SCHEMA, INDEX_SCHEMA_VERSION)?;
            doc.put_object(ROOT, ASSIGNMENTS, ObjType::Map)?;
            Ok(())
        })?;
        Ok(Self { doc })
    }

    /// An empty copy that fills itself on its first sync.
    pub fn replica(actor: ActorId) -> Self {
        Self { doc: AutoCommit::new().with_actor(actor) }
    }

    /// Loads a saved index (a `save` followed by any `save_incremental` chunks).
    pub fn load(bytes: &[u8], actor: ActorId) -> Result<Self, RecordError> {
        Ok(Self { doc: AutoCommit::load(bytes)?.with_actor(actor) })
    }

    pub fn save(&mut self) -> Vec<u8> {
        self.doc.save()
    }

    pub fn save_incremental(&mut self) -> Vec<u8> {
        self.doc.save_incremental()
    }

    /// The changes not reachable from `heads`, in the incremental format: what a server that loaded
    /// the document from storage appends after a sync added changes (a loaded document's
    /// `save_incremental` would repeat the whole history).
    pub fn save_after(&mut self, heads: &[ChangeHash]) -> Vec<u8> {
        self.doc.save_after(heads)
    }

    pub fn heads(&mut self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }

    fn assignments(&self) -> Result<ObjId, RecordError> {
        record::check_version(&self.doc, INDEX_SCHEMA_VERSION)?;
        schema::child(&self.doc, &ROOT, ASSIGNMENTS, ObjType::Map).ok_or_else(|| {
            RecordError::Schema(SchemaViolation::MissingField { path: ASSIGNMENTS.to_owned() })
        })
    }

    /// Adds (or replaces) the entry for `instruction_id`.
    pub fn assign(
        &mut self,
        instruction_id: &str,
        assignment: &Assignment,
        at: UnixMillis,
    ) -> Result<(), RecordError> {
        let assignments = self.assignments()?;
        let message = format!("assign {instruction_id}");
        record::edit(&mut self.doc, at, message, |doc| {
            Ok(json::put(doc, &assignments, instruction_id, assignment)?)
        })
    }

    /// Removes the entry for `instruction_id`; returns whether there was one.
    pub fn unassign(&mut self, instruction_id: &str, at: UnixMillis) -> Result<bool, RecordError> {
        let assignments = self.assignments()?;
        if schema::child(&self.doc, &assignments, instruction_id, ObjType::Map).is_none() {
            return Ok(false);
        }
        let message = format!("unassign {instruction_id}");
        record::edit(&mut self.doc, at, message, |doc| {
            doc.delete(&assignments, instruction_id)?;
            Ok(())
        })?;
        Ok(true)
    }

    /// Puts (or replaces) the reminder about `instruction_id`.
    pub fn remind(
        &mut self,
        instruction_id: &str,
        reminder: &IndexReminder,
        at: UnixMillis,
    ) -> Result<(), RecordError> {
        record::check_version(&self.doc, INDEX_SCHEMA_VERSION)?;
        let message = format!("remind {instruction_id}");
        record::edit(&mut self.doc, at, message, |doc| {
            let reminders = match schema::child(doc, &ROOT, REMINDERS, ObjType::Map) {
                Some(obj) => obj,
                None => doc.put_object(ROOT, REMINDERS, ObjType::Map)?,
            };
            Ok(json::put(doc, &reminders, instruction_id, reminder)?)
        })
    }

    /// Every reminder, by instruction id (none in an index written before reminders existed).
    pub fn reminders(&self) -> Result<BTreeMap<String, IndexReminder>, RecordError> {
        record::check_version(&self.doc, INDEX_SCHEMA_VERSION)?;
        let doc = &self.doc;
        let Some(reminders) = schema::child(doc, &ROOT, REMINDERS, ObjType::Map) else {
            return Ok(BTreeMap::new());
        };
        doc.keys(&reminders)
            .map(|id| {
                let path = schema::join(REMINDERS, &id);
                let obj = schema::child(doc, &reminders, &id, ObjType::Map)
                    .ok_or_else(|| SchemaViolation::InvalidValue { path: path.clone(), expected: "a map" })?;
                Ok((id, json::get(doc, &obj, &path)?))
            })
            .collect()
    }

    /// Every assignment, by instruction id.
    pub fn read(&self) -> Result<BTreeMap<String, Assignment>, RecordError> {
        let assignments = self.assignments()?;
        let doc = &self.doc;
        doc.keys(&assignments)
            .map(|id| {
                let path = schema::join(ASSIGNMENTS, &id);
                let obj = schema::child(doc, &assignments, &id, ObjType::Map)
                    .ok_or_else(|| SchemaViolation::InvalidValue { path: path.clone(), expected: "a map" })?;
                let assignment = json::get(doc, &obj, &path)?;
                Ok((id, assignment))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::new_actor_id;

    fn assignment(site: &str) -> Assignment {
        Assignment {
            record_doc_id: "4Nq7bR2kVd3yJmXwLpT8sZ".into(),
            inspection_no: "212345678901234".into(),
            site: site.into(),
            deadline: 2_000,
            assigned_at: 1_000,
        }
    }

    #[test]
    fn assignments_are_added_replaced_and_removed() {
        let mut index = AssignmentIndex::create(new_actor_id(), 1_000).unwrap();
        assert!(index.read().unwrap().is_empty());

        index.assign("ins-1", &assignment("yard 3"), 1_000).unwrap();
        index.assign("ins-2", &assignment("orchard"), 1_000).unwrap();
        index.assign("ins-1", &assignment("yard 4"), 2_000).unwrap();
        let read = index.read().unwrap();
        assert_eq!(read.len(), 2);
        assert_eq!(read["ins-1"].site, "yard 4");

        assert!(index.unassign("ins-2", 3_000).unwrap());
        assert!(!index.unassign("ins-2", 3_000).unwrap());
        assert_eq!(index.read().unwrap().keys().collect::<Vec<_>>(), vec!["ins-1"]);
    }

    #[test]
    fn a_reminder_is_added_to_an_index_without_any_and_the_next_one_replaces_it() {
        let mut index = AssignmentIndex::create(new_actor_id(), 1_000).unwrap();
        index.assign("ins-1", &assignment("yard 3"), 1_000).unwrap();
        assert!(index.reminders().unwrap().is_empty());

        let first = IndexReminder { kind: "deadline_near".into(), due_at: 9_000, sent_at: 2_000 };
        index.remind("ins-1", &first, 2_000).unwrap();
        let later = IndexReminder { due_at: 12_000, sent_at: 3_000, ..first.clone() };
        index.remind("ins-1", &later, 3_000).unwrap();
        let loaded = AssignmentIndex::load(&index.save(), new_actor_id()).unwrap();
        assert_eq!(
            loaded.reminders().unwrap().into_iter().collect::<Vec<_>>(),
            vec![("ins-1".into(), later)]
        );
        assert_eq!(loaded.read().unwrap().len(), 1, "the assignments are untouched");
    }

    #[test]
    fn an_index_survives_save_and_load() {
        let actor = new_actor_id();
        let mut index = AssignmentIndex::create(actor.clone(), 1_000).unwrap();
        let mut stored = index.save();
        index.assign("ins-1", &assignment("yard 3"), 1_000).unwrap();
        stored.extend(index.save_incremental());
        let mut loaded = AssignmentIndex::load(&stored, actor).unwrap();
        assert_eq!(loaded.heads(), index.heads());
        assert_eq!(loaded.read().unwrap(), index.read().unwrap());
    }

    #[test]
    fn a_replica_index_cannot_be_read_before_its_first_sync() {
        let replica = AssignmentIndex::replica(new_actor_id());
        assert!(matches!(replica.read(), Err(RecordError::NotARecord { found: None })));
    }
}
