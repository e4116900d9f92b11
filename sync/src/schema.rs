//! The record document's schema, version 2: its layout, value types, size limits, and the strict
//! readers that both the server's validator and the handheld's own edits go through.
//!
//! Root map of a record document (docs/sync-protocol.md has the full table):
//!
//! | key          | type             | owner   |
//! | ------------ | ---------------- | ------- |
//! | `schema`     | int, always 2    | server  |
//! | `instruction`| map              | server  |
//! | `officers`   | list of ids      | server (the assigned officers, rewritten on every assignment) |
//! | `checks`     | map item → map   | officer (the keys are the server's checklist) |
//! | `photos`     | map sha256 → map | officer |
//! | `samples`    | map id → map     | officer |
//! | `notes`      | map id → map     | officer (one entry per note: text, by, at) |
//! | `verdict`    | map              | officer |
//! | `signatures` | map officer → map| officer (each officer only their own) |
//! | `completion` | map              | officer |
//! | `review`     | map              | server (absent until a supervisor returns the result) |
//!
//! Version 1 kept the notes as one text and a measurement as a nested map; both merged badly (two
//! officers' notes ran together, and two measurement maps created concurrently hid one of them). See
//! `migrate` for how a version 1 record becomes a version 2 one.
//!
//! The server creates every container (including one empty map per checklist item) when it creates
//! the record. Officers only ever write *inside* those containers, so two officers never create the
//! same map concurrently — which in automerge would hide one officer's whole map behind the other's.

use std::collections::BTreeMap;
use std::fmt;

use automerge::{ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value};
use serde::{Deserialize, Serialize};

/// The schema version written at the root of every record document.
pub const SCHEMA_VERSION: i64 = 2;
/// The schema version of assignment index documents (unchanged when records moved to 2).
pub const INDEX_SCHEMA_VERSION: i64 = 1;

/// Ids used as map keys: check items, samples, officers.
pub const MAX_ID_BYTES: usize = 64;
/// Short labels: units, seal numbers.
pub const MAX_LABEL_BYTES: usize = 64;
/// A check item's note.
pub const MAX_NOTE_BYTES: usize = 4 * 1024;
/// A photo caption.
pub const MAX_CAPTION_BYTES: usize = 500;
/// A sample's description.
pub const MAX_DESCRIPTION_BYTES: usize = 1024;
/// A signature's statement.
pub const MAX_STATEMENT_BYTES: usize = 1024;
/// One note entry's text.
pub const MAX_NOTE_ENTRY_BYTES: usize = 4 * 1024;
/// Note entries per record.
pub const MAX_NOTE_ENTRIES: usize = 200;
/// Officers assigned to one record (the workflow assigns 1–4).
pub const MAX_OFFICERS: usize = 16;
/// Photo references per record.
pub const MAX_PHOTOS: usize = 200;
/// Samples per record.
pub const MAX_SAMPLES: usize = 100;
/// An encoded sync message. Automerge sends all missing changes in one message (the whole document,
/// compressed, when that is smaller), so this must hold a long offline day; it also bounds the
/// compressed input automerge inflates while applying a message.
pub const MAX_MESSAGE_BYTES: usize = 8 * 1024 * 1024;
/// The encoded changes one message may add to a record. Clients that commit per keystroke spend
/// about 125 B per change: 64 KiB of notes typed that way is about 8 MiB, which this leaves room for.
pub const MAX_CHANGE_BYTES_PER_MESSAGE: usize = 16 * 1024 * 1024;
/// What one chunk of a message (a change, or a whole document) may inflate to. Compression lets a
/// 1 MiB message claim gigabytes, and automerge needs about three times the inflated size while
/// applying it, so the bound is checked before automerge reads the chunk (see `chunks`).
pub const MAX_INFLATED_CHUNK_BYTES: usize = MAX_CHANGE_BYTES_PER_MESSAGE;
/// What all the chunks of one message may inflate to together.
pub const MAX_INFLATED_MESSAGE_BYTES: usize = 2 * MAX_CHANGE_BYTES_PER_MESSAGE;
/// Rows (operations, changes) one message may expand to. Columns are run-length encoded, so a few
/// bytes can claim billions of operations; a long offline day of per-keystroke notes is under
/// 100,000, and a whole record sent as one document a little more.
pub const MAX_ROWS_PER_MESSAGE: u64 = 250_000;

/// Unix time in milliseconds, as written in `at` and `taken_at` fields.
pub type UnixMillis = i64;

/// Key names, shared by the writers, the readers and the validator so they cannot drift apart.
pub(crate) mod key {
    pub(crate) const SCHEMA: &str = "schema";
    pub(crate) const INSTRUCTION: &str = "instruction";
    pub(crate) const CHECKS: &str = "checks";
    pub(crate) const PHOTOS: &str = "photos";
    pub(crate) const SAMPLES: &str = "samples";
    pub(crate) const NOTES: &str = "notes";
    pub(crate) const VERDICT: &str = "verdict";
    pub(crate) const SIGNATURES: &str = "signatures";
    pub(crate) const COMPLETION: &str = "completion";
    pub(crate) const REVIEW: &str = "review";
    pub(crate) const OFFICERS: &str = "officers";

    pub(crate) const BY: &str = "by";
    pub(crate) const AT: &str = "at";

    pub(crate) const RESULT: &str = "result";
    pub(crate) const NOTE: &str = "note";
    pub(crate) const VALUE: &str = "value";
    pub(crate) const UNIT: &str = "unit";

    pub(crate) const CHECK_ITEM: &str = "check_item";
    pub(crate) const CAPTION: &str = "caption";
    pub(crate) const TAKEN_AT: &str = "taken_at";
    pub(crate) const LAT: &str = "lat";
    pub(crate) const LON: &str = "lon";

    pub(crate) const DESCRIPTION: &str = "description";
    pub(crate) const QUANTITY: &str = "quantity";
    pub(crate) const SEAL_NO: &str = "seal_no";

    pub(crate) const DISPOSAL: &str = "disposal";
    pub(crate) const STATEMENT: &str = "statement";
    pub(crate) const DIGEST: &str = "digest";
    pub(crate) const COMPLETE: &str = "complete";
    pub(crate) const WITHDRAWN: &str = "withdrawn";
    pub(crate) const TEXT: &str = "text";
}

/// The containers the server creates at the root of a record; officers write inside them.
pub(crate) const OFFICER_CONTAINERS: [(&str, ObjType); 7] = [
    (key::CHECKS, ObjType::Map),
    (key::PHOTOS, ObjType::Map),
    (key::SAMPLES, ObjType::Map),
    (key::NOTES, ObjType::Map),
    (key::VERDICT, ObjType::Map),
    (key::SIGNATURES, ObjType::Map),
    (key::COMPLETION, ObjType::Map),
];

/// A value (or a document) that breaks the schema. `path` is dotted, e.g. `checks.c1.result`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaViolation {
    #[error("{path} is not part of schema {SCHEMA_VERSION}")]
    UnknownField { path: String },
    #[error("{path} is required")]
    MissingField { path: String },
    #[error("{path} must be {expected}")]
    InvalidValue { path: String, expected: &'static str },
    #[error("{path} is {size} bytes; the limit is {limit}")]
    TooLarge { path: String, size: usize, limit: usize },
    #[error("{path} has {count} entries; the limit is {limit}")]
    TooMany { path: String, count: usize, limit: usize },
    #[error("{path} is in {found}; this check item is measured in {expected}")]
    WrongUnit { path: String, found: String, expected: String },
}

impl SchemaViolation {
    /// A stable, machine-readable name of the broken rule, for API error codes.
    pub fn rule(&self) -> &'static str {
        match self {
            Self::UnknownField { .. } => "unknown_field",
            Self::MissingField { .. } => "missing_field",
            Self::InvalidValue { .. } => "invalid_value",
            Self::TooLarge { .. } => "too_large",
            Self::TooMany { .. } => "too_many",
            Self::WrongUnit { .. } => "wrong_unit",
        }
    }

    fn invalid(path: impl Into<String>, expected: &'static str) -> Self {
        Self::InvalidValue { path: path.into(), expected }
    }
}

fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_ID_BYTES
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

const ID_EXPECTED: &str = "1-64 characters of A-Z a-z 0-9 - _ . :";

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $check:expr, $expected:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Accepts only well-formed ids, so a value of this type is always safe as a map key.
            pub fn parse(s: impl Into<String>) -> Result<Self, InvalidId> {
                let s = s.into();
                if $check(&s) {
                    Ok(Self(s))
                } else {
                    Err(InvalidId { kind: stringify!($name), expected: $expected })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(s: String) -> Result<Self, InvalidId> {
                Self::parse(s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

/// A string that failed one of the id newtypes' `parse`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind}: must be {expected}")]
pub struct InvalidId {
    kind: &'static str,
    expected: &'static str,
}

string_id!(
    /// The server's id of an officer, as written in `by` fields and as `signatures` keys.
    OfficerId,
    |s: &str| is_id(s),
    ID_EXPECTED
);
string_id!(
    /// A sample's id, chosen on the handheld (e.g. the label printed on the bag).
    SampleId,
    |s: &str| is_id(s),
    ID_EXPECTED
);
string_id!(
    /// A note entry's id, chosen on the handheld (unique per device: time and a random part).
    NoteId,
    |s: &str| is_id(s),
    ID_EXPECTED
);
string_id!(
    /// The SHA-256 of a photo's bytes, 64 lowercase hex digits: the photo store's key.
    PhotoHash,
    |s: &str| s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
    "64 lowercase hex digits (a SHA-256)"
);

impl PhotoHash {
    /// The key for a photo whose SHA-256 digest is `digest`.
    pub fn from_digest(digest: [u8; 32]) -> Self {
        Self(hex::encode(digest))
    }
}

/// The outcome of one check item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckResult {
    Pass,
    Fail,
    NotApplicable,
}

impl CheckResult {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "fail",
            Self::NotApplicable => "not_applicable",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        [Self::Pass, Self::Fail, Self::NotApplicable].into_iter().find(|v| v.as_str() == s)
    }

    pub(crate) const EXPECTED: &str = "one of pass, fail, not_applicable";
}

/// What happens to non-conforming goods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Disposal {
    TechnicalTreatment,
    Return,
    Destruction,
}

impl Disposal {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::TechnicalTreatment => "technical_treatment",
            Self::Return => "return",
            Self::Destruction => "destruction",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        [Self::TechnicalTreatment, Self::Return, Self::Destruction].into_iter().find(|v| v.as_str() == s)
    }

    pub(crate) const EXPECTED: &str = "one of technical_treatment, return, destruction";
}

/// The officers' verdict. A non-conforming verdict cannot exist without its disposal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "value", rename_all = "snake_case")]
pub enum Verdict {
    Conforming,
    NonConforming { disposal: Disposal },
}

const CONFORMING: &str = "conforming";
const NON_CONFORMING: &str = "non_conforming";
pub(crate) const VERDICT_EXPECTED: &str = "one of conforming, non_conforming";

impl Verdict {
    pub const fn value_str(self) -> &'static str {
        match self {
            Self::Conforming => CONFORMING,
            Self::NonConforming { .. } => NON_CONFORMING,
        }
    }
}

/// Who wrote an entry and when (unix ms, the handheld's clock).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub by: OfficerId,
    pub at: UnixMillis,
}

/// An officer-owned entry with the stamp of its last edit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stamped<T> {
    #[serde(flatten)]
    pub value: T,
    #[serde(flatten)]
    pub stamp: Stamp,
}

/// A measured quantity attached to a check item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    pub value: f64,
    pub unit: String,
}

/// One check item's entry. Every field is optional because officers fill them one at a time;
/// `last_edit` is absent until an officer first writes the entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CheckEntry {
    pub result: Option<CheckResult>,
    pub measurement: Option<Measurement>,
    pub note: Option<String>,
    pub last_edit: Option<Stamp>,
}

/// Where a photo was taken. Warehouses often have no GPS fix, hence optional on [`PhotoRef`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Location {
    pub lat: f64,
    pub lon: f64,
}

/// A photo's metadata; its bytes live in the photo store under its [`PhotoHash`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhotoRef {
    /// The check item the photo documents, if any; must be on this record's checklist.
    pub check_item: Option<String>,
    pub caption: String,
    pub taken_at: UnixMillis,
    pub location: Option<Location>,
    /// Withdrawn by an officer (a wrong or unusable photo): kept in the record's history, no longer
    /// awaited in the photo store. Left out of the serialised form while false, so the content digest
    /// of records that never withdrew a photo is what it was before the flag existed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub withdrawn: bool,
}

/// A sample taken from the goods.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub description: String,
    pub quantity: f64,
    pub unit: String,
    pub seal_no: String,
}

/// An officer's signature over the record's content; the officer is the key it is stored under.
///
/// It covers `digest`, the [`Record::content_digest`] the officer saw when signing. Any later change to
/// the content changes the digest and so voids the signature, without anyone having to delete it.
/// Signatures from schema 1 carry no digest: they are history, and count as void.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    pub statement: String,
    pub at: UnixMillis,
    pub digest: Option<String>,
}

/// One note of the record's notes: who wrote it, when, and what. Each note is its own entry, so two
/// officers' concurrent notes stay two notes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoteEntry {
    pub id: NoteId,
    pub text: String,
    pub by: OfficerId,
    pub at: UnixMillis,
}

/// The officers' "done" flag (it can be withdrawn until the record is approved).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Completion {
    pub complete: bool,
}

/// The server-owned part: what to inspect, where and by when. Written once, by the server's actor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstructionPart {
    pub instruction_id: String,
    pub inspection_no: String,
    pub enterprise_name: String,
    pub goods: Vec<GoodsLine>,
    pub checklist: Vec<ChecklistItem>,
    pub site: String,
    /// The booked slot, if the enterprise has booked one yet.
    pub slot: Option<Slot>,
    pub deadline: UnixMillis,
    /// Where the site is, from the site reference data, so the handheld can warn when a photo was taken
    /// far from it. Absent when the site's position is not known, and in records written before it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_position: Option<SitePosition>,
}

/// A site's position and how far from it evidence may be taken before the handheld warns.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SitePosition {
    pub latitude: f64,
    pub longitude: f64,
    /// The site's own radius (metres), when its reference data gives one; otherwise
    /// [`DEFAULT_SITE_RADIUS_M`] applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub radius_m: Option<f64>,
}

/// The distance from a site beyond which a photo counts as taken elsewhere, when the site names none: the
/// server's default for the dashboard's map (`monitoring.far_from_site_km` = 5).
pub const DEFAULT_SITE_RADIUS_M: f64 = 5_000.0;

impl SitePosition {
    /// The radius that applies: the site's own or [`DEFAULT_SITE_RADIUS_M`].
    pub fn radius(&self) -> f64 {
        self.radius_m.unwrap_or(DEFAULT_SITE_RADIUS_M)
    }

    /// Great-circle distance in metres from the site to a point (haversine, mean Earth radius): exact
    /// enough at the distances a warning is about.
    pub fn distance_m(&self, latitude: f64, longitude: f64) -> f64 {
        const EARTH_RADIUS_M: f64 = 6_371_008.8;
        let (p1, p2) = (self.latitude.to_radians(), latitude.to_radians());
        let dp = p2 - p1;
        let dl = (longitude - self.longitude).to_radians();
        let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_M * a.sqrt().min(1.0).asin()
    }
}

/// A goods line of the application, as the officer needs it on site.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GoodsLine {
    pub line_no: u32,
    pub hs_code: String,
    pub name: String,
    pub quantity: f64,
    pub unit: String,
    pub weight_kg: f64,
    pub origin: String,
}

/// One item of the checklist; `item_id` becomes the key under `checks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChecklistItem {
    pub item_id: String,
    pub title: String,
    /// The template's kind of check (e.g. visual, measurement); free text owned by the templates.
    pub kind: String,
    /// The unit a measurement of this item must be in (e.g. `°C`), when the template names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// A booked inspection slot, unix ms, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    pub starts_at: UnixMillis,
    pub ends_at: UnixMillis,
}

/// A supervisor's decision on a submitted result that the officers must read, e.g. a return with the
/// opinion saying what to redo. Server-owned: written by the server's actor at the root `review`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    /// `returned`.
    pub decision: String,
    pub opinion: String,
    /// The supervisor's username.
    pub by: String,
    pub at: UnixMillis,
}

/// A whole record read back as plain values (the winning value wherever officers conflict; see
/// `conflicts` for the rest). This is what the server projects into SQL.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Record {
    pub schema: i64,
    pub instruction: InstructionPart,
    /// The officers assigned to the record: each must sign its current content before it is submitted.
    pub officers: Vec<OfficerId>,
    /// Every checklist item, filled or not.
    pub checks: BTreeMap<String, CheckEntry>,
    pub photos: BTreeMap<PhotoHash, Stamped<PhotoRef>>,
    pub samples: BTreeMap<SampleId, Stamped<Sample>>,
    /// In the order they were written (by `at`, then id).
    pub notes: Vec<NoteEntry>,
    pub verdict: Option<Stamped<Verdict>>,
    pub signatures: BTreeMap<OfficerId, Signature>,
    pub completion: Option<Stamped<Completion>>,
    /// The latest supervisor's review, if any.
    pub review: Option<Review>,
}

impl Record {
    /// What the record still lacks before it can be submitted, in words for the officer ("3 checks
    /// without result", "no verdict", "1 open conflict", "officer2 has not signed"); empty when
    /// nothing. `open_conflicts` is `conflicts::open_conflicts(..).len()` of the same document. The
    /// one condition left out is the photo store (the server checks it; the handheld knows its
    /// uploads): every photo not withdrawn must be there.
    pub fn missing_for_submission(&self, open_conflicts: usize) -> Vec<String> {
        let mut missing = Vec::new();
        let count =
            |n: usize, one: &str, many: &str| if n == 1 { format!("1 {one}") } else { format!("{n} {many}") };
        let without = self.checks.values().filter(|c| c.result.is_none()).count();
        if without > 0 {
            missing.push(count(without, "check without result", "checks without result"));
        }
        // A non-conforming verdict always carries its disposal: the schema refuses one without.
        if self.verdict.is_none() {
            missing.push("no verdict".to_owned());
        }
        if open_conflicts > 0 {
            missing.push(count(open_conflicts, "open conflict", "open conflicts"));
        }
        let digest = self.content_digest();
        for officer in &self.officers {
            match self.signatures.get(officer) {
                None => missing.push(format!("{officer} has not signed")),
                Some(s) if s.digest.as_deref() != Some(digest.as_str()) => {
                    missing.push(format!("{officer} must sign again: the content changed after signing"))
                }
                Some(_) => {}
            }
        }
        if self.officers.is_empty() {
            missing.push("no officer assigned".to_owned());
        }
        missing
    }

    /// The photos still expected in the photo store (not withdrawn).
    pub fn awaited_photos(&self) -> impl Iterator<Item = &PhotoHash> {
        self.photos.iter().filter(|(_, p)| !p.value.withdrawn).map(|(hash, _)| hash)
    }

    /// SHA-256 (hex) over a canonical serialisation of what the result rests on: each check's result
    /// and measurement, the samples, the photo references and the verdict. Who typed what, and when,
    /// is left out: the digest says *what* was approved, the heads say how it came to be.
    pub fn content_digest(&self) -> String {
        use sha2::{Digest, Sha256};
        /// Maps are `BTreeMap`s and structs serialise their fields in declaration order, so the
        /// JSON text is the same for the same content wherever it is computed.
        #[derive(Serialize)]
        struct Canonical<'a> {
            checks: BTreeMap<&'a str, (Option<CheckResult>, Option<&'a Measurement>)>,
            samples: BTreeMap<&'a str, &'a Sample>,
            photos: BTreeMap<&'a str, &'a PhotoRef>,
            verdict: Option<Verdict>,
        }
        let canonical = Canonical {
            checks: self
                .checks
                .iter()
                .map(|(k, c)| (k.as_str(), (c.result, c.measurement.as_ref())))
                .collect(),
            samples: self.samples.iter().map(|(k, s)| (k.as_str(), &s.value)).collect(),
            photos: self.photos.iter().map(|(k, p)| (k.as_str(), &p.value)).collect(),
            verdict: self.verdict.as_ref().map(|v| v.value),
        };
        let bytes = serde_json::to_vec(&canonical).expect("plain values serialise");
        hex::encode(Sha256::digest(bytes))
    }
}

pub(crate) fn check_item_id(id: &str) -> bool {
    is_id(id)
}

pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") }
}

/// The map object stored at `obj[key]`, if that is what it holds.
pub(crate) fn child(doc: &impl ReadDoc, obj: &ObjId, key: &str, ty: ObjType) -> Option<ObjId> {
    match doc.get(obj, key).ok().flatten() {
        Some((Value::Object(t), id)) if t == ty || (ty == ObjType::Map && t == ObjType::Table) => Some(id),
        _ => None,
    }
}

/// Strict, typed access to the fields of one officer-owned entry (a map), reading winning values.
/// Every reader refuses unknown fields, wrong types and oversized strings with the dotted path.
struct Fields<'a, D> {
    doc: &'a D,
    obj: ObjId,
    path: String,
}

impl<'a, D: ReadDoc> Fields<'a, D> {
    fn new(doc: &'a D, obj: ObjId, path: String, known: &[&str]) -> Result<Self, SchemaViolation> {
        if let Some(unknown) = doc.keys(&obj).find(|k| !known.contains(&k.as_str())) {
            return Err(SchemaViolation::UnknownField { path: join(&path, &unknown) });
        }
        Ok(Self { doc, obj, path })
    }

    fn is_empty(&self) -> bool {
        self.doc.length(&self.obj) == 0
    }

    fn path_of(&self, key: &str) -> String {
        join(&self.path, key)
    }

    fn scalar(&self, key: &str, expected: &'static str) -> Result<Option<ScalarValue>, SchemaViolation> {
        match self.doc.get(&self.obj, key).ok().flatten() {
            None => Ok(None),
            Some((Value::Scalar(v), _)) => Ok(Some(v.into_owned())),
            Some((Value::Object(_), _)) => Err(SchemaViolation::invalid(self.path_of(key), expected)),
        }
    }

    fn text(&self, key: &str, limit: usize) -> Result<Option<String>, SchemaViolation> {
        const EXPECTED: &str = "a string";
        self.scalar(key, EXPECTED)?.map(|v| text_value(&v, &self.path_of(key), limit)).transpose()
    }

    fn millis(&self, key: &str) -> Result<Option<UnixMillis>, SchemaViolation> {
        const EXPECTED: &str = "a non-negative unix time in milliseconds";
        match self.scalar(key, EXPECTED)? {
            None => Ok(None),
            Some(ScalarValue::Int(i) | ScalarValue::Timestamp(i)) if i >= 0 => Ok(Some(i)),
            Some(ScalarValue::Uint(u)) => {
                i64::try_from(u).map(Some).map_err(|_| SchemaViolation::invalid(self.path_of(key), EXPECTED))
            }
            Some(_) => Err(SchemaViolation::invalid(self.path_of(key), EXPECTED)),
        }
    }

    /// A finite number; integers are accepted because JavaScript clients store whole numbers as ints.
    fn number(&self, key: &str) -> Result<Option<f64>, SchemaViolation> {
        const EXPECTED: &str = "a finite number";
        let n = match self.scalar(key, EXPECTED)? {
            None => return Ok(None),
            Some(ScalarValue::F64(f)) => f,
            Some(ScalarValue::Int(i)) => i as f64,
            Some(ScalarValue::Uint(u)) => u as f64,
            Some(_) => return Err(SchemaViolation::invalid(self.path_of(key), EXPECTED)),
        };
        if n.is_finite() { Ok(Some(n)) } else { Err(SchemaViolation::invalid(self.path_of(key), EXPECTED)) }
    }

    fn flag(&self, key: &str) -> Result<Option<bool>, SchemaViolation> {
        const EXPECTED: &str = "a boolean";
        match self.scalar(key, EXPECTED)? {
            None => Ok(None),
            Some(ScalarValue::Boolean(b)) => Ok(Some(b)),
            Some(_) => Err(SchemaViolation::invalid(self.path_of(key), EXPECTED)),
        }
    }

    fn choice<T>(
        &self,
        key: &str,
        parse: fn(&str) -> Option<T>,
        expected: &'static str,
    ) -> Result<Option<T>, SchemaViolation> {
        match self.scalar(key, expected)? {
            None => Ok(None),
            Some(v) => choice_value(&v, parse)
                .map(Some)
                .ok_or_else(|| SchemaViolation::invalid(self.path_of(key), expected)),
        }
    }

    fn officer(&self, key: &str) -> Result<Option<OfficerId>, SchemaViolation> {
        const EXPECTED: &str = "an officer id";
        match self.text(key, MAX_ID_BYTES)? {
            None => Ok(None),
            Some(s) => OfficerId::parse(s)
                .map(Some)
                .map_err(|_| SchemaViolation::invalid(self.path_of(key), EXPECTED)),
        }
    }

    fn required<T>(&self, key: &str, value: Option<T>) -> Result<T, SchemaViolation> {
        value.ok_or_else(|| SchemaViolation::MissingField { path: self.path_of(key) })
    }

    /// `by` and `at`, both present or both absent.
    fn stamp(&self) -> Result<Option<Stamp>, SchemaViolation> {
        match (self.officer(key::BY)?, self.millis(key::AT)?) {
            (None, None) => Ok(None),
            (by, at) => Ok(Some(Stamp { by: self.required(key::BY, by)?, at: self.required(key::AT, at)? })),
        }
    }

    fn required_stamp(&self) -> Result<Stamp, SchemaViolation> {
        let stamp = self.stamp()?;
        self.required(key::BY, stamp)
    }
}

fn text_value(v: &ScalarValue, path: &str, limit: usize) -> Result<String, SchemaViolation> {
    match v {
        ScalarValue::Str(s) if s.len() <= limit => Ok(s.to_string()),
        ScalarValue::Str(s) => Err(SchemaViolation::TooLarge { path: path.to_owned(), size: s.len(), limit }),
        _ => Err(SchemaViolation::invalid(path, "a string")),
    }
}

/// The enum a string value names, if it is a string naming one.
pub(crate) fn choice_value<T>(v: &ScalarValue, parse: fn(&str) -> Option<T>) -> Option<T> {
    match v {
        ScalarValue::Str(s) => parse(s),
        _ => None,
    }
}

pub(crate) const CHECK_FIELDS: &[&str] = &[key::RESULT, key::VALUE, key::UNIT, key::NOTE, key::BY, key::AT];
pub(crate) const PHOTO_FIELDS: &[&str] =
    &[key::CHECK_ITEM, key::CAPTION, key::TAKEN_AT, key::LAT, key::LON, key::WITHDRAWN, key::BY, key::AT];
pub(crate) const NOTE_FIELDS: &[&str] = &[key::TEXT, key::BY, key::AT];
pub(crate) const SAMPLE_FIELDS: &[&str] =
    &[key::DESCRIPTION, key::QUANTITY, key::UNIT, key::SEAL_NO, key::BY, key::AT];
pub(crate) const VERDICT_FIELDS: &[&str] = &[key::VALUE, key::DISPOSAL, key::BY, key::AT];
pub(crate) const SIGNATURE_FIELDS: &[&str] = &[key::STATEMENT, key::AT, key::DIGEST];
pub(crate) const COMPLETION_FIELDS: &[&str] = &[key::COMPLETE, key::BY, key::AT];

pub(crate) fn read_check(
    doc: &impl ReadDoc,
    obj: ObjId,
    path: String,
) -> Result<CheckEntry, SchemaViolation> {
    let f = Fields::new(doc, obj, path, CHECK_FIELDS)?;
    // The measurement's value and unit sit in the entry itself, not in a map of their own: two
    // officers creating that map concurrently would hide one officer's reading behind the other's,
    // while two values written to one key are a conflict the server can show.
    let measurement = match (f.number(key::VALUE)?, f.text(key::UNIT, MAX_LABEL_BYTES)?) {
        (None, None) => None,
        (value, unit) => {
            Some(Measurement { value: f.required(key::VALUE, value)?, unit: f.required(key::UNIT, unit)? })
        }
    };
    let entry = CheckEntry {
        result: f.choice(key::RESULT, CheckResult::parse, CheckResult::EXPECTED)?,
        measurement,
        note: f.text(key::NOTE, MAX_NOTE_BYTES)?,
        last_edit: f.stamp()?,
    };
    if entry.last_edit.is_none() && !f.is_empty() {
        return Err(SchemaViolation::MissingField { path: f.path_of(key::BY) });
    }
    Ok(entry)
}

pub(crate) fn read_photo(
    doc: &impl ReadDoc,
    obj: ObjId,
    path: String,
    on_checklist: &dyn Fn(&str) -> bool,
) -> Result<Stamped<PhotoRef>, SchemaViolation> {
    let f = Fields::new(doc, obj, path, PHOTO_FIELDS)?;
    let check_item = f.text(key::CHECK_ITEM, MAX_ID_BYTES)?;
    if let Some(item) = &check_item
        && !on_checklist(item)
    {
        return Err(SchemaViolation::invalid(
            f.path_of(key::CHECK_ITEM),
            "an item of this record's checklist",
        ));
    }
    let location = match (f.number(key::LAT)?, f.number(key::LON)?) {
        (None, None) => None,
        (lat, lon) => {
            let lat = f.required(key::LAT, lat)?;
            let lon = f.required(key::LON, lon)?;
            if !(-90.0..=90.0).contains(&lat) {
                return Err(SchemaViolation::invalid(f.path_of(key::LAT), "a latitude in -90..=90"));
            }
            if !(-180.0..=180.0).contains(&lon) {
                return Err(SchemaViolation::invalid(f.path_of(key::LON), "a longitude in -180..=180"));
            }
            Some(Location { lat, lon })
        }
    };
    Ok(Stamped {
        value: PhotoRef {
            check_item,
            caption: f.required(key::CAPTION, f.text(key::CAPTION, MAX_CAPTION_BYTES)?)?,
            taken_at: f.required(key::TAKEN_AT, f.millis(key::TAKEN_AT)?)?,
            location,
            withdrawn: f.flag(key::WITHDRAWN)?.unwrap_or(false),
        },
        stamp: f.required_stamp()?,
    })
}

pub(crate) fn read_sample(
    doc: &impl ReadDoc,
    obj: ObjId,
    path: String,
) -> Result<Stamped<Sample>, SchemaViolation> {
    let f = Fields::new(doc, obj, path, SAMPLE_FIELDS)?;
    let quantity = f.required(key::QUANTITY, f.number(key::QUANTITY)?)?;
    if quantity <= 0.0 {
        return Err(SchemaViolation::invalid(f.path_of(key::QUANTITY), "a positive number"));
    }
    Ok(Stamped {
        value: Sample {
            description: f.required(key::DESCRIPTION, f.text(key::DESCRIPTION, MAX_DESCRIPTION_BYTES)?)?,
            quantity,
            unit: f.required(key::UNIT, f.text(key::UNIT, MAX_LABEL_BYTES)?)?,
            seal_no: f.required(key::SEAL_NO, f.text(key::SEAL_NO, MAX_LABEL_BYTES)?)?,
        },
        stamp: f.required_stamp()?,
    })
}

/// `Some(true)` for conforming, `Some(false)` for non-conforming.
pub(crate) fn parse_verdict_value(s: &str) -> Option<bool> {
    match s {
        CONFORMING => Some(true),
        NON_CONFORMING => Some(false),
        _ => None,
    }
}

/// The verdict, or `None` while the server-created map is still empty.
pub(crate) fn read_verdict(
    doc: &impl ReadDoc,
    obj: ObjId,
    path: String,
) -> Result<Option<Stamped<Verdict>>, SchemaViolation> {
    let f = Fields::new(doc, obj, path, VERDICT_FIELDS)?;
    if f.is_empty() {
        return Ok(None);
    }
    let conforming = f.required(key::VALUE, f.choice(key::VALUE, parse_verdict_value, VERDICT_EXPECTED)?)?;
    // A disposal left over from an earlier non-conforming verdict is ignored, not refused: it can
    // legitimately survive a merge with a concurrent "conforming" verdict.
    let disposal = f.choice(key::DISPOSAL, Disposal::parse, Disposal::EXPECTED)?;
    let value = if conforming {
        Verdict::Conforming
    } else {
        Verdict::NonConforming { disposal: f.required(key::DISPOSAL, disposal)? }
    };
    Ok(Some(Stamped { value, stamp: f.required_stamp()? }))
}

pub(crate) fn read_signature(
    doc: &impl ReadDoc,
    obj: ObjId,
    path: String,
) -> Result<Signature, SchemaViolation> {
    let f = Fields::new(doc, obj, path, SIGNATURE_FIELDS)?;
    let digest = f.text(key::DIGEST, 64)?;
    if let Some(d) = &digest
        && (d.len() != 64 || !d.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
    {
        return Err(SchemaViolation::invalid(
            f.path_of(key::DIGEST),
            "a content digest (64 lowercase hex digits)",
        ));
    }
    Ok(Signature {
        statement: f.required(key::STATEMENT, f.text(key::STATEMENT, MAX_STATEMENT_BYTES)?)?,
        at: f.required(key::AT, f.millis(key::AT)?)?,
        digest,
    })
}

pub(crate) fn read_completion(
    doc: &impl ReadDoc,
    obj: ObjId,
    path: String,
) -> Result<Option<Stamped<Completion>>, SchemaViolation> {
    let f = Fields::new(doc, obj, path, COMPLETION_FIELDS)?;
    if f.is_empty() {
        return Ok(None);
    }
    Ok(Some(Stamped {
        value: Completion { complete: f.required(key::COMPLETE, f.flag(key::COMPLETE)?)? },
        stamp: f.required_stamp()?,
    }))
}

pub(crate) fn read_note(
    doc: &impl ReadDoc,
    obj: ObjId,
    id: NoteId,
    path: String,
) -> Result<NoteEntry, SchemaViolation> {
    let f = Fields::new(doc, obj, path, NOTE_FIELDS)?;
    let stamp = f.required_stamp()?;
    Ok(NoteEntry {
        id,
        text: f.required(key::TEXT, f.text(key::TEXT, MAX_NOTE_ENTRY_BYTES)?)?,
        by: stamp.by,
        at: stamp.at,
    })
}

/// A measurement must be in the unit its checklist item names (when the template names one): a core
/// temperature in °F next to a limit in °C is how a non-conformity slips through.
pub(crate) fn check_unit(
    measurement: Option<&Measurement>,
    item: Option<&ChecklistItem>,
    path: &str,
) -> Result<(), SchemaViolation> {
    let (Some(m), Some(expected)) = (measurement, item.and_then(|i| i.unit.as_deref())) else {
        return Ok(());
    };
    if m.unit == expected {
        Ok(())
    } else {
        Err(SchemaViolation::WrongUnit {
            path: join(path, key::UNIT),
            found: m.unit.clone(),
            expected: expected.to_owned(),
        })
    }
}

/// The assigned officers, as the server wrote them.
pub(crate) fn read_officers(doc: &impl ReadDoc) -> Result<Vec<OfficerId>, SchemaViolation> {
    let Some(list) = child(doc, &ROOT, key::OFFICERS, ObjType::List) else {
        return Err(SchemaViolation::MissingField { path: key::OFFICERS.to_owned() });
    };
    let len = doc.length(&list);
    if len > MAX_OFFICERS {
        return Err(SchemaViolation::TooMany {
            path: key::OFFICERS.to_owned(),
            count: len,
            limit: MAX_OFFICERS,
        });
    }
    (0..len)
        .map(|i| {
            let path = join(key::OFFICERS, &i.to_string());
            match doc.get(&list, i).ok().flatten() {
                Some((Value::Scalar(v), _)) => text_value(&v, &path, MAX_ID_BYTES).and_then(|s| {
                    OfficerId::parse(s).map_err(|_| SchemaViolation::invalid(&path, "an officer id"))
                }),
                _ => Err(SchemaViolation::invalid(path, "an officer id")),
            }
        })
        .collect()
}

/// Refuses a collection that has grown past its limit.
pub(crate) fn check_count(
    doc: &impl ReadDoc,
    obj: &ObjId,
    path: &str,
    limit: usize,
) -> Result<(), SchemaViolation> {
    let count = doc.length(obj);
    if count > limit {
        return Err(SchemaViolation::TooMany { path: path.to_owned(), count, limit });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_photo_hash_must_be_lowercase_sha256_hex() {
        assert!(PhotoHash::parse("ab".repeat(32)).is_ok());
        assert!(PhotoHash::parse("AB".repeat(32)).is_err());
        assert!(PhotoHash::parse("ab".repeat(31)).is_err());
        assert_eq!(PhotoHash::from_digest([0xab; 32]).as_str(), "ab".repeat(32));
    }

    #[test]
    fn ids_refuse_empty_long_and_odd_characters() {
        assert!(OfficerId::parse("officer-7").is_ok());
        assert!(OfficerId::parse("").is_err());
        assert!(OfficerId::parse("a".repeat(MAX_ID_BYTES + 1)).is_err());
        assert!(SampleId::parse("bag 1").is_err());
        assert!(SampleId::parse("bag/1").is_err());
    }

    #[test]
    fn ids_cannot_be_deserialized_around_their_parse() {
        assert!(serde_json::from_str::<OfficerId>("\"a b\"").is_err());
        assert!(serde_json::from_str::<OfficerId>("\"ab\"").is_ok());
    }

    #[test]
    fn enums_round_trip_through_their_document_strings() {
        for r in [CheckResult::Pass, CheckResult::Fail, CheckResult::NotApplicable] {
            assert_eq!(CheckResult::parse(r.as_str()), Some(r));
        }
        for d in [Disposal::TechnicalTreatment, Disposal::Return, Disposal::Destruction] {
            assert_eq!(Disposal::parse(d.as_str()), Some(d));
        }
        assert_eq!(CheckResult::parse("PASS"), None);
    }

    #[test]
    fn a_verdict_serializes_like_the_document_map() {
        let v = Verdict::NonConforming { disposal: Disposal::Return };
        assert_eq!(
            serde_json::to_value(v).unwrap(),
            serde_json::json!({"value": "non_conforming", "disposal": "return"})
        );
    }
}
