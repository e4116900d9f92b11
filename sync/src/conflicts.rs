//! Conflict detection: after a merge, the values officers wrote concurrently to the verdict, to
//! each check result and to each measurement (its value or its unit). Automerge would silently pick a winner; a regulatory record may not, so the
//! server surfaces every such field as an open conflict until someone writes a value that has seen
//! all of them.

use automerge::{ActorId, ObjId, ObjType, ROOT, ReadDoc, Value};
use serde::Serialize;

use crate::record::{RecordDoc, RecordError, check_schema, sealed::Sealed};
use crate::schema::{self, key};

/// A field whose value must never be picked silently.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "field", rename_all = "snake_case")]
pub enum ConflictField {
    VerdictValue,
    VerdictDisposal,
    CheckResult {
        item_id: String,
    },
    /// The measurement's value or unit (`path` names the value, where the reading is).
    Measurement {
        item_id: String,
    },
}

impl ConflictField {
    /// The dotted document path, e.g. `checks.c1.result`.
    pub fn path(&self) -> String {
        match self {
            Self::VerdictValue => schema::join(key::VERDICT, key::VALUE),
            Self::VerdictDisposal => schema::join(key::VERDICT, key::DISPOSAL),
            Self::CheckResult { item_id } => {
                format!("{}.{item_id}.{}", key::CHECKS, key::RESULT)
            }
            Self::Measurement { item_id } => format!("{}.{item_id}.{}", key::CHECKS, key::VALUE),
        }
    }
}

/// One of the values present at a conflicted field, and the actor (device) that wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConcurrentValue {
    /// The schema string, e.g. `pass` or `non_conforming`.
    pub value: String,
    #[serde(serialize_with = "actor_hex")]
    pub actor: ActorId,
    /// The officer who wrote it: the stamp (`by`) the same device wrote beside it. `None` when that
    /// device's stamp is not there (validation requires one, so only in records from elsewhere).
    pub by: Option<String>,
}

fn actor_hex<S: serde::Serializer>(actor: &ActorId, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&actor.to_hex_string())
}

/// A field holding more than one distinct value written concurrently.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conflict {
    pub field: ConflictField,
    /// Every concurrent value, including equal values from different actors.
    pub values: Vec<ConcurrentValue>,
}

/// Every open conflict of the record, verdict first, then check results by item id.
///
/// Two officers writing the *same* value concurrently is not a conflict.
pub fn open_conflicts(record: &RecordDoc) -> Result<Vec<Conflict>, RecordError> {
    let doc = record.automerge();
    check_schema(doc)?;
    let mut conflicts = Vec::new();
    if let Some(verdict) = schema::child(doc, &ROOT, key::VERDICT, ObjType::Map) {
        collect(doc, &verdict, key::VALUE, ConflictField::VerdictValue, &mut conflicts)?;
        collect(doc, &verdict, key::DISPOSAL, ConflictField::VerdictDisposal, &mut conflicts)?;
    }
    if let Some(checks) = schema::child(doc, &ROOT, key::CHECKS, ObjType::Map) {
        for item_id in doc.keys(&checks) {
            if let Some(entry) = schema::child(doc, &checks, &item_id, ObjType::Map) {
                let field = ConflictField::CheckResult { item_id: item_id.clone() };
                collect(doc, &entry, key::RESULT, field, &mut conflicts)?;
                // One conflict per reading, whether officers differ in the value or in the unit.
                let field = ConflictField::Measurement { item_id };
                let before = conflicts.len();
                collect(doc, &entry, key::VALUE, field.clone(), &mut conflicts)?;
                if conflicts.len() == before {
                    collect(doc, &entry, key::UNIT, field, &mut conflicts)?;
                }
            }
        }
    }
    Ok(conflicts)
}

fn collect(
    doc: &impl ReadDoc,
    obj: &ObjId,
    prop: &str,
    field: ConflictField,
    out: &mut Vec<Conflict>,
) -> Result<(), RecordError> {
    let written = doc.get_all(obj, prop)?;
    // One value or none: no conflict, and no need to read the stamps (this runs
    // for every field of every check after each merge).
    if written.len() < 2 {
        return Ok(());
    }
    // Each officer's edit writes the value and its stamp together, so the concurrent stamps name the
    // officer behind each concurrent value, by device.
    let stamps: Vec<(ActorId, String)> = doc
        .get_all(obj, key::BY)?
        .into_iter()
        .filter_map(|(value, id)| match id {
            ObjId::Id(_, actor, _) => Some((actor, display(&value))),
            ObjId::Root => None,
        })
        .collect();
    let values: Vec<ConcurrentValue> = written
        .into_iter()
        .filter_map(|(value, id)| match id {
            ObjId::Id(_, actor, _) => {
                let by = stamps.iter().find(|(a, _)| *a == actor).map(|(_, by)| by.clone());
                Some(ConcurrentValue { value: display(&value), actor, by })
            }
            ObjId::Root => None,
        })
        .collect();
    let first = values.first().map(|v| v.value.as_str());
    if values.iter().any(|v| Some(v.value.as_str()) != first) {
        out.push(Conflict { field, values });
    }
    Ok(())
}

/// Schema strings as they are, numbers as numbers; anything else (which validation never lets in) in
/// debug form.
fn display(value: &Value<'_>) -> String {
    match value {
        Value::Scalar(s) => match s.as_ref() {
            automerge::ScalarValue::Str(s) => s.to_string(),
            automerge::ScalarValue::F64(f) => f.to_string(),
            automerge::ScalarValue::Int(i) => i.to_string(),
            automerge::ScalarValue::Uint(u) => u.to_string(),
            other => format!("{other:?}"),
        },
        Value::Object(_) => format!("{value:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::tests::{server_record, stamp};
    use crate::schema::{CheckResult, Disposal, Verdict};
    use automerge::AutoCommit;

    /// A copy of `record` as another device would hold it.
    fn device_copy(record: &RecordDoc) -> RecordDoc {
        RecordDoc::from_automerge(record.automerge().clone().with_actor(crate::new_actor_id()))
    }

    fn merge(into: &mut RecordDoc, from: &RecordDoc) {
        let mut other: AutoCommit = from.automerge().clone();
        into.automerge_mut().merge(&mut other).unwrap();
    }

    #[test]
    fn two_forks_setting_one_check_differently_open_a_conflict() {
        let mut server = server_record();
        let mut a = device_copy(&server);
        let mut b = device_copy(&server);
        a.set_check_result("c1", CheckResult::Pass, &stamp("alice", 1)).unwrap();
        b.set_check_result("c1", CheckResult::Fail, &stamp("bob", 2)).unwrap();
        merge(&mut server, &a);
        merge(&mut server, &b);

        let conflicts = open_conflicts(&server).unwrap();
        assert_eq!(conflicts.len(), 1);
        let conflict = &conflicts[0];
        assert_eq!(conflict.field.path(), "checks.c1.result");
        let mut seen: Vec<_> = conflict.values.iter().map(|v| (v.value.as_str(), v.actor.clone())).collect();
        seen.sort();
        assert_eq!(seen, vec![("fail", b.actor().clone()), ("pass", a.actor().clone())]);
    }

    #[test]
    fn two_forks_setting_the_same_value_do_not_conflict() {
        let mut server = server_record();
        let mut a = device_copy(&server);
        let mut b = device_copy(&server);
        a.set_check_result("c1", CheckResult::Pass, &stamp("alice", 1)).unwrap();
        b.set_check_result("c1", CheckResult::Pass, &stamp("bob", 2)).unwrap();
        merge(&mut server, &a);
        merge(&mut server, &b);
        assert_eq!(open_conflicts(&server).unwrap(), vec![]);
    }

    #[test]
    fn a_later_write_that_has_seen_both_values_resolves_the_conflict() {
        let mut server = server_record();
        let mut a = device_copy(&server);
        let mut b = device_copy(&server);
        a.set_check_result("c1", CheckResult::Pass, &stamp("alice", 1)).unwrap();
        b.set_check_result("c1", CheckResult::Fail, &stamp("bob", 2)).unwrap();
        merge(&mut server, &a);
        merge(&mut server, &b);
        assert_eq!(open_conflicts(&server).unwrap().len(), 1);

        merge(&mut a, &server);
        a.set_check_result("c1", CheckResult::Fail, &stamp("alice", 3)).unwrap();
        merge(&mut server, &a);
        assert_eq!(open_conflicts(&server).unwrap(), vec![]);
        assert_eq!(server.read().unwrap().checks["c1"].result, Some(CheckResult::Fail));
    }

    #[test]
    fn concurrent_verdicts_conflict_on_disposal_and_on_a_reaffirmed_value() {
        let mut server = server_record();
        let mut a = device_copy(&server);
        let mut b = device_copy(&server);
        a.set_verdict(Verdict::NonConforming { disposal: Disposal::Return }, &stamp("alice", 1)).unwrap();
        b.set_verdict(Verdict::NonConforming { disposal: Disposal::Destruction }, &stamp("bob", 2)).unwrap();
        merge(&mut server, &a);
        merge(&mut server, &b);
        let fields: Vec<_> = open_conflicts(&server).unwrap().into_iter().map(|c| c.field).collect();
        assert_eq!(fields, vec![ConflictField::VerdictDisposal]);

        let mut c = device_copy(&server);
        c.set_verdict(Verdict::Conforming, &stamp("carol", 3)).unwrap();
        let mut d = device_copy(&server);
        d.set_verdict(Verdict::NonConforming { disposal: Disposal::Return }, &stamp("dave", 3)).unwrap();
        merge(&mut server, &c);
        merge(&mut server, &d);
        let fields: Vec<_> = open_conflicts(&server).unwrap().into_iter().map(|c| c.field).collect();
        assert_eq!(fields, vec![ConflictField::VerdictValue]);
    }

    #[test]
    fn two_officers_measuring_one_item_differently_open_a_conflict_until_one_reenters_it() {
        use crate::schema::Measurement;
        let mut server = server_record();
        let mut a = device_copy(&server);
        let mut b = device_copy(&server);
        let reading = |value| Measurement { value, unit: "%".into() };
        a.set_measurement("c2", Some(&reading(-19.0)), &stamp("alice", 1)).unwrap();
        b.set_measurement("c2", Some(&reading(-16.5)), &stamp("bob", 2)).unwrap();
        merge(&mut server, &a);
        merge(&mut server, &b);
        let conflicts = open_conflicts(&server).unwrap();
        assert_eq!(conflicts.len(), 1, "{conflicts:?}");
        assert_eq!(conflicts[0].field, ConflictField::Measurement { item_id: "c2".into() });
        let mut values: Vec<_> = conflicts[0].values.iter().map(|v| v.value.as_str()).collect();
        values.sort();
        assert_eq!(values, ["-16.5", "-19"]);

        merge(&mut b, &server);
        b.set_measurement("c2", Some(&reading(-16.5)), &stamp("bob", 3)).unwrap();
        merge(&mut server, &b);
        assert_eq!(open_conflicts(&server).unwrap(), vec![]);
    }

    #[test]
    fn a_replica_that_has_not_synced_has_no_conflicts_to_report() {
        let replica = RecordDoc::replica(crate::new_actor_id());
        assert!(matches!(open_conflicts(&replica), Err(RecordError::NotARecord { found: None })));
    }
}
