//! Changing a live booking: reschedule, cancel and no-show (by the enterprise within the cut-off, by
//! customs any time with a reason), the booking following a cancelled instruction, and the site's
//! calendar, which may not close a day under live bookings.

use crate::db::{Conn, Tx};
use serde_json::json;

use super::booking::{
    HOUR_MS, as_not_found, deadline_of, expect_state, follow, is_customs_manager, managed, record, rules_of,
    site_by_code,
};
use super::calendar::{self, Calendar, CalendarSpec, SlotTime};
use super::error::BookingError;
use super::request::{check_new_slot, earliest, slot_full};
use super::store::{self, Booking, Stored};
use crate::{
    audit::{self, Actor},
    config::BookingSettings,
    delegations,
    domain::{BookingState, Principal, Role, Scope, events::BookingEvent, time::rfc3339},
    orgs::store as orgs_store,
};

/// Who is acting on a live booking, and under which rules.
enum Side {
    /// The enterprise or its delegate: cut-off and lead time apply.
    Enterprise,
    /// A supervisor of the site's subtree or an admin: any time, with a recorded reason.
    Customs,
}

fn side(tx: &Conn, caller: &Principal, b: &Stored, now: i64) -> Result<Side, BookingError> {
    match caller.role {
        Role::EnterpriseLegal | Role::EnterpriseOperator => {
            if delegations::may_act_for(tx, caller, b.booking.enterprise_id, Scope::Bookings, now)? {
                Ok(Side::Enterprise)
            } else {
                Err(BookingError::NotFound("the booking"))
            }
        }
        r if is_customs_manager(r) => {
            if r == Role::Admin || orgs_store::in_subtree(tx, caller.unit()?, b.booking.site_id)? {
                Ok(Side::Customs)
            } else {
                Err(BookingError::NotFound("the booking"))
            }
        }
        _ => Err(BookingError::MayNotChange),
    }
}

fn customs_reason(reason: Option<&str>) -> Result<&str, BookingError> {
    reason.map(str::trim).filter(|r| !r.is_empty()).ok_or(BookingError::MissingReason)
}

fn past_cutoff(settings: &BookingSettings, b: &Stored, now: i64) -> bool {
    now >= b.starts_at - settings.cutoff_hours * HOUR_MS
}

fn cutoff_error(settings: &BookingSettings, b: &Stored, action: &'static str) -> BookingError {
    BookingError::PastCutoff {
        action,
        hours: settings.cutoff_hours,
        until: rfc3339::to_string(b.starts_at - settings.cutoff_hours * HOUR_MS),
    }
}

/// Moves a live booking to another slot: the new place is taken before the old one is freed, in one
/// transaction, so a full target leaves the booking where it was.
pub fn reschedule(
    tx: &Tx<'_>,
    now: i64,
    caller: &Principal,
    settings: &BookingSettings,
    id: i64,
    start: i64,
    reason: Option<&str>,
) -> Result<Booking, BookingError> {
    let b = store::existing(tx, id)?;
    let side = side(tx, caller, &b, now)?;
    expect_state(&b, &[BookingState::Requested, BookingState::Confirmed], "rescheduled")?;
    let reason = match side {
        Side::Customs => Some(customs_reason(reason)?),
        Side::Enterprise => {
            if past_cutoff(settings, &b, now) {
                return Err(cutoff_error(settings, &b, "rescheduled"));
            }
            reason.map(str::trim).filter(|r| !r.is_empty())
        }
    };
    if start == b.starts_at {
        return Err(BookingError::SameSlot);
    }
    let rules = rules_of(tx, b.booking.site_id)?;
    let deadline = deadline_of(tx, b.booking.instruction_id)?;
    check_new_slot(&rules, settings, now, start, deadline, matches!(side, Side::Enterprise))?;
    if !store::take_place(tx, rules.site_id, rules.capacity, start)? {
        return Err(slot_full(tx, &rules, settings, start, earliest(settings, now), deadline));
    }
    store::release_place(tx, b.booking.site_id, b.starts_at)?;
    // Customs chose the new time itself; an enterprise's new time needs confirming where the site confirms
    // by hand.
    let state = match side {
        Side::Customs => BookingState::Confirmed,
        Side::Enterprise if rules.auto_confirm => BookingState::Confirmed,
        Side::Enterprise => BookingState::Requested,
    };
    store::move_to(tx, now, id, state, start, start + rules.slot_ms(), reason)?;
    let actor = Actor::User(caller.user_id);
    let due = (state == BookingState::Confirmed).then_some(start);
    follow(tx, now, b.booking.instruction_id, due)?;
    record(
        tx,
        now,
        &actor,
        id,
        BookingEvent::Rescheduled,
        reason,
        json!({
            "from": SlotTime::new(b.starts_at, b.ends_at, &b.booking.slot.timezone)?,
            "by": match side { Side::Customs => "customs", Side::Enterprise => "enterprise" },
        }),
    )
}

/// Cancels a live booking and frees its place. An enterprise cancelling after the cut-off still cancels,
/// but it counts as a no-show (state `no_show`); customs cancels any time with a reason.
pub fn cancel(
    tx: &Tx<'_>,
    now: i64,
    caller: &Principal,
    settings: &BookingSettings,
    id: i64,
    reason: Option<&str>,
) -> Result<Booking, BookingError> {
    let b = store::existing(tx, id)?;
    let side = side(tx, caller, &b, now)?;
    expect_state(&b, &[BookingState::Requested, BookingState::Confirmed], "cancelled")?;
    let (state, reason, late) = match side {
        Side::Customs => (BookingState::Cancelled, Some(customs_reason(reason)?), false),
        Side::Enterprise => {
            let late = past_cutoff(settings, &b, now) && b.booking.state == BookingState::Confirmed;
            let state = if late { BookingState::NoShow } else { BookingState::Cancelled };
            (state, reason.map(str::trim).filter(|r| !r.is_empty()), late)
        }
    };
    store::release_place(tx, b.booking.site_id, b.starts_at)?;
    store::set_state(tx, now, id, state, reason)?;
    if late {
        store::record_no_show(tx, now, &b.booking, "late_cancel")?;
    }
    let actor = Actor::User(caller.user_id);
    follow(tx, now, b.booking.instruction_id, None)?;
    let kind = if late { BookingEvent::NoShow } else { BookingEvent::Cancelled };
    record(
        tx,
        now,
        &actor,
        id,
        kind,
        reason,
        json!({
            "late_cancel": late,
            "by": match side { Side::Customs => "customs", Side::Enterprise => "enterprise" },
        }),
    )
}

/// Customs records that nobody came to a confirmed slot. The place stays used: the slot is over.
pub fn mark_no_show(tx: &Tx<'_>, now: i64, caller: &Principal, id: i64) -> Result<Booking, BookingError> {
    let b = managed(tx, caller, id)?;
    expect_state(&b, &[BookingState::Confirmed], "marked as a no-show")?;
    if now < b.starts_at {
        return Err(BookingError::SlotNotBegun(b.booking.slot.local_starts_at));
    }
    store::set_state(tx, now, id, BookingState::NoShow, None)?;
    store::record_no_show(tx, now, &b.booking, "missed")?;
    let actor = Actor::User(caller.user_id);
    follow(tx, now, b.booking.instruction_id, None)?;
    record(tx, now, &actor, id, BookingEvent::NoShow, None, json!({"missed": true}))
}

/// When customs cancels an instruction, its live booking goes too and frees its place.
pub fn instruction_cancelled(
    tx: &Tx<'_>,
    now: i64,
    actor: &Actor,
    instruction_id: i64,
) -> Result<bool, BookingError> {
    let Some(store::LivePlace { id, site_id, starts_at: start }) = store::live_of(tx, instruction_id)? else {
        return Ok(false);
    };
    store::release_place(tx, site_id, start)?;
    store::set_state(tx, now, id, BookingState::Cancelled, Some("the instruction was cancelled"))?;
    record(
        tx,
        now,
        actor,
        id,
        BookingEvent::Cancelled,
        Some("the instruction was cancelled"),
        json!({"by": "customs"}),
    )?;
    Ok(true)
}

/// A supervisor of the site's subtree, or an admin, manages its calendar.
pub fn set_calendar(
    tx: &Tx<'_>,
    now: i64,
    caller: &Principal,
    site_code: &str,
    spec: &CalendarSpec,
) -> Result<Calendar, BookingError> {
    let site = site_by_code(tx, "site_code", site_code).map_err(as_not_found)?;
    if caller.role != Role::Admin && !orgs_store::in_subtree(tx, caller.unit()?, site.id)? {
        return Err(BookingError::SiteOutsideSubtree(site_code.to_string()));
    }
    spec.check()?;
    // Closing a day under live bookings would strand them: customs moves or cancels those first.
    for d in &spec.closed_days {
        let date = calendar::parse_date("closed_days", &d.date)?;
        let (from, to) = calendar::date_range_ms(&site.timezone, date, date)?;
        let ids = store::live_between(tx, site.id, from, to)?;
        if !ids.is_empty() {
            return Err(BookingError::BookingsOnClosedDay { date: d.date.clone(), booking_ids: ids });
        }
    }
    let actor = Actor::User(caller.user_id);
    calendar::put(tx, now, site.id, spec, &actor)?;
    audit::append(
        tx,
        now,
        &actor,
        audit::Action::BookingCalendar,
        &audit::Subject::Unit(site.id),
        json!(spec),
    )?;
    calendar::get(tx, site.id)?.ok_or(BookingError::NotFound("the calendar"))
}
