//! Reminders in the receipts feed: a confirmed booking soon (tomorrow, by default), an instruction's
//! deadline near, a document asked for again and not yet sent, a delegation or an operator's validity
//! ending soon, a producer registration an open application names ending soon.
//!
//! # Layout
//! - `store`: what is due (one query per kind) and the `reminders` rows that keep each sent once.
//! - [`error`]: why a sweep failed (a leaf).
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

pub mod error;
mod store;

pub use error::ReminderError;

use fieldcheck_sync::IndexReminder;

use crate::{
    audit::Actor,
    config::ReminderSettings,
    db::Tx,
    domain::events::{Event, ReminderEvent},
    receipts::{self, About},
    records,
    state::AppState,
};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// Sends every reminder due at `now` that was not sent before; answers how many were sent.
pub fn sweep(tx: &Tx<'_>, now: i64, s: &ReminderSettings) -> Result<usize, ReminderError> {
    let mut sent = 0;
    for d in store::due(tx, now, s)? {
        if !store::is_fresh(tx, d.kind, d.key, d.due_at)? {
            continue;
        }
        let about = About {
            subject_id: d.subject_id,
            enterprise_id: d.enterprise_id,
            inspection_no: d.inspection_no.as_deref(),
            state: &d.state,
        };
        let event = Event::Reminder(d.subject, reminder_event(d.kind));
        let receipt = receipts::record_event(tx, now, &Actor::System, event, about, None, d.details.clone())?;
        store::sent(tx, &d, receipt, now)?;
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
