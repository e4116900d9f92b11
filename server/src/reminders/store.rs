//! SQL of the reminders: what is due (read across the tables whose rows are reminded of: bookings,
//! instructions, document requests, delegations, users and producers; reads only) and the `reminders`
//! table that keeps each one sent once. Answers [`StoreError`], never HTTP.

use rusqlite::{Transaction, params};
use serde_json::json;

use super::{DAY_MS, HOUR_MS};
use crate::{
    config::ReminderSettings,
    db::StoreError,
    domain::{events::Subject, time::rfc3339},
};

/// The applications a producer registration still matters to: not yet decided, or under inspection.
const OPEN_APPLICATION_STATES: &str =
    "'draft', 'submitted', 'returned', 'suspended', 'document_check', 'inspection'";

/// One reminder about to be sent.
pub(super) struct Due {
    pub kind: &'static str,
    /// What the reminder is about in its key: the subject, or the document request.
    pub key: i64,
    pub subject: Subject,
    pub subject_id: i64,
    pub enterprise_id: i64,
    pub inspection_no: Option<String>,
    pub state: String,
    pub due_at: i64,
    pub details: serde_json::Value,
}

/// Confirmed bookings starting in `(?1, ?2]`; read through `bookings_confirmed_start` (migration 25).
const BOOKINGS_SOON_SQL: &str = "SELECT b.id, b.enterprise_id, i.inspection_no, b.starts_at, b.state
     FROM bookings b JOIN instructions i ON i.id = b.instruction_id
     WHERE b.state = 'confirmed' AND b.starts_at > ?1 AND b.starts_at <= ?2";

/// Open instructions due in `(?1, ?2]`; read through `instructions_deadline_open` (migration 25), not
/// by a scan of every instruction ever issued: the sweep runs in the writer once a minute.
const DEADLINES_NEAR_SQL: &str = "SELECT id, enterprise_id, inspection_no, deadline, state FROM instructions
     WHERE state IN ('issued', 'booked', 'assigned', 'in_progress') AND deadline > ?1 AND deadline <= ?2";

/// Every reminder due at `now` by the thresholds `s`, sent before or not.
pub(super) fn due(tx: &Transaction<'_>, now: i64, s: &ReminderSettings) -> Result<Vec<Due>, StoreError> {
    let mut due = Vec::new();
    let mut stmt = tx.prepare_cached(BOOKINGS_SOON_SQL)?;
    let rows = stmt.query_map(params![now, now + s.booking_hours * HOUR_MS], |r| {
        let starts_at: i64 = r.get(3)?;
        Ok(Due {
            kind: "booking_soon",
            key: r.get(0)?,
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
    let mut stmt = tx.prepare_cached(DEADLINES_NEAR_SQL)?;
    let rows = stmt.query_map(params![now, now + s.deadline_hours * HOUR_MS], |r| {
        let deadline: i64 = r.get(3)?;
        Ok(Due {
            kind: "deadline_near",
            key: r.get(0)?,
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
            // One reminder per request: the request's id stands for the subject in the key.
            key: r.get(0)?,
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
            key: r.get(0)?,
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
            key: r.get(0)?,
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
            key: r.get(0)?,
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
    Ok(due)
}

/// Has the reminder (kind, key, instant) not been sent yet?
pub(super) fn is_fresh(tx: &Transaction<'_>, kind: &str, key: i64, due_at: i64) -> Result<bool, StoreError> {
    Ok(tx.query_row(
        "SELECT NOT EXISTS (SELECT 1 FROM reminders WHERE kind = ?1 AND subject_id = ?2 AND due_at = ?3)",
        params![kind, key, due_at],
        |r| r.get(0),
    )?)
}

/// Marks the reminder sent with its receipt.
pub(super) fn sent(tx: &Transaction<'_>, d: &Due, receipt: i64, now: i64) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO reminders (kind, subject_id, due_at, receipt_id, sent_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![d.kind, d.key, d.due_at, receipt, now],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(sql: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::db::Db::open(dir.path(), 1).unwrap();
        let sql = format!("EXPLAIN QUERY PLAN {sql}");
        db.write_blocking(move |tx| -> Result<_, StoreError> {
            let mut stmt = tx.prepare(&sql)?;
            let rows = stmt.query_map(params![0, 1], |r| r.get::<_, String>(3))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?.join("\n"))
        })
        .unwrap()
    }

    #[test]
    fn the_deadline_sweep_searches_open_instructions_by_deadline_instead_of_scanning_them_all() {
        let plan = plan(DEADLINES_NEAR_SQL);
        assert!(plan.contains("SEARCH instructions USING INDEX instructions_deadline_open"), "{plan}");
    }

    #[test]
    fn the_booking_sweep_searches_confirmed_bookings_by_start() {
        let plan = plan(BOOKINGS_SOON_SQL);
        assert!(plan.contains("USING INDEX bookings_confirmed_start"), "{plan}");
    }
}
