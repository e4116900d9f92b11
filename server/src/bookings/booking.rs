//! What every booking action shares: who may see a booking and act on it, the checks a change starts
//! with, and the receipt and audit entry it ends with.

use crate::db::{Conn, Tx};
use serde_json::json;

use super::calendar::{self, Rules};
use super::error::BookingError;
use super::store::{self, Booking, ListFilter, Seen, Stored};
use crate::{
    audit::Actor,
    db::scope,
    delegations,
    domain::{BookingState, Principal, Role, Scope, UnitKind, events::BookingEvent},
    instructions::{self, Instruction},
    orgs::store as orgs_store,
    receipts::{self, About},
};

pub(super) const HOUR_MS: i64 = 3_600_000;
pub(super) const DAY_MS: i64 = 24 * HOUR_MS;

pub(super) fn is_customs_manager(role: Role) -> bool {
    matches!(role, Role::Supervisor | Role::Admin)
}

/// May the caller see this booking? Enterprises: their own and those delegated in the bookings scope;
/// supervisors and reviewers: their unit's subtree; officers: bookings of instructions assigned to them.
fn visible(c: &Conn, caller: &Principal, b: &Stored, now: i64) -> Result<bool, BookingError> {
    Ok(match caller.role {
        Role::Admin => true,
        Role::EnterpriseLegal | Role::EnterpriseOperator => {
            delegations::may_act_for(c, caller, b.booking.enterprise_id, Scope::Bookings, now)?
        }
        Role::Supervisor | Role::Reviewer => orgs_store::in_subtree(c, caller.unit()?, b.booking.site_id)?,
        Role::Officer => scope::is_assigned(c, b.booking.instruction_id, caller.user_id)?,
    })
}

fn visible_booking(c: &Conn, caller: &Principal, id: i64, now: i64) -> Result<Stored, BookingError> {
    match store::load(c, id)? {
        Some(b) if visible(c, caller, &b, now)? => Ok(b),
        _ => Err(BookingError::NotFound("the booking")),
    }
}

pub fn get(c: &Conn, caller: &Principal, id: i64, now: i64) -> Result<Booking, BookingError> {
    Ok(visible_booking(c, caller, id, now)?.booking)
}

pub fn list(c: &Conn, caller: &Principal, f: &ListFilter, now: i64) -> Result<Vec<Booking>, BookingError> {
    let seen = match caller.role {
        Role::Admin => Seen::All,
        Role::EnterpriseLegal | Role::EnterpriseOperator => {
            let mut ids = vec![caller.enterprise()?];
            ids.extend(
                delegations::principals_of(c, caller, now)?
                    .into_iter()
                    .filter(|(_, scopes)| scopes.contains(&Scope::Bookings))
                    .map(|(id, _)| id),
            );
            Seen::Enterprises(ids)
        }
        Role::Supervisor | Role::Reviewer => Seen::Subtree(caller.unit()?),
        Role::Officer => Seen::AssignedTo(caller.user_id),
    };
    Ok(store::list(c, &seen, f)?)
}

/// The site by code, which must be an inspection site.
pub fn site_by_code(c: &Conn, field: &'static str, code: &str) -> Result<crate::orgs::Unit, BookingError> {
    match orgs_store::unit_by_code(c, code)? {
        Some(u) if u.kind == UnitKind::Site => Ok(u),
        Some(u) => Err(BookingError::NotASite { field, code: code.to_string(), name: u.name, kind: u.kind }),
        None => Err(BookingError::UnknownSite { field, code: code.to_string() }),
    }
}

/// A site named in the path that does not exist is a 404 naming it, not a body field error.
pub fn as_not_found(e: BookingError) -> BookingError {
    match e {
        BookingError::UnknownSite { code, .. } => BookingError::SiteNotFound(code),
        other => other,
    }
}

pub(super) fn rules_of(c: &Conn, site_id: i64) -> Result<Rules, BookingError> {
    calendar::rules(c, site_id)?.ok_or(BookingError::NoCalendar)
}

pub(super) fn deadline_of(c: &Conn, instruction_id: i64) -> Result<i64, BookingError> {
    instructions::get(c, instruction_id)?.map(|i| i.deadline).ok_or(BookingError::NotFound("the instruction"))
}

/// The instruction, if the caller may book for it; another enterprise's answers 404.
pub(super) fn bookable_instruction(
    tx: &Conn,
    caller: &Principal,
    id: i64,
    now: i64,
) -> Result<Instruction, BookingError> {
    match instructions::get(tx, id)? {
        Some(i) if delegations::may_act_for(tx, caller, i.enterprise_id, Scope::Bookings, now)? => Ok(i),
        _ => Err(BookingError::NotFound("the instruction")),
    }
}

/// A supervisor of the site's subtree (or an admin) acting on a booking; others get 404.
pub(super) fn managed(tx: &Conn, caller: &Principal, id: i64) -> Result<Stored, BookingError> {
    let b = store::existing(tx, id)?;
    if caller.role != Role::Admin && !orgs_store::in_subtree(tx, caller.unit()?, b.booking.site_id)? {
        return Err(BookingError::NotFound("the booking"));
    }
    Ok(b)
}

pub(super) fn expect_state(
    b: &Stored,
    allowed: &[BookingState],
    action: &'static str,
) -> Result<(), BookingError> {
    if allowed.contains(&b.booking.state) {
        Ok(())
    } else {
        Err(BookingError::WrongState { state: b.booking.state, action })
    }
}

/// Receipt and audit entry for one booking change.
pub(super) fn record(
    tx: &Tx<'_>,
    now: i64,
    actor: &Actor,
    id: i64,
    event: BookingEvent,
    opinion: Option<&str>,
    extra: serde_json::Value,
) -> Result<Booking, BookingError> {
    let b = store::existing(tx, id)?.booking;
    let details = json!({
        "instruction_id": b.instruction_id,
        "site_code": b.site_code,
        "slot": b.slot,
        "extra": extra,
    });
    let about = About {
        subject_id: b.id,
        enterprise_id: b.enterprise_id,
        inspection_no: Some(&b.inspection_no),
        state: b.state.as_str(),
    };
    receipts::record_event(tx, now, actor, event, about, opinion, details)?;
    Ok(b)
}

/// Writes the booked slot's start on the instruction (`None` when no confirmed booking holds it any more).
/// The instruction's state follows in the workflow (`workflow::booking_changed`), which reads `due_at`.
pub(super) fn follow(
    tx: &Tx<'_>,
    now: i64,
    instruction_id: i64,
    due: Option<i64>,
) -> Result<(), BookingError> {
    Ok(instructions::set_due_at(tx, now, instruction_id, due)?)
}
