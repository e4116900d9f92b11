//! Upgrading a schema 1 record to schema 2, as one change by the server's actor.
//!
//! What changes (schema.rs describes both layouts):
//! - `notes` was one text that two officers' notes ran together in; it becomes a map of note entries.
//!   The old text is kept, split at line ends into entries of at most [`MAX_NOTE_ENTRY_BYTES`], written
//!   by the pseudo-officer [`LEGACY_AUTHOR`] (nobody can tell any more who typed which line);
//! - a check's `measurement` map becomes the entry's own `value` and `unit`;
//! - the root `officers` list is added (the server knows who is assigned);
//! - signatures stay as they are: without a digest they are history and count as void (schema.rs).
//!
//! Content digests are unchanged by the upgrade (the digest reads measurements as value and unit
//! whatever their layout, and leaves notes out), so a sealed record's stored digest still verifies.

use automerge::{AutoCommit, ObjType, ROOT, ReadDoc, ScalarValue, Value, transaction::Transactable};

use crate::record::{RecordDoc, RecordError, edit, sealed::Sealed, version_of};
use crate::schema::{
    self, MAX_NOTE_ENTRY_BYTES, OfficerId, SCHEMA_VERSION, SchemaViolation, UnixMillis, key,
};

/// Schema 1's nested measurement map, under each check entry.
const V1_MEASUREMENT: &str = "measurement";

/// The `by` of the note entries made from a schema 1 record's notes text.
pub const LEGACY_AUTHOR: &str = "schema-1-notes";

/// What [`upgrade`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upgrade {
    /// The record was already at the current schema; nothing was written.
    Current,
    /// The record was upgraded from schema 1 in one new change.
    FromV1,
}

/// Upgrades `record` (loaded with the server's actor) to the current schema, naming `officers` as the
/// assigned officers. Idempotent: a current record is left alone.
pub fn upgrade(
    record: &mut RecordDoc,
    officers: &[OfficerId],
    at: UnixMillis,
) -> Result<Upgrade, RecordError> {
    let doc = record.automerge_mut();
    match version_of(doc) {
        Some(SCHEMA_VERSION) => return Ok(Upgrade::Current),
        Some(1) => {}
        found => return Err(RecordError::NotARecord { found }),
    }
    edit(doc, at, "upgrade record to schema 2", |doc| {
        upgrade_notes(doc, at)?;
        upgrade_measurements(doc)?;
        let list = doc.put_object(ROOT, key::OFFICERS, ObjType::List)?;
        for (i, officer) in officers.iter().enumerate() {
            doc.insert(&list, i, officer.as_str())?;
        }
        doc.put(ROOT, key::SCHEMA, SCHEMA_VERSION)?;
        Ok(())
    })?;
    // Read it back with the current readers: an upgrade that leaves an unreadable record is an error.
    record.read()?;
    Ok(Upgrade::FromV1)
}

fn upgrade_notes(doc: &mut AutoCommit, at: UnixMillis) -> Result<(), RecordError> {
    let text = match schema::child(doc, &ROOT, key::NOTES, ObjType::Text) {
        Some(obj) => doc.text(&obj)?,
        None => String::new(),
    };
    let notes = doc.put_object(ROOT, key::NOTES, ObjType::Map)?;
    for (i, chunk) in chunks(&text, MAX_NOTE_ENTRY_BYTES).into_iter().enumerate() {
        let entry = doc.put_object(&notes, format!("v1-{i:03}").as_str(), ObjType::Map)?;
        doc.put(&entry, key::TEXT, chunk)?;
        doc.put(&entry, key::BY, LEGACY_AUTHOR)?;
        doc.put(&entry, key::AT, at)?;
    }
    Ok(())
}

/// The non-blank lines of `text`, packed into pieces of at most `limit` bytes (a longer line is cut at
/// character boundaries).
fn chunks(text: &str, limit: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in text.lines().map(str::trim_end).filter(|l| !l.trim().is_empty()) {
        let mut rest = line;
        while !rest.is_empty() {
            let mut cut = rest.len().min(limit);
            while !rest.is_char_boundary(cut) {
                cut -= 1;
            }
            let (piece, tail) = rest.split_at(cut);
            match out.last_mut() {
                Some(last) if last.len() + 1 + piece.len() <= limit => {
                    last.push('\n');
                    last.push_str(piece);
                }
                _ => out.push(piece.to_owned()),
            }
            rest = tail;
        }
    }
    out
}

fn upgrade_measurements(doc: &mut AutoCommit) -> Result<(), RecordError> {
    let Some(checks) = schema::child(doc, &ROOT, key::CHECKS, ObjType::Map) else {
        return Err(SchemaViolation::MissingField { path: key::CHECKS.to_owned() }.into());
    };
    let items: Vec<String> = doc.keys(&checks).collect();
    for item in items {
        let Some(entry) = schema::child(doc, &checks, &item, ObjType::Map) else { continue };
        let Some(measurement) = schema::child(doc, &entry, V1_MEASUREMENT, ObjType::Map) else { continue };
        let value = scalar(doc, &measurement, key::VALUE);
        let unit = scalar(doc, &measurement, key::UNIT);
        doc.delete(&entry, V1_MEASUREMENT)?;
        if let (Some(value), Some(unit)) = (value, unit) {
            doc.put(&entry, key::VALUE, value)?;
            doc.put(&entry, key::UNIT, unit)?;
        }
    }
    Ok(())
}

fn scalar(doc: &AutoCommit, obj: &automerge::ObjId, prop: &str) -> Option<ScalarValue> {
    match doc.get(obj, prop).ok().flatten() {
        Some((Value::Scalar(v), _)) => Some(v.into_owned()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::tests::{T0, instruction, stamp};
    use crate::schema::{CheckResult, Measurement};

    /// A schema 1 record as the server of the previous release created it and officers filled it:
    /// notes as text, a measurement as a nested map, a signature without a digest.
    fn v1_record() -> RecordDoc {
        let server = crate::new_actor_id();
        let mut record = RecordDoc::create(&instruction(), &[], server.clone(), T0).unwrap();
        record.set_check_result("c1", CheckResult::Pass, &stamp("officer1", T0 + 1)).unwrap();
        let doc = record.automerge_mut();
        edit(doc, T0 + 2, "back to schema 1", |doc| {
            doc.delete(ROOT, key::OFFICERS)?;
            let notes = doc.put_object(ROOT, key::NOTES, ObjType::Text)?;
            doc.splice_text(&notes, 0, 0, "officer1: seal intact\nofficer2: one carton thawed\n")?;
            let checks = schema::child(doc, &ROOT, key::CHECKS, ObjType::Map).unwrap();
            let c2 = schema::child(doc, &checks, "c2", ObjType::Map).unwrap();
            let m = doc.put_object(&c2, V1_MEASUREMENT, ObjType::Map)?;
            doc.put(&m, key::VALUE, -19.5)?;
            doc.put(&m, key::UNIT, "%")?;
            doc.put(&c2, key::BY, "officer2")?;
            doc.put(&c2, key::AT, T0 + 2)?;
            let signatures = schema::child(doc, &ROOT, key::SIGNATURES, ObjType::Map).unwrap();
            let s = doc.put_object(&signatures, "officer1", ObjType::Map)?;
            doc.put(&s, key::STATEMENT, "I inspected the goods")?;
            doc.put(&s, key::AT, T0 + 2)?;
            doc.put(ROOT, key::SCHEMA, 1)?;
            Ok(())
        })
        .unwrap();
        record
    }

    #[test]
    fn a_schema_1_record_is_upgraded_with_its_notes_measurements_and_officers() {
        let mut record = v1_record();
        let before = {
            // The digest as a schema 1 reader computed it: the measurement read as value and unit.
            let mut current = record.clone();
            upgrade(&mut current, &[], T0 + 3).unwrap();
            current.read().unwrap().content_digest()
        };
        let officers = [OfficerId::parse("officer1").unwrap(), OfficerId::parse("officer2").unwrap()];
        assert_eq!(upgrade(&mut record, &officers, T0 + 3).unwrap(), Upgrade::FromV1);
        let read = record.read().unwrap();
        assert_eq!(read.officers, officers);
        assert_eq!(read.notes.len(), 1);
        assert_eq!(read.notes[0].text, "officer1: seal intact\nofficer2: one carton thawed");
        assert_eq!(read.notes[0].by.as_str(), LEGACY_AUTHOR);
        assert_eq!(read.checks["c2"].measurement, Some(Measurement { value: -19.5, unit: "%".into() }));
        assert_eq!(read.checks["c1"].result, Some(CheckResult::Pass));
        assert_eq!(read.signatures[&officers[0]].digest, None);
        assert_eq!(read.content_digest(), before);
        assert!(read.missing_for_submission(0).iter().any(|m| m.starts_with("officer1 must sign again")));
    }

    #[test]
    fn upgrading_a_current_record_writes_nothing() {
        let mut record = v1_record();
        upgrade(&mut record, &[], T0 + 3).unwrap();
        let heads = record.heads();
        assert_eq!(upgrade(&mut record, &[], T0 + 4).unwrap(), Upgrade::Current);
        assert_eq!(record.heads(), heads);
    }

    #[test]
    fn long_notes_are_split_into_entries_within_the_limit_at_character_boundaries() {
        let line = "温".repeat(MAX_NOTE_ENTRY_BYTES); // 3 bytes each: three entries' worth
        let pieces = chunks(&format!("{line}\nshort\n\n"), MAX_NOTE_ENTRY_BYTES);
        assert!(pieces.iter().all(|p| p.len() <= MAX_NOTE_ENTRY_BYTES));
        assert_eq!(pieces.concat().replace('\n', ""), format!("{line}short"));
    }
}
