//! Receipts (回执): every state change of something an enterprise owns, listed by cursor.
//!
//! A receipt row is written in the same transaction as the change it reports. The cursor is the row id;
//! writers are serialised (see `db`), so ids become visible in increasing order and `id > cursor` paging
//! neither skips nor repeats under concurrent writes. Long-polling waits on a watch channel that every
//! receipt-writing commit bumps.

pub mod error;
pub mod http;
mod store;

pub use error::ReceiptsError;

use serde::Serialize;
use serde_json::{Value, json};

use crate::{
    audit::{self, Action, Actor},
    db::{Conn, Tx},
    delegations,
    domain::{
        Principal, Scope,
        events::{Event, Subject},
        time::rfc3339,
    },
    error::StoreError,
};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Receipt {
    /// The cursor: pass the last one you saw as `after`.
    pub id: i64,
    pub enterprise_id: i64,
    /// `application`, `instruction`, `booking` or `certificate` (a certificate application).
    pub subject: Subject,
    pub subject_id: i64,
    pub inspection_no: Option<String>,
    /// What happened, e.g. `submitted`, `returned`, `inspection_notice`, `booking_confirmed`.
    pub kind: String,
    /// The subject's state after the change.
    pub state: String,
    pub opinion: Option<String>,
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: i64,
    pub details: Value,
}

/// A state change of something an enterprise owns, as its receipt tells it and its audit entry keeps it.
pub struct Change<'a> {
    /// What happened; it names the subject, the receipt's kind and the audit action.
    pub event: Event,
    pub subject_id: i64,
    pub enterprise_id: i64,
    pub inspection_no: Option<&'a str>,
    /// The subject's state after the change.
    pub state: &'a str,
    /// The state before, for changes that move a state machine (the audit entry keeps it).
    pub from: Option<&'a str>,
    pub opinion: Option<&'a str>,
    /// What the receipt adds (the slot, the electronic record's number, the failed rules, …).
    pub details: Value,
}

/// Writes a state change's receipt and its audit entry, in the caller's transaction (so both commit
/// with the change or neither does): the one way a state change is told to the enterprise and recorded.
/// Answers the receipt's id.
pub fn record_change(tx: &Tx<'_>, now: i64, actor: &Actor, c: Change<'_>) -> Result<i64, StoreError> {
    let subject = c.event.subject();
    let receipt = store::insert(tx, now, &c)?;
    let mut entry = json!({"state": c.state, "opinion": c.opinion, "inspection_no": c.inspection_no,
                           "details": c.details});
    if let Some(from) = c.from {
        entry["from"] = from.into();
    }
    audit::append(
        tx,
        now,
        actor,
        Action::Change(c.event),
        &audit::Subject::Receipted(subject, c.subject_id),
        entry,
    )?;
    Ok(receipt)
}

/// What a change is about, as its receipt names it: the subject's row, the enterprise told, the
/// inspection number if there is one, and the subject's state after the change.
pub struct About<'a> {
    pub subject_id: i64,
    pub enterprise_id: i64,
    pub inspection_no: Option<&'a str>,
    pub state: &'a str,
}

/// [`record_change`] for the changes whose state before is not kept (every change but a state machine's
/// step): a booking's, a registration's, a certificate application's, a document's, a reminder.
pub fn record_event(
    tx: &Tx<'_>,
    now: i64,
    actor: &Actor,
    event: impl Into<Event>,
    about: About<'_>,
    opinion: Option<&str>,
    details: Value,
) -> Result<i64, StoreError> {
    let About { subject_id, enterprise_id, inspection_no, state } = about;
    let event = event.into();
    record_change(
        tx,
        now,
        actor,
        Change { event, subject_id, enterprise_id, inspection_no, state, from: None, opinion, details },
    )
}

/// Subjects a delegate holding `scope` may follow.
fn subjects_of(scope: Scope) -> &'static [Subject] {
    match scope {
        Scope::Applications => &[Subject::Application, Subject::Instruction],
        Scope::Bookings => &[Subject::Booking],
        Scope::Certificates => &[Subject::Certificate],
    }
}

/// Receipts after `after` that the caller may see: its enterprise's, and those of enterprises that
/// delegate the subject's scope to it (live at `now`). Filtered in SQL, so a page is never short while
/// more visible receipts exist.
pub fn list(
    c: &Conn,
    caller: &Principal,
    after: i64,
    limit: i64,
    now: i64,
) -> Result<Vec<Receipt>, ReceiptsError> {
    let own = caller.enterprise()?;
    let mut others = Vec::new();
    for (principal, scopes) in delegations::principals_of(c, caller, now)? {
        let subjects: Vec<Subject> = scopes.iter().flat_map(|s| subjects_of(*s).iter().copied()).collect();
        if !subjects.is_empty() {
            others.push((principal, subjects));
        }
    }
    Ok(store::after(c, after, own, &others, limit)?)
}
