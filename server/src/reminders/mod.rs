//! Reminders in the receipts feed: a confirmed booking soon (tomorrow, by default), an instruction's
//! deadline near, a document asked for again and not yet sent, a delegation or an operator's validity
//! ending soon, a producer registration an open application names ending soon.
//!
//! # Layout
//! - [`sweep`]: one pass, in one write transaction: every reminder due at `now` whose row in `reminders`
//!   does not exist yet is written with its receipt. The row's key is (kind, subject, the instant the
//!   reminder is about), so each is sent once, also across restarts, and a rescheduled slot is reminded
//!   of anew.
//! - [`run`]: the background task that sweeps every `reminders.sweep_secs`, reading the server's clock
//!   (the manual clock in tests), and wakes receipt listeners after a sweep that sent something.
//!
//! Thresholds are settings (`[reminders]`). Where each goes:
//! - every one is a receipt to the enterprise concerned (a delegation's to its principal, an operator's
//!   to its enterprise, a producer's to each enterprise with an open application naming it);
//! - a deadline near also goes into the assignment index of each officer assigned to the instruction
//!   (`records::remind_officers`): officers work on handhelds that sync the index, not on a live stream;
//! - receipts about instructions are events of the supervisors' live stream (`GET /api/v1/events`), so
//!   a deadline near reaches the supervisors of the instruction's unit with no extra write.

use fieldcheck_sync::IndexReminder;
use rusqlite::{Transaction, params};
use serde_json::json;

use crate::{
    audit::Actor,
    config::ReminderSettings,
    domain::events::{Event, ReminderEvent, Subject},
    domain::time::rfc3339,
    error::ApiError,
    receipts::{self, Change},
    records,
    state::AppState,
};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// The applications a producer registration still matters to: not yet decided, or under inspection.
const OPEN_APPLICATION_STATES: &str =
    "'draft', 'submitted', 'returned', 'suspended', 'document_check', 'inspection'";

/// One reminder about to be sent.
struct Due {
    kind: &'static str,
    subject: Subject,
    subject_id: i64,
    enterprise_id: i64,
    inspection_no: Option<String>,
    state: String,
    due_at: i64,
    details: serde_json::Value,
}

/// Sends every reminder due at `now` that was not sent before; answers how many were sent.
pub fn sweep(tx: &Transaction<'_>, now: i64, s: &ReminderSettings) -> Result<usize, ApiError> {
    let mut due = Vec::new();
    {
        let mut stmt = tx.prepare_cached(
            "SELECT b.id, b.enterprise_id, i.inspection_no, b.starts_at, b.state
             FROM bookings b JOIN instructions i ON i.id = b.instruction_id
             WHERE b.state = 'confirmed' AND b.starts_at > ?1 AND b.starts_at <= ?2",
        )?;
        let rows = stmt.query_map(params![now, now + s.booking_hours * HOUR_MS], |r| {
            let starts_at: i64 = r.get(3)?;
            Ok(Due {
                kind: "booking_soon",
                subject: Subject::Booking,
                subject_id: r.get(0)?,
                enterprise_id: r.get(1)?,
                inspection_no: r.get(2)?,
                state: r.get(4)?,
                due_at: starts_at,
                details: json!({"starts_at": rfc3339::to_string(starts_at)}),
            })
        })?;
        for d in rows {
            due.push(d?);
        }
        let mut stmt = tx.prepare_cached(
            "SELECT id, enterprise_id, inspection_no, deadline, state FROM instructions
             WHERE state IN ('issued', 'booked', 'assigned', 'in_progress') AND deadline > ?1 AND deadline <= ?2",
        )?;
        let rows = stmt.query_map(params![now, now + s.deadline_hours * HOUR_MS], |r| {
            let deadline: i64 = r.get(3)?;
            Ok(Due {
                kind: "deadline_near",
                subject: Subject::Instruction,
                subject_id: r.get(0)?,
                enterprise_id: r.get(1)?,
                inspection_no: r.get(2)?,
                state: r.get(4)?,
                due_at: deadline,
                details: json!({"deadline": rfc3339::to_string(deadline)}),
            })
        })?;
        for d in rows {
            due.push(d?);
        }
        // The subject's state comes from its own table: an application or a certificate application.
        let mut stmt = tx.prepare_cached(
            "SELECT r.id, a.subject, a.subject_id, a.enterprise_id, r.requested_at, a.id, a.kind, r.opinion,
                    CASE a.subject WHEN 'application' THEN (SELECT state FROM applications WHERE id = a.subject_id)
                                   ELSE (SELECT state FROM certificate_applications WHERE id = a.subject_id) END,
                    CASE a.subject WHEN 'application' THEN (SELECT inspection_no FROM applications WHERE id = a.subject_id)
                                   ELSE (SELECT p.inspection_no FROM certificate_applications c
                                         JOIN applications p ON p.id = c.application_id WHERE c.id = a.subject_id) END
             FROM document_requests r JOIN document_attachments a ON a.id = r.attachment_id
             WHERE r.answered_by IS NULL AND r.requested_at <= ?1",
        )?;
        let rows = stmt.query_map(params![now - s.document_hours * HOUR_MS], |r| {
            let subject: String = r.get(1)?;
            let requested_at: i64 = r.get(4)?;
            Ok(Due {
                kind: "document_outstanding",
                subject: if subject == "application" { Subject::Application } else { Subject::Certificate },
                subject_id: r.get(2)?,
                enterprise_id: r.get(3)?,
                inspection_no: r.get(9)?,
                state: r.get(8)?,
                // One reminder per request: the request's id stands for the subject in the key.
                due_at: requested_at,
                details: json!({"request_id": r.get::<_, i64>(0)?, "attachment_id": r.get::<_, i64>(5)?,
                                "document_kind": r.get::<_, String>(6)?, "asked": r.get::<_, String>(7)?,
                                "requested_at": rfc3339::to_string(requested_at)}),
            })
        })?;
        for d in rows {
            due.push(d?);
        }
        let mut stmt = tx.prepare_cached(
            "SELECT d.id, d.principal_id, d.valid_until, a.customs_code, d.scopes
             FROM delegations d JOIN enterprises a ON a.id = d.agent_id
             WHERE d.revoked_at IS NULL AND d.valid_until > ?1 AND d.valid_until <= ?2",
        )?;
        let rows = stmt.query_map(params![now, now + s.delegation_days * DAY_MS], |r| {
            let until: i64 = r.get(2)?;
            Ok(Due {
                kind: "delegation_expiring",
                subject: Subject::Delegation,
                subject_id: r.get(0)?,
                enterprise_id: r.get(1)?,
                inspection_no: None,
                state: "active".into(),
                due_at: until,
                details: json!({"valid_until": rfc3339::to_string(until),
                                "agent_customs_code": r.get::<_, String>(3)?, "scopes": r.get::<_, String>(4)?}),
            })
        })?;
        for d in rows {
            due.push(d?);
        }
        let mut stmt = tx.prepare_cached(
            "SELECT id, enterprise_id, valid_until, username, status FROM users
             WHERE enterprise_id IS NOT NULL AND status = 'active' AND valid_until > ?1 AND valid_until <= ?2",
        )?;
        let rows = stmt.query_map(params![now, now + s.operator_days * DAY_MS], |r| {
            let until: i64 = r.get(2)?;
            Ok(Due {
                kind: "operator_expiring",
                subject: Subject::User,
                subject_id: r.get(0)?,
                enterprise_id: r.get(1)?,
                inspection_no: None,
                state: r.get(4)?,
                due_at: until,
                details: json!({"valid_until": rfc3339::to_string(until), "username": r.get::<_, String>(3)?}),
            })
        })?;
        for d in rows {
            due.push(d?);
        }
        // One reminder per application and end date, naming every producer of its goods that ends then.
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT a.id, a.enterprise_id, a.inspection_no, a.state, p.valid_until,
                    group_concat(DISTINCT p.registration_no)
             FROM applications a, json_each(a.content, '$.goods') g
             JOIN registered_producers p ON p.registration_no = json_extract(g.value, '$.producer_registration_no')
             WHERE a.state IN ({OPEN_APPLICATION_STATES}) AND p.valid_until > ?1 AND p.valid_until <= ?2
             GROUP BY a.id, p.valid_until"
        ))?;
        let rows = stmt.query_map(params![now, now + s.producer_days * DAY_MS], |r| {
            let until: i64 = r.get(4)?;
            let producers: String = r.get(5)?;
            Ok(Due {
                kind: "producer_expiring",
                subject: Subject::Application,
                subject_id: r.get(0)?,
                enterprise_id: r.get(1)?,
                inspection_no: r.get(2)?,
                state: r.get(3)?,
                due_at: until,
                details: json!({"valid_until": rfc3339::to_string(until),
                                "producer_registration_nos": producers.split(',').collect::<Vec<_>>()}),
            })
        })?;
        for d in rows {
            due.push(d?);
        }
    }
    let mut sent = 0;
    for d in due {
        let key = if d.kind == "document_outstanding" {
            d.details["request_id"].as_i64().unwrap_or(0)
        } else {
            d.subject_id
        };
        let fresh: bool = tx.query_row(
            "SELECT NOT EXISTS (SELECT 1 FROM reminders WHERE kind = ?1 AND subject_id = ?2 AND due_at = ?3)",
            params![d.kind, key, d.due_at],
            |r| r.get(0),
        )?;
        if !fresh {
            continue;
        }
        let change = Change {
            event: Event::Reminder(d.subject, reminder_event(d.kind)),
            subject_id: d.subject_id,
            enterprise_id: d.enterprise_id,
            inspection_no: d.inspection_no.as_deref(),
            state: &d.state,
            from: None,
            opinion: None,
            details: d.details,
        };
        let receipt = receipts::record_change(tx, now, &Actor::System, change)?;
        tx.execute(
            "INSERT INTO reminders (kind, subject_id, due_at, receipt_id, sent_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![d.kind, key, d.due_at, receipt, now],
        )?;
        if d.kind == "deadline_near" {
            let reminder = IndexReminder { kind: d.kind.into(), due_at: d.due_at, sent_at: now };
            records::remind_officers(tx, now, d.subject_id, &reminder)?;
        }
        sent += 1;
    }
    Ok(sent)
}

/// The receipt event of a reminder kind (the `reminders.kind` spelling).
fn reminder_event(kind: &str) -> ReminderEvent {
    match kind {
        "booking_soon" => ReminderEvent::BookingSoon,
        "deadline_near" => ReminderEvent::DeadlineNear,
        "delegation_expiring" => ReminderEvent::DelegationExpiring,
        "operator_expiring" => ReminderEvent::OperatorExpiring,
        "producer_expiring" => ReminderEvent::ProducerExpiring,
        _ => ReminderEvent::DocumentOutstanding,
    }
}

/// Sweeps every `sweep_secs` for as long as the server runs.
pub async fn run(state: AppState) {
    let settings = state.settings.reminders.clone();
    let sweeps = prometheus::IntCounter::new("reminder_sweeps_total", "Reminder sweeps completed")
        .expect("a valid metric");
    let _ = state.metrics.registry().register(Box::new(sweeps.clone()));
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(settings.sweep_secs.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = state.now_ms();
        let s = settings.clone();
        match state.db.write(move |tx| sweep(tx, now, &s)).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::debug!(sent = n, "reminders sent");
                state.receipts_changed();
            }
            Err(e) => tracing::error!(error = %e, "reminder sweep failed"),
        }
        sweeps.inc();
    }
}
